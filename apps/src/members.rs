//! `sluicectl status`'s rules with their members beneath, as `ipvsadm -L -n
//! --stats --rate` lists virtual services and real servers: per member its
//! state, the flows it holds, what it carried, and rates over the last 10 s.

use crate::traffic::{active_flows, Rates, TrafficKey};
use crate::views::View;
use serde_json::{json, Value};
use sluice_core::lb::{Kind, Services};
use sluice_core::pipeline::TrafficCount;
use std::collections::BTreeMap;
use std::net::IpAddr;

fn rates_json(r: Rates) -> Value {
    json!({
        "connections_per_s": round(r.flows),
        "packets_per_s": round(r.packets),
        "bits_per_s": round(r.bits),
    })
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn counts_json(c: &TrafficCount) -> Value {
    json!({
        "connections": c.flows,
        "packets_in": c.packets[0],
        "packets_out": c.packets[1],
        "bytes_in": c.bytes[0],
        "bytes_out": c.bytes[1],
    })
}

/// Merges two JSON objects (b's keys into a).
fn with(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// up (takes new flows), down (admin down or failing its probe), drained.
fn member_state(v: &View<'_>, services: &Services, k: &TrafficKey) -> &'static str {
    let Ok(a) = k.member.parse::<IpAddr>() else {
        return "up";
    };
    let admin = crate::views::admin_word(v.cfg, v.drained, a);
    if admin != "up" {
        return admin;
    }
    let healthy = services
        .services
        .iter()
        .filter(|s| matches!(s.kind, Kind::Lb(_)) && crate::views::rule_name(s) == k.rule)
        .filter(|s| s.frontend.to_string() == k.address && s.frontend_port == k.port)
        .find_map(|s| {
            s.members
                .iter()
                .position(|m| *m == a)
                .map(|i| s.eligible[i])
        });
    if healthy == Some(false) {
        "down"
    } else {
        "up"
    }
}

/// One row per rule (and frontend port), its members beneath.
pub fn rule_rows(v: &View<'_>) -> Vec<Value> {
    let services = v.shared.services.load();
    let active = active_flows(v.shared);
    let mut groups: BTreeMap<TrafficKey, Vec<(TrafficKey, TrafficCount)>> = BTreeMap::new();
    for (k, c) in v.traffic.totals() {
        groups.entry(k.rule_key()).or_default().push((k, c));
    }
    let mut rows = Vec::new();
    for (rk, members) in groups {
        let mut total = TrafficCount::default();
        let mut flows = 0;
        let mut rows_m = Vec::new();
        for (k, c) in &members {
            total.merge(c);
            let n = v
                .traffic
                .slot_of(k)
                .and_then(|s| active.get(&s))
                .copied()
                .unwrap_or(0);
            flows += n;
            rows_m.push(with(
                json!({
                    "member": k.member,
                    "name": k.member_name,
                    "state": member_state(v, &services, k),
                    "flows": n,
                    "rates": rates_json(v.traffic.rates(k)),
                }),
                counts_json(c),
            ));
        }
        let svc = services.services.iter().find(|s| {
            crate::views::rule_name(s) == rk.rule
                && s.frontend.to_string() == rk.address
                && s.frontend_port == rk.port
        });
        let mut rates = Rates::default();
        for (k, _) in &members {
            let r = v.traffic.rates(k);
            rates.flows += r.flows;
            rates.packets += r.packets;
            rates.bits += r.bits;
        }
        rows.push(with(
            json!({
                "rule": rk.rule,
                "kind": rk.kind,
                "frontend": rk.frontend,
                "address": rk.address,
                "protocol": rk.protocol,
                "port": rk.port,
                "available": svc.is_none_or(|s| !matches!(s.kind, Kind::Lb(_)) || s.maglev.is_some()),
                "flows": flows,
                "rates": rates_json(rates),
                "members": rows_m,
            }),
            counts_json(&total),
        ));
    }
    rows
}
