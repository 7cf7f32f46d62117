//! The SNAT port budget and per-member block allocation of outbound rules.
//!
//! Each public frontend address gives 64,000 ports less 8 for every aligned
//! block a load-balancing or inbound NAT rule uses on that address: the
//! 8-port blocks from port 1024 up, skipping the reserved ones, as many as
//! that budget allows. A member of an outbound rule's pool gets `ports_per_member` ports
//! (a multiple of 8, or by pool size) on each frontend address of its
//! family, as 8-aligned blocks: one contiguous run per address when one
//! fits, else that address's free blocks. The data path uses the first
//! address's ports until they are all in use, then the next's. A member keeps its blocks while it stays in the pool, across
//! reloads and restarts: the assignment lives in the state directory
//! (`snat-<rule>.map`, written to a temp file and renamed).
//!
//! Each family on its own: a rule's IPv4 frontends serve its members'
//! IPv4 addresses and its IPv6 frontends their IPv6 addresses, each with
//! the same budget rules; a dual-stack member gets blocks in both. A
//! member address of a family the rule has no frontend of gets no SNAT
//! (its packets leaving are dropped as `egress_denied`).

use sluice_core::config::{Config, ConfigError, PortsPerMember};
use sluice_core::lb::natmap::write_atomic;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Ports per block; blocks are aligned to it.
pub const BLOCK: u16 = 8;
/// The first SNAT port.
pub const FIRST_PORT: u16 = 1024;
/// Ports one address gives at most.
pub const PORTS_PER_ADDRESS: u32 = 64_000;
const FIRST_BLOCK: usize = (FIRST_PORT / BLOCK) as usize;
const BLOCKS: usize = 65536 / BLOCK as usize;

pub use sluice_core::lb::snat::Run;

/// Member address -> its runs.
pub type Assignment = BTreeMap<IpAddr, Vec<Run>>;

/// One outbound rule, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePlan {
    /// Index in `Config::outbound_rules`.
    pub rule: usize,
    /// Rule name.
    pub name: String,
    /// Ports each member gets.
    pub ports_per_member: u32,
    /// The rule's public addresses, in order of use (both families).
    pub addresses: Vec<IpAddr>,
    /// Every member's runs.
    pub members: Assignment,
}

/// Ports per member for a pool of `n` members when the rule says "auto"
/// (SPEC.md's table; beyond 1,000 members, 32, which the budget check then
/// decides on).
pub fn auto_ports(n: usize) -> u32 {
    match n {
        0..=50 => 1024,
        51..=100 => 512,
        101..=200 => 256,
        201..=400 => 128,
        401..=800 => 64,
        _ => 32,
    }
}

/// The file that holds rule `name`'s assignment.
pub fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("snat-{name}.map"))
}

/// Reads an assignment; a missing file is an empty one. Lines are
/// `member address start len`; lines that do not parse are returned.
pub fn load(state_dir: &Path, name: &str) -> (Assignment, Vec<String>) {
    let mut map = Assignment::new();
    let mut bad = Vec::new();
    let Ok(text) = std::fs::read_to_string(path(state_dir, name)) else {
        return (map, bad);
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let parsed = match w.as_slice() {
            [m, a, s, l] => (|| {
                Some((
                    m.parse::<IpAddr>().ok()?,
                    Run {
                        address: a.parse().ok()?,
                        start: s.parse().ok()?,
                        len: l.parse().ok()?,
                    },
                ))
            })(),
            _ => None,
        };
        match parsed {
            Some((m, r)) => map.entry(m).or_default().push(r),
            None => bad.push(line.to_string()),
        }
    }
    (map, bad)
}

/// Writes an assignment atomically.
pub fn store(state_dir: &Path, name: &str, map: &Assignment) -> std::io::Result<()> {
    let mut text = String::new();
    for (m, runs) in map {
        for r in runs {
            text.push_str(&format!("{m} {} {} {}\n", r.address, r.start, r.len));
        }
    }
    write_atomic(&path(state_dir, name), &text)
}

/// Which blocks of one address are usable and which are taken.
struct AddressBlocks {
    usable: Vec<bool>,
    taken: Vec<bool>,
}

impl AddressBlocks {
    fn new(reserved: &[u16]) -> AddressBlocks {
        let mut usable: Vec<bool> = (0..BLOCKS).map(|b| b >= FIRST_BLOCK).collect();
        for &p in reserved {
            usable[usize::from(p / BLOCK)] = false;
        }
        // 64,000 ports less 8 per reserved block, from the bottom up.
        let reserved_blocks = usable[FIRST_BLOCK..].iter().filter(|u| !**u).count();
        let cap = (PORTS_PER_ADDRESS / u32::from(BLOCK)) as usize - reserved_blocks;
        let mut n = 0;
        for u in usable.iter_mut() {
            if *u {
                n += 1;
                *u = n <= cap;
            }
        }
        AddressBlocks {
            usable,
            taken: vec![false; BLOCKS],
        }
    }
    fn free(&self, b: usize) -> bool {
        self.usable[b] && !self.taken[b]
    }
    fn free_ports(&self) -> u32 {
        (FIRST_BLOCK..BLOCKS).filter(|&b| self.free(b)).count() as u32 * u32::from(BLOCK)
    }
    /// Takes `run`'s blocks if every one is free.
    fn take(&mut self, run: &Run) -> bool {
        if !run.start.is_multiple_of(BLOCK)
            || !run.len.is_multiple_of(BLOCK)
            || run.len == 0
            || run.end() > 65536
        {
            return false;
        }
        let blocks = usize::from(run.start / BLOCK)..(run.end() / u32::from(BLOCK)) as usize;
        if !blocks.clone().all(|b| self.free(b)) {
            return false;
        }
        for b in blocks {
            self.taken[b] = true;
        }
        true
    }
    /// The first run of `k` free consecutive blocks.
    fn first_fit(&self, k: usize) -> Option<usize> {
        let mut run = 0;
        for b in FIRST_BLOCK..BLOCKS {
            run = if self.free(b) { run + 1 } else { 0 };
            if run == k {
                return Some(b + 1 - k);
            }
        }
        None
    }
}

fn err(obj: &str, field: &str, reason: String) -> ConfigError {
    ConfigError {
        object: obj.to_string(),
        field: field.to_string(),
        reason,
        at: None,
    }
}

/// A rule's member addresses that have public addresses of their family
/// among `addresses`, in pool order (a dual-stack member twice).
fn member_addresses(cfg: &Config, pool: usize, addresses: &[IpAddr]) -> Vec<IpAddr> {
    cfg.pools[pool]
        .members
        .iter()
        .flat_map(|m| m.addresses.iter().copied())
        .filter(|a| addresses.iter().any(|p| p.is_ipv6() == a.is_ipv6()))
        .collect()
}

/// Ports rules use on `address` (their blocks are reserved).
fn used_ports(cfg: &Config, address: IpAddr) -> Vec<u16> {
    let on = |f: usize| cfg.frontends[f].address == address;
    let mut ports: Vec<u16> = Vec::new();
    for r in cfg.lb_rules.iter().filter(|r| on(r.frontend)) {
        ports.push(r.frontend_port);
    }
    for r in cfg.nat_rules.iter().filter(|r| on(r.frontend)) {
        ports.push(r.frontend_port);
    }
    for r in cfg.nat_pool_rules.iter().filter(|r| on(r.frontend)) {
        let end = u32::from(r.frontend_port_start) + u32::from(r.max_members);
        ports.extend((u32::from(r.frontend_port_start)..end.min(65536)).map(|p| p as u16));
    }
    ports
}

/// Checks every outbound rule's budget and assigns blocks. `previous` holds
/// each rule's assignment so far (from the state directory or the running
/// snapshot), by rule name. Every error names the rule and the numbers.
pub fn plan(
    cfg: &Config,
    previous: &BTreeMap<String, Assignment>,
) -> Result<Vec<RulePlan>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut spaces: BTreeMap<IpAddr, AddressBlocks> = BTreeMap::new();
    let mut plans = Vec::new();
    for (ri, r) in cfg.outbound_rules.iter().enumerate() {
        let obj = format!("outbound_rule \"{}\"", r.name);
        let mut addresses = Vec::new();
        for &f in &r.frontends {
            let fe = &cfg.frontends[f];
            let a = fe.address;
            // An address that balances inbound flows serves SNAT only when
            // its rules leave outbound to this rule.
            for lb in cfg.lb_rules.iter().filter(|l| {
                cfg.frontends[l.frontend].address == fe.address && !l.disable_outbound_snat
            }) {
                errors.push(err(
                    &format!("lb_rule \"{}\"", lb.name),
                    "disable_outbound_snat",
                    format!(
                        "frontend address {a} also serves outbound_rule \"{}\"; set \
                         disable_outbound_snat = true on this rule",
                        r.name
                    ),
                ));
            }
            spaces
                .entry(a)
                .or_insert_with(|| AddressBlocks::new(&used_ports(cfg, fe.address)));
            addresses.push(a);
        }
        let pool = &cfg.pools[r.pool];
        let ppm = match r.ports_per_member {
            PortsPerMember::Auto => auto_ports(pool.members.len()),
            PortsPerMember::Fixed(n) => n,
        };
        let members = member_addresses(cfg, r.pool, &addresses);
        if members.is_empty() && !pool.members.is_empty() {
            errors.push(err(
                &obj,
                "pool",
                format!(
                    "no member of pool \"{}\" has an address of its frontends' family",
                    pool.name
                ),
            ));
            continue;
        }
        // Every member gets its ports on each frontend address of its
        // family (SPEC: the first address until its ports there are used
        // up, then the next): each address must hold them all.
        let mut fits = true;
        for &a in &addresses {
            let budget = spaces[&a].free_ports();
            let n = members
                .iter()
                .filter(|m| m.is_ipv6() == a.is_ipv6())
                .count();
            let need = ppm as u64 * n as u64;
            if need > u64::from(budget) {
                errors.push(err(
                    &obj,
                    "ports_per_member",
                    format!(
                        "{n} members x {ppm} ports = {need} ports do not fit the {budget} free \
                         ports of frontend address {a}"
                    ),
                ));
                fits = false;
            }
        }
        if !fits {
            continue;
        }
        plans.push(RulePlan {
            rule: ri,
            name: r.name.clone(),
            ports_per_member: ppm,
            addresses,
            members: Assignment::new(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Members that stay keep their runs, when those still fit; then the
    // others take free blocks, in rule and member order.
    for p in &mut plans {
        let empty = Assignment::new();
        let prev = previous.get(&p.name).unwrap_or(&empty);
        let pool = cfg.outbound_rules[p.rule].pool;
        for m in member_addresses(cfg, pool, &p.addresses) {
            let Some(runs) = prev.get(&m) else {
                continue;
            };
            // Its runs still give it ports_per_member on each address of
            // its family, and nothing elsewhere.
            let fits = runs.iter().all(|r| p.addresses.contains(&r.address))
                && p.addresses
                    .iter()
                    .filter(|a| a.is_ipv6() == m.is_ipv6())
                    .all(|a| {
                        let on: u32 = runs
                            .iter()
                            .filter(|r| r.address == *a)
                            .map(|r| u32::from(r.len))
                            .sum();
                        on == p.ports_per_member
                    });
            if !fits {
                continue;
            }
            let mut taken = Vec::new();
            let ok = runs.iter().all(|r| {
                let s = spaces.get_mut(&r.address).expect("rule address");
                let t = s.take(r);
                if t {
                    taken.push(*r);
                }
                t
            });
            if ok {
                p.members.insert(m, runs.clone());
            } else {
                for r in taken {
                    let s = spaces.get_mut(&r.address).expect("rule address");
                    let first = usize::from(r.start / BLOCK);
                    for b in first..first + usize::from(r.len / BLOCK) {
                        s.taken[b] = false;
                    }
                }
            }
        }
    }
    for p in &mut plans {
        let pool = cfg.outbound_rules[p.rule].pool;
        for m in member_addresses(cfg, pool, &p.addresses) {
            if p.members.contains_key(&m) {
                continue;
            }
            let family: Vec<IpAddr> = p
                .addresses
                .iter()
                .copied()
                .filter(|a| a.is_ipv6() == m.is_ipv6())
                .collect();
            match allocate(&mut spaces, &family, p.ports_per_member) {
                Some(runs) => {
                    p.members.insert(m, runs);
                }
                None => errors.push(err(
                    &format!("outbound_rule \"{}\"", p.name),
                    "ports_per_member",
                    format!(
                        "no room for member {}'s {} ports on the rule's frontend addresses \
                         (other outbound rules share them)",
                        m, p.ports_per_member
                    ),
                )),
            }
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}

/// `ports` ports on each of `addresses`, in their order: on each, one
/// contiguous run if one fits, else its free blocks in port order.
fn allocate(
    spaces: &mut BTreeMap<IpAddr, AddressBlocks>,
    addresses: &[IpAddr],
    ports: u32,
) -> Option<Vec<Run>> {
    let k = (ports / u32::from(BLOCK)) as usize;
    if addresses
        .iter()
        .any(|a| spaces.get(a).is_none_or(|s| s.free_ports() < ports))
    {
        return None;
    }
    let mut runs: Vec<Run> = Vec::new();
    for a in addresses {
        let s = spaces.get_mut(a)?;
        if let Some(b) = s.first_fit(k) {
            let run = Run {
                address: *a,
                start: (b * usize::from(BLOCK)) as u16,
                len: ports as u16,
            };
            s.take(&run);
            runs.push(run);
            continue;
        }
        let mut left = k;
        for b in FIRST_BLOCK..BLOCKS {
            if left == 0 {
                break;
            }
            if !s.free(b) {
                continue;
            }
            s.taken[b] = true;
            left -= 1;
            let port = (b * usize::from(BLOCK)) as u16;
            match runs.last_mut() {
                Some(r) if r.address == *a && r.end() == u32::from(port) => r.len += BLOCK,
                _ => runs.push(Run {
                    address: *a,
                    start: port,
                    len: BLOCK,
                }),
            }
        }
    }
    Some(runs)
}

#[cfg(test)]
mod tests;
