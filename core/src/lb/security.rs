//! Security rules (the network security group), compiled once per
//! [`Services`](super::Services): prefixes as (network, mask) pairs in
//! priority order, the first match decides. Checked on the first packet of
//! a flow only; established flows are not re-evaluated.

use crate::config::{Action, Direction, SecurityProtocol, SecurityRule};
use crate::family::Family;
use ipnet::IpNet;

/// A prefix as (network, mask) for each family: the family it is not of
/// never matches.
#[derive(Debug, Clone, Copy)]
struct Net {
    v4: (u32, u32),
    v6: (u128, u128),
}

impl Net {
    #[inline]
    fn matches<A: Family>(&self, a: A) -> bool {
        if A::V6 {
            a.bits() & self.v6.1 == self.v6.0
        } else {
            (a.bits() as u32) & self.v4.1 == self.v4.0
        }
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    direction: Direction,
    allow: bool,
    src: Net,
    dst: Net,
    proto: SecurityProtocol,
    ports: (u16, u16),
}

/// The compiled rules.
#[derive(Debug, Clone, Default)]
pub struct Security {
    rules: Vec<Compiled>,
}

/// A prefix per family; `None` (any) matches everything. A prefix of one
/// family matches no address of the other (never equal after masking).
fn net(p: &Option<IpNet>) -> Net {
    match p {
        None => Net {
            v4: (0, 0),
            v6: (0, 0),
        },
        Some(IpNet::V4(n)) => Net {
            v4: (u32::from(n.network()), u32::from(n.netmask())),
            v6: (1, 0),
        },
        Some(IpNet::V6(n)) => Net {
            v4: (1, 0),
            v6: (u128::from(n.network()), u128::from(n.netmask())),
        },
    }
}

impl Security {
    /// Compiles rules that are already sorted by priority.
    pub fn compile(rules: &[SecurityRule]) -> Security {
        Security {
            rules: rules
                .iter()
                .map(|r| Compiled {
                    direction: r.direction,
                    allow: r.action == Action::Allow,
                    src: net(&r.source),
                    dst: net(&r.destination),
                    proto: r.protocol,
                    ports: r.destination_ports,
                })
                .collect(),
        }
    }

    /// The first matching rule's verdict, or `default` when none matches.
    /// `proto` is the IP protocol number; ports are ignored for protocols
    /// without them.
    #[inline(always)]
    pub fn allows<A: Family>(
        &self,
        direction: Direction,
        src: A,
        dst: A,
        proto: u8,
        dport: u16,
        default: bool,
    ) -> bool {
        for r in &self.rules {
            if r.direction != direction || !r.src.matches(src) || !r.dst.matches(dst) {
                continue;
            }
            let proto_ok = match r.proto {
                SecurityProtocol::Any => true,
                SecurityProtocol::Tcp => proto == 6,
                SecurityProtocol::Udp => proto == 17,
                SecurityProtocol::Icmp => proto == 1 || proto == 58,
            };
            let has_ports = proto == 6 || proto == 17;
            if proto_ok && (!has_ports || (r.ports.0..=r.ports.1).contains(&dport)) {
                return r.allow;
            }
        }
        default
    }
}
