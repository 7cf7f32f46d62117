//! The flow fast path without EAL, 64-byte TCP frames:
//!
//! - `established_1m`: a table holding 1M flows; 32-packet bursts of packets
//!   of existing flows (spread over the whole table) through lookup, TCP
//!   state, rewrite and checksum update. Frames are re-copied each burst;
//!   `copy_only` measures that copy alone, in the same run.
//! - `new_flows`: SYNs of flows never seen: rule match, security, Maglev
//!   pick, insert under both keys, rewrite. The table is refilled outside
//!   the timing when it gets full.
//! - `snat_established_1m`, `snat_new_flows_1000_members`: the same for
//!   outbound SNAT flows from 1,000 members (64 ports each) arriving on the
//!   internal port.
//! - `established_v6_1m`, `new_flows_v6`: the same two over IPv6 (rules of
//!   `craft::LB6_CONFIG`).
//! - Memory per flow (entries + buckets) at 1M and 16M flows is printed,
//!   for each family.
//!
//! Run: `cargo bench -p sluice-core --bench flows`

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_core::craft::{self, Example};
use sluice_core::flow::FlowTable;
use sluice_core::neigh::{NeighView, PortIndex};
use sluice_core::pipeline::{process_burst, Counters, Fate};
use sluice_core::wire::tcp;

const EXT: PortIndex = PortIndex::new(0);
const INT: PortIndex = PortIndex::new(1);

mod common;
use common::Frames;

fn run(
    ex: &Example,
    n: &NeighView,
    port: PortIndex,
    frames: &mut [(Vec<u8>, usize)],
    fates: &mut [Fate],
) {
    let mut c = Counters::default();
    process_burst(
        ex.cx(n, 1),
        port,
        frames,
        fates,
        &mut craft::NoLearn,
        &mut c,
    );
}

/// Fills `ex` with `count` flows from `frame(i, SYN)` received on `port`,
/// then benches 64 bursts of `frame(i, ACK)` spread over them as `name`
/// (and, when `baseline`, the copy alone as `copy_only`).
#[allow(clippy::too_many_arguments)]
fn established(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    ex: &Example,
    n: &NeighView,
    port: PortIndex,
    count: u32,
    frame: impl Fn(u32, tcp::Flags) -> (Vec<u8>, usize),
    baseline: bool,
) {
    let mut fates = [Fate::Consumed; 32];
    for chunk in (0..count).collect::<Vec<_>>().chunks(32) {
        let mut syns: Frames = chunk.iter().map(|&i| frame(i, tcp::Flags::SYN)).collect();
        let k = syns.len();
        run(ex, n, port, &mut syns, &mut fates[..k]);
    }
    // Two-choice buckets without displacement refuse a few inserts (both
    // buckets full) as the table nears capacity: about 0.05% at 1M.
    let inserted = ex.flows.len() + ex.flows6.len();
    assert!(
        inserted >= count as usize * 999 / 1000,
        "{name}: {inserted} flows inserted"
    );
    // 64 bursts of packets spread over the table (a stride coprime to N).
    let bursts: Vec<Frames> = (0..64u32)
        .map(|b| {
            (0..32u32)
                .map(|k| {
                    frame(
                        (b * 32 + k).wrapping_mul(2_654_435_761) % count,
                        tcp::Flags::ACK,
                    )
                })
                .collect()
        })
        .collect();
    let mut work = bursts.clone();
    let mut which = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            which = (which + 1) % bursts.len();
            for (w, p) in work[which].iter_mut().zip(&bursts[which]) {
                let n = p.1.max(64);
                w.0[..n].copy_from_slice(&p.0[..n]);
            }
            run(ex, n, port, &mut work[which], &mut fates);
        })
    });
    if baseline {
        g.bench_function("copy_only", |b| {
            b.iter(|| {
                which = (which + 1) % bursts.len();
                for (w, p) in work[which].iter_mut().zip(&bursts[which]) {
                    let n = p.1.max(64);
                    w.0[..n].copy_from_slice(&p.0[..n]);
                }
                std::hint::black_box(&work[which]);
            })
        });
    }
}

/// [`common::new_flows`] of the frames `syns`, received on `port`, with a
/// fresh `Example` from `fresh` whenever they run out.
fn new_flows(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: &NeighView,
    port: PortIndex,
    syns: &[Frames],
    fresh: impl Fn() -> Example,
) {
    common::new_flows(g, name, syns, fresh, |ex, rooms, fates| {
        run(ex, n, port, rooms, fates)
    });
}

fn bench(c: &mut Criterion) {
    let n = craft::example_neigh();
    for flows in [1u32 << 20, 1 << 24] {
        let t = FlowTable::<std::net::Ipv4Addr>::new(flows, 1);
        eprintln!(
            "memory: {} flows -> {} bytes per flow (entry {} bytes)",
            flows,
            t.memory_bytes() / t.capacity(),
            sluice_core::flow::ENTRY_BYTES
        );
        let t = FlowTable::<std::net::Ipv6Addr>::new(flows, 1);
        eprintln!(
            "memory: {} IPv6 flows -> {} bytes per flow (entry {} bytes)",
            flows,
            t.memory_bytes() / t.capacity(),
            sluice_core::flow::ENTRY_BYTES_V6
        );
    }
    let mut g = c.benchmark_group("flows_burst32");
    g.throughput(Throughput::Elements(32));

    // 1M established inbound flows, then 1M established SNAT flows (1,000
    // members, 1,049 remote addresses).
    const N: u32 = 1 << 20;
    const MEMBERS: u32 = 1000;
    let ex = Example::lb(N + 1024);
    established(
        &mut g,
        "established_1m",
        &ex,
        &n,
        EXT,
        N,
        craft::bench_frame,
        true,
    );
    drop(ex);
    // The same over IPv6, in the same run (its ratio to established_1m is
    // the figure BENCHMARKS.md quotes).
    let ex = Example::lb6(N + 1024);
    established(
        &mut g,
        "established_v6_1m",
        &ex,
        &n,
        EXT,
        N,
        craft::bench_frame6,
        false,
    );
    drop(ex);
    let ex = craft::snat_example(MEMBERS, 64, N + 1024);
    let snat_frame = |i, f| craft::snat_bench_frame(i, MEMBERS, f);
    established(
        &mut g,
        "snat_established_1m",
        &ex,
        &n,
        INT,
        N,
        snat_frame,
        false,
    );
    drop(ex);

    // New flows: fresh SYNs, a fresh table whenever they run out.
    const M: u32 = 1 << 18;
    let syns = common::syn_bursts(M, craft::bench_frame);
    new_flows(&mut g, "new_flows", &n, EXT, &syns, || Example::lb(M));
    let syns6 = common::syn_bursts(M, craft::bench_frame6);
    new_flows(&mut g, "new_flows_v6", &n, EXT, &syns6, || Example::lb6(M));
    let syns = common::syn_bursts(M, snat_frame);
    new_flows(
        &mut g,
        "snat_new_flows_1000_members",
        &n,
        INT,
        &syns,
        || craft::snat_example(MEMBERS, 64, 2 * M),
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
