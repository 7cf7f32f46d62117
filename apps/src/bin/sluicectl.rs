//! sluicectl: asks a running sluiced over its control socket. Tables for
//! people, `--json` for scripts.
//!
//! Exit status: 0 done; 1 the daemon refused (a reload's config errors, an
//! unknown member); 2 the daemon could not be reached or answered nonsense.

use clap::{Parser, Subcommand};
use serde_json::Value;
use sluice::ctl::{self, CallError, Request};
use sluice::render::render;
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
