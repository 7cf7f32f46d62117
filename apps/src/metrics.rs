//! Prometheus metrics at `[control] metrics` /metrics, through the
//! `metrics` facade and `metrics-exporter-prometheus` (its HTTP listener
//! runs on a thread of its own, pinned with control to the main lcore).
//!
//! Workers never touch the exporter: the control thread copies the
//! workers' counters into it once a second ([`UPDATE`]), so a scrape sees
//! values at most that old. Names follow the Prometheus conventions:
//! `sluice_` prefix, base units, `_total` on counters.

use crate::views::View;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use sluice_core::lb::Kind;
use sluice_core::pipeline::{DropReason, Stat};
use sluice_core::runtime::ControlStat;
use std::net::SocketAddr;
use std::time::Duration;

/// Buckets of `sluice_probe_duration_seconds`: 1 ms to 5 s.
const PROBE_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// Records the latencies of the probes that succeeded.
pub fn probe_latencies(cfg: &sluice_core::config::Config, l: Vec<sluice_probe::prober::Latency>) {
    for x in l {
        let labels = [
            ("probe", x.probe),
            ("member", x.address.to_string()),
            ("member_name", crate::views::member_label(cfg, x.address)),
        ];
        metrics::histogram!("sluice_probe_duration_seconds", &labels).record(x.ms as f64 / 1000.0);
    }
}

/// How often control copies the counters into the exporter.
pub const UPDATE: Duration = Duration::from_secs(1);

/// Starts the exporter's HTTP listener on `addr`. Fails when the address
/// cannot be bound.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("sluice_probe_duration_seconds".into()),
            &PROBE_BUCKETS,
        )
        .map_err(|e| anyhow::anyhow!("metrics buckets: {e}"))?
        .install()
        .map_err(|e| anyhow::anyhow!("[control] metrics {addr}: {e}"))?;
    describe();
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_counter!(
        "sluice_frontend_packets_total",
        "Packets forwarded per rule, frontend, port and direction (in: towards the member or, outbound, the internet)."
    );
    describe_counter!(
        "sluice_frontend_bytes_total",
        Unit::Bytes,
        "IP bytes forwarded per rule, frontend, port and direction."
    );
    describe_counter!(
        "sluice_frontend_syns_total",
        "TCP SYN and SYN-ACK segments forwarded per rule, frontend, port and direction."
    );
    describe_gauge!(
        "sluice_member_flows",
        "Live flows per rule and member (what it holds now)."
    );
    describe_counter!(
        "sluice_member_connections_total",
        "Flows started per rule and member (TCP connections, UDP 5-tuples)."
    );
    describe_counter!(
        "sluice_member_packets_total",
        "Packets forwarded per rule, member and direction (in: towards the member or, outbound, the internet)."
    );
    describe_counter!(
        "sluice_member_bytes_total",
        Unit::Bytes,
        "IP bytes forwarded per rule, member and direction."
    );
    describe_gauge!(
        "sluice_frontend_available",
        "1 when the rule has a member that may take new flows (data-path availability)."
    );
    describe_counter!(
        "sluice_snat_connections_total",
        "New outbound SNAT flows per rule and member: successful (got a port) or failed (ports exhausted)."
    );
    describe_gauge!(
        "sluice_snat_pending_connections",
        "Outbound SNAT TCP flows not yet established, per rule and member."
    );
    describe_gauge!(
        "sluice_snat_ports_allocated",
        "SNAT ports allocated per rule and member."
    );
    describe_gauge!(
        "sluice_snat_ports_used",
        "SNAT ports in use per rule, member and protocol."
    );
    describe_gauge!("sluice_probe_up", "1 when the member passes the probe.");
    metrics::describe_histogram!(
        "sluice_probe_duration_seconds",
        Unit::Seconds,
        "How long successful health probes took, from SYN to verdict (the control loop's resolution: about 1 ms)."
    );
    describe_gauge!(
        "sluice_member_drained",
        "1 when the member is drained by sluicectl."
    );
    describe_gauge!(
        "sluice_pool_healthy_members",
        "Members admin up and passing every probe over the pool."
    );
    describe_gauge!("sluice_pool_members", "Members of the pool.");
    describe_gauge!(
        "sluice_ready",
        "1 once ports are up, the peers' flows are taken and the first probes have run."
    );
    describe_gauge!(
        "sluice_maintenance",
        "1 while in maintenance (sluicectl maintenance on, or draining at a stop): nothing announced."
    );
    describe_gauge!(
        "sluice_announced_routes",
        "Prefixes the routing daemon last accepted from this instance, per side (ext, int)."
    );
    describe_counter!(
        "sluice_routing_configure_total",
        "Configurations handed to the routing daemon, per result (ok: it took them; failed: unreachable or refused)."
    );
    describe_counter!(
        "sluice_drops_total",
        "Frames dropped per worker and reason; worker=\"control\" for frames control lost after a worker handed them on (neighbour queue full or resolution failed, fragments that waited too long)."
    );
    describe_counter!(
        "sluice_control_events_total",
        "What the control thread did, by event (neigh.requests, flows.expired, frag.timeout, ...)."
    );
    describe_counter!(
        "sluice_probe_events_total",
        "What the prober did, by event (probe.started, probe.succeeded, probe.timeouts, probe.refused, ...)."
    );
    describe_counter!(
        "sluice_worker_events_total",
        "What each worker did, by kind (rx, tx, flows_created, ...)."
    );
    describe_gauge!("sluice_flow_table_flows", "Live flows.");
    describe_gauge!("sluice_flow_table_capacity", "Flows the table holds.");
    describe_gauge!(
        "sluice_mbufs_in_use",
        "Mbufs out of the pool (RX rings, queues, caches, in flight); growth is a leak."
    );
    describe_gauge!("sluice_mbufs_capacity", "Mbufs the pool holds.");
    describe_gauge!(
        "sluice_flow_table_ipv6_flows",
        "Live IPv6 flows (their own table)."
    );
    describe_gauge!(
        "sluice_flow_table_ipv6_capacity",
        "Flows the IPv6 table holds."
    );
    describe_counter!(
        "sluice_reloads_total",
        "Config reloads by outcome (applied, rejected)."
    );
    describe_counter!(
        "sluice_port_packets_total",
        "Packets per DPDK port and direction (rx, tx)."
    );
    describe_counter!(
        "sluice_port_bytes_total",
        Unit::Bytes,
        "Bytes per DPDK port and direction."
    );
    describe_counter!(
        "sluice_port_missed_total",
        "Packets the device dropped because RX queues were full."
    );
    describe_counter!(
        "sluice_port_errors_total",
        "Packets the device counted as errors, per port and direction (rx: ierrors, tx: oerrors)."
    );
    describe_counter!(
        "sluice_port_rx_nombuf_total",
        "Packets the device could not receive: no mbuf for them (the pool is too small or leaks)."
    );
    describe_gauge!(
        "sluice_port_link_up",
        "1 while the port's link (carrier) is up."
    );
    describe_gauge!(
        "sluice_port_link_speed_bytes",
        "The port's link speed in bytes per second (0 when the driver does not tell)."
    );
    describe_counter!(
        "sluice_probe_transitions_total",
        "Health verdict changes per probe and member (up to down and back): flapping shows as a rate."
    );
    describe_gauge!(
        "sluice_process_start_time_seconds",
        Unit::Seconds,
        "When sluiced started, in seconds since the Unix epoch."
    );
    describe_gauge!(
        "sluice_build_info",
        "Always 1; the labels say which build runs (version, commit, DPDK version)."
    );
    describe_gauge!(
        "sluice_worker_busy_seconds",
        Unit::Seconds,
        "Seconds each worker has spent in loop iterations that received frames, since start; it only grows, so rate() of it is the worker's load (a gauge: the exporter's counters are integers)."
    );
    describe_gauge!(
        "sluice_uptime_seconds",
        Unit::Seconds,
        "Seconds since sluiced started."
    );
}

/// Copies every value into the exporter.
pub fn update(v: &View<'_>) {
    availability(&v.availability);
    for (k, c) in v.traffic.rule_totals() {
        for (d, dir) in ["in", "out"].iter().enumerate() {
            let mut labels = k.labels(false);
            labels.push(("direction", dir.to_string()));
            counter!("sluice_frontend_packets_total", &labels).absolute(c.packets[d]);
            counter!("sluice_frontend_bytes_total", &labels).absolute(c.bytes[d]);
            counter!("sluice_frontend_syns_total", &labels).absolute(c.syns[d]);
        }
    }
    members(v);
    let services = v.shared.services.load();
    for s in &services.services {
        if let Kind::Lb(_) = s.kind {
            let labels = [
                ("rule", s.label()),
                ("address", s.frontend.to_string()),
                ("port", s.frontend_port.to_string()),
            ];
            gauge!("sluice_frontend_available", &labels)
                .set(f64::from(u8::from(s.maglev.is_some())));
        }
    }
    let usage = sluice_core::lb::snat::usage(&v.shared.flows, &v.shared.flows6, &services.snat);
    for (m, u) in services.snat.members.iter().zip(&usage.members) {
        let rule = services.snat.rules[usize::from(m.rule)].name.clone();
        let member = m.address.to_string();
        let (ok, failed) = m.totals();
        let l = |state: &str| {
            [
                ("rule", rule.clone()),
                ("member", member.clone()),
                ("state", state.to_string()),
            ]
        };
        counter!("sluice_snat_connections_total", &l("successful")).absolute(ok);
        counter!("sluice_snat_connections_total", &l("failed")).absolute(failed);
        let rm = [("rule", rule.clone()), ("member", member.clone())];
        gauge!("sluice_snat_pending_connections", &rm).set(u.pending as f64);
        gauge!("sluice_snat_ports_allocated", &rm).set(f64::from(m.ports));
        for (proto, used) in [("tcp", u.tcp_ports), ("udp", u.udp_ports)] {
            let l = [
                ("rule", rule.clone()),
                ("member", member.clone()),
                ("protocol", proto.to_string()),
            ];
            gauge!("sluice_snat_ports_used", &l).set(used as f64);
        }
    }
    for m in v.prober.status() {
        let l = [
            ("probe", m.probe.clone()),
            ("member", m.address.to_string()),
            ("member_name", crate::views::member_label(v.cfg, m.address)),
        ];
        gauge!("sluice_probe_up", &l).set(f64::from(u8::from(m.health.up)));
    }
    for pool in &v.cfg.pools {
        for m in &pool.members {
            let l = [
                ("pool", pool.name.clone()),
                ("member", m.address.to_string()),
            ];
            gauge!("sluice_member_drained", &l)
                .set(f64::from(u8::from(v.drained.contains(&m.address))));
        }
    }
    for (pool, healthy, members) in v.prober.pool_health(v.cfg) {
        gauge!("sluice_pool_healthy_members", "pool" => pool.clone()).set(healthy as f64);
        gauge!("sluice_pool_members", "pool" => pool).set(members as f64);
    }
    let tsc_hz = sluice_core::dpdk::tsc_hz().max(1) as f64;
    for (w, c) in v.shared.counters.iter().enumerate() {
        let c = c.read();
        let worker = w.to_string();
        for r in DropReason::ALL {
            let l = [("worker", worker.clone()), ("reason", r.name().to_string())];
            counter!("sluice_drops_total", &l).absolute(c.dropped(*r));
        }
        for s in Stat::ALL.iter().filter(|s| **s != Stat::BusyCycles) {
            let l = [("worker", worker.clone()), ("kind", s.name().to_string())];
            counter!("sluice_worker_events_total", &l).absolute(c.stat(*s));
        }
        // Cycles are no event: seconds of their own.
        let busy = c.stat(Stat::BusyCycles) as f64 / tsc_hz;
        gauge!("sluice_worker_busy_seconds", "worker" => worker.clone()).set(busy);
    }
    for (reason, n) in v.control.drops() {
        let l = [
            ("worker", "control".to_string()),
            ("reason", reason.to_string()),
        ];
        counter!("sluice_drops_total", &l).absolute(n);
    }
    for (event, n) in v.control.named() {
        counter!("sluice_control_events_total", "event" => event).absolute(n);
    }
    for (event, n) in v.prober.counters().named() {
        counter!("sluice_probe_events_total", "event" => event).absolute(n);
    }
    gauge!("sluice_flow_table_flows").set(v.shared.flows.len() as f64);
    gauge!("sluice_flow_table_capacity").set(v.shared.flows.capacity() as f64);
    gauge!("sluice_flow_table_ipv6_flows").set(v.shared.flows6.len() as f64);
    gauge!("sluice_flow_table_ipv6_capacity").set(v.shared.flows6.capacity() as f64);
    gauge!("sluice_mbufs_in_use").set(f64::from(v.mbufs.0));
    gauge!("sluice_mbufs_capacity").set(f64::from(v.mbufs.1));
    counter!("sluice_reloads_total", "outcome" => "applied")
        .absolute(v.control.get(ControlStat::Reloads));
    counter!("sluice_reloads_total", "outcome" => "rejected")
        .absolute(v.control.get(ControlStat::ReloadsRejected));
    for (p, c) in v.ports.iter().zip(&v.cfg.ports) {
        let s = p.stats();
        for (dir, packets, bytes) in [("rx", s.ipackets, s.ibytes), ("tx", s.opackets, s.obytes)] {
            let l = [("port", c.name.clone()), ("direction", dir.to_string())];
            counter!("sluice_port_packets_total", &l).absolute(packets);
            counter!("sluice_port_bytes_total", &l).absolute(bytes);
        }
        let port = || c.name.clone();
        counter!("sluice_port_missed_total", "port" => port()).absolute(s.imissed);
        counter!("sluice_port_errors_total", "port" => port(), "direction" => "rx")
            .absolute(s.ierrors);
        counter!("sluice_port_errors_total", "port" => port(), "direction" => "tx")
            .absolute(s.oerrors);
        counter!("sluice_port_rx_nombuf_total", "port" => port()).absolute(s.rx_nombuf);
        let link = p.link();
        gauge!("sluice_port_link_up", "port" => port()).set(f64::from(u8::from(link.up)));
        gauge!("sluice_port_link_speed_bytes", "port" => port())
            .set(f64::from(link.speed) * 125_000.0);
    }
    for ((probe, member), n) in v.transitions {
        let l = [
            ("probe", probe.clone()),
            ("member", member.to_string()),
            ("member_name", crate::views::member_label(v.cfg, *member)),
        ];
        counter!("sluice_probe_transitions_total", &l).absolute(*n);
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(v.uptime);
    gauge!("sluice_process_start_time_seconds").set(started.as_secs() as f64);
    gauge!(
        "sluice_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => crate::COMMIT,
        "dpdk" => crate::DPDK_VERSION
    )
    .set(1.0);
    gauge!("sluice_uptime_seconds").set(v.uptime.as_secs_f64());
    crate::cluster::metrics(
        v.shared,
        v.shared.now_ms.load(std::sync::atomic::Ordering::Relaxed),
    );
}

/// Per member of every rule: flows held, flows started, packets and bytes
/// by direction. Labels join the per-rule series (rule, kind, frontend,
/// address, protocol, port) and the probe series (member, member_name).
fn members(v: &View<'_>) {
    let active = crate::traffic::active_flows(v.shared);
    for (k, c) in v.traffic.totals() {
        let base = k.labels(true);
        let held = v
            .traffic
            .slot_of(&k)
            .and_then(|s| active.get(&s))
            .copied()
            .unwrap_or(0);
        gauge!("sluice_member_flows", &base).set(held as f64);
        counter!("sluice_member_connections_total", &base).absolute(c.flows);
        for (d, dir) in ["in", "out"].iter().enumerate() {
            let mut l = base.clone();
            l.push(("direction", dir.to_string()));
            counter!("sluice_member_packets_total", &l).absolute(c.packets[d]);
            counter!("sluice_member_bytes_total", &l).absolute(c.bytes[d]);
        }
    }
}

/// Readiness, maintenance and announcements, from
/// [`crate::routing::Availability::status`].
fn availability(a: &serde_json::Value) {
    let flag = |k: &str| f64::from(u8::from(a[k] == serde_json::Value::Bool(true)));
    gauge!("sluice_ready").set(flag("ready"));
    gauge!("sluice_maintenance").set(flag("maintenance"));
    let r = &a["routing"];
    if !r.is_object() {
        return;
    }
    for (result, key) in [("ok", "applied"), ("failed", "failed")] {
        counter!("sluice_routing_configure_total", "result" => result)
            .absolute(r[key].as_u64().unwrap_or(0));
    }
    for side in ["ext", "int"] {
        let n = r["announced_count"][side].as_u64().unwrap_or(0);
        gauge!("sluice_announced_routes", "side" => side).set(n as f64);
    }
}
