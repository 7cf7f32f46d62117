//! How long a restarted sluiced takes to adopt a full flow table: fills a
//! table of `CAPACITY` IPv4 flows in a file, then reopens it `RUNS` times
//! (each a new mapping of the same file, as a new process would) and prints
//! each adoption's time and the median.
//!
//!     cargo run --release -p sluice-core --example adopt_time --no-default-features \
//!         -- [CAPACITY (1048576)] [RUNS (5)] [FILE (/dev/shm/sluice-adopt-bench)]

use sluice_core::flow::{FlowKey, FlowTable, NewFlow, Opened};
use sluice_core::lb::snat::RuleRef;
use sluice_core::neigh::PortIndex;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn flow(i: u32) -> NewFlow {
    let client = Ipv4Addr::from(0xc633_0000u32.wrapping_add(i >> 4));
    let member = Ipv4Addr::from(0x0a00_0000 | (i % 251 + 2));
    let k0 = FlowKey {
        src: client,
        dst: Ipv4Addr::new(203, 0, 113, 10),
        sport: 1024 + (i & 0xf) as u16 * 3001,
        dport: 443,
        proto: 6,
    };
    let k1 = FlowKey {
        src: member,
        dst: client,
        sport: 8443,
        dport: k0.sport,
        proto: 6,
    };
    NewFlow {
        key: [k0, k1],
        egress: [PortIndex::new(1), PortIndex::new(0)],
        next_hop: [member, Ipv4Addr::new(203, 0, 113, 254)],
        state: sluice_core::flow::tcp::State::Established,
        tcp_reset: false,
        idle_timeout: Duration::from_secs(240),
        rule: RuleRef::Service(0),
        member: (i % 251) as u16,
        now: 1,
        generation: false,
        snat: false,
        rfc_timers: false,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let capacity: u32 = args
        .next()
        .map_or(1 << 20, |a| a.parse().expect("CAPACITY"));
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("RUNS"));
    let file: PathBuf = args
        .next()
        .unwrap_or_else(|| "/dev/shm/sluice-adopt-bench".into())
        .into();
    let _ = std::fs::remove_file(&file);
    let (t, _) = FlowTable::<Ipv4Addr>::open(&file, capacity, 1).expect("opening the table file");
    let mut n = 0u32;
    for i in 0..capacity {
        if t.insert(&flow(i)).is_ok() {
            n += 1;
        }
    }
    drop(t);
    println!("{n} flows in a table of {capacity} ({file:?})");
    let mut times = Vec::new();
    for r in 0..runs {
        let t0 = Instant::now();
        let (t, opened) = FlowTable::<Ipv4Addr>::open(&file, capacity, 1).expect("reopening");
        let dt = t0.elapsed();
        assert_eq!(
            opened,
            Opened::Adopted {
                flows: n as usize,
                dropped: 0
            }
        );
        assert_eq!(t.len(), n as usize);
        println!(
            "run {r}: adopted {} flows in {:.1} ms",
            t.len(),
            dt.as_secs_f64() * 1e3
        );
        times.push(dt);
    }
    times.sort();
    println!(
        "median adoption: {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_file(&file);
}
