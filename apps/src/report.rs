//! The counter report sluiced prints when it stops: one `counter NAME VALUE`
//! line each, totals first then per worker and per port, so people can read
//! it and tests can parse it.

use sluice_core::config::Config;
use sluice_core::dpdk::Port;
use sluice_core::pipeline::{Counters, DropReason, Stat};
use sluice_core::runtime::{ControlCounters, Shared};
use sluice_probe::state::Outcome;
use sluice_probe::Prober;
use std::fmt::Write as _;

/// Formats every counter (zeros included for totals, so a missing line is
/// never ambiguous).
pub fn format(
    cfg: &Config,
    shared: &Shared,
    control: &ControlCounters,
    prober: &Prober,
    ports: &[Port],
) -> String {
    let mut out = String::new();
    let per_worker: Vec<Counters> = shared.counters.iter().map(|c| c.read()).collect();
    let mut total = Counters::default();
    for c in &per_worker {
        total.merge(c);
    }
    let mut line = |name: &str, v: u64| {
        let _ = writeln!(out, "counter {name} {v}");
    };
    for s in Stat::ALL {
        line(s.name(), total.stat(*s));
    }
    for r in DropReason::ALL {
        line(&format!("drop.{}", r.name()), total.dropped(*r));
    }
    // What workers dropped of what they received (rx = to_tx + held +
    // consumed + deferred + to_prober + to_kernel + drop.worker), then everything lost
    // anywhere: control's drops of frames workers handed on too.
    line("drop.worker", total.total_drops());
    for (k, v) in control.drops() {
        line(&format!("drop.{k}"), v);
    }
    line("drop.total", total.total_drops() + control.total_drops());
    line("tsc_hz", sluice_core::dpdk::tsc_hz());
    line(
        "cycles_per_packet",
        total.stat(Stat::BusyCycles) / total.stat(Stat::Rx).max(1),
    );
    let services = shared.services.load();
    let usage = sluice_core::lb::snat::usage(&shared.flows, &shared.flows6, &services.snat);
    for (m, u) in services.snat.members.iter().zip(&usage.members) {
        let rule = &services.snat.rules[usize::from(m.rule)].name;
        let (ok, failed) = m.totals();
        let p = format!("snat.{rule}.{}", m.address);
        line(&format!("{p}.ok"), ok);
        line(&format!("{p}.failed"), failed);
        line(&format!("{p}.pending"), u.pending);
        line(&format!("{p}.ports_allocated"), u64::from(m.ports));
        line(&format!("{p}.ports_used_tcp"), u.tcp_ports);
        line(&format!("{p}.ports_used_udp"), u.udp_ports);
    }
    for (a, (allocated, u)) in &usage.addresses {
        let p = format!("snat.address.{a}");
        line(&format!("{p}.ports_allocated"), *allocated);
        line(&format!("{p}.ports_used_tcp"), u.tcp_ports);
        line(&format!("{p}.ports_used_udp"), u.udp_ports);
        line(&format!("{p}.pending"), u.pending);
    }
    for (k, v) in control.named() {
        line(k, v);
    }
    for (k, v) in [
        ("flows.live", shared.flows.len() as u64),
        ("flows.capacity", shared.flows.capacity() as u64),
        ("flows.live_v6", shared.flows6.len() as u64),
        ("flows.capacity_v6", shared.flows6.capacity() as u64),
    ] {
        line(k, v);
    }
    if let Some(s) = &shared.sync {
        for c in sluice_core::sync::SyncStat::ALL {
            line(&format!("sync.{}", c.name()), s.stat(*c));
        }
        for p in &s.peers {
            use std::sync::atomic::Ordering::Relaxed;
            line(
                &format!("sync.peer.{}.received", p.addr),
                p.received.load(Relaxed),
            );
            line(
                &format!("sync.peer.{}.refused", p.addr),
                p.refused.load(Relaxed),
            );
            line(&format!("sync.peer.{}.lost", p.addr), p.lost.load(Relaxed));
        }
    }
    for (k, v) in prober.counters().named() {
        line(k, v);
    }
    for m in prober.status() {
        let p = format!("probe.{}.{}", m.probe, m.address);
        line(&format!("{p}.up"), u64::from(m.health.up));
        line(&format!("{p}.consecutive"), u64::from(m.health.consecutive));
        line(&format!("{p}.probes"), m.probes);
        line(
            &format!("{p}.last_change_ms"),
            m.health.last_change.unwrap_or(0),
        );
        let last = match m.health.last {
            None => 0,
            Some(Outcome::Success) => 200,
            Some(Outcome::Timeout) => 1,
            Some(Outcome::Refused(code)) => 1000 + u64::from(code),
        };
        line(&format!("{p}.last"), last);
    }
    for (pool, healthy, members) in prober.pool_health(cfg) {
        line(&format!("pool.{pool}.healthy"), healthy as u64);
        line(&format!("pool.{pool}.members"), members as u64);
    }
    for s in &services.services {
        let sluice_core::lb::Kind::Lb(_) = s.kind else {
            continue;
        };
        let healthy = s.eligible.iter().filter(|e| **e).count() as u64;
        line(&format!("rule.{}.eligible_members", s.label()), healthy);
        line(
            &format!("rule.{}.available", s.label()),
            u64::from(s.maglev.is_some()),
        );
    }
    for (i, c) in per_worker.iter().enumerate() {
        for s in Stat::ALL.iter().filter(|s| c.stat(**s) > 0) {
            line(&format!("worker{i}.{}", s.name()), c.stat(*s));
        }
        for r in DropReason::ALL.iter().filter(|r| c.dropped(**r) > 0) {
            line(&format!("worker{i}.drop.{}", r.name()), c.dropped(*r));
        }
    }
    for (p, c) in ports.iter().zip(&cfg.ports) {
        let s = p.stats();
        for (k, v) in [
            ("ipackets", s.ipackets),
            ("opackets", s.opackets),
            ("ibytes", s.ibytes),
            ("obytes", s.obytes),
            ("imissed", s.imissed),
            ("ierrors", s.ierrors),
            ("oerrors", s.oerrors),
            ("rx_nombuf", s.rx_nombuf),
        ] {
            line(&format!("port.{}.{k}", c.name), v);
        }
        for (q, v) in s.rx_queue_packets.iter().enumerate() {
            line(&format!("port.{}.rxq{q}.packets", c.name), *v);
        }
        for (q, v) in s.tx_queue_packets.iter().enumerate() {
            line(&format!("port.{}.txq{q}.packets", c.name), *v);
        }
    }
    out
}

/// Prints the report on stdout.
pub fn print(
    cfg: &Config,
    shared: &Shared,
    control: &ControlCounters,
    prober: &Prober,
    ports: &[Port],
) {
    print!("{}", format(cfg, shared, control, prober, ports));
}
