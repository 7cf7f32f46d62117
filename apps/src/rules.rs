//! The rules a config compiles to, at start and on a reload: inbound
//! services and SNAT plans from the config and the state directory (NAT
//! pool port maps, SNAT blocks), written back, and published to the data
//! plane; a reload that changes what takes a restart is refused.

use anyhow::Result;
use sluice_core::config::Config;
use sluice_core::lb::natmap::PortMap;
use sluice_core::lb::Services;
use sluice_core::pipeline::Dataplane;
use sluice_core::runtime::{ControlPlane, Shared};
use sluice_nat::blocks::Assignment;
use sluice_probe::Prober;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use tracing::{info, warn};

/// `cfg` with the `drained` members admin down.
pub fn effective(cfg: &Config, drained: &BTreeSet<IpAddr>) -> Config {
    let mut c = cfg.clone();
    for m in c.pools.iter_mut().flat_map(|p| p.members.iter_mut()) {
        if drained.contains(&m.address) {
            m.admin_state = sluice_core::config::AdminState::Down;
        }
    }
    c
}

/// Applies `cfg` (loaded again) when it changes nothing that needs a
/// restart: publishes its rules and frontends. Every error is returned;
/// then nothing that runs has changed.
pub fn reload(
    cfg: &Config,
    running: &Config,
    macs: &[sluice_core::wire::MacAddr],
    shared: &Shared,
    control: &mut ControlPlane,
    prober: &Prober,
) -> std::result::Result<usize, Vec<String>> {
    // What the running data plane was built from: ports, queues, lcores,
    // mempool, table size and control endpoints need a restart.
    let mut errors = Vec::new();
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let fixed = [
        ("[dpdk]", same(&running.dpdk, &cfg.dpdk)),
        ("[[port]]", same(&running.ports, &cfg.ports)),
        ("[flow_table]", same(&running.flow_table, &cfg.flow_table)),
        ("[control]", same(&running.control, &cfg.control)),
        ("[routing]", running.routing == cfg.routing),
        (
            "[cluster]",
            same(&running.cluster, &cfg.cluster)
                && running.cluster.as_ref().map(|c| &c.key) == cfg.cluster.as_ref().map(|c| &c.key),
        ),
    ];
    for (object, unchanged) in fixed {
        if !unchanged {
            errors.push(format!(
                "{object}: changed; this takes a restart, not a reload"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let running = shared.services.load();
    let snat_prev = sluice_nat::assignments(&running.snat);
    // Members keep the health their probe (by name) found.
    let eligible = |p: usize, a: IpAddr| prober.health(&cfg.probes[p].name, a).is_none_or(|h| h.up);
    let services = compile_rules(cfg, &eligible, &running.nat_maps, &snat_prev)?;
    let n = services.services.len();
    crate::adopt::save_identities(cfg, &services);
    if let Some(s) = &shared.sync {
        // Records of peers still on the old rules are refused from now on
        // (their ids may mean other rules here) until they reload too.
        s.set_rules(&sluice_core::lb::Identities::of(&services));
    }
    control.reload(Dataplane::new(cfg, macs), services);
    Ok(n)
}

/// Compiles `cfg`'s inbound services and outbound rules from the previous
/// NAT pool port maps and SNAT block assignments, writes both back to the
/// state directory (new members' ports) and logs them. Every error is
/// returned.
pub fn compile_rules(
    cfg: &Config,
    eligible: &dyn Fn(usize, IpAddr) -> bool,
    maps: &BTreeMap<String, PortMap>,
    snat_prev: &BTreeMap<String, Assignment>,
) -> std::result::Result<Services, Vec<String>> {
    let compiled = Services::compile(cfg, eligible, maps);
    let planned = sluice_nat::compile(cfg, snat_prev, cfg.dpdk.workers.len());
    let (mut services, (snat, plans)) = match (compiled, planned) {
        (Ok(s), Ok(p)) => (s, p),
        (s, p) => {
            let errors = s.err().into_iter().chain(p.err()).flatten();
            return Err(errors.map(|e| e.to_string()).collect());
        }
    };
    services.snat = std::sync::Arc::new(snat);
    let dir = &cfg.control.state_dir;
    services
        .store_nat_maps(dir)
        .map_err(|e| vec![format!("writing NAT pool maps to {}: {e}", dir.display())])?;
    sluice_nat::store(dir, &plans)
        .map_err(|e| vec![format!("writing SNAT blocks to {}: {e}", dir.display())])?;
    for p in &plans {
        for (member, runs) in &p.members {
            for r in runs {
                info!(rule = %p.name, %member, address = %r.address, first = r.start, ports = r.len, "SNAT ports");
            }
        }
    }
    for (rule, map) in &services.nat_maps {
        for (member, port) in map {
            info!(rule, %member, port, "NAT pool port");
        }
    }
    Ok(services)
}

/// The rules at start: NAT pool port maps and SNAT blocks come from the
/// state directory.
pub fn compile_services(cfg: &Config) -> Result<Services> {
    let dir = &cfg.control.state_dir;
    let (maps, bad) = Services::load_nat_maps(cfg, dir);
    for line in bad {
        warn!(state_dir = %dir.display(), line, "skipping an unreadable NAT pool map line");
    }
    let (snat_prev, bad) = sluice_nat::load_assignments(cfg, dir);
    for (rule, line) in bad {
        warn!(state_dir = %dir.display(), rule, line, "skipping an unreadable SNAT block line");
    }
    // Members start up: probes take them out.
    let services = compile_rules(cfg, &|_, _| true, &maps, &snat_prev).map_err(|errs| {
        for e in &errs {
            tracing::error!("{e}");
        }
        anyhow::anyhow!("{} error(s) compiling the rules", errs.len())
    })?;
    info!(
        services = services.services.len(),
        capacity = cfg.flow_table.capacity,
        "rules compiled"
    );
    Ok(services)
}
