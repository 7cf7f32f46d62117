//! sluicectl: asks a running sluiced over its control socket. Tables for
//! people, `--json` for scripts.
//!
//! Exit status: 0 done; 1 the daemon refused (a reload's config errors, an
//! unknown member); 2 the daemon could not be reached or answered nonsense.

use clap::{Parser, Subcommand};
use serde_json::Value;
use sluice::ctl::{self, table, CallError, Request};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "sluicectl", version = sluice::LONG_VERSION, about = "Control a running sluiced")]
struct Args {
    /// The daemon's control socket ([control] socket in its config).
    #[arg(long, global = true, value_name = "PATH", default_value = ctl::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the daemon's answer as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Print the man page or shell completions (man, bash, zsh, fish).
    #[arg(long, hide = true, value_name = "KIND", value_parser = sluice::generate::KINDS)]
    generate: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Version, uptime, ports, rules, pools, flows.
    Status,
    /// Tracked flows (newest entries last), with packets and the time
    /// each has left; --delete ends the ones the filters select.
    Flows {
        /// Only flows to this frontend (name or address; outbound: the
        /// public address).
        #[arg(long)]
        frontend: Option<String>,
        /// Only flows of this member (name or address).
        #[arg(long)]
        member: Option<String>,
        /// Only tcp or udp flows.
        #[arg(long)]
        protocol: Option<String>,
        /// Only inbound flows from this client: ADDRESS or ADDRESS:PORT.
        #[arg(long)]
        client: Option<String>,
        /// Only outbound flows to this remote host: ADDRESS or ADDRESS:PORT.
        #[arg(long)]
        remote: Option<String>,
        /// End every matching flow (established TCP: a RST to both ends).
        /// Needs at least one filter.
        #[arg(long)]
        delete: bool,
        /// Show at most N flows (all matching ones are still counted).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Outbound SNAT: each member's ports, their use, connections.
    Snat,
    /// Health of every pool member: probe verdicts and admin state.
    Health,
    /// Inbound NAT rules and NAT pool rules: frontend port to member port.
    NatMap,
    /// Every counter (the exit report's, and traffic per rule).
    Counters {
        /// Only counters whose name starts with this.
        prefix: Option<String>,
    },
    /// Read the config file again and apply it (errors are listed, and the
    /// running config stays).
    Reload,
    /// Take a member out of new flows (until undrain or restart).
    Drain {
        /// Member name or address.
        member: String,
    },
    /// Let a drained member take new flows again.
    Undrain {
        /// Member name or address.
        member: String,
    },
    /// The member a new flow would get, for COUNT client ports from
    /// CLIENT's: the same on every instance of a cluster.
    Pick {
        /// Frontend name or address.
        frontend: String,
        /// Frontend port.
        port: u16,
        /// The client's ADDRESS:PORT.
        client: String,
        /// tcp or udp.
        #[arg(long, default_value = "tcp")]
        protocol: String,
        /// How many client ports, from CLIENT's up.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Withdraw every announcement (on) while existing flows keep being
    /// forwarded, or announce again (off); without either, show.
    Maintenance {
        /// on | off
        #[arg(value_parser = ["on", "off"])]
        state: Option<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(kind) = &args.generate {
        return sluice::generate::generate(<Args as clap::CommandFactory>::command(), kind, "8");
    }
    let Some(cmd) = &args.cmd else {
        let _ = <Args as clap::CommandFactory>::command().print_help();
        return ExitCode::from(2);
    };
    let mut req = Request::default();
    let mut prefix = None;
    req.cmd = match cmd {
        Cmd::Status => "status",
        Cmd::Flows {
            frontend,
            member,
            protocol,
            client,
            remote,
            delete,
            limit,
        } => {
            req.frontend = frontend.clone();
            req.member = member.clone();
            req.protocol = protocol.clone();
            req.client = client.clone();
            req.remote = remote.clone();
            req.delete = *delete;
            req.limit = Some(*limit);
            "flows"
        }
        Cmd::Snat => "snat",
        Cmd::Health => "health",
        Cmd::NatMap => "nat-map",
        Cmd::Counters { prefix: p } => {
            prefix = p.clone();
            "counters"
        }
        Cmd::Reload => "reload",
        Cmd::Pick {
            frontend,
            port,
            client,
            protocol,
            count,
        } => {
            req.frontend = Some(frontend.clone());
            req.port = Some(*port);
            req.client = Some(client.clone());
            req.protocol = Some(protocol.clone());
            req.limit = Some(*count);
            "pick"
        }
        Cmd::Maintenance { state } => {
            req.state = state.clone();
            "maintenance"
        }
        Cmd::Drain { member } | Cmd::Undrain { member } => {
            req.member = Some(member.clone());
            if matches!(cmd, Cmd::Drain { .. }) {
                "drain"
            } else {
                "undrain"
            }
        }
    }
    .to_string();
    let reply = match ctl::call(&args.socket, &req) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluicectl: {e}");
            return match e {
                CallError::Unreachable(_) | CallError::Protocol(_) => ExitCode::from(2),
            };
        }
    };
    if reply["ok"] != Value::Bool(true) {
        if args.json {
            let text = serde_json::to_string_pretty(&reply).unwrap_or_default();
            write_out(&format!("{text}\n"));
        }
        let errors = reply["errors"].as_array().cloned().unwrap_or_default();
        for e in &errors {
            eprintln!("error: {}", e.as_str().unwrap_or_default());
        }
        eprintln!("sluicectl {}: refused ({} error(s))", req.cmd, errors.len());
        return ExitCode::from(1);
    }
    let mut data = reply["data"].clone();
    if let (Some(p), Value::Object(map)) = (&prefix, &mut data) {
        map.retain(|k, _| k.starts_with(p.as_str()));
    }
    let text = if args.json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&data).unwrap_or_default()
        )
    } else {
        render(&req.cmd, &data)
    };
    write_out(&text)
}

/// Writes `text` to stdout. A reader that went away (`| head`, `| true`)
/// is no error and no panic: the exit status stays success.
fn write_out(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluicectl: writing the answer: {e}");
            ExitCode::from(1)
        }
    }
}

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

fn render(cmd: &str, d: &Value) -> String {
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
