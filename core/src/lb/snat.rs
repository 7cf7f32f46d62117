//! Outbound SNAT as the data path reads it: which members may leave the
//! internal network through which outbound rule, the public ports each
//! member holds, and per-member counters. `sluice-nat` computes the port
//! blocks (budget, allocation, persistence) and builds this; workers only
//! read it, through the rules snapshot.
//!
//! A new outbound flow takes a public port on the member's first public
//! address while one is free there, then on the next (SPEC). On each
//! address it tries the ports that belong to the worker handling it first
//! (index `i` of the member's ports with `i % workers == worker`), so
//! workers seldom contend for a port, then the other workers' ones: a port
//! taken from another worker's slice is confirmed after the insert (a full
//! fence, then no other entry may hold its key), and given back if another
//! worker took it at the same moment. The flow
//! table itself says which ports are in use: a TCP port is free for a
//! destination (address, port) when the reply key of that 5-tuple is not in
//! the table; a UDP port is free for a destination address when no cone
//! mapping for (destination, public address, port) is.
//!
//! Both families: a dual-stack member is two entries here, one per family
//! (its IPv4 address with runs on the rule's IPv4 addresses, its IPv6
//! address with runs on the IPv6 ones); each family's flows live in that
//! family's table.

use crate::family::Family;
use crate::fxmap::FxMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A run of SNAT ports on one public address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Run {
    /// Public address.
    pub address: IpAddr,
    /// First port.
    pub start: u16,
    /// Ports.
    pub len: u16,
}

impl Run {
    /// True when `port` on `address` is in the run.
    pub fn contains(&self, address: IpAddr, port: u16) -> bool {
        address == self.address && port >= self.start && u32::from(port) < self.end()
    }
    /// One past the last port.
    pub fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.len)
    }
}

/// Protocol number of the table entries that hold UDP cone mappings
/// (253: reserved for experimentation, RFC 3692). Their keys carry port 0
/// where a packet's would carry the remote port, so no packet matches one.
pub const CONE: u8 = 253;

/// Flows of SNAT members record `RULE_BASE + member index` as their rule
/// id (see [`RuleRef::id`]).
pub const RULE_BASE: u16 = 0x8000;

/// What a flow belongs to: an inbound service (its id in
/// `Services::services`) or an outbound SNAT member (its index in
/// [`Snat::members`]). Entries store it as one 16-bit id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleRef {
    /// An inbound service (load-balancing, NAT or NAT pool member).
    Service(u16),
    /// An outbound SNAT member.
    Snat(u16),
}

impl RuleRef {
    /// The id entries and per-rule traffic slots use.
    #[inline]
    pub fn id(self) -> u16 {
        match self {
            RuleRef::Service(i) => i,
            RuleRef::Snat(m) => RULE_BASE + m,
        }
    }
    /// The reference an id stands for.
    #[inline]
    pub fn from_id(id: u16) -> RuleRef {
        if id >= RULE_BASE {
            RuleRef::Snat(id - RULE_BASE)
        } else {
            RuleRef::Service(id)
        }
    }
}

/// One outbound rule.
#[derive(Debug, Clone)]
pub struct SnatRule {
    /// Rule name.
    pub name: String,
    /// Covers TCP.
    pub tcp: bool,
    /// Covers UDP.
    pub udp: bool,
    /// Idle timeout of its flows.
    pub idle_timeout: Duration,
    /// RST both ends of an established TCP flow that idles out.
    pub tcp_reset: bool,
    /// Whose TCP timers its flows keep.
    pub timers: crate::config::Timers,
}

/// What one worker counted for one member.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct MemberCounters {
    /// New flows that got a port.
    pub ok: AtomicU64,
    /// New flows that found every port of the worker's slice in use.
    pub failed: AtomicU64,
}

/// One member of an outbound rule's pool.
#[derive(Debug)]
pub struct SnatMember {
    /// Index in [`Snat::rules`].
    pub rule: u16,
    /// Member address (one family; the runs are of the same family).
    pub address: IpAddr,
    /// Its public ports.
    pub runs: Vec<Run>,
    /// Ports in all runs.
    pub ports: u32,
    /// Ports per public address, in the runs' (the rule's address) order:
    /// the data path uses them in this order.
    pub spans: Vec<u32>,
    /// Per worker.
    pub counters: Box<[MemberCounters]>,
}

impl SnatMember {
    /// Port `i` of the member's ports (0..ports), in run order.
    #[inline]
    pub fn port_at<A: Family>(&self, mut i: u32) -> Option<(A, u16)> {
        for r in &self.runs {
            if i < u32::from(r.len) {
                return Some((A::from_ip(r.address)?, r.start + i as u16));
            }
            i -= u32::from(r.len);
        }
        None
    }

    /// True when `port` on `address` is one of the member's.
    pub fn holds(&self, address: IpAddr, port: u16) -> bool {
        self.runs.iter().any(|r| r.contains(address, port))
    }

    /// Sums of the workers' counters: (ok, failed).
    pub fn totals(&self) -> (u64, u64) {
        self.counters.iter().fold((0, 0), |(o, f), c| {
            (o + c.ok.load(Relaxed), f + c.failed.load(Relaxed))
        })
    }
}

/// Every outbound rule of a snapshot.
#[derive(Debug, Default)]
pub struct Snat {
    /// Outbound rules.
    pub rules: Vec<SnatRule>,
    /// Members of their pools.
    pub members: Vec<SnatMember>,
    /// IPv4: (member address << 8 | protocol) -> index in `members`.
    by_member: FxMap<u64, u16>,
    /// IPv4 member addresses with any outbound rule.
    any_rule: FxMap<u32, ()>,
    /// IPv4 public addresses SNAT uses.
    public: FxMap<u32, ()>,
    /// The same three for IPv6.
    by_member6: FxMap<(u128, u8), u16>,
    any_rule6: FxMap<u128, ()>,
    public6: FxMap<u128, ()>,
    /// Workers that share each member's ports.
    workers: u32,
}

impl Snat {
    /// Outbound rules and their members, for `workers` workers (each
    /// member's counters are per worker).
    pub fn new(
        rules: Vec<SnatRule>,
        members: Vec<(u16, IpAddr, Vec<Run>)>,
        workers: usize,
    ) -> Snat {
        let workers = workers.max(1);
        let mut s = Snat {
            workers: workers as u32,
            ..Snat::default()
        };
        for (rule, address, runs) in members {
            let r = &rules[usize::from(rule)];
            let idx = s.members.len() as u16;
            for (on, proto) in [(r.tcp, 6u8), (r.udp, 17u8)] {
                if on {
                    match address {
                        IpAddr::V4(a) => s
                            .by_member
                            .insert(u64::from(u32::from(a)) << 8 | u64::from(proto), idx),
                        IpAddr::V6(a) => s.by_member6.insert((u128::from(a), proto), idx),
                    };
                }
            }
            match address {
                IpAddr::V4(a) => s.any_rule.insert(u32::from(a), ()),
                IpAddr::V6(a) => s.any_rule6.insert(u128::from(a), ()),
            };
            for run in &runs {
                match run.address {
                    IpAddr::V4(a) => s.public.insert(u32::from(a), ()),
                    IpAddr::V6(a) => s.public6.insert(u128::from(a), ()),
                };
            }
            let mut spans: Vec<(IpAddr, u32)> = Vec::new();
            for r in &runs {
                match spans.last_mut() {
                    Some((a, n)) if *a == r.address => *n += u32::from(r.len),
                    _ => spans.push((r.address, u32::from(r.len))),
                }
            }
            s.members.push(SnatMember {
                rule,
                address,
                ports: runs.iter().map(|r| u32::from(r.len)).sum(),
                spans: spans.into_iter().map(|(_, n)| n).collect(),
                runs,
                counters: (0..workers).map(|_| MemberCounters::default()).collect(),
            });
        }
        s.rules = rules;
        s
    }

    /// Workers the ports are split between.
    pub fn workers(&self) -> u32 {
        self.workers
    }

    /// The member entry that SNATs `proto` (6 or 17) from `src`.
    #[inline]
    pub fn member<A: Family>(&self, src: A, proto: u8) -> Option<(u16, &SnatMember)> {
        let &i = if A::V6 {
            self.by_member6.get(&(src.bits(), proto))?
        } else {
            let a = src.bits() as u32;
            self.by_member
                .get(&(u64::from(a) << 8 | u64::from(proto)))?
        };
        Some((i, &self.members[usize::from(i)]))
    }

    /// True when some outbound rule covers `src` (for any protocol).
    #[inline]
    pub fn has_rule<A: Family>(&self, src: A) -> bool {
        if A::V6 {
            self.any_rule6.contains_key(&src.bits())
        } else {
            self.any_rule.contains_key(&(src.bits() as u32))
        }
    }

    /// True when `a` is a public address SNAT uses.
    #[inline]
    pub fn is_public<A: Family>(&self, a: A) -> bool {
        if A::V6 {
            self.public6.contains_key(&a.bits())
        } else {
            self.public.contains_key(&(a.bits() as u32))
        }
    }

    /// Member `i`.
    pub fn get(&self, i: u16) -> Option<&SnatMember> {
        self.members.get(usize::from(i))
    }

    /// Starts each member's counters from what `old` counted for the same
    /// member of the same rule, so counters stay monotonic across reloads.
    pub fn inherit_counters(&mut self, old: &Snat) {
        for i in 0..self.members.len() {
            let m = &self.members[i];
            let name = &self.rules[usize::from(m.rule)].name;
            let Some(o) = old.find(name, m.address) else {
                continue;
            };
            let (ok, failed) = old.members[usize::from(o)].totals();
            let c = &self.members[i].counters[0];
            c.ok.fetch_add(ok, Relaxed);
            c.failed.fetch_add(failed, Relaxed);
        }
    }

    /// Index of the member of rule `name` at `address`.
    pub fn find(&self, name: &str, address: IpAddr) -> Option<u16> {
        self.members
            .iter()
            .position(|m| m.address == address && self.rules[usize::from(m.rule)].name == name)
            .map(|i| i as u16)
    }
}

/// What a member's flows hold now, counted by control from the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Public ports used by TCP flows.
    pub tcp_ports: u64,
    /// Public ports held by UDP cone mappings.
    pub udp_ports: u64,
    /// TCP flows whose handshake has not completed.
    pub pending: u64,
}

/// What the live flows use, per member (in `Snat::members` order) and per
/// public address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnatUsage {
    /// Per member.
    pub members: Vec<Usage>,
    /// Per public address: ports allocated to members, and their use.
    pub addresses: std::collections::BTreeMap<IpAddr, (u64, Usage)>,
}

/// Ports in use per member: `[TCP, UDP cone]` sets of (public address, port).
type MemberPorts = Vec<[std::collections::HashSet<(IpAddr, u16)>; 2]>;

/// What the live flows of both tables use of `snat`'s ports. A walk over
/// the tables: for the control thread (reports, metrics).
pub fn usage(
    flows: &crate::flow::FlowTable,
    flows6: &crate::flow::FlowTable<crate::family::V6>,
    snat: &Snat,
) -> SnatUsage {
    let mut ports: MemberPorts = snat.members.iter().map(|_| Default::default()).collect();
    let mut out = vec![Usage::default(); snat.members.len()];
    let mut pending = Vec::new();
    walk(flows, snat, &mut ports, &mut out, &mut pending);
    walk(flows6, snat, &mut ports, &mut out, &mut pending);
    let mut addresses: std::collections::BTreeMap<IpAddr, (u64, Usage)> = Default::default();
    for m in &snat.members {
        for r in &m.runs {
            addresses.entry(r.address).or_default().0 += u64::from(r.len);
        }
    }
    for a in pending {
        addresses.entry(a).or_default().1.pending += 1;
    }
    for (u, p) in out.iter_mut().zip(&ports) {
        u.tcp_ports = p[0].len() as u64;
        u.udp_ports = p[1].len() as u64;
        for (a, _) in &p[0] {
            addresses.entry(*a).or_default().1.tcp_ports += 1;
        }
        for (a, _) in &p[1] {
            addresses.entry(*a).or_default().1.udp_ports += 1;
        }
    }
    SnatUsage {
        members: out,
        addresses,
    }
}

/// [`usage`]'s walk over one table.
fn walk<A: Family>(
    flows: &crate::flow::FlowTable<A>,
    snat: &Snat,
    ports: &mut MemberPorts,
    out: &mut [Usage],
    pending: &mut Vec<IpAddr>,
) {
    use crate::flow::tcp::State;
    for idx in 0..flows.high_water() {
        let Some(f) = flows.info(idx) else { continue };
        let (true, RuleRef::Snat(mi)) = (f.snat, f.rule) else {
            continue;
        };
        let mi = usize::from(mi);
        let Some(m) = snat.members.get(mi) else {
            continue;
        };
        let public: (IpAddr, u16) = (f.key[1].dst.into(), f.key[1].dport);
        if !m.holds(public.0, public.1) {
            continue; // a flow of the previous snapshot not carried yet
        }
        match (f.kind(), f.key[0].proto) {
            (crate::flow::FlowKind::Snat, 6) => {
                ports[mi][0].insert(public);
                if matches!(f.state, State::SynSent | State::SynRecv) {
                    out[mi].pending += 1;
                    pending.push(public.0);
                }
            }
            (crate::flow::FlowKind::Cone, _) => {
                ports[mi][1].insert(public);
            }
            _ => {}
        }
    }
}
