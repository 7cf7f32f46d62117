//! The flow fast path over 32-frame bursts, for instruction-level profiles
//! that do not depend on machine noise:
//!
//!     cargo build --release -p sluice-core --example profile_flows --no-default-features
//!     valgrind --tool=callgrind --toggle-collect='*measured*' \
//!         target/release/examples/profile_flows established 2000
//!     valgrind --tool=callgrind --toggle-collect='*measured*' \
//!         target/release/examples/profile_flows new 2000
//!
//! `established N`: 65,536 flows are created and opened (SYN, SYN-ACK,
//! ACK), then N bursts of ACKs spread over them. `new N`: N bursts of SYNs of flows never seen.
//! `established6 N` and `new6 N`: the same over IPv6.
//! `snat-established N` and `snat-new N`: the same for SNAT flows from
//! 1,000 members (64 ports each). Only `measured_on` is counted, so the
//! total over N x 32 is the cost per packet.

use sluice_core::craft::{self, Example};
use sluice_core::flow::tcp as tcp_state;
use sluice_core::neigh::PortIndex;
use sluice_core::pipeline::{process_burst, Context, Counters, Fate};
use sluice_core::wire::{checksum, tcp};

const EXT: PortIndex = PortIndex::new(0);
const INT: PortIndex = PortIndex::new(1);

const FLOWS: u32 = 1 << 16;
const MEMBERS: u32 = 1000;

type Frames = Vec<(Vec<u8>, usize)>;
type Frame = dyn Fn(u32, tcp::Flags) -> (Vec<u8>, usize);

/// Frames `first..first + 32` (or, `spread`, 32 flows scattered over the
/// `FLOWS` created ones).
fn burst(frame: &Frame, first: u32, flags: tcp::Flags, spread: bool) -> Frames {
    (first..first + 32)
        .map(|i| {
            let i = if spread {
                i.wrapping_mul(2_654_435_761) % FLOWS
            } else {
                i
            };
            frame(i, flags)
        })
        .collect()
}

/// Creates `FLOWS` flows uncounted and opens each (the SYN, the other
/// side's SYN-ACK, the ACK), then counts `bursts` bursts of ACKs spread
/// over them, each restored from a copy first (as the benches do).
fn established(cx: Context<'_>, port: PortIndex, frame: &Frame, bursts: u32) {
    let (mut fates, mut c) = ([Fate::Consumed; 32], Counters::default());
    for b in 0..FLOWS / 32 {
        let mut syns = burst(frame, b * 32, tcp::Flags::SYN, false);
        process_burst(cx, port, &mut syns, &mut fates, &mut craft::NoLearn, &mut c);
        for (f, fate) in syns.iter_mut().zip(&fates) {
            let Fate::Tx { port: out, len } = *fate else {
                panic!("a SYN was not forwarded: {fate:?}");
            };
            let mut reply = [syn_ack(&f.0[..usize::from(len)])];
            process_burst(
                cx,
                out,
                &mut reply,
                &mut [Fate::Consumed],
                &mut craft::NoLearn,
                &mut c,
            );
        }
        let mut acks = burst(frame, b * 32, tcp::Flags::ACK, false);
        process_burst(cx, port, &mut acks, &mut fates, &mut craft::NoLearn, &mut c);
    }
    let open = |s: Option<tcp_state::State>| s == Some(tcp_state::State::Established);
    let established = (0..cx.flows.high_water())
        .filter(|&i| open(cx.flows.info(i).map(|f| f.state)))
        .count()
        + (0..cx.flows6.high_water())
            .filter(|&i| open(cx.flows6.info(i).map(|f| f.state)))
            .count();
    assert_eq!(established, FLOWS as usize, "flows not established");
    let acks: Vec<Frames> = (0..64)
        .map(|b| burst(frame, b * 32, tcp::Flags::ACK, true))
        .collect();
    let mut work = acks.clone();
    for b in 0..bursts as usize {
        let w = &mut work[b % 64];
        for (f, p) in w.iter_mut().zip(&acks[b % 64]) {
            let n = p.1.max(64);
            f.0[..n].copy_from_slice(&p.0[..n]);
        }
        measured_on(cx, port, w, &mut fates, &mut c);
    }
}

/// The answer to the forwarded SYN `out` (either family): addresses,
/// ports and MACs swapped, SYN-ACK acknowledging it, in a 2048-byte room.
fn syn_ack(out: &[u8]) -> (Vec<u8>, usize) {
    let mut f = out.to_vec();
    let (ip, addr, len) = if f[12..14] == [0x86, 0xdd] {
        (14, 8, 16)
    } else {
        (14, 12, 4)
    };
    let l4 = if len == 16 {
        ip + 40
    } else {
        ip + usize::from(f[ip] & 0xf) * 4
    };
    let (a, b) = f.split_at_mut(6);
    a.swap_with_slice(&mut b[..6]);
    let (a, b) = f[ip + addr..].split_at_mut(len);
    a.swap_with_slice(&mut b[..len]);
    let (a, b) = f[l4..].split_at_mut(2);
    a.swap_with_slice(&mut b[..2]);
    // Swapping leaves every checksum as it was; the ack number and the
    // flags move the TCP one by what they add.
    let seq = u32::from_be_bytes(f[l4 + 4..l4 + 8].try_into().unwrap());
    let ack = seq.wrapping_add(1).to_be_bytes();
    let flags = tcp::Flags::SYN.0 | tcp::Flags::ACK.0;
    let old = [&f[l4 + 8..l4 + 12], &f[l4 + 12..l4 + 14]].concat();
    let new = [&ack[..], &[f[l4 + 12], flags]].concat();
    f[l4 + 8..l4 + 12].copy_from_slice(&ack);
    f[l4 + 13] = flags;
    let cs = u16::from_be_bytes([f[l4 + 16], f[l4 + 17]]);
    let cs = checksum::update_bytes(cs, &old, &new);
    f[l4 + 16..l4 + 18].copy_from_slice(&cs.to_be_bytes());
    let n = f.len();
    f.resize(2048, 0);
    (f, n)
}

/// Counts `bursts` bursts of SYNs of flows never seen.
fn new_flows(cx: Context<'_>, port: PortIndex, frame: &Frame, bursts: u32) {
    let (mut fates, mut c) = ([Fate::Consumed; 32], Counters::default());
    let mut all: Vec<Frames> = (0..bursts)
        .map(|b| burst(frame, FLOWS + b * 32, tcp::Flags::SYN, false))
        .collect();
    for b in &mut all {
        measured_on(cx, port, b, &mut fates, &mut c);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "established".into());
    let bursts: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let neigh = craft::example_neigh();
    // PROFILE_CAPACITY: a smaller table, for the bucket scan at a higher
    // load (the default leaves the buckets a quarter full).
    let capacity = std::env::var("PROFILE_CAPACITY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(FLOWS + bursts * 32 + 64);
    let inbound = |i, f| craft::bench_frame(i, f);
    let snat = |i, f| craft::snat_bench_frame(i, MEMBERS, f);
    let inbound6 = |i, f| craft::bench_frame6(i, f);
    match mode.as_str() {
        "established6" => established(Example::lb6(capacity).cx(&neigh, 1), EXT, &inbound6, bursts),
        "new6" => new_flows(Example::lb6(capacity).cx(&neigh, 1), EXT, &inbound6, bursts),
        "established" => established(Example::lb(capacity).cx(&neigh, 1), EXT, &inbound, bursts),
        "new" => new_flows(Example::lb(capacity).cx(&neigh, 1), EXT, &inbound, bursts),
        "snat-established" | "snat-new" => {
            let ex = craft::snat_example(MEMBERS, 64, capacity);
            let cx = ex.cx(&neigh, 1);
            if mode == "snat-new" {
                new_flows(cx, INT, &snat, bursts);
            } else {
                established(cx, INT, &snat, bursts);
            }
        }
        m => panic!("mode {m}: established, new, established6, new6, snat-established or snat-new"),
    }
}

/// One counted burst of frames received on `port`; never inlined, so
/// callgrind can count it alone.
#[inline(never)]
fn measured_on(
    cx: Context<'_>,
    port: PortIndex,
    frames: &mut Frames,
    fates: &mut [Fate; 32],
    c: &mut Counters,
) {
    process_burst(
        cx,
        port,
        std::hint::black_box(frames),
        fates,
        &mut craft::NoLearn,
        c,
    );
    std::hint::black_box(c);
}
