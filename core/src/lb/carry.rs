//! How flows carry over from one rules snapshot to the next: after a
//! reload within one process, and after a restart into a new process that
//! adopted its predecessor's flow table (`[flow_table] file`). Both go
//! through the [`Identities`] of the old snapshot, which a restart reads
//! back from the file sluiced wrote them to.

use super::{snat, Kind, Service, Services};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What names a snapshot's rule and member ids: enough to find each again
/// in another snapshot, by name and never by position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identities {
    /// By service id.
    pub services: Vec<ServiceIdentity>,
    /// By SNAT member index.
    pub snat: Vec<SnatIdentity>,
}

/// A service's identity and its members' addresses, in index order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceIdentity {
    /// Rule name.
    pub name: String,
    /// `lb`, `nat` or `nat_pool`.
    pub kind: String,
    /// Frontend address.
    pub frontend: IpAddr,
    /// Backend port (0: the frontend port).
    pub backend_port: u16,
    /// Floating IP.
    pub floating_ip: bool,
    /// Inbound NAT rules: the member forwarded to.
    pub forwarded: Option<IpAddr>,
    /// Members, by index.
    pub members: Vec<IpAddr>,
}

/// An SNAT member's identity: its rule, address and ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnatIdentity {
    /// Outbound rule name.
    pub rule: String,
    /// Member address.
    pub address: IpAddr,
    /// Its public ports: (address, first, count) per run.
    pub runs: Vec<(IpAddr, u16, u16)>,
}

impl Identities {
    /// The identities of `s`'s ids.
    pub fn of(s: &Services) -> Identities {
        Identities {
            services: s.services.iter().map(ServiceIdentity::of).collect(),
            snat: s
                .snat
                .members
                .iter()
                .map(|m| SnatIdentity {
                    rule: s.snat.rules[usize::from(m.rule)].name.clone(),
                    address: m.address,
                    runs: m.runs.iter().map(|r| (r.address, r.start, r.len)).collect(),
                })
                .collect(),
        }
    }
}

impl ServiceIdentity {
    fn of(s: &Service) -> ServiceIdentity {
        let (kind, forwarded) = match s.kind {
            Kind::Lb(_) => ("lb", None),
            Kind::Nat(_) => ("nat", s.members.first().copied()),
            Kind::NatPool(_) => ("nat_pool", s.members.first().copied()),
        };
        ServiceIdentity {
            name: s.name.clone(),
            kind: kind.into(),
            frontend: s.frontend,
            backend_port: s.backend_port,
            floating_ip: s.floating_ip,
            forwarded,
            members: s.members.clone(),
        }
    }

    /// All but the members: what must match for a service to carry over.
    fn key(&self) -> (&str, &str, IpAddr, u16, bool, Option<IpAddr>) {
        (
            &self.name,
            &self.kind,
            self.frontend,
            self.backend_port,
            self.floating_ip,
            self.forwarded,
        )
    }
}

/// How the flows of one [`Services`] snapshot carry over to the next: a
/// service carries over when the new snapshot has one with the same
/// identity (rule name, kind of rule, frontend, backend port, floating IP,
/// and for inbound NAT rules the member), and a flow's member when the new
/// service still has its address; an SNAT member when the new snapshot has
/// the same rule name, address and ports. Anything else ends.
#[derive(Debug, Clone, Default)]
pub struct Carry {
    /// By old service id: the new id and, by old member index, the new one.
    map: Vec<Option<(u16, Vec<Option<u16>>)>>,
    /// By old SNAT member index: the new one.
    snat: Vec<Option<u16>>,
}

impl Carry {
    /// What carries over from `old` to `new`.
    pub fn between(old: &Services, new: &Services) -> Carry {
        Carry::from_identities(&Identities::of(old), new)
    }

    /// What carries over from the snapshot `old` names to `new`.
    pub fn from_identities(old: &Identities, new: &Services) -> Carry {
        let now: Vec<ServiceIdentity> = new.services.iter().map(ServiceIdentity::of).collect();
        let by_key: std::collections::HashMap<_, usize> =
            now.iter().enumerate().map(|(i, s)| (s.key(), i)).collect();
        let map = old
            .services
            .iter()
            .map(|s| {
                let &n = by_key.get(&s.key())?;
                let members = &now[n].members;
                let remap = s
                    .members
                    .iter()
                    .map(|a| members.iter().position(|b| b == a).map(|i| i as u16))
                    .collect();
                Some((n as u16, remap))
            })
            .collect();
        let snat = old
            .snat
            .iter()
            .map(|m| {
                let n = new.snat.find(&m.rule, m.address)?;
                let runs: Vec<_> = new.snat.members[usize::from(n)]
                    .runs
                    .iter()
                    .map(|r| (r.address, r.start, r.len))
                    .collect();
                (runs == m.runs).then_some(n)
            })
            .collect();
        Carry { map, snat }
    }

    /// The new (rule, member) of a flow of old `rule` and `member`; `None`
    /// when the flow should end.
    pub fn get(&self, rule: snat::RuleRef, member: u16) -> Option<(snat::RuleRef, u16)> {
        match rule {
            snat::RuleRef::Snat(m) => {
                let n = (*self.snat.get(usize::from(m))?)?;
                Some((snat::RuleRef::Snat(n), member))
            }
            snat::RuleRef::Service(s) => {
                let (n, members) = self.map.get(usize::from(s))?.as_ref()?;
                Some((
                    snat::RuleRef::Service(*n),
                    (*members.get(usize::from(member))?)?,
                ))
            }
        }
    }
}
