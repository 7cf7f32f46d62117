//! What one walk of the flow table costs the control thread: `sluicectl
//! status`, `flows` and the once-a-second metrics (flows held per member,
//! SNAT ports in use) each read every entry up to the high-water mark.
//!
//!     cargo run --release -p sluice-core --example walk_cost --no-default-features -- 1000000
//!
//! Prints the median of 5 walks (reading each live entry's `FlowInfo`, as
//! they do) over N flows, and per entry.

use sluice_core::craft::{self, Example};
use sluice_core::neigh::PortIndex;
use sluice_core::pipeline::{process_burst, Counters, Fate};
use sluice_core::wire::tcp;
use std::time::Instant;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1 << 20);
    let neigh = craft::example_neigh();
    let ex = Example::lb(n + 64);
    let cx = ex.cx(&neigh, 1);
    let (mut fates, mut c) = ([Fate::Consumed; 32], Counters::default());
    for b in 0..n / 32 {
        let mut syns: Vec<(Vec<u8>, usize)> = (b * 32..b * 32 + 32)
            .map(|i| craft::bench_frame(i, tcp::Flags::SYN))
            .collect();
        process_burst(
            cx,
            PortIndex::new(0),
            &mut syns,
            &mut fates,
            &mut craft::NoLearn,
            &mut c,
        );
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut live = 0u64;
        for idx in 0..ex.flows.high_water() {
            if let Some(f) = ex.flows.info(idx) {
                live += u64::from(f.member) + 1;
            }
        }
        times.push(t.elapsed());
        std::hint::black_box(live);
    }
    times.sort();
    let m = times[2];
    println!(
        "flows {} walk {:.1} ms ({:.1} ns per entry)",
        ex.flows.len(),
        m.as_secs_f64() * 1e3,
        m.as_secs_f64() * 1e9 / f64::from(ex.flows.high_water().max(1))
    );
}
