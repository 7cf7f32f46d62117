//! What `sluicectl` shows: JSON views of the running daemon, built on the
//! control thread from the config, the rules snapshot, the flow table, the
//! prober and the counters. Each view is one JSON value; `sluicectl`
//! renders it as a table or prints it as it is (`--json`).

use crate::traffic::TrafficBook;
use serde_json::{json, Map, Value};
use sluice_core::config::{AdminState, Config};
use sluice_core::dpdk::Port;
use sluice_core::lb::Kind;
use sluice_core::runtime::{ControlCounters, Shared};
use sluice_probe::state::Outcome;
use sluice_probe::Prober;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Everything a view reads.
pub struct View<'a> {
    /// The running config (drains applied).
    pub cfg: &'a Config,
    /// Shared with the workers.
    pub shared: &'a Shared,
    /// Control's counters.
    pub control: ControlCounters,
    /// Health probes.
    pub prober: &'a Prober,
    /// DPDK ports (same order as `cfg.ports`).
    pub ports: &'a [Port],
    /// Members drained by `sluicectl drain`.
    pub drained: &'a BTreeSet<IpAddr>,
    /// Since start.
    pub uptime: Duration,
    /// The config file.
    pub config_path: &'a std::path::Path,
    /// Per-rule traffic.
    pub traffic: &'a TrafficBook,
    /// Probe verdict changes per (probe, member).
    pub transitions: &'a std::collections::BTreeMap<(String, IpAddr), u64>,
    /// The mbuf pool: (in use, capacity).
    pub mbufs: (u32, u32),
    /// Where the bulk copy from the cluster's peers stands (no cluster:
    /// `None`).
    pub bulk: Option<sluice_core::runtime::BulkState>,
    /// Readiness, maintenance, announcements
    /// ([`crate::routing::Availability::status`]).
    pub availability: Value,
}

/// Outcome as a short word (the same in every view and metric).
pub fn outcome_name(o: Option<Outcome>) -> String {
    match o {
        None => "none".into(),
        Some(Outcome::Success) => "ok".into(),
        Some(Outcome::Timeout) => "timeout".into(),
        Some(Outcome::Refused(0)) => "refused".into(),
        Some(Outcome::Refused(code)) => format!("status {code}"),
    }
}

/// An outcome in words for a log line: what the probe saw.
pub fn outcome_words(o: Option<Outcome>) -> String {
    match o {
        None => "no result yet".into(),
        Some(Outcome::Success) => "answered".into(),
        Some(Outcome::Timeout) => "no answer in time".into(),
        Some(Outcome::Refused(0)) => "refused (reset, or an answer that is no HTTP)".into(),
        Some(Outcome::Refused(code)) => format!("HTTP status {code}"),
    }
}

/// A member's name in `cfg` (first pool that names it), or "".
pub fn member_name(cfg: &Config, a: IpAddr) -> String {
    cfg.pools
        .iter()
        .flat_map(|p| &p.members)
        .find(|m| m.address == a)
        .and_then(|m| m.name.clone())
        .unwrap_or_default()
}

/// A member's name, or its address when it has none: a label that is
/// never empty.
pub fn member_label(cfg: &Config, a: IpAddr) -> String {
    let n = member_name(cfg, a);
    if n.is_empty() {
        a.to_string()
    } else {
        n
    }
}

/// Resolves a member given by name or address to its address.
pub fn find_member(cfg: &Config, which: &str) -> Option<IpAddr> {
    if let Ok(a) = which.parse::<IpAddr>() {
        return cfg
            .pools
            .iter()
            .flat_map(|p| &p.members)
            .any(|m| m.address == a)
            .then_some(a);
    }
    cfg.pools
        .iter()
        .flat_map(|p| &p.members)
        .find(|m| m.name.as_deref() == Some(which))
        .map(|m| m.address)
}

impl View<'_> {
    /// `sluicectl status`.
    pub fn status(&self) -> Value {
        let ports: Vec<Value> = self
            .ports
            .iter()
            .zip(&self.cfg.ports)
            .map(|(p, c)| {
                let s = p.stats();
                json!({
                    "name": c.name,
                    "device": p.name(),
                    "role": format!("{:?}", c.role).to_lowercase(),
                    "mac": p.mac().to_string(),
                    "link": if p.link().up { "up" } else { "down" },
                    "addresses": c.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "rx_packets": s.ipackets,
                    "tx_packets": s.opackets,
                    "rx_missed": s.imissed,
                })
            })
            .collect();
        let rules = crate::members::rule_rows(self);
        let pools: Vec<Value> = self
            .prober
            .pool_health(self.cfg)
            .into_iter()
            .map(|(pool, healthy, members)| json!({"pool": pool, "healthy": healthy, "members": members}))
            .collect();
        let mut drops = self.control.total_drops();
        for c in &self.shared.counters {
            drops += c.read().total_drops();
        }
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "commit": crate::COMMIT,
            "dpdk": crate::DPDK_VERSION,
            "pid": std::process::id(),
            "uptime_s": self.uptime.as_secs(),
            "config": self.config_path.display().to_string(),
            "workers": self.cfg.dpdk.workers,
            "flows": self.shared.flows.len(),
            "flow_capacity": self.shared.flows.capacity(),
            "flows_v6": self.shared.flows6.len(),
            "flow_capacity_v6": self.shared.flows6.capacity(),
            "mbufs_in_use": self.mbufs.0,
            "mbufs": self.mbufs.1,
            "reloads": self.control.get(sluice_core::runtime::ControlStat::Reloads),
            "reloads_rejected": self.control.get(sluice_core::runtime::ControlStat::ReloadsRejected),
            "drops": drops,
            "drained": self.drained.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "ports": ports,
            "rules": rules,
            "pools": pools,
            "availability": self.availability,
            "cluster": crate::cluster::status(
                self.shared,
                self.bulk,
                self.shared.now_ms.load(std::sync::atomic::Ordering::Relaxed),
            ),
        })
    }

    /// `sluicectl snat`.
    pub fn snat(&self) -> Value {
        let services = self.shared.services.load();
        let usage =
            sluice_core::lb::snat::usage(&self.shared.flows, &self.shared.flows6, &services.snat);
        let members: Vec<Value> = services
            .snat
            .members
            .iter()
            .zip(&usage.members)
            .map(|(m, u)| {
                let (ok, failed) = m.totals();
                json!({
                    "rule": services.snat.rules[usize::from(m.rule)].name,
                    "member": m.address.to_string(),
                    "name": member_name(self.cfg, m.address),
                    "ports_allocated": m.ports,
                    "ports_used_tcp": u.tcp_ports,
                    "ports_used_udp": u.udp_ports,
                    "successful": ok,
                    "failed": failed,
                    "pending": u.pending,
                    "blocks": m.runs.iter().map(|r| format!("{}:{}-{}", r.address, r.start, r.end() - 1)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let addresses: Vec<Value> = usage
            .addresses
            .iter()
            .map(|(a, (allocated, u))| {
                json!({
                    "address": a.to_string(),
                    "ports_allocated": allocated,
                    "ports_used_tcp": u.tcp_ports,
                    "ports_used_udp": u.udp_ports,
                    "pending": u.pending,
                })
            })
            .collect();
        json!({"members": members, "addresses": addresses})
    }

    /// `sluicectl health`.
    pub fn health(&self) -> Value {
        let cfg = self.cfg;
        let mut rows = Vec::new();
        let probed: BTreeSet<(String, IpAddr)> = self
            .prober
            .status()
            .into_iter()
            .map(|m| {
                let a = m.address;
                rows.push(json!({
                    "probe": m.probe,
                    "member": m.address.to_string(),
                    "name": member_name(cfg, a),
                    "state": if m.health.up { "up" } else { "down" },
                    "admin": admin_word(cfg, self.drained, a),
                    "consecutive": m.health.consecutive,
                    "last": outcome_name(m.health.last),
                    "probes": m.probes,
                    "last_change_ms": m.health.last_change,
                }));
                (m.probe, m.address)
            })
            .collect();
        // Members of pools no probe covers: their admin state only.
        for pool in &cfg.pools {
            for m in &pool.members {
                let a = m.address;
                if probed.iter().any(|(_, p)| *p == a) {
                    continue;
                }
                rows.push(json!({
                    "probe": "",
                    "member": a.to_string(),
                    "name": m.name.clone().unwrap_or_default(),
                    "state": "unprobed",
                    "admin": admin_word(cfg, self.drained, m.address),
                    "consecutive": 0,
                    "last": "none",
                    "probes": 0,
                    "last_change_ms": null,
                }));
            }
        }
        let pools: Vec<Value> = self
            .prober
            .pool_health(cfg)
            .into_iter()
            .map(|(pool, healthy, members)| json!({"pool": pool, "healthy": healthy, "members": members}))
            .collect();
        json!({"members": rows, "pools": pools})
    }

    /// `sluicectl nat-map`: inbound NAT rules and NAT pool rules, each
    /// frontend port and the member port it forwards to.
    pub fn nat_map(&self) -> Value {
        let services = self.shared.services.load();
        let rows: Vec<Value> = services
            .services
            .iter()
            .filter(|s| matches!(s.kind, Kind::Nat(_) | Kind::NatPool(_)))
            .map(|s| {
                let m = s
                    .members
                    .first()
                    .copied()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                json!({
                    "rule": rule_name(s),
                    "kind": kind_name(s.kind),
                    "protocol": proto_name(s.protocol),
                    "frontend": sock(s.frontend, s.frontend_port),
                    "member": sock(m, s.backend_port),
                    "name": member_name(self.cfg, m),
                })
            })
            .collect();
        json!({"mappings": rows})
    }

    /// `sluicectl counters`: every counter of the exit report, by name.
    pub fn counters(&self) -> Value {
        let text = crate::report::format(
            self.cfg,
            self.shared,
            &self.control,
            self.prober,
            self.ports,
        );
        let mut map = Map::new();
        for l in text.lines() {
            let mut it = l.split_whitespace();
            if let (Some("counter"), Some(k), Some(v)) = (it.next(), it.next(), it.next()) {
                if let Ok(v) = v.parse::<u64>() {
                    map.insert(k.to_string(), Value::from(v));
                }
            }
        }
        let mut put = |p: String, c: &sluice_core::pipeline::TrafficCount| {
            for (d, dir) in ["in", "out"].iter().enumerate() {
                map.insert(format!("{p}.{dir}.packets"), c.packets[d].into());
                map.insert(format!("{p}.{dir}.bytes"), c.bytes[d].into());
                map.insert(format!("{p}.{dir}.syns"), c.syns[d].into());
            }
            map.insert(format!("{p}.connections"), c.flows.into());
        };
        for (t, c) in self.traffic.rule_totals() {
            match t.kind {
                "outbound_rule" => put(format!("traffic.{}", t.rule), &c),
                _ => put(format!("traffic.{}.{}", t.rule, t.label()), &c),
            }
        }
        for (t, c) in self.traffic.totals() {
            match t.kind {
                "outbound_rule" => put(format!("member.{}.{}", t.rule, t.member), &c),
                _ => put(format!("member.{}.{}.{}", t.rule, t.label(), t.member), &c),
            }
        }
        Value::Object(map)
    }
}

pub(crate) fn admin_word(cfg: &Config, drained: &BTreeSet<IpAddr>, a: IpAddr) -> &'static str {
    if drained.contains(&a) {
        return "drained";
    }
    let down = cfg
        .pools
        .iter()
        .flat_map(|p| &p.members)
        .any(|m| m.address == a && m.admin_state == AdminState::Down);
    if down {
        "down"
    } else {
        "up"
    }
}

pub(crate) fn sock(a: impl Into<IpAddr>, p: u16) -> String {
    std::net::SocketAddr::new(a.into(), p).to_string()
}

pub(crate) fn proto_word(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        _ => "other",
    }
}

/// A rule's protocol as configured.
pub fn proto_name(p: sluice_core::config::Protocol) -> &'static str {
    match p {
        sluice_core::config::Protocol::Tcp => "tcp",
        sluice_core::config::Protocol::Udp => "udp",
        sluice_core::config::Protocol::All => "all",
    }
}

/// The config's name of the rule a service comes from.
pub fn rule_name(s: &sluice_core::lb::Service) -> &str {
    &s.name
}

/// The kind of rule a service comes from, as the config names it.
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Lb(_) => "lb_rule",
        Kind::Nat(_) => "nat_rule",
        Kind::NatPool(_) => "nat_pool_rule",
    }
}
