//! The flow fast path without EAL, 64-byte TCP frames:
//!
//! - `established_1m`: a table holding 1M flows; 32-packet bursts of packets
//!   of existing flows (spread over the whole table) through lookup, TCP
//!   state, rewrite and checksum update. Frames are re-copied each burst;
//!   `copy_only` measures that copy alone, in the same run.
//! - `new_flows`: SYNs of flows never seen: rule match, security, Maglev
//!   pick, insert under both keys, rewrite. The table is refilled outside
//!   the timing when it gets full.
//! - Memory per flow (entries + buckets) at 1M and 16M flows is printed.
//!
//! Run: `cargo bench -p sluice-core --bench flows`

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_core::craft::{self, Example};
use sluice_core::flow::FlowTable;
use sluice_core::neigh::NeighView;
use sluice_core::pipeline::{process_burst, Counters, Fate};
use sluice_core::wire::tcp;
use std::time::{Duration, Instant};

fn run(ex: &Example, n: &NeighView, frames: &mut [(Vec<u8>, usize)], fates: &mut [Fate]) {
    let mut c = Counters::default();
    process_burst(ex.cx(n, 1), 0, frames, fates, &mut craft::NoLearn, &mut c);
}

fn bench(c: &mut Criterion) {
    let n = craft::example_neigh();
    for flows in [1u32 << 20, 1 << 24] {
        let t = FlowTable::new(flows, 1);
        eprintln!(
            "memory: {} flows -> {} bytes per flow (entry {} bytes)",
            flows,
            t.memory_bytes() / t.capacity(),
            sluice_core::flow::ENTRY_BYTES
        );
    }
    let mut g = c.benchmark_group("flows_burst32");
    g.throughput(Throughput::Elements(32));

    // 1M established flows.
    const N: u32 = 1 << 20;
    let ex = Example::lb(N + 1024);
    let mut fates = [Fate::Consumed; 32];
    for chunk in (0..N).collect::<Vec<_>>().chunks(32) {
        let mut syns: Vec<_> = chunk
            .iter()
            .map(|&i| craft::bench_frame(i, tcp::Flags::SYN))
            .collect();
        let k = syns.len();
        run(&ex, &n, &mut syns, &mut fates[..k]);
    }
    // Two-choice buckets without displacement refuse a few inserts (both
    // buckets full) as the table nears capacity: about 0.05% at 1M.
    assert!(
        ex.flows.len() >= N as usize * 999 / 1000,
        "{} flows inserted",
        ex.flows.len()
    );
    // 64 bursts of packets spread over the table (a stride coprime to N).
    let bursts: Vec<Vec<(Vec<u8>, usize)>> = (0..64u32)
        .map(|b| {
            (0..32u32)
                .map(|k| {
                    craft::bench_frame(
                        (b * 32 + k).wrapping_mul(2_654_435_761) % N,
                        tcp::Flags::ACK,
                    )
                })
                .collect()
        })
        .collect();
    let mut work = bursts.clone();
    let mut which = 0;
    g.bench_function("established_1m", |b| {
        b.iter(|| {
            which = (which + 1) % bursts.len();
            for (w, p) in work[which].iter_mut().zip(&bursts[which]) {
                w.0[..64].copy_from_slice(&p.0[..64]);
            }
            run(&ex, &n, &mut work[which], &mut fates);
        })
    });
    g.bench_function("copy_only", |b| {
        b.iter(|| {
            which = (which + 1) % bursts.len();
            for (w, p) in work[which].iter_mut().zip(&bursts[which]) {
                w.0[..64].copy_from_slice(&p.0[..64]);
            }
            std::hint::black_box(&work[which]);
        })
    });
    drop(ex);

    // New flows: fresh SYNs, a fresh table whenever it fills.
    const M: u32 = 1 << 18;
    let syns: Vec<Vec<(Vec<u8>, usize)>> = (0..M / 32)
        .map(|b| {
            (0..32)
                .map(|k| craft::bench_frame(b * 32 + k, tcp::Flags::SYN))
                .collect()
        })
        .collect();
    g.bench_function("new_flows", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let ex = Example::lb(M);
                let mut work = syns.clone();
                for burst in work.iter_mut() {
                    if done == iters {
                        break;
                    }
                    let t = Instant::now();
                    run(&ex, &n, burst, &mut fates);
                    total += t.elapsed();
                    done += 1;
                }
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
