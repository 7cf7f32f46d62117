//! sluicectl's tables: each command's JSON answer as text for people
//! (`--json` prints the answer itself).

use crate::ctl::table;
use serde_json::Value;

/// Readiness, maintenance and what the routing daemon announces.
fn availability(a: &Value) -> String {
    let mut out = format!(
        "\nready: {}  maintenance: {}\n",
        cell(&a["ready"]),
        if a["maintenance"] == Value::Bool(true) {
            "on"
        } else {
            "off"
        }
    );
    let r = &a["routing"];
    if r.is_object() {
        out.push_str(&format!(
            "routing: {} at {}  announced: {}  configured {} times, {} failed{}\n",
            cell(&r["daemon"]),
            cell(&r["socket"]),
            match &r["announced"] {
                Value::Array(a) if a.is_empty() => "nothing".into(),
                other => cell(other),
            },
            cell(&r["applied"]),
            cell(&r["failed"]),
            match &r["last_error"] {
                Value::String(e) => format!("  last error: {e}"),
                _ => String::new(),
            }
        ));
    }
    out
}

/// A JSON value as a table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Rows of `items`, one column per key.
fn rows(items: &Value, keys: &[&str]) -> Vec<Vec<String>> {
    items
        .as_array()
        .map(|a| {
            a.iter()
                .map(|it| keys.iter().map(|k| cell(&it[*k])).collect())
                .collect()
        })
        .unwrap_or_default()
}

/// Rules with their members beneath (as `ipvsadm -L -n --stats --rate`):
/// state, flows held, totals, and rates over the last 10 s.
fn rules_table(rules: &Value) -> String {
    let head = [
        "rule / member",
        "kind",
        "proto",
        "state",
        "flows",
        "conns",
        "pkts in",
        "pkts out",
        "bytes in",
        "bytes out",
        "conn/s",
        "pkt/s",
        "bit/s",
    ];
    let nums = |it: &Value| {
        let r = &it["rates"];
        [
            cell(&it["flows"]),
            cell(&it["connections"]),
            cell(&it["packets_in"]),
            cell(&it["packets_out"]),
            cell(&it["bytes_in"]),
            cell(&it["bytes_out"]),
            cell(&r["connections_per_s"]),
            cell(&r["packets_per_s"]),
            cell(&r["bits_per_s"]),
        ]
    };
    let mut out = Vec::new();
    for r in rules.as_array().into_iter().flatten() {
        let at = if r["kind"] == "outbound_rule" {
            format!("{} via {}", cell(&r["rule"]), cell(&r["address"]))
        } else {
            format!(
                "{} {}:{}",
                cell(&r["rule"]),
                cell(&r["address"]),
                cell(&r["port"])
            )
        };
        let state = if r["available"] == Value::Bool(true) {
            "available"
        } else {
            "unavailable"
        };
        let mut row = vec![
            at,
            cell(&r["kind"]),
            cell(&r["protocol"]),
            state.to_string(),
        ];
        row.extend(nums(r));
        out.push(row);
        for m in r["members"].as_array().into_iter().flatten() {
            let who = if m["name"] == m["member"] {
                format!("  -> {}", cell(&m["member"]))
            } else {
                format!("  -> {} {}", cell(&m["name"]), cell(&m["member"]))
            };
            let mut row = vec![who, String::new(), String::new(), cell(&m["state"])];
            row.extend(nums(m));
            out.push(row);
        }
    }
    table(&head, &out)
}

/// The table of command `cmd`'s answer `d`.
pub fn render(cmd: &str, d: &Value) -> String {
    let mut out = String::new();
    match cmd {
        "status" => {
            out.push_str(&format!(
                "sluiced {}  pid {}  up {}s  config {}\nworkers {}  flows {}/{}  IPv6 flows {}/{}  reloads {} (rejected {})  drops {}  drained {}\n\n",
                cell(&d["version"]),
                cell(&d["pid"]),
                cell(&d["uptime_s"]),
                cell(&d["config"]),
                cell(&d["workers"]),
                cell(&d["flows"]),
                cell(&d["flow_capacity"]),
                cell(&d["flows_v6"]),
                cell(&d["flow_capacity_v6"]),
                cell(&d["reloads"]),
                cell(&d["reloads_rejected"]),
                cell(&d["drops"]),
                cell(&d["drained"]),
            ));
            let k = [
                "name",
                "device",
                "role",
                "mac",
                "link",
                "addresses",
                "rx_packets",
                "tx_packets",
                "rx_missed",
            ];
            out.push_str(&table(
                &[
                    "port",
                    "device",
                    "role",
                    "mac",
                    "link",
                    "addresses",
                    "rx",
                    "tx",
                    "missed",
                ],
                &rows(&d["ports"], &k),
            ));
            out.push('\n');
            out.push_str(&rules_table(&d["rules"]));
            out.push('\n');
            let k = ["pool", "healthy", "members"];
            out.push_str(&table(&k, &rows(&d["pools"], &k)));
            out.push_str(&availability(&d["availability"]));
            let c = &d["cluster"];
            if c.is_object() {
                out.push_str(&format!(
                    "\ncluster: instance {} of {}  sync port {}  bulk copy {}  records sent {}  received {}\n",
                    cell(&c["instance"]),
                    cell(&c["instances"]),
                    cell(&c["sync_port"]),
                    cell(&c["bulk"]),
                    cell(&c["sent"]),
                    cell(&c["received"]),
                ));
                let k = [
                    "address",
                    "instance",
                    "last_heard_ms",
                    "received",
                    "refused",
                    "lost",
                    "bulk_copy",
                ];
                out.push_str(&table(
                    &[
                        "peer",
                        "instance",
                        "last heard (ms)",
                        "received",
                        "refused",
                        "lost",
                        "bulk copy",
                    ],
                    &rows(&c["peers"], &k),
                ));
            }
        }
        "pick" => {
            out.push_str(&format!("rule {}:\n", cell(&d["rule"])));
            for m in d["members"].as_array().into_iter().flatten() {
                out.push_str(&format!("{}\n", cell(m)));
            }
        }
        "maintenance" => {
            out.push_str(&availability(d));
            out.push_str(&format!("flows remaining: {}\n", cell(&d["flows"])));
        }
        "flows" => {
            let flows = d["flows"].as_array().cloned().unwrap_or_default();
            let (inbound, outbound): (Vec<Value>, Vec<Value>) =
                flows.into_iter().partition(|f| f["direction"] == "inbound");
            if !inbound.is_empty() {
                let k = [
                    "rule",
                    "protocol",
                    "client",
                    "frontend",
                    "member",
                    "state",
                    "idle_ms",
                    "expires_in_ms",
                    "packets",
                ];
                out.push_str(&table(&k, &rows(&Value::Array(inbound), &k)));
            }
            if !outbound.is_empty() {
                if !out.is_empty() {
                    out.push('\n');
                }
                let k = [
                    "rule",
                    "protocol",
                    "member",
                    "public",
                    "remote",
                    "state",
                    "idle_ms",
                    "expires_in_ms",
                    "packets",
                ];
                out.push_str(&table(&k, &rows(&Value::Array(outbound), &k)));
            }
            out.push_str(&format!(
                "{} of {} matching flows shown\n",
                cell(&d["shown"]),
                cell(&d["matched"])
            ));
            if d["deleted"].is_number() {
                out.push_str(&format!("{} flows deleted\n", cell(&d["deleted"])));
            }
        }
        "snat" => {
            let k = [
                "rule",
                "member",
                "name",
                "ports_allocated",
                "ports_used_tcp",
                "ports_used_udp",
                "successful",
                "failed",
                "pending",
                "blocks",
            ];
            out.push_str(&table(
                &[
                    "rule",
                    "member",
                    "name",
                    "allocated",
                    "used_tcp",
                    "used_udp",
                    "successful",
                    "failed",
                    "pending",
                    "blocks",
                ],
                &rows(&d["members"], &k),
            ));
            out.push('\n');
            let k = [
                "address",
                "ports_allocated",
                "ports_used_tcp",
                "ports_used_udp",
                "pending",
            ];
            out.push_str(&table(
                &[
                    "public address",
                    "allocated",
                    "used_tcp",
                    "used_udp",
                    "pending",
                ],
                &rows(&d["addresses"], &k),
            ));
        }
        "health" => {
            let k = [
                "member",
                "name",
                "probe",
                "state",
                "admin",
                "consecutive",
                "last",
                "probes",
                "last_change_ms",
            ];
            out.push_str(&table(&k, &rows(&d["members"], &k)));
            out.push('\n');
            let k = ["pool", "healthy", "members"];
            out.push_str(&table(&k, &rows(&d["pools"], &k)));
        }
        "nat-map" => {
            let k = ["rule", "kind", "protocol", "frontend", "member", "name"];
            out.push_str(&table(&k, &rows(&d["mappings"], &k)));
        }
        "counters" => {
            let r: Vec<Vec<String>> = d
                .as_object()
                .map(|m| m.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect())
                .unwrap_or_default();
            out.push_str(&table(&["counter", "value"], &r));
        }
        "reload" => out.push_str(&format!(
            "reload applied ({} services)\n",
            cell(&d["services"])
        )),
        "drain" | "undrain" => {
            let state = if d["drained"] == Value::Bool(true) {
                "drained"
            } else {
                "not drained"
            };
            let note = if d["changed"] == Value::Bool(true) {
                ""
            } else {
                " (already)"
            };
            out.push_str(&format!("{} {state}{note}\n", cell(&d["member"])));
        }
        _ => out.push_str(&format!("{d}\n")),
    }
    out
}
