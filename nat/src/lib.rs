//! sluice-nat: the NAT half of Sluice. Outbound SNAT (port budget, per-member
//! blocks, TCP per-destination reuse, UDP port-restricted cone) lives here,
//! on top of `sluice-core` types (`nat` -> `core`, never back). The data
//! path reads what this crate compiles through `sluice-core`'s snapshot.

#![forbid(unsafe_code)]

pub mod blocks;

use sluice_core::config::{Config, ConfigError, Protocol};
use sluice_core::lb::snat::{Snat, SnatRule};
use std::collections::BTreeMap;
use std::path::Path;

/// The assignments a running snapshot holds, by rule name: what a reload
/// starts from.
pub fn assignments(snat: &Snat) -> BTreeMap<String, blocks::Assignment> {
    let mut out: BTreeMap<String, blocks::Assignment> = BTreeMap::new();
    for m in &snat.members {
        let name = &snat.rules[usize::from(m.rule)].name;
        out.entry(name.clone())
            .or_default()
            .insert(m.address, m.runs.clone());
    }
    out
}

/// Loads every outbound rule's assignment from `state_dir`; returns the
/// lines that did not parse, with their rule.
pub fn load_assignments(
    cfg: &Config,
    state_dir: &Path,
) -> (BTreeMap<String, blocks::Assignment>, Vec<(String, String)>) {
    let mut out = BTreeMap::new();
    let mut bad = Vec::new();
    for r in &cfg.outbound_rules {
        let (a, b) = blocks::load(state_dir, &r.name);
        bad.extend(b.into_iter().map(|l| (r.name.clone(), l)));
        out.insert(r.name.clone(), a);
    }
    (out, bad)
}

/// Plans `cfg`'s outbound rules from `previous`, writes every assignment to
/// `state_dir` and builds the data path's view for `workers` workers.
pub fn compile(
    cfg: &Config,
    previous: &BTreeMap<String, blocks::Assignment>,
    workers: usize,
) -> Result<(Snat, Vec<blocks::RulePlan>), Vec<ConfigError>> {
    let plans = blocks::plan(cfg, previous)?;
    Ok((build(cfg, &plans, workers), plans))
}

/// Writes every plan's assignment to `state_dir`.
pub fn store(state_dir: &Path, plans: &[blocks::RulePlan]) -> std::io::Result<()> {
    for p in plans {
        blocks::store(state_dir, &p.name, &p.members)?;
    }
    Ok(())
}

/// The data path's view of the outbound rules: each rule's protocols and
/// timers, and every member's runs from `plans` ([`blocks::plan`]), for
/// `workers` workers.
pub fn build(cfg: &Config, plans: &[blocks::RulePlan], workers: usize) -> Snat {
    let mut rules = Vec::new();
    let mut members = Vec::new();
    for p in plans {
        let r = &cfg.outbound_rules[p.rule];
        let ri = rules.len() as u16;
        rules.push(SnatRule {
            name: r.name.clone(),
            tcp: matches!(r.protocol, Protocol::Tcp | Protocol::All),
            udp: matches!(r.protocol, Protocol::Udp | Protocol::All),
            idle_timeout: r.idle_timeout,
            tcp_reset: r.tcp_reset,
            timers: r.timers,
        });
        for (m, runs) in &p.members {
            members.push((ri, *m, runs.clone()));
        }
    }
    Snat::new(rules, members, workers)
}
