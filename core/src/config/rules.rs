//! Checks for rule objects: references, port ranges, HA-ports shape, and
//! frontend port collisions between rules on the same frontend and protocol.

use super::raw;
use super::types::*;
use super::validate::{duration, in_range, lookup, port_number, prefix, unique_name, word, Ctx};
use std::collections::HashSet;
use std::time::Duration;

const PROTOCOLS: &[(&str, Protocol)] = &[
    ("tcp", Protocol::Tcp),
    ("udp", Protocol::Udp),
    ("all", Protocol::All),
];

fn names<T>(v: &[T], f: impl Fn(&T) -> &str) -> Vec<&str> {
    v.iter().map(f).collect()
}

pub(super) fn check_lb_rules(
    ctx: &mut Ctx,
    raw: Vec<(String, raw::LbRule)>,
    frontends: &[Frontend],
    pools: &[Pool],
    probes: &[Probe],
    cluster: bool,
) -> Vec<LbRule> {
    let fnames = names(frontends, |f| &f.name);
    let pnames = names(pools, |p| &p.name);
    let prnames = names(probes, |p| &p.name);
    let mut seen = HashSet::new();
    let mut ha_frontends = HashSet::new();
    let mut out = Vec::new();
    for (obj, r) in raw {
        unique_name(ctx, &mut seen, &obj, &r.name);
        let frontend = lookup(ctx, &obj, "frontend", "frontend", &fnames, &r.frontend);
        let protocol = word(ctx, &obj, "protocol", &r.protocol, PROTOCOLS);
        let frontend_port = port_number(ctx, &obj, "frontend_port", r.frontend_port, true);
        let backend_port = port_number(ctx, &obj, "backend_port", r.backend_port, true);
        let pool = lookup(ctx, &obj, "pool", "pool", &pnames, &r.pool);
        let probe = r
            .probe
            .as_deref()
            .and_then(|p| lookup(ctx, &obj, "probe", "probe", &prnames, p));
        let distribution = word(
            ctx,
            &obj,
            "distribution",
            r.distribution.as_deref().unwrap_or("default"),
            &[
                ("default", Distribution::Default),
                ("source_ip", Distribution::SourceIp),
                ("source_ip_protocol", Distribution::SourceIpProtocol),
            ],
        );
        let m = |n: u64| Duration::from_secs(60 * n);
        let idle_timeout = duration(
            ctx,
            &obj,
            "idle_timeout",
            r.idle_timeout.as_deref(),
            m(4),
            m(4),
            m(100),
        );
        let all_down = word(
            ctx,
            &obj,
            "all_down",
            r.all_down.as_deref().unwrap_or("no_new_flows"),
            &[
                ("no_new_flows", AllDown::NoNewFlows),
                ("all_up", AllDown::AllUp),
            ],
        );
        let (Some(frontend), Some(protocol), Some(pool), Some(distribution), Some(all_down)) =
            (frontend, protocol, pool, distribution, all_down)
        else {
            continue;
        };
        let ha = frontend_port == 0 || backend_port == 0;
        if ha {
            if protocol != Protocol::All || frontend_port != 0 || backend_port != 0 {
                ctx.err(
                    &obj,
                    "frontend_port",
                    "port 0 (HA ports) needs protocol \"all\" and both ports 0",
                );
            } else if frontends[frontend].kind != FrontendKind::Internal {
                ctx.err(
                    &obj,
                    "frontend",
                    "HA ports (protocol all, port 0) are only for internal frontends",
                );
            } else if !ha_frontends.insert(frontend) {
                ctx.err(
                    &obj,
                    "frontend",
                    "this frontend already has an HA-ports rule",
                );
            }
        }
        out.push(LbRule {
            name: r.name,
            frontend,
            protocol,
            frontend_port,
            backend_port,
            pool,
            probe,
            distribution,
            idle_timeout,
            tcp_reset: r.tcp_reset,
            floating_ip: r.floating_ip,
            disable_outbound_snat: r.disable_outbound_snat,
            all_down,
            fragments: r.fragments.unwrap_or(ha),
            pickup: r.pickup.unwrap_or(cluster),
        });
    }
    out
}

/// Resolves "vm1" or "10.0.0.11" to exactly one member across all pools.
fn find_member(pools: &[Pool], want: &str) -> Vec<MemberRef> {
    let addr = want.parse::<std::net::IpAddr>().ok();
    let mut found = Vec::new();
    for (pi, p) in pools.iter().enumerate() {
        for (mi, m) in p.members.iter().enumerate() {
            if m.name.as_deref() == Some(want) || Some(m.address) == addr {
                found.push(MemberRef {
                    pool: pi,
                    member: mi,
                });
            }
        }
    }
    found
}

pub(super) fn check_nat_rules(
    ctx: &mut Ctx,
    raw: Vec<(String, raw::NatRule)>,
    frontends: &[Frontend],
    pools: &[Pool],
) -> Vec<NatRule> {
    let fnames = names(frontends, |f| &f.name);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (obj, r) in raw {
        unique_name(ctx, &mut seen, &obj, &r.name);
        let frontend = lookup(ctx, &obj, "frontend", "frontend", &fnames, &r.frontend);
        let protocol = word(ctx, &obj, "protocol", &r.protocol, PROTOCOLS);
        let frontend_port = port_number(ctx, &obj, "frontend_port", r.frontend_port, false);
        let backend_port = port_number(ctx, &obj, "backend_port", r.backend_port, false);
        let found = find_member(pools, &r.member);
        let member = match found.as_slice() {
            [one] => Some(*one),
            [] => {
                ctx.err(
                    &obj,
                    "member",
                    format!("no pool member is named or addressed \"{}\"", r.member),
                );
                None
            }
            _ => {
                ctx.err(
                    &obj,
                    "member",
                    format!(
                        "\"{}\" matches members of several pools; use a unique name",
                        r.member
                    ),
                );
                None
            }
        };
        if let (Some(frontend), Some(protocol), Some(member)) = (frontend, protocol, member) {
            out.push(NatRule {
                name: r.name,
                frontend,
                protocol,
                frontend_port,
                member,
                backend_port,
            });
        }
    }
    out
}

pub(super) fn check_nat_pool_rules(
    ctx: &mut Ctx,
    raw: Vec<(String, raw::NatPoolRule)>,
    frontends: &[Frontend],
    pools: &[Pool],
) -> Vec<NatPoolRule> {
    let fnames = names(frontends, |f| &f.name);
    let pnames = names(pools, |p| &p.name);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (obj, r) in raw {
        unique_name(ctx, &mut seen, &obj, &r.name);
        let frontend = lookup(ctx, &obj, "frontend", "frontend", &fnames, &r.frontend);
        let protocol = word(ctx, &obj, "protocol", &r.protocol, PROTOCOLS);
        let start = port_number(
            ctx,
            &obj,
            "frontend_port_start",
            r.frontend_port_start,
            false,
        );
        let max = in_range(ctx, &obj, "max_members", r.max_members, 1, 1000).unwrap_or(1) as u16;
        if start != 0 && u32::from(start) + u32::from(max) - 1 > 65535 {
            ctx.err(
                &obj,
                "max_members",
                format!("{start} + {max} ports run past 65535"),
            );
        }
        let backend_port = port_number(ctx, &obj, "backend_port", r.backend_port, false);
        let pool = lookup(ctx, &obj, "pool", "pool", &pnames, &r.pool);
        if let Some(p) = pool {
            if pools[p].members.len() > usize::from(max) {
                ctx.err(
                    &obj,
                    "max_members",
                    format!(
                        "pool \"{}\" has {} members but the range holds {max}",
                        pools[p].name,
                        pools[p].members.len()
                    ),
                );
            }
        }
        if let (Some(frontend), Some(protocol), Some(pool)) = (frontend, protocol, pool) {
            out.push(NatPoolRule {
                name: r.name,
                frontend,
                protocol,
                frontend_port_start: start,
                max_members: max,
                backend_port,
                pool,
            });
        }
    }
    out
}

pub(super) fn check_outbound_rules(
    ctx: &mut Ctx,
    raw: Vec<(String, raw::OutboundRule)>,
    frontends: &[Frontend],
    pools: &[Pool],
) -> Vec<OutboundRule> {
    let fnames = names(frontends, |f| &f.name);
    let pnames = names(pools, |p| &p.name);
    let mut seen = HashSet::new();
    let mut out: Vec<OutboundRule> = Vec::new();
    for (obj, r) in raw {
        unique_name(ctx, &mut seen, &obj, &r.name);
        if r.frontends.is_empty() {
            ctx.err(&obj, "frontends", "at least one public frontend is needed");
        }
        let mut fs = Vec::new();
        for f in &r.frontends {
            if let Some(i) = lookup(ctx, &obj, "frontends", "frontend", &fnames, f) {
                if frontends[i].kind != FrontendKind::Public {
                    ctx.err(
                        &obj,
                        "frontends",
                        format!("frontend \"{f}\" is internal; SNAT needs public frontends"),
                    );
                } else if fs.contains(&i) {
                    ctx.err(
                        &obj,
                        "frontends",
                        format!("frontend \"{f}\" is listed twice"),
                    );
                }
                fs.push(i);
            }
        }
        let pool = lookup(ctx, &obj, "pool", "pool", &pnames, &r.pool);
        let protocol = word(ctx, &obj, "protocol", &r.protocol, PROTOCOLS);
        let ports_per_member = match &r.ports_per_member {
            None => PortsPerMember::Auto,
            Some(raw::PortsPerMember::Word(w)) if w == "auto" => PortsPerMember::Auto,
            Some(raw::PortsPerMember::Word(w)) => {
                ctx.err(
                    &obj,
                    "ports_per_member",
                    format!("\"{w}\" is neither a number nor \"auto\""),
                );
                PortsPerMember::Auto
            }
            Some(raw::PortsPerMember::Count(n)) => {
                match in_range(ctx, &obj, "ports_per_member", *n, 8, 64000) {
                    Some(n) if n % 8 != 0 => {
                        ctx.err(
                            &obj,
                            "ports_per_member",
                            format!("{n} is not a multiple of 8"),
                        );
                        PortsPerMember::Auto
                    }
                    Some(n) => PortsPerMember::Fixed(n as u32),
                    None => PortsPerMember::Auto,
                }
            }
        };
        let m = |n: u64| Duration::from_secs(60 * n);
        let timers = word(
            ctx,
            &obj,
            "timers",
            r.timers.as_deref().unwrap_or("azure"),
            &[("azure", Timers::Azure), ("rfc", Timers::Rfc)],
        );
        let (default, min, max) = match timers {
            Some(Timers::Rfc) => (m(124), m(124), m(18 * 60)),
            _ => (m(4), m(4), m(120)),
        };
        let idle_timeout = duration(
            ctx,
            &obj,
            "idle_timeout",
            r.idle_timeout.as_deref(),
            default,
            min,
            max,
        );
        let (Some(pool), Some(protocol)) = (pool, protocol) else {
            continue;
        };
        if let Some(other) = out
            .iter()
            .find(|o| o.pool == pool && o.protocol.overlaps(protocol))
        {
            ctx.err(
                &obj,
                "pool",
                format!(
                    "outbound_rule \"{}\" already covers this pool and protocol",
                    other.name
                ),
            );
        }
        out.push(OutboundRule {
            name: r.name,
            frontends: fs,
            pool,
            protocol,
            ports_per_member,
            idle_timeout,
            tcp_reset: r.tcp_reset,
            timers: timers.unwrap_or_default(),
        });
    }
    out
}

pub(super) fn check_security_rules(
    ctx: &mut Ctx,
    raw: Vec<(String, raw::SecurityRule)>,
) -> Vec<SecurityRule> {
    let mut seen = HashSet::new();
    let mut priorities = HashSet::new();
    let mut out = Vec::new();
    for (obj, r) in raw {
        unique_name(ctx, &mut seen, &obj, &r.name);
        let priority =
            in_range(ctx, &obj, "priority", r.priority, 100, 4096).unwrap_or(4096) as u16;
        let direction = word(
            ctx,
            &obj,
            "direction",
            &r.direction,
            &[
                ("inbound", Direction::Inbound),
                ("outbound", Direction::Outbound),
            ],
        );
        if let Some(d) = direction {
            if !priorities.insert((d, priority)) {
                ctx.err(
                    &obj,
                    "priority",
                    format!("another {d:?} rule already has priority {priority}"),
                );
            }
        }
        let action = word(
            ctx,
            &obj,
            "action",
            &r.action,
            &[("allow", Action::Allow), ("deny", Action::Deny)],
        );
        let source = prefix(ctx, &obj, "source", &r.source);
        let destination = prefix(ctx, &obj, "destination", &r.destination);
        let protocol = word(
            ctx,
            &obj,
            "protocol",
            &r.protocol,
            &[
                ("tcp", SecurityProtocol::Tcp),
                ("udp", SecurityProtocol::Udp),
                ("icmp", SecurityProtocol::Icmp),
                ("any", SecurityProtocol::Any),
            ],
        );
        let destination_ports =
            port_range(ctx, &obj, r.destination_ports.as_deref().unwrap_or("*"));
        if let (Some(direction), Some(action), Some(protocol)) = (direction, action, protocol) {
            out.push(SecurityRule {
                name: r.name,
                priority,
                direction,
                action,
                source,
                destination,
                protocol,
                destination_ports,
            });
        }
    }
    out.sort_by_key(|r| r.priority);
    out
}

fn port_range(ctx: &mut Ctx, obj: &str, s: &str) -> (u16, u16) {
    if s == "*" {
        return (0, 65535);
    }
    let parsed = match s.split_once('-') {
        None => s.trim().parse::<u16>().ok().map(|p| (p, p)),
        Some((a, b)) => a
            .trim()
            .parse::<u16>()
            .ok()
            .zip(b.trim().parse::<u16>().ok()),
    };
    match parsed {
        Some((a, b)) if a <= b => (a, b),
        _ => {
            ctx.err(
                obj,
                "destination_ports",
                format!("\"{s}\" is not \"80\", \"8000-8100\" or \"*\""),
            );
            (0, 65535)
        }
    }
}

/// Two rules on one frontend that share a protocol must not share a port.
pub(super) fn check_port_collisions(
    ctx: &mut Ctx,
    lb: &[LbRule],
    nat: &[NatRule],
    nat_pool: &[NatPoolRule],
    frontends: &[Frontend],
) {
    // (frontend, protocol, first port, last port, object)
    let mut claims: Vec<(usize, Protocol, u16, u16, String, &str)> = Vec::new();
    for r in lb.iter().filter(|r| !r.is_ha_ports()) {
        claims.push((
            r.frontend,
            r.protocol,
            r.frontend_port,
            r.frontend_port,
            format!("lb_rule \"{}\"", r.name),
            "frontend_port",
        ));
    }
    for r in nat {
        claims.push((
            r.frontend,
            r.protocol,
            r.frontend_port,
            r.frontend_port,
            format!("nat_rule \"{}\"", r.name),
            "frontend_port",
        ));
    }
    for r in nat_pool {
        let last = r.frontend_port_start.saturating_add(r.max_members - 1);
        claims.push((
            r.frontend,
            r.protocol,
            r.frontend_port_start,
            last,
            format!("nat_pool_rule \"{}\"", r.name),
            "frontend_port_start",
        ));
    }
    for (i, a) in claims.iter().enumerate() {
        if let Some(b) = claims[..i]
            .iter()
            .find(|b| b.0 == a.0 && b.1.overlaps(a.1) && b.2 <= a.3 && a.2 <= b.3)
        {
            ctx.err(
                &a.4,
                a.5,
                format!(
                    "ports {}-{} on frontend \"{}\" collide with {}",
                    a.2, a.3, frontends[a.0].name, b.4
                ),
            );
        }
    }
}
