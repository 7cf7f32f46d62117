//! What flow sync costs, without EAL:
//!
//! - `new_flows_sync_off` / `new_flows_sync_on`: 32-SYN bursts of flows
//!   never seen (as `flows`' `new_flows`); with sync on, each burst's new
//!   flows are also exported, sealed into datagrams (BLAKE3 keyed hash)
//!   and framed for one peer as the worker does before it sends the
//!   burst (the mbuf allocation aside). Their ratio is the figure
//!   BENCHMARKS.md quotes.
//! - `bulk_encode_1m` / `bulk_apply_1m`: a 1M-flow table sealed into
//!   datagrams as a bulk copy is, and those datagrams taken by a second
//!   instance into an empty table (MAC check, replay window, import).
//!
//! Run: `cargo bench -p sluice-core --bench sync`

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_core::config::{Cluster, SyncKey};
use sluice_core::craft::{self, Example};
use sluice_core::lb::Identities;
use sluice_core::neigh::{NeighView, PortIndex};
use sluice_core::pipeline::{process_burst, Counters, Fate};
use sluice_core::sync::wire::{self, Ends, Kind, Writer, MAX_PAYLOAD};
use sluice_core::sync::{Outbox, Sync};
use sluice_core::wire::{tcp, MacAddr};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const EXT: PortIndex = PortIndex::new(0);

mod common;
use common::Frames;

fn sync_of(ex: &Example, instance: u8, peer: &str) -> Sync {
    let c = Cluster {
        instance,
        instances: 2,
        peers: vec![peer.parse().unwrap()],
        sync_port: 7400,
        secret_file: "/dev/null".into(),
        key: SyncKey::derive(b"a bench secret, long enough"),
    };
    Sync::new(&c, &Identities::of(&ex.services))
}

const ENDS: Ends = Ends {
    src_mac: craft::EXAMPLE_INT_MAC,
    dst_mac: MacAddr([2, 0, 0, 0, 0, 0x22]),
    src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    sport: 7400,
    dport: 7400,
};

/// New-flow bursts, with or without the sync records of each.
fn new_flows(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: &NeighView,
    syns: &[Frames],
    sync: bool,
) {
    let mut buf = Box::new([0u8; MAX_PAYLOAD]);
    let mut frame = vec![0u8; 2048];
    let fresh = || {
        let ex = Example::lb(1 << 18);
        let s = sync_of(&ex, 0, "10.0.0.2");
        (ex, s, Outbox::new(0))
    };
    common::new_flows(g, name, syns, fresh, |(ex, s, out), rooms, fates| {
        let mut c = Counters::default();
        let cx = sluice_core::pipeline::Context {
            sync: sync.then_some(&*s),
            ..ex.cx(n, 1)
        };
        process_burst(cx, EXT, rooms, fates, &mut craft::NoLearn, &mut c);
        if sync {
            let tables = (&ex.flows, &ex.flows6);
            out.seal_touched(s, tables, c.touched(), 1, &mut buf, |p, _| {
                let at = wire::frame_header_len(ENDS.dst);
                frame[at..at + p.len()].copy_from_slice(p);
                std::hint::black_box(wire::wrap(&mut frame, &ENDS, p.len()));
            });
        }
    });
}

fn bench(c: &mut Criterion) {
    let n = craft::example_neigh();
    let mut g = c.benchmark_group("sync_burst32");
    g.throughput(Throughput::Elements(32));
    const M: u32 = 1 << 17;
    let syns = common::syn_bursts(M, craft::bench_frame);
    new_flows(&mut g, "new_flows_sync_off", &n, &syns, false);
    new_flows(&mut g, "new_flows_sync_on", &n, &syns, true);
    new_flows(&mut g, "new_flows_sync_off_again", &n, &syns, false);
    g.finish();

    // A 1M-flow table, sealed as a bulk copy, and taken by a peer.
    const N: u32 = 1 << 20;
    let a = Example::lb(N + 1024);
    let mut fates = [Fate::Consumed; 32];
    for chunk in (0..N).collect::<Vec<_>>().chunks(32) {
        let mut burst: Frames = chunk
            .iter()
            .map(|&i| craft::bench_frame(i, tcp::Flags::SYN))
            .collect();
        let k = burst.len();
        process_burst(
            a.cx(&n, 1),
            EXT,
            &mut burst,
            &mut fates[..k],
            &mut craft::NoLearn,
            &mut Counters::default(),
        );
    }
    let sa = sync_of(&a, 1, "10.0.0.1");
    let encode = |out: &mut Outbox| -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut buf = [0u8; MAX_PAYLOAD];
        let mut pos = 0;
        while pos < a.flows.high_water() {
            let h = out.next(&sa, Kind::Records);
            let mut w = Writer::new(&mut buf, &h);
            pos = wire::fill(&mut w, &a.flows, pos, 5);
            let len = w.finish(sa.mac());
            v.push(buf[..len].to_vec());
        }
        v
    };
    let mut g = c.benchmark_group("sync_bulk");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(N)));
    g.bench_function("bulk_encode_1m", |b| {
        b.iter(|| encode(&mut Outbox::new(31)).len())
    });
    let datagrams = encode(&mut Outbox::new(31));
    eprintln!(
        "bulk copy of {} flows: {} datagrams",
        a.flows.len(),
        datagrams.len()
    );
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    g.bench_function("bulk_apply_1m", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let bx = Example::lb(N + 1024);
                let sb = sync_of(&bx, 0, "10.0.0.2");
                let t = Instant::now();
                let cx = sluice_core::pipeline::Context {
                    sync: Some(&sb),
                    ..bx.cx(&n, 10)
                };
                for d in &datagrams {
                    sluice_core::sync::receive(&sb, &cx, peer, d, &mut |_| {});
                }
                total += t.elapsed();
                assert!(
                    bx.flows.len() as u64 >= u64::from(N) * 999 / 1000,
                    "{}",
                    bx.flows.len()
                );
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
