//! ns per packet to parse and classify a 32-packet burst, without EAL.
//!
//! `host_mix`: what Sluice answers itself (ARP, echo) mixed with drops.
//! `not_for_us`: UDP and TCP to addresses Sluice does not own (the path
//! every packet takes until the flow table exists): parse + classify + drop.
//!
//! Run: `cargo bench -p sluice-core --bench pipeline`

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_core::craft;
use sluice_core::neigh::{NeighView, PortIndex};
use sluice_core::pipeline::{process_burst, Counters, Fate, Slowpath};
use sluice_core::wire::{tcp, MacAddr};
use std::net::{IpAddr, Ipv4Addr};

const EXT_MAC: MacAddr = craft::EXAMPLE_EXT_MAC;
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x64]);

struct NoLearn;
impl Slowpath for NoLearn {
    fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
}

fn host_mix() -> Vec<Vec<u8>> {
    let client = Ipv4Addr::new(203, 0, 113, 100);
    (0..32u16)
        .map(|i| match i % 4 {
            0 => craft::arp_request(CLIENT_MAC, client, Ipv4Addr::new(203, 0, 113, 1)),
            1 => craft::echo_request_v4(
                CLIENT_MAC,
                EXT_MAC,
                client,
                Ipv4Addr::new(203, 0, 113, 10),
                1,
                i,
                b"0123456789abcdef",
            ),
            2 => craft::tcp_v4(
                CLIENT_MAC,
                EXT_MAC,
                (client, 40000 + i),
                (Ipv4Addr::new(203, 0, 113, 10), 80),
                tcp::Flags::SYN,
                1,
                0,
            ),
            _ => craft::udp_v4(
                CLIENT_MAC,
                EXT_MAC,
                (client, 5000 + i),
                (Ipv4Addr::new(198, 51, 100, 1), 53),
                b"query",
            ),
        })
        .collect()
}

fn not_for_us() -> Vec<Vec<u8>> {
    (0..32u16)
        .map(|i| {
            let src = Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8);
            let dst = Ipv4Addr::new(203, 0, 113, 200);
            if i % 2 == 0 {
                craft::udp_v4(
                    CLIENT_MAC,
                    EXT_MAC,
                    (src, 1024 + i),
                    (dst, 4789),
                    &[0u8; 18],
                )
            } else {
                craft::tcp_v4(
                    CLIENT_MAC,
                    EXT_MAC,
                    (src, 1024 + i),
                    (dst, 443),
                    tcp::Flags::ACK,
                    7,
                    9,
                )
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ex = craft::Example::host();
    // The client is resolved, so echo replies take the Tx path, not Hold.
    let neigh = NeighView::with_entries([(
        PortIndex::new(0),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 100)),
        CLIENT_MAC,
    )]);
    let cx = ex.cx(&neigh, 0);
    let mut g = c.benchmark_group("burst32");
    g.throughput(Throughput::Elements(32));
    for (name, frames, rewrites) in [
        ("host_mix", host_mix(), true),
        ("not_for_us", not_for_us(), false),
    ] {
        let pristine: Vec<(Vec<u8>, usize)> = frames
            .into_iter()
            .map(|mut f| {
                let len = f.len();
                f.resize(2048, 0);
                (f, len)
            })
            .collect();
        // Warm: the same 32 buffers every time (in cache). Replies are built
        // in place, so a mix with echo requests is restored before each burst;
        // those 32 short copies are part of its figure.
        g.bench_function(name, |b| {
            let mut counters = Counters::default();
            let mut fates = [Fate::Consumed; 32];
            let mut burst = pristine.clone();
            b.iter(|| {
                if rewrites {
                    for ((f, len), (p, _)) in burst.iter_mut().zip(&pristine) {
                        f[..*len].copy_from_slice(&p[..*len]);
                    }
                }
                process_burst(
                    cx,
                    PortIndex::new(0),
                    &mut burst,
                    &mut fates,
                    &mut NoLearn,
                    &mut counters,
                )
            });
        });
        // Cold: fresh buffers every burst (not in L1/L2), as packets a NIC
        // just wrote; the copies are made outside the timed part.
        g.bench_function(format!("{name}_cold"), |b| {
            let mut counters = Counters::default();
            let mut fates = [Fate::Consumed; 32];
            b.iter_batched_ref(
                || pristine.clone(),
                |burst| {
                    process_burst(
                        cx,
                        PortIndex::new(0),
                        burst,
                        &mut fates,
                        &mut NoLearn,
                        &mut counters,
                    )
                },
                BatchSize::SmallInput,
            );
        });
    }
    // Baseline for ratios in the same run: visit the same 32 frames and read
    // their EtherType, the least any per-packet code does.
    let frames: Vec<(Vec<u8>, usize)> = not_for_us()
        .into_iter()
        .map(|f| (f.clone(), f.len()))
        .collect();
    g.bench_function("touch_only", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for (f, len) in std::hint::black_box(&frames) {
                acc = acc
                    .wrapping_add(u32::from(u16::from_be_bytes([f[12], f[13]])))
                    .wrapping_add(*len as u32);
            }
            acc
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
