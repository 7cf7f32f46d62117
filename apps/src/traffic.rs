//! Per-rule traffic totals for metrics and `sluicectl counters`.
//!
//! Workers count packets, bytes and SYNs by rule id (see
//! `sluice_core::pipeline::Traffic`). Ids belong to a rules snapshot: a
//! reload may give an id to another rule. The book, on the control thread,
//! turns the id counters into totals by rule identity: each update adds
//! what each id counted since the last one to the rule that owns the id;
//! a reload flushes with the old owners first, then takes the new ones.
//! Packets of old-snapshot flows in the reload's carry window (one worker
//! loop) may be counted under the new owner of their old id.

use sluice_core::config::Config;
use sluice_core::lb::snat::RuleRef;
use sluice_core::lb::Services;
use sluice_core::pipeline::TrafficCount;
use sluice_core::runtime::Shared;
use std::collections::{BTreeMap, HashMap};

/// What a total is for: one inbound service (rule, frontend address,
/// protocol, port) or one member of an outbound rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrafficKey {
    /// Rule name.
    pub rule: String,
    /// lb_rule | nat_rule | nat_pool_rule | outbound_rule.
    pub kind: &'static str,
    /// Frontend name ("" for outbound rules).
    pub frontend: String,
    /// Frontend address ("" for outbound rules).
    pub address: String,
    /// tcp | udp | all.
    pub protocol: &'static str,
    /// Frontend port (0: HA ports, and outbound rules).
    pub port: u16,
    /// The member (outbound rules, and the one member of NAT rules; ""
    /// for load-balancing rules).
    pub member: String,
}

impl TrafficKey {
    /// A dotted-name-friendly label: `address:port` or the member.
    pub fn label(&self) -> String {
        if self.kind == "outbound_rule" {
            self.member.clone()
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// Totals by rule identity.
#[derive(Debug, Default)]
pub struct TrafficBook {
    owners: HashMap<u16, TrafficKey>,
    last: HashMap<u16, TrafficCount>,
    totals: BTreeMap<TrafficKey, TrafficCount>,
}

fn current(shared: &Shared, id: u16) -> TrafficCount {
    let mut c = TrafficCount::default();
    for t in &shared.traffic {
        c.merge(&t.read(id));
    }
    c
}

fn sub(a: &TrafficCount, b: &TrafficCount) -> TrafficCount {
    let mut d = TrafficCount::default();
    for i in 0..2 {
        d.packets[i] = a.packets[i].saturating_sub(b.packets[i]);
        d.bytes[i] = a.bytes[i].saturating_sub(b.bytes[i]);
        d.syns[i] = a.syns[i].saturating_sub(b.syns[i]);
    }
    d
}

impl TrafficBook {
    /// Adds what every owned id counted since the last update.
    pub fn update(&mut self, shared: &Shared) {
        for (&id, key) in &self.owners {
            let now = current(shared, id);
            let last = self.last.entry(id).or_default();
            let d = sub(&now, last);
            *last = now;
            self.totals.entry(key.clone()).or_default().merge(&d);
        }
    }

    /// Takes the owners of `services` (after [`TrafficBook::update`] with
    /// the previous ones). Every rule of the snapshot gets a total, zero
    /// until it carries traffic.
    pub fn remap(&mut self, shared: &Shared, services: &Services, cfg: &Config) {
        let mut owners = HashMap::new();
        for (id, s) in services.services.iter().enumerate() {
            let frontend = cfg
                .frontends
                .iter()
                .find(|f| f.address == s.frontend)
                .map(|f| f.name.clone())
                .unwrap_or_default();
            owners.insert(
                id as u16,
                TrafficKey {
                    rule: crate::views::rule_name(s).to_string(),
                    kind: crate::views::kind_name(s.kind),
                    frontend,
                    address: s.frontend.to_string(),
                    protocol: crate::views::proto_name(s.protocol),
                    port: s.frontend_port,
                    // NAT rules forward to one member: say which.
                    member: match s.kind {
                        sluice_core::lb::Kind::Lb(_) => String::new(),
                        _ => s.members.first().map(|m| m.to_string()).unwrap_or_default(),
                    },
                },
            );
        }
        for (i, m) in services.snat.members.iter().enumerate() {
            let rule = &services.snat.rules[usize::from(m.rule)];
            let protocol = match (rule.tcp, rule.udp) {
                (true, false) => "tcp",
                (false, true) => "udp",
                _ => "all",
            };
            owners.insert(
                RuleRef::Snat(i as u16).id(),
                TrafficKey {
                    rule: rule.name.clone(),
                    kind: "outbound_rule",
                    frontend: String::new(),
                    address: String::new(),
                    protocol,
                    port: 0,
                    member: m.address.to_string(),
                },
            );
        }
        for (id, key) in &owners {
            if !self.owners.contains_key(id) {
                // Counted while no rule owned it: not attributed.
                self.last.insert(*id, current(shared, *id));
            }
            self.totals.entry(key.clone()).or_default();
        }
        // Totals of rules that went stay (Prometheus counters do not go
        // backwards); only the current rules are listed.
        self.owners = owners;
    }

    /// The totals of the current rules.
    pub fn totals(&self) -> Vec<(TrafficKey, TrafficCount)> {
        let mut keys: Vec<&TrafficKey> = self.owners.values().collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|k| (k.clone(), self.totals.get(k).copied().unwrap_or_default()))
            .collect()
    }
}
