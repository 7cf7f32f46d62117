//! What the pipeline needs to know about ports and routes, precomputed from a
//! [`Config`] and the ports' MAC addresses so the fast path only compares.

use crate::config::{Config, Role};
use crate::neigh::PortIndex;
use crate::wire::MacAddr;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One port as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct PortView {
    /// Port name (for logs and counters).
    pub name: String,
    /// The port's MAC.
    pub mac: MacAddr,
    /// Role.
    pub role: Role,
    /// IPv4 addresses answered on this port (own + frontends).
    pub v4: Vec<Ipv4Addr>,
    /// IPv6 addresses answered on this port.
    pub v6: Vec<Ipv6Addr>,
    /// Connected subnets.
    pub nets: Vec<IpNet>,
}

impl PortView {
    /// Owns `a` on this port. A short linear scan: ports hold a handful of
    /// addresses, and a scan over one cache line beats hashing.
    #[inline]
    pub fn owns_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.contains(&a)
    }
    /// Owns `a` on this port.
    #[inline]
    pub fn owns_v6(&self, a: Ipv6Addr) -> bool {
        self.v6.contains(&a)
    }
    /// `a` is on one of this port's subnets.
    pub fn on_link(&self, a: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&a))
    }
    /// The port address to use as source towards `target` (same subnet first).
    pub fn source_for(&self, target: IpAddr) -> Option<IpAddr> {
        self.nets
            .iter()
            .find(|n| n.contains(&target))
            .or_else(|| {
                self.nets
                    .iter()
                    .find(|n| n.addr().is_ipv4() == target.is_ipv4())
            })
            .map(|n| n.addr())
    }
}

/// Ports and routes for the pipeline.
#[derive(Debug, Clone)]
pub struct Dataplane {
    /// Indexed by port index.
    pub ports: Vec<PortView>,
    gateway_v4: Option<(PortIndex, IpAddr)>,
    gateway_v6: Option<(PortIndex, IpAddr)>,
    internal_nets: Vec<IpNet>,
    owned: Vec<IpAddr>,
}

impl Dataplane {
    /// Builds the view; `macs[i]` is the MAC of config port `i`.
    pub fn new(cfg: &Config, macs: &[MacAddr]) -> Dataplane {
        let mut ports = Vec::new();
        let (mut gateway_v4, mut gateway_v6) = (None, None);
        for (i, p) in cfg.ports.iter().enumerate() {
            let owned = cfg.owned_addresses(i);
            ports.push(PortView {
                name: p.name.clone(),
                mac: macs[i],
                role: p.role,
                v4: owned
                    .iter()
                    .filter_map(|a| {
                        if let IpAddr::V4(v) = a {
                            Some(*v)
                        } else {
                            None
                        }
                    })
                    .collect(),
                v6: owned
                    .iter()
                    .filter_map(|a| {
                        if let IpAddr::V6(v) = a {
                            Some(*v)
                        } else {
                            None
                        }
                    })
                    .collect(),
                nets: p.addresses.clone(),
            });
            match p.gateway {
                Some(g @ IpAddr::V4(_)) => gateway_v4 = Some((i as PortIndex, g)),
                Some(g @ IpAddr::V6(_)) => gateway_v6 = Some((i as PortIndex, g)),
                None => {}
            }
        }
        let internal_nets = cfg
            .ports
            .iter()
            .filter(|p| p.role == Role::Internal)
            .flat_map(|p| p.addresses.iter().copied())
            .collect();
        let owned = (0..cfg.ports.len())
            .flat_map(|i| cfg.owned_addresses(i))
            .collect();
        Dataplane {
            ports,
            gateway_v4,
            gateway_v6,
            internal_nets,
            owned,
        }
    }

    /// Port and next hop for `dst`: a connected subnet (longest prefix),
    /// else the gateway of its family.
    pub fn route(&self, dst: IpAddr) -> Option<(PortIndex, IpAddr)> {
        let mut best: Option<(PortIndex, u8)> = None;
        for (i, p) in self.ports.iter().enumerate() {
            for n in &p.nets {
                if n.contains(&dst) && best.is_none_or(|(_, l)| n.prefix_len() > l) {
                    best = Some((i as PortIndex, n.prefix_len()));
                }
            }
        }
        match best {
            Some((port, _)) => Some((port, dst)),
            None if dst.is_ipv4() => self.gateway_v4,
            None => self.gateway_v6,
        }
    }

    /// True when `a` is one of Sluice's addresses, on any port.
    pub fn is_own(&self, a: IpAddr) -> bool {
        self.owned.contains(&a)
    }

    /// True when a neighbour on an external port claiming `a` is lying: `a`
    /// is on an internal-only port's subnet, or is one of Sluice's own.
    pub fn is_spoofed_claim(&self, port: PortIndex, a: IpAddr) -> bool {
        self.ports[usize::from(port)].role == Role::External
            && (self.internal_nets.iter().any(|n| n.contains(&a)) || self.is_own(a))
    }
}
