//! Security rules (the network security group), compiled once per
//! [`Services`](super::Services): prefixes as (network, mask) pairs in
//! priority order, the first match decides. Checked on the first packet of
//! a flow only; established flows are not re-evaluated.

use crate::config::{Action, Direction, SecurityProtocol, SecurityRule};
use ipnet::IpNet;
use std::net::Ipv4Addr;

#[derive(Debug, Clone)]
struct Compiled {
    direction: Direction,
    allow: bool,
    src: (u32, u32),
    dst: (u32, u32),
    proto: SecurityProtocol,
    ports: (u16, u16),
}

/// The compiled rules.
#[derive(Debug, Clone, Default)]
pub struct Security {
    rules: Vec<Compiled>,
}

/// (network, mask) of an IPv4 prefix; `None` (any) matches everything. An
/// IPv6 prefix matches no IPv4 address.
fn net(p: &Option<IpNet>) -> (u32, u32) {
    match p {
        None => (0, 0),
        Some(IpNet::V4(n)) => (u32::from(n.network()), u32::from(n.netmask())),
        // Never equal after masking: an IPv6 prefix matches no IPv4 flow.
        Some(IpNet::V6(_)) => (1, 0),
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
    pub fn allows(
        &self,
        direction: Direction,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        dport: u16,
        default: bool,
    ) -> bool {
        let (s, d) = (u32::from(src), u32::from(dst));
        for r in &self.rules {
            if r.direction != direction || s & r.src.1 != r.src.0 || d & r.dst.1 != r.dst.0 {
                continue;
            }
            let proto_ok = match r.proto {
                SecurityProtocol::Any => true,
                SecurityProtocol::Tcp => proto == 6,
                SecurityProtocol::Udp => proto == 17,
                SecurityProtocol::Icmp => proto == 1,
            };
            let has_ports = proto == 6 || proto == 17;
            if proto_ok && (!has_ports || (r.ports.0..=r.ports.1).contains(&dport)) {
                return r.allow;
            }
        }
        default
    }
}
