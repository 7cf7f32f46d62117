//! Traffic totals per rule and per member, their rates over the last 10 s,
//! and the flows each member holds, for `sluicectl status`, metrics and
//! `sluicectl counters`.
//!
//! Workers count packets, bytes, SYNs and new flows by traffic slot (see
//! `sluice_core::pipeline::Traffic`): one slot per member of a
//! load-balancing rule, one per NAT rule and one per SNAT member
//! (`Services::traffic_slot`). Slots belong to a rules snapshot: a reload
//! may give a slot to another member. The book, on the control thread,
//! turns the slot counters into totals by identity (rule and member): each
//! update adds what each slot counted since the last one to the key that
//! owns it; a reload flushes with the old owners first, then takes the new
//! ones. Packets of old-snapshot flows in the reload's carry window (one
//! worker loop) may be counted under the new owner of their old slot.

use sluice_core::config::Config;
use sluice_core::family::Family;
use sluice_core::flow::FlowTable;
use sluice_core::lb::snat::RuleRef;
use sluice_core::lb::{Kind, Services};
use sluice_core::pipeline::TrafficCount;
use sluice_core::runtime::Shared;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What a total is for: one member of one inbound service (rule, frontend
/// address, protocol, port), or one member of an outbound rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrafficKey {
    /// Rule name.
    pub rule: String,
    /// lb_rule | nat_rule | nat_pool_rule | outbound_rule.
    pub kind: &'static str,
    /// Frontend name (outbound rules: their frontends' names, joined by
    /// commas).
    pub frontend: String,
    /// Frontend address (outbound rules: their addresses, joined).
    pub address: String,
    /// tcp | udp | all.
    pub protocol: &'static str,
    /// Frontend port (0: HA ports, and outbound rules: every port).
    pub port: u16,
    /// The member's address ("*" for a load-balancing rule whose members
    /// are counted together, when there are too many to count apart).
    pub member: String,
    /// The member's name, or its address when it has none.
    pub member_name: String,
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

    /// The labels of its rule (`rule`, `kind`, `frontend`, `address`,
    /// `protocol`, `port`), shared by the rule and member series; with
    /// `member`, also `member` and `member_name`.
    pub fn labels(&self, member: bool) -> Vec<(&'static str, String)> {
        let mut l = vec![
            ("rule", self.rule.clone()),
            ("kind", self.kind.to_string()),
            ("frontend", self.frontend.clone()),
            ("address", self.address.clone()),
            ("protocol", self.protocol.to_string()),
            ("port", self.port.to_string()),
        ];
        if member {
            l.push(("member", self.member.clone()));
            l.push(("member_name", self.member_name.clone()));
        }
        l
    }

    /// The key of the whole rule (per frontend port): its members
    /// together.
    pub fn rule_key(&self) -> TrafficKey {
        let mut k = self.clone();
        k.member = "*".into();
        k.member_name = "*".into();
        k
    }
}

/// Per second, over the last [`RATE_WINDOW`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Flows (connections) started per second.
    pub flows: f64,
    /// Packets per second, both directions.
    pub packets: f64,
    /// Bits per second (IP bytes x 8), both directions.
    pub bits: f64,
}

/// The span rates are measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Totals by identity, and a second-by-second history for rates.
#[derive(Debug, Default)]
pub struct TrafficBook {
    owners: HashMap<u16, TrafficKey>,
    /// The inverse of `owners`: each current key's slot.
    slots: HashMap<TrafficKey, u16>,
    last: HashMap<u16, TrafficCount>,
    totals: BTreeMap<TrafficKey, TrafficCount>,
    history: VecDeque<(Instant, BTreeMap<TrafficKey, TrafficCount>)>,
}

fn current(shared: &Shared, slot: u16) -> TrafficCount {
    let mut c = TrafficCount::default();
    for t in &shared.traffic {
        c.merge(&t.read(slot));
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
    d.flows = a.flows.saturating_sub(b.flows);
    d
}

fn name_of(cfg: &Config, a: IpAddr) -> String {
    crate::views::member_label(cfg, a)
}

impl TrafficBook {
    /// Adds what every owned slot counted since the last update, and keeps
    /// a snapshot a second for the rates.
    pub fn update(&mut self, shared: &Shared) {
        for (&slot, key) in &self.owners {
            let now = current(shared, slot);
            let last = self.last.entry(slot).or_default();
            let d = sub(&now, last);
            *last = now;
            self.totals.entry(key.clone()).or_default().merge(&d);
        }
        let now = Instant::now();
        if self
            .history
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(900))
        {
            self.history.push_back((now, self.totals.clone()));
            while self.history.len() > 2 && now.duration_since(self.history[1].0) >= RATE_WINDOW {
                self.history.pop_front();
            }
        }
    }

    /// Takes the owners of `services`' slots (after [`TrafficBook::update`]
    /// with the previous ones). Every member of every rule of the snapshot
    /// gets a total, zero until it carries traffic.
    pub fn remap(&mut self, shared: &Shared, services: &Services, cfg: &Config) {
        let mut owners = HashMap::new();
        let per_member = services.per_member_traffic();
        for (id, s) in services.services.iter().enumerate() {
            let frontend = cfg
                .frontends
                .iter()
                .find(|f| f.address == s.frontend)
                .map(|f| f.name.clone())
                .unwrap_or_default();
            let key = |member: String, member_name: String| TrafficKey {
                rule: crate::views::rule_name(s).to_string(),
                kind: crate::views::kind_name(s.kind),
                frontend: frontend.clone(),
                address: s.frontend.to_string(),
                protocol: crate::views::proto_name(s.protocol),
                port: s.frontend_port,
                member,
                member_name,
            };
            let id = id as u16;
            match s.kind {
                Kind::Lb(_) if per_member => {
                    for (i, a) in s.members.iter().enumerate() {
                        if a.is_unspecified() {
                            continue; // no address of this family: never picked
                        }
                        let slot = services.traffic_slot(id, i as u16);
                        owners.insert(slot, key(a.to_string(), name_of(cfg, *a)));
                    }
                }
                Kind::Lb(_) => {
                    owners.insert(services.traffic_slot(id, 0), key("*".into(), "*".into()));
                }
                _ => {
                    let a = s.members.first().copied();
                    let (m, n) = a.map_or((String::new(), String::new()), |a| {
                        (a.to_string(), name_of(cfg, a))
                    });
                    owners.insert(services.traffic_slot(id, 0), key(m, n));
                }
            }
        }
        for (i, m) in services.snat.members.iter().enumerate() {
            let rule = &services.snat.rules[usize::from(m.rule)];
            let protocol = match (rule.tcp, rule.udp) {
                (true, false) => "tcp",
                (false, true) => "udp",
                _ => "all",
            };
            let fronts: Vec<_> = cfg
                .outbound_rules
                .iter()
                .find(|r| r.name == rule.name)
                .map(|r| r.frontends.iter().map(|&f| &cfg.frontends[f]).collect())
                .unwrap_or_default();
            let join = |f: &dyn Fn(&sluice_core::config::Frontend) -> String| {
                fronts.iter().map(|x| f(x)).collect::<Vec<_>>().join(",")
            };
            owners.insert(
                RuleRef::Snat(i as u16).id(),
                TrafficKey {
                    rule: rule.name.clone(),
                    kind: "outbound_rule",
                    frontend: join(&|f| f.name.clone()),
                    address: join(&|f| f.address.to_string()),
                    protocol,
                    port: 0,
                    member: m.address.to_string(),
                    member_name: name_of(cfg, m.address),
                },
            );
        }
        for (slot, key) in &owners {
            if !self.owners.contains_key(slot) {
                // Counted while no key owned it: not attributed.
                self.last.insert(*slot, current(shared, *slot));
            }
            self.totals.entry(key.clone()).or_default();
        }
        // Totals of rules and members that went stay (Prometheus counters
        // do not go backwards); only the current ones are listed.
        self.slots = owners.iter().map(|(s, k)| (k.clone(), *s)).collect();
        self.owners = owners;
    }

    /// The totals of the current rules' members.
    pub fn totals(&self) -> Vec<(TrafficKey, TrafficCount)> {
        let mut keys: Vec<&TrafficKey> = self.owners.values().collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|k| (k.clone(), self.totals.get(k).copied().unwrap_or_default()))
            .collect()
    }

    /// The totals of the current rules, their members summed.
    pub fn rule_totals(&self) -> Vec<(TrafficKey, TrafficCount)> {
        let mut out: BTreeMap<TrafficKey, TrafficCount> = BTreeMap::new();
        for (k, c) in self.totals() {
            out.entry(k.rule_key()).or_default().merge(&c);
        }
        out.into_iter().collect()
    }

    /// `key`'s rates over the last [`RATE_WINDOW`] (less while the daemon
    /// has run for less).
    pub fn rates(&self, key: &TrafficKey) -> Rates {
        let (Some((t0, old)), Some((t1, new))) = (self.history.front(), self.history.back()) else {
            return Rates::default();
        };
        let dt = t1.duration_since(*t0).as_secs_f64();
        if dt <= 0.0 {
            return Rates::default();
        }
        let zero = TrafficCount::default();
        let d = sub(new.get(key).unwrap_or(&zero), old.get(key).unwrap_or(&zero));
        Rates {
            flows: d.flows as f64 / dt,
            packets: (d.packets[0] + d.packets[1]) as f64 / dt,
            bits: (d.bytes[0] + d.bytes[1]) as f64 * 8.0 / dt,
        }
    }
}

/// Live flows of the current rules snapshot by traffic slot (both tables):
/// what each member holds now.
pub fn active_flows(shared: &Shared) -> HashMap<u16, u64> {
    let services = shared.services.load();
    let mut out = HashMap::new();
    count_flows(&shared.flows, &services, &mut out);
    count_flows(&shared.flows6, &services, &mut out);
    out
}

fn count_flows<A: Family>(flows: &FlowTable<A>, services: &Services, out: &mut HashMap<u16, u64>) {
    for idx in 0..flows.high_water() {
        let Some(f) = flows.info(idx) else { continue };
        let slot = match f.rule {
            RuleRef::Service(sid) if f.generation == services.generation => {
                services.traffic_slot(sid, f.member)
            }
            RuleRef::Snat(_) if f.kind() != sluice_core::flow::FlowKind::Cone => f.rule.id(),
            _ => continue,
        };
        *out.entry(slot).or_default() += 1;
    }
}

impl TrafficBook {
    /// The slot `key` is counted in now.
    pub fn slot_of(&self, key: &TrafficKey) -> Option<u16> {
        self.slots.get(key).copied()
    }
}
