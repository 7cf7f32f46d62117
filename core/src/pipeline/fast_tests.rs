//! The fast path against the full path: every frame of a tracked flow that
//! the burst's fast path takes must come out as the full path would make
//! it (same fate, same bytes, same flow state after), and the next-hop memo
//! must give each next hop its own addresses.

use super::fast::{send_to, NeighMemo};
use super::*;
use crate::craft::{self, Example, EXAMPLE_EXT_MAC, EXAMPLE_GW_MAC, EXAMPLE_INT_MAC};
use crate::family::Dir;
use crate::flow::Delta;
use crate::neigh::NeighView;
use crate::wire::{checksum, tcp};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::{IpAddr, Ipv4Addr};

const EXT: PortIndex = PortIndex::new(0);
const INT: PortIndex = PortIndex::new(1);
const MEMBER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 0x99]);

struct Nop;
impl Slowpath for Nop {
    fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
}

/// One tracked flow of the test: its client and frontend ends, the member
/// it went to, and its protocol.
#[derive(Clone, Copy)]
struct Flow {
    client: (IpAddr, u16),
    frontend: (IpAddr, u16),
    member: (IpAddr, u16),
    udp: bool,
}

/// An IPv6 frame (else IPv4).
fn is_v6(f: &[u8]) -> bool {
    f[12..14] == [0x86, 0xdd]
}

/// The destination address and port of a forwarded frame.
fn destination(f: &[u8]) -> (IpAddr, u16) {
    if is_v6(f) {
        let a: [u8; 16] = f[38..54].try_into().unwrap();
        (IpAddr::from(a), u16::from_be_bytes([f[56], f[57]]))
    } else {
        let a: [u8; 4] = f[30..34].try_into().unwrap();
        (IpAddr::from(a), u16::from_be_bytes([f[36], f[37]]))
    }
}

fn frame(src: (IpAddr, u16), dst: (IpAddr, u16), udp: bool, flags: u8, data: &[u8]) -> Vec<u8> {
    let (from, to) = (EXAMPLE_GW_MAC, EXAMPLE_EXT_MAC);
    if udp {
        craft::udp_ip(from, to, src, dst, data)
    } else {
        craft::tcp_ip(from, to, src, dst, tcp::Flags(flags), (1000, 1), data)
    }
}

/// Recomputes an IPv4 header's checksum.
fn fix_ip_checksum(f: &mut [u8]) {
    let end = 14 + usize::from(f[14] & 0x0f) * 4;
    f[24..26].copy_from_slice(&[0, 0]);
    let cs = checksum::checksum(&f[14..end]);
    f[24..26].copy_from_slice(&cs.to_be_bytes());
}

/// Inserts `words` four-byte words of NOP options into an IPv4 header.
fn with_ip_options(f: &[u8], words: usize) -> Vec<u8> {
    let mut v = f[..34].to_vec();
    v.extend(std::iter::repeat_n(1u8, 4 * words));
    v.extend_from_slice(&f[34..]);
    v[14] = 0x45 + words as u8;
    let total = u16::from_be_bytes([v[16], v[17]]) + 4 * words as u16;
    v[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip_checksum(&mut v);
    v
}

/// A frame of `flow` in direction `dir`, mutated at random in the ways a
/// fast path could get wrong.
fn random_frame(rng: &mut SmallRng, flow: &Flow, dir: Dir) -> (Vec<u8>, usize) {
    // Mostly ACKs, as on a wire; now and then every other class.
    let flags = [
        0x10, 0x18, 0x10, 0x18, 0x10, 0x11, 0x04, 0x14, 0x02, 0x12, 0x00, 0x19,
    ];
    let flags = flags[rng.gen_range(0..flags.len())];
    let data: Vec<u8> = (0..[0, 0, 1, 6, 40][rng.gen_range(0..5)])
        .map(|_| rng.gen())
        .collect();
    let mut f = match dir {
        Dir::Original => frame(flow.client, flow.frontend, flow.udp, flags, &data),
        Dir::Reply => {
            let mut f = frame(flow.member, flow.client, flow.udp, flags, &data);
            f[..6].copy_from_slice(&EXAMPLE_INT_MAC.0);
            f[6..12].copy_from_slice(&MEMBER_MAC.0);
            f
        }
    };
    if !flow.udp && rng.gen_bool(0.5) {
        // A sequence number anywhere: near, far, behind.
        let seq: u32 = [rng.gen_range(0..3000), rng.gen()][rng.gen_range(0..2)];
        let l4 = if is_v6(&f) { 54 } else { 34 };
        let old = u32::from_be_bytes(f[l4 + 4..l4 + 8].try_into().unwrap());
        f[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        // Keep the checksum right: the sequence number is two words of it.
        let cs = u16::from_be_bytes([f[l4 + 16], f[l4 + 17]]);
        let d = 2 * 0xffff - (old >> 16) - (old & 0xffff) + (seq >> 16) + (seq & 0xffff);
        f[l4 + 16..l4 + 18].copy_from_slice(&Delta::apply(cs, d).to_be_bytes());
    }
    let (v6, ttl) = (is_v6(&f), if is_v6(&f) { 21 } else { 22 });
    match rng.gen_range(0..14) {
        0 if !v6 => f = with_ip_options(&f, rng.gen_range(1..3)),
        1 => {
            f[ttl] = rng.gen_range(0..3);
            if !v6 {
                fix_ip_checksum(&mut f);
            }
        }
        2 if !v6 => f[25] ^= 1 << rng.gen_range(0..8),
        3 => f[0] ^= 1,
        4 => {
            let mac = f[..6].to_vec();
            f[6..12].copy_from_slice(&mac);
        }
        5 => f.truncate(f.len() - rng.gen_range(1..8)),
        6 => f.extend((0..rng.gen_range(1..20)).map(|_| rng.gen::<u8>())),
        8 => {
            // An IP length that lies: shorter than its headers, or longer.
            let n: u16 = rng.gen_range(0..80);
            f[if v6 { 18 } else { 16 }..][..2].copy_from_slice(&n.to_be_bytes());
            if !v6 {
                fix_ip_checksum(&mut f);
            }
        }
        7 if !flow.udp => {
            // A TCP data offset that lies.
            f[if v6 { 66 } else { 46 }] = rng.gen_range(0..16) << 4;
        }
        _ => {}
    }
    let len = f.len();
    f.resize(2048, 0);
    (f, len)
}

/// The tracked state of every flow, as the table holds it.
fn states(ex: &Example) -> Vec<String> {
    let v4 = (0..ex.flows.high_water()).map(|i| format!("{:?}", ex.flows.info(i)));
    let v6 = (0..ex.flows6.high_water()).map(|i| format!("{:?}", ex.flows6.info(i)));
    v4.chain(v6).collect()
}

#[test]
fn the_fast_path_does_what_the_full_path_does() {
    let neigh = {
        let mut v: Vec<_> = craft::example_neigh().iter().collect();
        for i in 11..=13u8 {
            v.push((INT, IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), MEMBER_MAC));
        }
        NeighView::with_entries(v)
    };
    // `fast` sees every frame in bursts; `full` sees the same frames one by
    // one through `process`, which never takes the fast path.
    let (fast, full) = (Example::lb6(1024), Example::lb6(1024));
    let v4_frontend = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
    let v6_frontend: IpAddr = "2001:db8:1::10".parse().unwrap();
    let mut flows = Vec::new();
    for i in 0..6 {
        let (c4, p4) = craft::bench_client(i);
        let (c6, p6) = craft::bench_client6(i);
        flows.push((c4.into(), p4, v4_frontend, i % 2 == 1));
        flows.push((c6.into(), p6, v6_frontend, false));
    }
    let flows: Vec<Flow> = flows
        .into_iter()
        .map(|(client, port, frontend, udp)| {
            let f = Flow {
                client: (client, port),
                frontend: (frontend, if udp { 53 } else { 80 }),
                member: (client, 0),
                udp,
            };
            let mut member = None;
            for ex in [&fast, &full] {
                let (mut room, len) = {
                    let mut v = frame(f.client, f.frontend, udp, 0x02, &[]);
                    let len = v.len();
                    v.resize(2048, 0);
                    (v, len)
                };
                let cx = ex.cx(&neigh, 1);
                let fate = process(cx, EXT, &mut room, len, &mut Nop, &mut Counters::default());
                let Fate::Tx { len, .. } = fate else {
                    panic!("the first packet of {:?} is forwarded: {fate:?}", f.client)
                };
                member = Some(destination(&room[..usize::from(len)]));
            }
            Flow {
                member: member.unwrap(),
                ..f
            }
        })
        .collect();
    let mut rng = SmallRng::seed_from_u64(0xfa57);
    let (mut taken, mut compared) = (0, 0);
    for round in 0..400 {
        let batch: Vec<((Vec<u8>, usize), PortIndex)> = (0..rng.gen_range(1..12))
            .map(|_| {
                let flow = &flows[rng.gen_range(0..flows.len())];
                let dir = if rng.gen_bool(0.5) {
                    Dir::Original
                } else {
                    Dir::Reply
                };
                let port = if dir == Dir::Original { EXT } else { INT };
                (random_frame(&mut rng, flow, dir), port)
            })
            .collect();
        let now = 1 + round;
        // One burst per port, in the batch's order within each.
        for port in [EXT, INT] {
            let frames: Vec<(Vec<u8>, usize)> = batch
                .iter()
                .filter(|(_, p)| *p == port)
                .map(|(f, _)| f.clone())
                .collect();
            let mut burst = frames.clone();
            let mut fates = vec![Fate::Consumed; burst.len()];
            let mut c = Counters::default();
            let cx = fast.cx(&neigh, now);
            process_burst(cx, port, &mut burst, &mut fates, &mut Nop, &mut c);
            taken += c.stat(Stat::Forwarded);
            for (((mut room, len), got), (fast_room, _)) in frames.into_iter().zip(fates).zip(burst)
            {
                let cx = full.cx(&neigh, now);
                let want = process(cx, port, &mut room, len, &mut Nop, &mut Counters::default());
                assert_eq!(got, want, "round {round}: the same fate");
                let n = match want {
                    Fate::Tx { len, .. } | Fate::Hold { len, .. } | Fate::Split { len, .. } => {
                        usize::from(len)
                    }
                    _ => 0,
                };
                assert_eq!(fast_room[..n], room[..n], "round {round}: the same bytes");
                compared += 1;
            }
        }
        assert_eq!(
            states(&fast),
            states(&full),
            "round {round}: the same flows"
        );
    }
    assert!(compared > 2000, "{compared} frames compared");
    assert!(taken > 500, "the bursts forwarded {taken} of them");
    // That the bursts' frames took the fast path and not the full path
    // both times: a frame whose header checksum the NIC says it verified
    // is forwarded by the fast path, which trusts the NIC, and dropped by
    // the full path, which checks again.
    for f in flows.iter().filter(|f| f.client.0.is_ipv4()) {
        let mut v = frame(f.client, f.frontend, f.udp, 0x10, &[]);
        v[25] ^= 0xff;
        let len = v.len();
        v.resize(2048, 0);
        let mut burst = [Verified((v.clone(), len))];
        let mut fates = [Fate::Consumed];
        let cx = fast.cx(&neigh, 1000);
        process_burst(
            cx,
            EXT,
            &mut burst,
            &mut fates,
            &mut Nop,
            &mut Counters::default(),
        );
        assert!(
            matches!(fates[0], Fate::Tx { .. }),
            "{:?}: {:?}",
            f.client,
            fates[0]
        );
        let want = process(cx, EXT, &mut v, len, &mut Nop, &mut Counters::default());
        assert_eq!(want, Fate::Drop(DropReason::Ipv4BadChecksum));
    }
}

/// A frame the NIC verified the IPv4 header checksum of.
struct Verified((Vec<u8>, usize));
impl FrameBuf for Verified {
    fn room_and_len(&mut self) -> (&mut [u8], usize) {
        self.0.room_and_len()
    }
    fn ip_checksum_verified(&self) -> bool {
        true
    }
}

#[test]
fn next_hops_that_share_a_memo_way_each_get_their_own_addresses() {
    let ex = Example::lb(1024);
    let hop = |i: u8| Ipv4Addr::new(10, 0, 0, i);
    let mac = |i: u8, p: u8| MacAddr([2, 0, 0, p, 1, i]);
    // 11, 15 and 19 share a way (the memo's index is the address's low
    // bits); 11 is also a neighbour on the other port, with another MAC.
    let mut v = vec![(EXT, IpAddr::V4(hop(11)), mac(11, 0))];
    for i in [11, 12, 15, 19] {
        v.push((INT, IpAddr::V4(hop(i)), mac(i, 1)));
    }
    let neigh = NeighView::with_entries(v);
    let cx = ex.cx(&neigh, 1);
    let mut memo = NeighMemo::default();
    let seq = [
        (INT, 11),
        (INT, 15),
        (INT, 11),
        (EXT, 11),
        (INT, 19),
        (INT, 23),
        (INT, 12),
        (INT, 15),
        (INT, 11),
    ];
    for (port, i) in seq {
        let mut room = vec![0u8; 64];
        let f = send_to(cx, &mut room, 60, port, hop(i), &mut memo);
        let own = [EXAMPLE_EXT_MAC, EXAMPLE_INT_MAC][usize::from(port)];
        assert_eq!(room[6..12], own.0, "{i} on {port:?}: from the port's MAC");
        if i == 23 {
            assert_eq!(
                f,
                Fate::Hold {
                    port,
                    next_hop: IpAddr::V4(hop(23)),
                    len: 60
                },
                "an unresolved next hop waits"
            );
            continue;
        }
        assert_eq!(f, Fate::Tx { port, len: 60 });
        let p = if port == EXT { 0 } else { 1 };
        assert_eq!(room[..6], mac(i, p).0, "{i} on {port:?}: its own MAC");
    }
}
