//! Raw config to checked [`Config`]: every rule of CONFIG.md and SPEC.md that
//! can be checked without running anything. Errors accumulate; nothing stops
//! at the first.

use super::objects::{
    check_control, check_dpdk, check_flow_table, check_frontends, check_pools, check_ports,
};
use super::probes::check_probes;
use super::raw;
use super::types::*;
use super::{parse_duration, rules, ConfigError, ConfigErrors};
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;
use toml::{Table as Map, Value};

const SECTIONS: &[&str] = &[
    "dpdk",
    "port",
    "frontend",
    "pool",
    "probe",
    "lb_rule",
    "nat_rule",
    "nat_pool_rule",
    "outbound_rule",
    "security_rule",
    "flow_table",
    "cluster",
    "routing",
    "control",
];

pub(super) struct Ctx {
    pub(super) errors: Vec<ConfigError>,
    /// Objects (`probe "pr"`) that could not be read: their error is
    /// reported once, and references to them are not errors again.
    unreadable: HashSet<String>,
}

impl Ctx {
    /// True when some object of `section` could not be read: checks that
    /// need all of them (which port carries a frontend) stay quiet.
    pub(super) fn some_unreadable(&self, section: &str) -> bool {
        self.unreadable
            .iter()
            .any(|o| o.starts_with(section) && o[section.len()..].starts_with([' ', '[']))
    }

    pub(super) fn err(&mut self, object: &str, field: &str, reason: impl Into<String>) {
        self.errors.push(ConfigError::new(object, field, reason));
    }
}

/// Deserializes `v` strictly (no coercion: `"yes"` is no bool, `2.7` no
/// integer, `"80"` no port), naming the key that failed.
pub(super) fn de<T: DeserializeOwned>(object: &str, v: Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.message().trim().to_string();
        let field = if path != "." && !path.is_empty() {
            // `gateway[0]` → `gateway`; the field is the key of the object.
            path.split(['.', '[']).next().unwrap_or("-").to_string()
        } else {
            ["unknown field `", "missing field `"]
                .iter()
                .find_map(|p| msg.find(p).map(|i| &msg[i + p.len()..]))
                .and_then(|rest| rest.split('`').next())
                .unwrap_or("-")
                .to_string()
        };
        ConfigError::new(object, &field, msg)
    })
}

fn object_name(section: &str, i: usize, v: &Value) -> String {
    let name = v.get("name").and_then(|n| n.as_str()).map(str::to_string);
    match name {
        Some(n) => format!("{section} \"{n}\""),
        None => format!("{section}[{i}]"),
    }
}

/// Deserializes every element of an array section on its own.
fn section_array<T: DeserializeOwned>(
    ctx: &mut Ctx,
    top: &mut Map,
    section: &str,
) -> Vec<(String, T)> {
    let Some(v) = top.remove(section) else {
        return Vec::new();
    };
    let items = match v {
        Value::Array(a) => a,
        other => {
            ctx.err(
                section,
                "-",
                format!(
                    "must be an array of tables ([[{section}]]), not a {}",
                    other.type_str()
                ),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let obj = object_name(section, i, &item);
        match de::<T>(&obj, item) {
            Ok(t) => out.push((obj, t)),
            Err(e) => {
                ctx.unreadable.insert(obj);
                ctx.errors.push(e);
            }
        }
    }
    out
}

fn section_table<T: DeserializeOwned + Default>(
    ctx: &mut Ctx,
    top: &mut Map,
    section: &str,
) -> Option<T> {
    match top.remove(section) {
        None => Some(T::default()),
        Some(v) => match de::<T>(&format!("[{section}]"), v) {
            Ok(t) => Some(t),
            Err(e) => {
                ctx.errors.push(e);
                None
            }
        },
    }
}

pub(super) fn in_range(
    ctx: &mut Ctx,
    obj: &str,
    field: &str,
    v: i64,
    lo: i64,
    hi: i64,
) -> Option<i64> {
    if v < lo || v > hi {
        ctx.err(obj, field, format!("{v} is out of range {lo}..={hi}"));
        None
    } else {
        Some(v)
    }
}

pub(super) fn port_number(ctx: &mut Ctx, obj: &str, field: &str, v: i64, allow_zero: bool) -> u16 {
    in_range(ctx, obj, field, v, if allow_zero { 0 } else { 1 }, 65535).unwrap_or(0) as u16
}

pub(super) fn word<T: Copy>(
    ctx: &mut Ctx,
    obj: &str,
    field: &str,
    v: &str,
    words: &[(&str, T)],
) -> Option<T> {
    match words.iter().find(|(w, _)| *w == v) {
        Some((_, t)) => Some(*t),
        None => {
            let allowed: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
            ctx.err(
                obj,
                field,
                format!("\"{v}\" is not one of {}", allowed.join(" | ")),
            );
            None
        }
    }
}

pub(super) fn duration(
    ctx: &mut Ctx,
    obj: &str,
    field: &str,
    v: Option<&str>,
    default: Duration,
    lo: Duration,
    hi: Duration,
) -> Duration {
    let Some(s) = v else { return default };
    match parse_duration(s) {
        Ok(d) if d < lo || d > hi => {
            ctx.err(obj, field, format!("{s} is out of range {lo:?}..={hi:?}"));
            default
        }
        Ok(d) => d,
        Err(e) => {
            ctx.err(obj, field, e);
            default
        }
    }
}

pub(super) fn address(ctx: &mut Ctx, obj: &str, field: &str, s: &str) -> Option<IpAddr> {
    match s.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            ctx.err(
                obj,
                field,
                format!("\"{s}\" is not an IPv4 or IPv6 address"),
            );
            None
        }
    }
}

/// "any", "*" -> None; otherwise a prefix or a bare address (host prefix).
pub(super) fn prefix(ctx: &mut Ctx, obj: &str, field: &str, s: &str) -> Option<IpNet> {
    if s == "*" || s.eq_ignore_ascii_case("any") {
        return None;
    }
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n);
    }
    match s.parse::<IpAddr>() {
        Ok(a) => Some(IpNet::from(a)),
        Err(_) => {
            ctx.err(
                obj,
                field,
                format!("\"{s}\" is not a prefix (\"10.0.0.0/8\"), an address, or \"*\""),
            );
            None
        }
    }
}

pub(super) fn unique_name(ctx: &mut Ctx, seen: &mut HashSet<String>, obj: &str, name: &str) {
    if name.is_empty() {
        ctx.err(obj, "name", "must not be empty");
    } else if !seen.insert(name.to_string()) {
        ctx.err(
            obj,
            "name",
            format!("\"{name}\" is used by another object of this kind"),
        );
    }
}

pub(super) fn lookup(
    ctx: &mut Ctx,
    obj: &str,
    field: &str,
    kind: &str,
    names: &[&str],
    want: &str,
) -> Option<usize> {
    let i = names.iter().position(|n| *n == want);
    if i.is_none() && !ctx.unreadable.contains(&format!("{kind} \"{want}\"")) {
        ctx.err(obj, field, format!("no {kind} named \"{want}\""));
    }
    i
}

pub(super) fn validate(mut top: Map) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        errors: Vec::new(),
        unreadable: HashSet::new(),
    };
    let mut unknown: Vec<String> = top
        .keys()
        .filter(|k| !SECTIONS.contains(&k.as_str()))
        .cloned()
        .collect();
    unknown.sort();
    for k in unknown {
        ctx.err(
            "file",
            &k,
            format!("unknown section; expected one of {}", SECTIONS.join(", ")),
        );
    }

    let dpdk = match top.remove("dpdk") {
        None => {
            ctx.err("[dpdk]", "eal_args", "the [dpdk] section is required");
            None
        }
        Some(v) => match de::<raw::Dpdk>("[dpdk]", v) {
            Ok(d) => Some(d),
            Err(e) => {
                ctx.errors.push(e);
                None
            }
        },
    };
    if !top.contains_key("port") {
        ctx.err("file", "port", "at least one [[port]] is needed");
    }
    let ports = section_array::<raw::Port>(&mut ctx, &mut top, "port");
    let frontends = section_array::<raw::Frontend>(&mut ctx, &mut top, "frontend");
    let pools = section_array::<raw::Pool>(&mut ctx, &mut top, "pool");
    let probes = section_array::<raw::Probe>(&mut ctx, &mut top, "probe");
    let lb_rules = section_array::<raw::LbRule>(&mut ctx, &mut top, "lb_rule");
    let nat_rules = section_array::<raw::NatRule>(&mut ctx, &mut top, "nat_rule");
    let nat_pool_rules = section_array::<raw::NatPoolRule>(&mut ctx, &mut top, "nat_pool_rule");
    let outbound_rules = section_array::<raw::OutboundRule>(&mut ctx, &mut top, "outbound_rule");
    let security_rules = section_array::<raw::SecurityRule>(&mut ctx, &mut top, "security_rule");
    let flow_table = section_table::<raw::FlowTable>(&mut ctx, &mut top, "flow_table");
    let cluster = top
        .contains_key("cluster")
        .then(|| section_table::<raw::Cluster>(&mut ctx, &mut top, "cluster"))
        .flatten();
    let routing = top
        .contains_key("routing")
        .then(|| section_table::<raw::Routing>(&mut ctx, &mut top, "routing"))
        .flatten();
    let control = section_table::<raw::Control>(&mut ctx, &mut top, "control");

    let dpdk = dpdk.map(|d| check_dpdk(&mut ctx, d));
    let ports = check_ports(&mut ctx, ports);
    let frontends = check_frontends(&mut ctx, frontends, &ports);
    let pools = check_pools(&mut ctx, pools, &ports);
    let probes = check_probes(&mut ctx, probes);
    let lb_rules = rules::check_lb_rules(
        &mut ctx,
        lb_rules,
        &frontends,
        &pools,
        &probes,
        cluster.is_some(),
    );
    let nat_rules = rules::check_nat_rules(&mut ctx, nat_rules, &frontends, &pools);
    let nat_pool_rules = rules::check_nat_pool_rules(&mut ctx, nat_pool_rules, &frontends, &pools);
    let outbound_rules = rules::check_outbound_rules(&mut ctx, outbound_rules, &frontends, &pools);
    let security_rules = rules::check_security_rules(&mut ctx, security_rules);
    rules::check_port_collisions(&mut ctx, &lb_rules, &nat_rules, &nat_pool_rules, &frontends);
    let flow_table = flow_table.map(|f| check_flow_table(&mut ctx, f));
    let cluster = cluster.and_then(|c| super::cluster::check_cluster(&mut ctx, c, &ports));
    let routing = routing.and_then(|r| super::routing::check_routing(&mut ctx, r, &ports));
    let control = control.map(|c| check_control(&mut ctx, c));

    if !ctx.errors.is_empty() {
        return Err(ConfigErrors(ctx.errors));
    }
    match (dpdk, flow_table, control) {
        (Some(dpdk), Some(flow_table), Some(control)) => Ok(Config {
            dpdk,
            ports,
            frontends,
            pools,
            probes,
            lb_rules,
            nat_rules,
            nat_pool_rules,
            outbound_rules,
            security_rules,
            flow_table,
            cluster,
            routing,
            control,
        }),
        _ => unreachable!("a missing section always records an error"),
    }
}
