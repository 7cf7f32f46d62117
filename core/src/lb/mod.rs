//! Inbound services compiled from a [`Config`]: what a new flow to a
//! frontend address, protocol and port becomes. Load-balancing rules carry a
//! Maglev table per (rule, pool) built from the members that may take new
//! flows; inbound NAT rules carry their one member; a NAT pool rule becomes
//! one service per member, on the port its persisted map gives. Security
//! rules are compiled here too. A [`Services`] is immutable: workers read
//! the current one through an atomic pointer and a change builds a new one.

mod carry;
pub mod maglev;
pub mod natmap;
mod security;

pub use carry::{Carry, Identities};
pub use maglev::{flow_hash, Maglev};
pub use security::Security;
pub mod snat;

use crate::config::{
    AdminState, AllDown, Config, ConfigError, Distribution, FrontendKind, Protocol,
};
use crate::family::Family;
use crate::flow::FlowKey;
use crate::wire::IpProtocol;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

/// What kind of rule a service came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `[[lb_rule]]`, index in the config.
    Lb(usize),
    /// `[[nat_rule]]`
    Nat(usize),
    /// `[[nat_pool_rule]]`
    NatPool(usize),
}

/// One matchable inbound service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Rule name (as the config names the rule).
    pub name: String,
    /// A NAT pool rule's service: the pool member it forwards to (one
    /// service per member). See [`Service::label`].
    pub pool_member: Option<IpAddr>,
    /// Where it came from.
    pub kind: Kind,
    /// Frontend address.
    pub frontend: IpAddr,
    /// A public frontend: inbound is denied unless a security rule allows.
    pub public: bool,
    /// Backend port; 0 keeps the destination port (HA ports).
    pub backend_port: u16,
    /// Keep the frontend address as destination.
    pub floating_ip: bool,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// RST both ends on idle.
    pub tcp_reset: bool,
    /// Which tuple picks the member.
    pub distribution: Distribution,
    /// Addresses of the pool's members in the frontend's family (index =
    /// member index; a member without an address of that family has the
    /// family's unspecified address and is never picked).
    pub members: Vec<IpAddr>,
    /// Member picker; `None` when no member may take new flows.
    pub maglev: Option<Maglev>,
    /// By member index: may take new flows (admin state and health; every
    /// member when all are down and the rule says `all_up`).
    pub eligible: Vec<bool>,
    /// HA ports: every port and protocol; fragments are forwarded.
    pub ha_ports: bool,
    /// IP fragments are forwarded (HA ports, or the rule's `fragments`).
    pub fragments: bool,
    /// TCP segments of unknown flows that are not SYNs may start a flow,
    /// unconfirmed (the rule's `pickup`).
    pub pickup: bool,
    /// Protocol it serves (as configured).
    pub protocol: Protocol,
    /// Frontend port it serves; 0 for HA ports.
    pub frontend_port: u16,
}

impl Service {
    /// The service as listings and counters name it: the rule name, and
    /// for a NAT pool rule's member `rule[member address]`.
    pub fn label(&self) -> String {
        match self.pool_member {
            Some(m) => format!("{}[{m}]", self.name),
            None => self.name.clone(),
        }
    }

    /// The member for a new flow: its index and its address of the flow's
    /// family (a member without one is never in the table).
    #[inline]
    pub fn pick<A: Family>(&self, k: &FlowKey<A>) -> Option<(u16, A)> {
        let m = self.maglev.as_ref()?.pick(flow_hash(k, self.distribution));
        Some((m, A::from_ip(self.members[usize::from(m)])?))
    }
}

use crate::fxmap::FxMap;

#[inline]
fn exact_key(addr: Ipv4Addr, proto: u8, port: u16) -> u64 {
    u64::from(u32::from(addr)) << 24 | u64::from(proto) << 16 | u64::from(port)
}

/// The exact-match key of an IPv6 frontend, protocol and port.
#[inline]
fn exact_key6(addr: Ipv6Addr, proto: u8, port: u16) -> (u128, u32) {
    (u128::from(addr), u32::from(proto) << 16 | u32::from(port))
}

/// Every inbound service of a config, and the security rules.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// Indexed by service id (what flows record as their rule).
    pub services: Vec<Service>,
    exact: FxMap<u64, u16>,
    ha: FxMap<u32, u16>,
    exact6: FxMap<(u128, u32), u16>,
    ha6: FxMap<u128, u16>,
    /// Security rules.
    pub security: Security,
    /// NAT pool port maps, by rule name (to persist and to list).
    pub nat_maps: BTreeMap<String, natmap::PortMap>,
    /// Parity of this snapshot's generation: flows record it next to their
    /// rule and member ids, so a reload can tell ids of the old snapshot
    /// from ids of the new one. Set by whoever publishes the snapshot.
    pub generation: bool,
    /// Outbound rules and their members' ports (built by `sluice-nat`).
    pub snat: std::sync::Arc<snat::Snat>,
    /// By service id: (first traffic slot, member mask). A load-balancing
    /// rule's flows count in slot `first + member`, one per member; other
    /// services' in `first`. SNAT members' ids are their slots. Empty (each
    /// service counts in the slot of its id) when the members do not fit
    /// [`snat::RULE_BASE`] slots; see [`Services::per_member_traffic`].
    traffic_slots: Vec<(u16, u16)>,
}

/// The unspecified address of `a`'s family: the place of a member that
/// has no address of a rule's family.
fn unspecified_like(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Idle timeout of inbound NAT rules' flows (CONFIG.md has no key for it).
const NAT_IDLE: Duration = Duration::from_secs(240);

/// An inbound NAT rule's service: one member, forwarded, not balanced.
fn forwarding(
    name: String,
    kind: Kind,
    frontend: IpAddr,
    public: bool,
    backend_port: u16,
    member: IpAddr,
    up: bool,
) -> Service {
    Service {
        name,
        pool_member: None,
        kind,
        frontend,
        public,
        backend_port,
        floating_ip: false,
        idle_timeout: NAT_IDLE,
        tcp_reset: false,
        distribution: Distribution::Default,
        members: vec![member],
        maglev: Maglev::build(&[member], &[up]),
        eligible: vec![up],
        ha_ports: false,
        fragments: false,
        pickup: false,
        protocol: Protocol::All,
        frontend_port: 0,
    }
}

fn protos(p: Protocol) -> &'static [u8] {
    match p {
        Protocol::Tcp => &[6],
        Protocol::Udp => &[17],
        Protocol::All => &[6, 17],
    }
}

impl Services {
    /// Compiles the services of `cfg`. `eligible(probe, address)` says
    /// whether the member at `address` passes probe `probe` (an index in
    /// `cfg.probes`), for load-balancing rules that have a probe; admin
    /// state is applied here. Inbound NAT rules have no probe.
    /// `nat_maps` are the previous NAT pool port maps by rule name; the
    /// result holds the new ones. A rule uses its pool members' addresses
    /// of the frontend's family; a pool with none is an error here.
    pub fn compile(
        cfg: &Config,
        eligible: &dyn Fn(usize, IpAddr) -> bool,
        nat_maps: &BTreeMap<String, natmap::PortMap>,
    ) -> Result<Services, Vec<ConfigError>> {
        let mut s = Services {
            security: Security::compile(&cfg.security_rules),
            ..Services::default()
        };
        let mut errors = Vec::new();
        let fe = |i: usize| &cfg.frontends[i];
        // The pool's addresses of the frontend's family, and which members
        // have one; `None` (an error) when no member has.
        let members_of = |pool: usize, frontend: IpAddr| {
            let none = unspecified_like(frontend);
            let v6 = frontend.is_ipv6();
            let (addrs, has): (Vec<IpAddr>, Vec<bool>) = cfg.pools[pool]
                .members
                .iter()
                .map(|m| m.address_of(v6).map_or((none, false), |a| (a, true)))
                .unzip();
            has.iter().any(|&h| h).then_some((addrs, has))
        };
        let family_error = |obj: &str, pool: usize, frontend: IpAddr| {
            ConfigError::new(
                obj,
                "pool",
                format!(
                    "pool \"{}\" has no member with an {} address for frontend {frontend}",
                    cfg.pools[pool].name,
                    if frontend.is_ipv6() { "IPv6" } else { "IPv4" }
                ),
            )
        };
        let usable =
            |pool: usize, i: usize| cfg.pools[pool].members[i].admin_state == AdminState::Up;
        let add = |s: &mut Services,
                   errors: &mut Vec<ConfigError>,
                   obj: String,
                   mut svc: Service,
                   protocol: Protocol,
                   port: u16| {
            svc.protocol = protocol;
            svc.frontend_port = port;
            let id = s.services.len() as u16;
            if port == 0 {
                match svc.frontend {
                    IpAddr::V4(a) => s.ha.insert(u32::from(a), id),
                    IpAddr::V6(a) => s.ha6.insert(u128::from(a), id),
                };
            } else {
                for &p in protos(protocol) {
                    let taken = match svc.frontend {
                        IpAddr::V4(a) => s.exact.insert(exact_key(a, p, port), id),
                        IpAddr::V6(a) => s.exact6.insert(exact_key6(a, p, port), id),
                    };
                    if taken.is_some() {
                        errors.push(ConfigError::new(
                            obj.clone(),
                            "frontend_port",
                            format!("port {port} is already served on {}", svc.frontend),
                        ));
                    }
                }
            }
            s.services.push(svc);
        };
        for (i, r) in cfg.lb_rules.iter().enumerate() {
            let obj = format!("lb_rule \"{}\"", r.name);
            let f = fe(r.frontend);
            let addr = f.address;
            let Some((members, has)) = members_of(r.pool, addr) else {
                errors.push(family_error(&obj, r.pool, addr));
                continue;
            };
            let n = members.len();
            let all = &members;
            let mut ok: Vec<bool> = (0..n)
                .map(|m| {
                    has[m]
                        && usable(r.pool, m)
                        && r.probe
                            .is_none_or(|p| eligible(p, cfg.pools[r.pool].members[m].address))
                })
                .collect();
            let maglev = Maglev::build(all, &ok).or_else(|| match r.all_down {
                AllDown::AllUp => {
                    ok = has.clone();
                    Maglev::build(all, &ok)
                }
                AllDown::NoNewFlows => None,
            });
            let svc = Service {
                name: r.name.clone(),
                pool_member: None,
                kind: Kind::Lb(i),
                frontend: addr,
                public: f.kind == FrontendKind::Public,
                backend_port: r.backend_port,
                floating_ip: r.floating_ip,
                idle_timeout: r.idle_timeout,
                tcp_reset: r.tcp_reset,
                distribution: r.distribution,
                members,
                maglev,
                eligible: ok,
                ha_ports: r.is_ha_ports(),
                fragments: r.fragments,
                pickup: r.pickup,
                protocol: r.protocol,
                frontend_port: r.frontend_port,
            };
            add(&mut s, &mut errors, obj, svc, r.protocol, r.frontend_port);
        }
        for (i, r) in cfg.nat_rules.iter().enumerate() {
            let obj = format!("nat_rule \"{}\"", r.name);
            let f = fe(r.frontend);
            let addr = f.address;
            let m = &cfg.pools[r.member.pool].members[r.member.member];
            let Some(maddr) = m.address_of(addr.is_ipv6()) else {
                errors.push(ConfigError::new(
                    &obj,
                    "member",
                    format!(
                        "member {} has no {} address for frontend {addr}",
                        m.address,
                        if addr.is_ipv6() { "IPv6" } else { "IPv4" }
                    ),
                ));
                continue;
            };
            let svc = forwarding(
                r.name.clone(),
                Kind::Nat(i),
                addr,
                f.kind == FrontendKind::Public,
                r.backend_port,
                maddr,
                usable(r.member.pool, r.member.member),
            );
            add(&mut s, &mut errors, obj, svc, r.protocol, r.frontend_port);
        }
        for (i, r) in cfg.nat_pool_rules.iter().enumerate() {
            let obj = format!("nat_pool_rule \"{}\"", r.name);
            let f = fe(r.frontend);
            let addr = f.address;
            if members_of(r.pool, addr).is_none() {
                errors.push(family_error(&obj, r.pool, addr));
                continue;
            }
            let pool = &cfg.pools[r.pool];
            let addrs: Vec<IpAddr> = pool.members.iter().map(|m| m.address).collect();
            let empty = natmap::PortMap::new();
            let map = match natmap::assign(r, &addrs, nat_maps.get(&r.name).unwrap_or(&empty)) {
                Ok(m) => m,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for (mi, m) in pool.members.iter().enumerate() {
                // A member without an address of the frontend's family keeps
                // its port in the map but forwards nothing.
                let (maddr, has) = m
                    .address_of(addr.is_ipv6())
                    .map_or((unspecified_like(addr), false), |a| (a, true));
                let mut svc = forwarding(
                    r.name.clone(),
                    Kind::NatPool(i),
                    addr,
                    f.kind == FrontendKind::Public,
                    r.backend_port,
                    maddr,
                    has && usable(r.pool, mi),
                );
                svc.pool_member = Some(m.address);
                add(
                    &mut s,
                    &mut errors,
                    obj.clone(),
                    svc,
                    r.protocol,
                    map[&m.address],
                );
            }
            s.nat_maps.insert(r.name.clone(), map);
        }
        s.assign_traffic_slots();
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(errors)
        }
    }

    /// Gives each load-balancing rule one traffic slot per member, every
    /// other service one, below the SNAT members' ids; nothing when they
    /// do not fit (then traffic is counted per rule only).
    fn assign_traffic_slots(&mut self) {
        let mut slots = Vec::with_capacity(self.services.len());
        let mut next: usize = 0;
        for svc in &self.services {
            let (n, mask) = match svc.kind {
                Kind::Lb(_) => (svc.members.len().max(1), u16::MAX),
                _ => (1, 0),
            };
            slots.push((next as u16, mask));
            next += n;
            if next > usize::from(snat::RULE_BASE) {
                self.traffic_slots = Vec::new();
                return;
            }
        }
        self.traffic_slots = slots;
    }

    /// The traffic slot of a flow of `rule` (an entry's rule id) and
    /// `member` (its member index).
    #[inline]
    pub fn traffic_slot(&self, rule: u16, member: u16) -> u16 {
        match self.traffic_slots.get(usize::from(rule)) {
            Some(&(first, mask)) => first.wrapping_add(member & mask),
            None => rule,
        }
    }

    /// True when load-balancing rules count traffic per member (their
    /// members fit the slots), false when per rule only.
    pub fn per_member_traffic(&self) -> bool {
        self.services.is_empty() || !self.traffic_slots.is_empty()
    }

    /// The service for a new flow to `dst`, protocol `proto`, port `dport`:
    /// an exact port match first, then the frontend's HA-ports rule.
    #[inline]
    pub fn lookup(&self, dst: IpAddr, proto: IpProtocol, dport: u16) -> Option<(u16, &Service)> {
        let p = u8::from(proto);
        let ports = p == 6 || p == 17;
        let exact = match dst {
            IpAddr::V4(a) if ports => self.exact.get(&exact_key(a, p, dport)),
            IpAddr::V6(a) if ports => self.exact6.get(&exact_key6(a, p, dport)),
            _ => None,
        };
        let id = match exact {
            Some(id) => *id,
            None => match dst {
                IpAddr::V4(a) => *self.ha.get(&u32::from(a))?,
                IpAddr::V6(a) => *self.ha6.get(&u128::from(a))?,
            },
        };
        Some((id, &self.services[usize::from(id)]))
    }

    /// True when service `id` forwards IP fragments (HA ports, or a rule
    /// with `fragments = true`).
    #[inline]
    pub fn takes_fragments(&self, rule: snat::RuleRef) -> bool {
        let snat::RuleRef::Service(id) = rule else {
            return false;
        };
        self.services
            .get(usize::from(id))
            .is_some_and(|s| s.fragments)
    }

    /// Loads the NAT pool maps of `cfg` from `state_dir`.
    pub fn load_nat_maps(
        cfg: &Config,
        state_dir: &Path,
    ) -> (BTreeMap<String, natmap::PortMap>, Vec<String>) {
        let mut maps = BTreeMap::new();
        let mut bad = Vec::new();
        for r in &cfg.nat_pool_rules {
            let (m, b) = natmap::load(state_dir, &r.name);
            bad.extend(b.into_iter().map(|l| format!("{}: {l}", r.name)));
            maps.insert(r.name.clone(), m);
        }
        (maps, bad)
    }

    /// Writes every NAT pool map to `state_dir`.
    pub fn store_nat_maps(&self, state_dir: &Path) -> std::io::Result<()> {
        for (name, m) in &self.nat_maps {
            natmap::store(state_dir, name, m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
