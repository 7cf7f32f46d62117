//! Checks for the objects rules refer to: `[dpdk]`, ports, frontends, pools,
//! `[flow_table]` and `[control]` (probes: `probes.rs`).

use super::raw;
use super::types::*;
use super::validate::{address, in_range, unique_name, word, Ctx};
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

pub(super) fn check_dpdk(ctx: &mut Ctx, d: raw::Dpdk) -> Dpdk {
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
    let idle_sleep_us = d
        .idle_sleep_us
        .map_or(Some(0), |v| {
            in_range(ctx, obj, "idle_sleep_us", v, 0, 10_000)
        })
        .unwrap_or(0) as u32;
    Dpdk {
        eal_args: d.eal_args,
        workers,
        mbufs,
        burst,
        idle_sleep_us,
    }
}

pub(super) fn check_ports(ctx: &mut Ctx, raw: Vec<(String, raw::Port)>) -> Vec<Port> {
    let mut names = HashSet::new();
    let mut devices = HashSet::new();
    let mut ports: Vec<Port> = Vec::new();
    let mut gateway_family: HashMap<bool, String> = HashMap::new();
    let mut kernels: Vec<String> = Vec::new();
    for (i, (obj, p)) in raw.into_iter().enumerate() {
        if i == crate::neigh::PortIndex::MAX_PORTS {
            let max = crate::neigh::PortIndex::MAX_PORTS;
            ctx.err(&obj, "name", format!("at most {max} ports"));
        }
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
        let given = match &p.gateway {
            None => Vec::new(),
            Some(raw::OneOrMany::One(g)) => vec![g.clone()],
            Some(raw::OneOrMany::Many(list)) => list.clone(),
        };
        let mut gateways: Vec<IpAddr> = Vec::new();
        for g in given {
            let Some(g) = address(ctx, &obj, "gateway", &g) else {
                continue;
            };
            if gateways.iter().any(|o| o.is_ipv4() == g.is_ipv4()) {
                ctx.err(
                    &obj,
                    "gateway",
                    format!("{g}: at most one gateway per family"),
                );
                continue;
            }
            gateways.push(g);
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
        let kernel = p.kernel.filter(|k| {
            let why = kernel_name_problem(k)
                .or_else(|| kernels.contains(k).then_some("is already another port's"));
            if let Some(why) = why {
                ctx.err(&obj, "kernel", format!("\"{k}\" {why}"));
            }
            kernels.push(k.clone());
            why.is_none()
        });
        ports.push(Port {
            name: p.name,
            device,
            role,
            addresses,
            gateways,
            mtu,
            rx_queues,
            kernel,
        });
    }
    ports
}

/// Why `name` cannot name a Linux network interface, if it cannot.
fn kernel_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 15 {
        Some("must be 1 to 15 characters (a Linux interface name)")
    } else if name == "." || name == ".." {
        Some("is not an interface name")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("may hold only letters, digits, '-', '_' and '.'")
    } else {
        None
    }
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

pub(super) fn check_frontends(
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
            if !ctx.some_unreadable("port") {
                ctx.err(
                    &obj,
                    "kind",
                    format!("no port has role {role} (or both) to carry this frontend"),
                );
            }
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

pub(super) fn check_pools(
    ctx: &mut Ctx,
    raw: Vec<(String, raw::Pool)>,
    ports: &[Port],
) -> Vec<Pool> {
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
            let given: Vec<(&str, &String)> = match (&m.address, &m.addresses) {
                (Some(a), None) => vec![("address", a)],
                (None, Some(list)) if !list.is_empty() => {
                    list.iter().map(|a| ("addresses", a)).collect()
                }
                (Some(_), Some(_)) => {
                    ctx.err(&mobj, "addresses", "give address or addresses, not both");
                    continue;
                }
                _ => {
                    ctx.err(&mobj, "address", "a member needs an address");
                    continue;
                }
            };
            let mut addrs: Vec<IpAddr> = Vec::new();
            for (field, a) in given {
                let Some(address) = address(ctx, &mobj, field, a) else {
                    continue;
                };
                if addrs.iter().any(|b| b.is_ipv6() == address.is_ipv6()) {
                    ctx.err(
                        &mobj,
                        field,
                        format!("{address}: a member has at most one address per family"),
                    );
                    continue;
                }
                if !seen_addr.insert(address) {
                    ctx.err(
                        &mobj,
                        field,
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
                        field,
                        format!("{address} is not on any internal port's subnet"),
                    );
                }
                addrs.push(address);
            }
            let Some(&address) = addrs.first() else {
                continue;
            };
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
                addresses: addrs,
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

pub(super) fn check_flow_table(ctx: &mut Ctx, f: raw::FlowTable) -> FlowTable {
    let capacity = in_range(
        ctx,
        "[flow_table]",
        "capacity",
        f.capacity.unwrap_or(1 << 20),
        1024,
        1 << 28,
    )
    .unwrap_or(1 << 20);
    // IPv6 entries are twice the size: by default the IPv6 table holds a
    // quarter of the IPv4 one's flows (half its memory).
    let capacity_v6 = in_range(
        ctx,
        "[flow_table]",
        "capacity_v6",
        f.capacity_v6.unwrap_or((capacity / 4).max(1024)),
        1024,
        1 << 27,
    )
    .unwrap_or(1 << 18);
    let file = f.file.map(PathBuf::from);
    if let Some(p) = &file {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        if !p.is_absolute() || p.file_name().is_none() {
            ctx.err(
                "[flow_table]",
                "file",
                format!("{} is not an absolute file path", p.display()),
            );
        } else if dir.is_some_and(|d| !d.is_dir()) {
            ctx.err(
                "[flow_table]",
                "file",
                format!(
                    "{}: no directory {}",
                    p.display(),
                    dir.unwrap_or(p).display()
                ),
            );
        }
    }
    FlowTable {
        capacity: capacity as u32,
        capacity_v6: capacity_v6 as u32,
        file,
    }
}

pub(super) fn check_control(ctx: &mut Ctx, c: raw::Control) -> Control {
    let obj = "[control]";
    let metrics_s = c.metrics.unwrap_or_else(|| "127.0.0.1:9631".into());
    let metrics = metrics_s.parse().unwrap_or_else(|_| {
        ctx.err(
            obj,
            "metrics",
            format!("\"{metrics_s}\" is not address:port"),
        );
        "127.0.0.1:9631".parse().expect("literal")
    });
    let log = c.log.unwrap_or_else(|| "info".into());
    if !["trace", "debug", "info", "warn", "error"].contains(&log.as_str()) {
        ctx.err(
            obj,
            "log",
            format!("\"{log}\" is not one of trace | debug | info | warn | error"),
        );
    }
    let log_format = c
        .log_format
        .as_deref()
        .map_or(Some(LogFormat::Text), |f| {
            word(
                ctx,
                obj,
                "log_format",
                f,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            )
        })
        .unwrap_or_default();
    Control {
        log_format,
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
