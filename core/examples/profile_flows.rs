//! The flow fast path over 32-frame bursts, for instruction-level profiles
//! that do not depend on machine noise:
//!
//!     cargo build --release -p sluice-core --example profile_flows --no-default-features
//!     valgrind --tool=callgrind --toggle-collect='*measured*' \
//!         target/release/examples/profile_flows established 2000
//!     valgrind --tool=callgrind --toggle-collect='*measured*' \
//!         target/release/examples/profile_flows new 2000
//!
//! `established N`: 65,536 flows are created, then N bursts of ACKs spread
//! over them. `new N`: N bursts of SYNs of flows never seen. Only
//! `measured_on` is counted, so the total over N x 32 is the cost per packet.
//! `snat-established N` and `snat-new N`: the same for SNAT flows from
//! 1,000 members (64 ports each).

use sluice_core::craft::{self, Example};
use sluice_core::pipeline::{process_burst, Context, Counters, Fate};
use sluice_core::wire::tcp;

const FLOWS: u32 = 1 << 16;

type Frames = Vec<(Vec<u8>, usize)>;

fn burst(first: u32, flags: tcp::Flags, spread: bool) -> Frames {
    (first..first + 32)
        .map(|i| {
            let i = if spread {
                i.wrapping_mul(2_654_435_761) % FLOWS
            } else {
                i
            };
            craft::bench_frame(i, flags)
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "established".into());
    let bursts: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let neigh = craft::example_neigh();
    let mut fates = [Fate::Consumed; 32];
    let mut c = Counters::default();
    let ex = Example::lb(FLOWS + bursts * 32 + 64);
    let cx = ex.cx(&neigh, 1);
    match mode.as_str() {
        "established" => {
            for b in 0..FLOWS / 32 {
                let mut syns = burst(b * 32, tcp::Flags::SYN, false);
                process_burst(cx, 0, &mut syns, &mut fates, &mut craft::NoLearn, &mut c);
            }
            let acks: Vec<Frames> = (0..64)
                .map(|b| burst(b * 32, tcp::Flags::ACK, true))
                .collect();
            let mut work = acks.clone();
            for b in 0..bursts as usize {
                let w = &mut work[b % 64];
                for (f, p) in w.iter_mut().zip(&acks[b % 64]) {
                    f.0[..64].copy_from_slice(&p.0[..64]);
                }
                measured_on(cx, 0, w, &mut fates, &mut c);
            }
        }
        "new" => {
            let mut all: Vec<Frames> = (0..bursts)
                .map(|b| burst(FLOWS + b * 32, tcp::Flags::SYN, false))
                .collect();
            for b in &mut all {
                measured_on(cx, 0, b, &mut fates, &mut c);
            }
        }
        "snat-established" => {
            let ex = craft::snat_example(1000, 64, FLOWS + 64);
            let cx = ex.cx(&neigh, 1);
            let frame = |i: u32, f| craft::snat_bench_frame(i, 1000, f);
            for b in 0..FLOWS / 32 {
                let mut syns: Frames = (b * 32..b * 32 + 32)
                    .map(|i| frame(i, tcp::Flags::SYN))
                    .collect();
                process_burst(cx, 1, &mut syns, &mut fates, &mut craft::NoLearn, &mut c);
            }
            let acks: Vec<Frames> = (0..64u32)
                .map(|b| {
                    (0..32u32)
                        .map(|k| {
                            frame(
                                (b * 32 + k).wrapping_mul(2_654_435_761) % FLOWS,
                                tcp::Flags::ACK,
                            )
                        })
                        .collect()
                })
                .collect();
            let mut work = acks.clone();
            for b in 0..bursts as usize {
                let w = &mut work[b % 64];
                for (f, p) in w.iter_mut().zip(&acks[b % 64]) {
                    f.0[..64].copy_from_slice(&p.0[..64]);
                }
                measured_on(cx, 1, w, &mut fates, &mut c);
            }
        }
        "snat-new" => {
            let ex = craft::snat_example(1000, 64, FLOWS + bursts * 32 + 64);
            let cx = ex.cx(&neigh, 1);
            let mut all: Vec<Frames> = (0..bursts)
                .map(|b| {
                    (0..32)
                        .map(|k| craft::snat_bench_frame(b * 32 + k, 1000, tcp::Flags::SYN))
                        .collect()
                })
                .collect();
            for b in &mut all {
                measured_on(cx, 1, b, &mut fates, &mut c);
            }
        }
        m => panic!("mode {m}: established, new, snat-established or snat-new"),
    }
    std::hint::black_box(&c);
}

/// One counted burst of frames received on `port`; never inlined, so
/// callgrind can count it alone.
#[inline(never)]
fn measured_on(
    cx: Context<'_>,
    port: u16,
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
}
