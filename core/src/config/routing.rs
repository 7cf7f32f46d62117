//! `[routing]`: the routing daemon sluiced drives (BIRD 2 through its
//! control socket), the file of routes it writes for it, the routes it
//! announces to the internal side, and how long a stop drains.

use super::raw;
use super::types::{Port, Routing, RoutingDaemon};
use super::validate::{duration, Ctx};
use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;

/// The longest `drain_time`.
pub const MAX_DRAIN: Duration = Duration::from_secs(3600);
/// `drain_time` when not given.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

pub(super) fn check_routing(ctx: &mut Ctx, r: raw::Routing, ports: &[Port]) -> Option<Routing> {
    let obj = "[routing]";
    let daemon = match r.daemon.as_deref() {
        Some("bird") => Some(RoutingDaemon::Bird),
        Some(other) => {
            ctx.err(
                obj,
                "daemon",
                format!("\"{other}\" is not one of bird (BIRD 2)"),
            );
            None
        }
        None => {
            ctx.err(
                obj,
                "daemon",
                "missing: the routing daemon sluiced drives (\"bird\")",
            );
            None
        }
    };
    let path = |ctx: &mut Ctx, field: &str, v: Option<String>, what: &str| match v {
        Some(p) if p.starts_with('/') => Some(PathBuf::from(p)),
        Some(p) => {
            ctx.err(obj, field, format!("\"{p}\" is not an absolute path"));
            None
        }
        None => {
            ctx.err(obj, field, format!("missing: {what}"));
            None
        }
    };
    let socket = path(ctx, "socket", r.socket, "the daemon's control socket");
    let routes_file = path(
        ctx,
        "routes_file",
        r.routes_file,
        "the file sluiced writes the announced routes to (the daemon's config includes it)",
    );
    let mut internal_routes = Vec::new();
    for (i, s) in r.internal_routes.unwrap_or_default().iter().enumerate() {
        match s.parse::<IpNet>() {
            Ok(n) if n.trunc() == n => internal_routes.push(n),
            Ok(n) => ctx.err(
                obj,
                &format!("internal_routes[{i}]"),
                format!("\"{s}\" has host bits set (did you mean {}?)", n.trunc()),
            ),
            Err(_) => ctx.err(
                obj,
                &format!("internal_routes[{i}]"),
                format!("\"{s}\" is not a prefix (\"0.0.0.0/0\")"),
            ),
        }
    }
    if !internal_routes.is_empty() && !ports.iter().any(|p| p.role.is_internal()) {
        ctx.err(
            obj,
            "internal_routes",
            "no internal port to announce them on",
        );
    }
    let drain_time = duration(
        ctx,
        obj,
        "drain_time",
        r.drain_time.as_deref(),
        DEFAULT_DRAIN,
        Duration::ZERO,
        MAX_DRAIN,
    );
    Some(Routing {
        daemon: daemon?,
        socket: socket?,
        routes_file: routes_file?,
        internal_routes,
        drain_time,
    })
}
