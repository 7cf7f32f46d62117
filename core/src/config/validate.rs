//! Raw config to checked [`Config`]: every rule of CONFIG.md and SPEC.md that
//! can be checked without running anything. Errors accumulate; nothing stops
//! at the first.

use super::raw;
use super::types::*;
use super::{parse_duration, rules, ConfigError, ConfigErrors};
use config::{Map, Value};
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

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
    "control",
];

pub(super) struct Ctx {
    pub(super) errors: Vec<ConfigError>,
}

impl Ctx {
    pub(super) fn err(&mut self, object: &str, field: &str, reason: impl Into<String>) {
        self.errors.push(ConfigError::new(object, field, reason));
    }
}

/// Turns a serde error from `config` into object/field/reason.
fn de_error(object: &str, e: config::ConfigError) -> ConfigError {
    let msg = e.to_string();
    let field = ["unknown field `", "missing field `", "for key `"]
        .iter()
        .find_map(|p| msg.find(p).map(|i| &msg[i + p.len()..]))
        .and_then(|rest| rest.split('`').next())
        .unwrap_or("-")
        .to_string();
    ConfigError::new(object, &field, msg)
}

fn object_name(section: &str, i: usize, v: &Value) -> String {
    let name = v
        .clone()
        .into_table()
        .ok()
        .and_then(|t| t.get("name").cloned())
        .and_then(|n| n.into_string().ok());
    match name {
        Some(n) => format!("{section} \"{n}\""),
        None => format!("{section}[{i}]"),
    }
}

/// Deserializes every element of an array section on its own.
fn section_array<T: DeserializeOwned>(
    ctx: &mut Ctx,
    top: &mut Map<String, Value>,
    section: &str,
) -> Vec<(String, T)> {
    let Some(v) = top.remove(section) else {
        return Vec::new();
    };
    let items = match v.into_array() {
        Ok(a) => a,
        Err(e) => {
            ctx.err(
                section,
                "-",
                format!("must be an array of tables ([[{section}]]): {e}"),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let obj = object_name(section, i, &item);
        match item.try_deserialize::<T>() {
            Ok(t) => out.push((obj, t)),
            Err(e) => ctx.errors.push(de_error(&obj, e)),
        }
    }
    out
}

fn section_table<T: DeserializeOwned + Default>(
    ctx: &mut Ctx,
    top: &mut Map<String, Value>,
    section: &str,
) -> Option<T> {
    match top.remove(section) {
        None => Some(T::default()),
        Some(v) => match v.try_deserialize::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                ctx.errors.push(de_error(&format!("[{section}]"), e));
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
    if i.is_none() {
        ctx.err(obj, field, format!("no {kind} named \"{want}\""));
    }
    i
}

pub(super) fn validate(mut top: Map<String, Value>) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx { errors: Vec::new() };
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
        Some(v) => match v.try_deserialize::<raw::Dpdk>() {
            Ok(d) => Some(d),
            Err(e) => {
                ctx.errors.push(de_error("[dpdk]", e));
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
    let control = section_table::<raw::Control>(&mut ctx, &mut top, "control");

    let dpdk = dpdk.map(|d| check_dpdk(&mut ctx, d));
    let ports = check_ports(&mut ctx, ports);
    let frontends = check_frontends(&mut ctx, frontends, &ports);
    let pools = check_pools(&mut ctx, pools, &ports);
    let probes = check_probes(&mut ctx, probes);
    let lb_rules = rules::check_lb_rules(&mut ctx, lb_rules, &frontends, &pools, &probes);
    let nat_rules = rules::check_nat_rules(&mut ctx, nat_rules, &frontends, &pools);
    let nat_pool_rules = rules::check_nat_pool_rules(&mut ctx, nat_pool_rules, &frontends, &pools);
    let outbound_rules = rules::check_outbound_rules(&mut ctx, outbound_rules, &frontends, &pools);
    let security_rules = rules::check_security_rules(&mut ctx, security_rules);
    rules::check_port_collisions(&mut ctx, &lb_rules, &nat_rules, &nat_pool_rules, &frontends);
    let flow_table = flow_table.map(|f| check_flow_table(&mut ctx, f));
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
            control,
        }),
        _ => unreachable!("a missing section always records an error"),
    }
}

fn check_dpdk(ctx: &mut Ctx, d: raw::Dpdk) -> Dpdk {
    let obj = "[dpdk]";
    if d.eal_args.is_empty() {
        ctx.err(
            obj,
            "eal_args",
            "must not be empty (at least the lcore list, e.g. [\"-l\", \"0-1\"])",
        );
    }
    if d.workers.is_empty() {
        ctx.err(obj, "workers", "at least one worker lcore is needed");
    }
    let mut workers = Vec::new();
    for w in &d.workers {
        if let Some(w) = in_range(ctx, obj, "workers", *w, 0, 1023) {
            if workers.contains(&(w as u32)) {
                ctx.err(obj, "workers", format!("lcore {w} is listed twice"));
            }
            workers.push(w as u32);
        }
    }
    let mbufs = in_range(ctx, obj, "mbufs", d.mbufs, 1023, 16_777_215).unwrap_or(16383) as u32;
    let burst =
        in_range(ctx, obj, "burst", d.burst, 1, crate::MAX_BURST as i64).unwrap_or(32) as u16;
    Dpdk {
        eal_args: d.eal_args,
        workers,
        mbufs,
        burst,
    }
}

fn check_ports(ctx: &mut Ctx, raw: Vec<(String, raw::Port)>) -> Vec<Port> {
    let mut names = HashSet::new();
    let mut devices = HashSet::new();
    let mut ports: Vec<Port> = Vec::new();
    let mut gateway_family: HashMap<bool, String> = HashMap::new();
    for (obj, p) in raw {
        unique_name(ctx, &mut names, &obj, &p.name);
        let device = match p.device {
            raw::DeviceRef::Id(id) => {
                Device::Id(in_range(ctx, &obj, "device", id, 0, 1023).unwrap_or(0) as u16)
            }
            raw::DeviceRef::Name(n) if n.is_empty() => {
                ctx.err(&obj, "device", "must not be empty");
                Device::Name(n)
            }
            raw::DeviceRef::Name(n) => Device::Name(n),
        };
        if !devices.insert(format!("{device:?}")) {
            ctx.err(&obj, "device", "another port uses this device");
        }
        let role = word(
            ctx,
            &obj,
            "role",
            &p.role,
            &[
                ("external", Role::External),
                ("internal", Role::Internal),
                ("both", Role::Both),
            ],
        )
        .unwrap_or(Role::External);
        let mut addresses = Vec::new();
        for a in &p.addresses {
            match a.parse::<IpNet>() {
                Ok(n) if n.addr() == n.network() && n.prefix_len() < n.max_prefix_len() => ctx.err(
                    &obj,
                    "addresses",
                    format!("\"{a}\" is a network, not an address in it"),
                ),
                Ok(n) => {
                    if ports
                        .iter()
                        .flat_map(|q| &q.addresses)
                        .chain(&addresses)
                        .any(|o: &IpNet| o.contains(&n.addr()) || n.contains(&o.addr()))
                    {
                        ctx.err(
                            &obj,
                            "addresses",
                            format!("\"{a}\" overlaps a subnet already on a port"),
                        );
                    }
                    addresses.push(n)
                }
                Err(_) => ctx.err(
                    &obj,
                    "addresses",
                    format!("\"{a}\" is not address/prefix (\"10.0.0.1/24\")"),
                ),
            }
        }
        let gateway = p
            .gateway
            .as_deref()
            .and_then(|g| address(ctx, &obj, "gateway", g));
        if let Some(g) = gateway {
            if !addresses.iter().any(|n| n.contains(&g) && n.addr() != g) {
                ctx.err(
                    &obj,
                    "gateway",
                    format!("{g} is not inside any of this port's subnets"),
                );
            }
            if let Some(other) = gateway_family.insert(g.is_ipv4(), obj.clone()) {
                ctx.err(
                    &obj,
                    "gateway",
                    format!("{other} already sets the default gateway for this address family"),
                );
            }
        }
        let mut mtu = in_range(ctx, &obj, "mtu", p.mtu, 576, 9000).unwrap_or(1500) as u16;
        if mtu < 1280 && addresses.iter().any(|n| n.addr().is_ipv6()) {
            ctx.err(&obj, "mtu", "IPv6 needs an MTU of at least 1280");
            mtu = 1500;
        }
        let rx_queues = in_range(ctx, &obj, "rx_queues", p.rx_queues, 1, 64).unwrap_or(1) as u16;
        ports.push(Port {
            name: p.name,
            device,
            role,
            addresses,
            gateway,
            mtu,
            rx_queues,
        });
    }
    ports
}

/// The port a frontend of `kind` at `addr` lives on: the port of the right
/// role whose subnet holds it, else the first port of that role.
fn home_port(ports: &[Port], kind: FrontendKind, addr: IpAddr) -> Option<usize> {
    let fits = |p: &Port| match kind {
        FrontendKind::Public => p.role.is_external(),
        FrontendKind::Internal => p.role.is_internal(),
    };
    ports
        .iter()
        .position(|p| fits(p) && p.addresses.iter().any(|n| n.contains(&addr)))
        .or_else(|| ports.iter().position(fits))
}

fn check_frontends(
    ctx: &mut Ctx,
    raw: Vec<(String, raw::Frontend)>,
    ports: &[Port],
) -> Vec<Frontend> {
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    let mut out = Vec::new();
    for (obj, f) in raw {
        unique_name(ctx, &mut names, &obj, &f.name);
        let kind = word(
            ctx,
            &obj,
            "kind",
            &f.kind,
            &[
                ("public", FrontendKind::Public),
                ("internal", FrontendKind::Internal),
            ],
        );
        // An invalid frontend stays in the list (the config is rejected anyway)
        // so rules naming it do not report a second, cascading error.
        let placeholder = |name: String| Frontend {
            name,
            address: IpAddr::from([0, 0, 0, 0]),
            kind: FrontendKind::Public,
            port: 0,
        };
        let Some(address) = address(ctx, &obj, "address", &f.address) else {
            out.push(placeholder(f.name));
            continue;
        };
        if !addrs.insert(address) {
            ctx.err(
                &obj,
                "address",
                format!("{address} is used by another frontend"),
            );
        }
        if ports
            .iter()
            .flat_map(|p| &p.addresses)
            .any(|n| n.addr() == address)
        {
            ctx.err(
                &obj,
                "address",
                format!("{address} is a port's own address"),
            );
        }
        let Some(kind) = kind else {
            out.push(placeholder(f.name));
            continue;
        };
        let Some(port) = home_port(ports, kind, address) else {
            let role = if kind == FrontendKind::Public {
                "external"
            } else {
                "internal"
            };
            ctx.err(
                &obj,
                "kind",
                format!("no port has role {role} (or both) to carry this frontend"),
            );
            out.push(placeholder(f.name));
            continue;
        };
        if kind == FrontendKind::Internal
            && !ports[port].addresses.iter().any(|n| n.contains(&address))
        {
            ctx.err(
                &obj,
                "address",
                format!("internal frontend {address} is outside every internal port's subnets"),
            );
        }
        out.push(Frontend {
            name: f.name,
            address,
            kind,
            port,
        });
    }
    out
}

fn check_pools(ctx: &mut Ctx, raw: Vec<(String, raw::Pool)>, ports: &[Port]) -> Vec<Pool> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (obj, p) in raw {
        unique_name(ctx, &mut names, &obj, &p.name);
        let mut members = Vec::new();
        let mut seen_addr = HashSet::new();
        let mut seen_name = HashSet::new();
        for (i, m) in p.members.iter().enumerate() {
            let mobj = format!(
                "{obj} member {}",
                m.name.clone().unwrap_or_else(|| i.to_string())
            );
            let Some(address) = address(ctx, &mobj, "address", &m.address) else {
                continue;
            };
            if !seen_addr.insert(address) {
                ctx.err(
                    &mobj,
                    "address",
                    format!("{address} is already a member of this pool"),
                );
            }
            if !ports
                .iter()
                .filter(|p| p.role.is_internal())
                .flat_map(|p| &p.addresses)
                .any(|n| n.contains(&address))
            {
                ctx.err(
                    &mobj,
                    "address",
                    format!("{address} is not on any internal port's subnet"),
                );
            }
            if let Some(n) = &m.name {
                if !seen_name.insert(n.clone()) {
                    ctx.err(
                        &mobj,
                        "name",
                        format!("\"{n}\" names two members of this pool"),
                    );
                }
            }
            let admin_state = match m.admin_state.as_deref() {
                None => AdminState::Up,
                Some(s) => word(
                    ctx,
                    &mobj,
                    "admin_state",
                    s,
                    &[("up", AdminState::Up), ("down", AdminState::Down)],
                )
                .unwrap_or(AdminState::Up),
            };
            members.push(Member {
                address,
                name: m.name.clone(),
                admin_state,
            });
        }
        out.push(Pool {
            name: p.name,
            members,
        });
    }
    out
}

fn check_probes(ctx: &mut Ctx, raw: Vec<(String, raw::Probe)>) -> Vec<Probe> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (obj, p) in raw {
        unique_name(ctx, &mut names, &obj, &p.name);
        let protocol = word(
            ctx,
            &obj,
            "protocol",
            &p.protocol,
            &[
                ("tcp", ProbeProtocol::Tcp),
                ("http", ProbeProtocol::Http),
                ("https", ProbeProtocol::Https),
            ],
        )
        .unwrap_or(ProbeProtocol::Tcp);
        let port = port_number(ctx, &obj, "port", p.port, false);
        match (&protocol, &p.path) {
            (ProbeProtocol::Tcp, Some(_)) => ctx.err(&obj, "path", "a tcp probe has no path"),
            (ProbeProtocol::Http | ProbeProtocol::Https, None) => ctx.err(
                &obj,
                "path",
                "http and https probes need a path (\"/health\")",
            ),
            (_, Some(path)) if !path.starts_with('/') || path.contains(char::is_whitespace) => ctx
                .err(
                    &obj,
                    "path",
                    format!("\"{path}\" must start with / and hold no spaces"),
                ),
            _ => {}
        }
        let s = Duration::from_secs;
        let interval = duration(
            ctx,
            &obj,
            "interval",
            p.interval.as_deref(),
            s(5),
            s(1),
            s(3600),
        );
        let timeout = duration(
            ctx,
            &obj,
            "timeout",
            p.timeout.as_deref(),
            interval.min(s(30)),
            Duration::from_millis(100),
            s(30),
        );
        let threshold =
            in_range(ctx, &obj, "threshold", p.threshold.unwrap_or(1), 1, 100).unwrap_or(1) as u32;
        out.push(Probe {
            name: p.name,
            protocol,
            port,
            path: p.path,
            interval,
            timeout,
            threshold,
        });
    }
    out
}

fn check_flow_table(ctx: &mut Ctx, f: raw::FlowTable) -> FlowTable {
    let capacity = in_range(
        ctx,
        "[flow_table]",
        "capacity",
        f.capacity.unwrap_or(1 << 20),
        1024,
        1 << 28,
    )
    .unwrap_or(1 << 20);
    FlowTable {
        capacity: capacity as u32,
    }
}

fn check_control(ctx: &mut Ctx, c: raw::Control) -> Control {
    let obj = "[control]";
    let metrics_s = c.metrics.unwrap_or_else(|| "127.0.0.1:9100".into());
    let metrics = metrics_s.parse().unwrap_or_else(|_| {
        ctx.err(
            obj,
            "metrics",
            format!("\"{metrics_s}\" is not address:port"),
        );
        "127.0.0.1:9100".parse().expect("literal")
    });
    let log = c.log.unwrap_or_else(|| "info".into());
    if !["trace", "debug", "info", "warn", "error"].contains(&log.as_str()) {
        ctx.err(
            obj,
            "log",
            format!("\"{log}\" is not one of trace | debug | info | warn | error"),
        );
    }
    Control {
        socket: c
            .socket
            .unwrap_or_else(|| "/run/sluice/sluiced.sock".into())
            .into(),
        metrics,
        state_dir: c
            .state_dir
            .unwrap_or_else(|| "/var/lib/sluice".into())
            .into(),
        log,
    }
}
