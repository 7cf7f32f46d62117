//! Fills the flow table file of a config (`[flow_table] file`) with N TCP
//! flows to its first load-balancing rule, from N clients off every port's
//! subnet, established, as sluiced would have made them, and saves the rule identities
//! next to it: a sluiced started on that config adopts them all. The lab
//! measures a bulk copy of a million flows between two instances with it
//! (tests/tests/lab_cluster.rs).
//!
//!     sluice-fill CONFIG N

use sluice_core::config::Config;
use sluice_core::craft;
use sluice_core::family::V6;
use sluice_core::flow::FlowTable;
use sluice_core::lb::{Identities, Services};
use sluice_core::neigh::{NeighView, PortIndex};
use sluice_core::pipeline::{process_burst, Context, Counters, Dataplane, Fate};
use sluice_core::wire::{tcp, MacAddr};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

fn with_ext(file: &std::path::Path, ext: &str) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(ext);
    s.into()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u32>().ok()))
    else {
        eprintln!("usage: sluice-fill CONFIG N");
        std::process::exit(2);
    };
    let cfg = Config::load(path.as_ref()).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file = cfg.flow_table.file.clone().expect("[flow_table] file");
    let services =
        Services::compile(&cfg, &|_, _| true, &Default::default()).expect("rules compile");
    let rule = cfg.lb_rules.first().expect("an lb_rule");
    let fe = &cfg.frontends[rule.frontend];
    let IpAddr::V4(vip) = fe.address else {
        panic!("an IPv4 frontend")
    };
    let macs: Vec<MacAddr> = (0..cfg.ports.len())
        .map(|i| MacAddr([2, 0, 0, 0, 9, i as u8]))
        .collect();
    let dp = Dataplane::new(&cfg, &macs);
    let workers = cfg.dpdk.workers.len();
    let (flows, _) = FlowTable::open(&with_ext(&file, ".v4"), cfg.flow_table.capacity, workers)
        .expect("open .v4");
    let (flows6, _) =
        FlowTable::<V6>::open(&with_ext(&file, ".v6"), cfg.flow_table.capacity_v6, workers)
            .expect("open .v6");
    let neigh = NeighView::default();
    let frags = Default::default();
    let traffic = Default::default();
    let cx = Context {
        dataplane: &dp,
        neigh: &neigh,
        services: &services,
        flows: &flows,
        flows6: &flows6,
        frags: &frags,
        now: 1,
        worker: 0,
        traffic: &traffic,
        sync: None,
    };
    let port = PortIndex::new(fe.port as u8);
    let mut fates = [Fate::Consumed; 32];
    let mut c = Counters::default();
    for first in (0..n).step_by(32) {
        let mut burst: Vec<(Vec<u8>, usize)> = (first..n.min(first + 32))
            .map(|i| {
                // Clients in 100.64.0.0/10, 16 ports each.
                let client = Ipv4Addr::from(0x6440_0000 | (i >> 4));
                let f = craft::tcp_v4(
                    MacAddr([2, 0, 0, 0, 8, 1]),
                    macs[fe.port],
                    (client, 20000 + (i & 15) as u16),
                    (vip, rule.frontend_port),
                    tcp::Flags::SYN,
                    i,
                    0,
                );
                let len = f.len();
                let mut room = f;
                room.resize(2048, 0);
                (room, len)
            })
            .collect();
        let k = burst.len();
        process_burst(
            cx,
            port,
            &mut burst,
            &mut fates[..k],
            &mut craft::NoLearn,
            &mut c,
        );
        *c.touched() = Default::default();
    }
    // Established, as connections that have run a while are (a SYN-sent
    // flow would idle out in seconds).
    for idx in 0..flows.high_water() {
        if flows.info(idx).is_some() {
            let e = flows.entry(idx);
            e.set_tcp_state(
                sluice_core::flow::tcp::State::SynSent,
                sluice_core::flow::tcp::State::Established,
            );
        }
    }
    let ids = serde_json::to_string(&Identities::of(&services)).expect("identities");
    std::fs::write(with_ext(&file, ".ids"), ids).expect("write .ids");
    println!(
        "flows={} refused={}",
        flows.len(),
        u64::from(n) - flows.len() as u64
    );
}
