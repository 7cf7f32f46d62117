//! What the pipeline needs to know about ports and routes, precomputed from a
//! [`Config`] and the ports' MAC addresses so the fast path only compares.

use crate::config::{Config, Role};
use crate::family::Family;
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
    /// Largest IP packet it sends (`[[port]] mtu`).
    pub mtu: u16,
    /// Has a kernel interface (`[[port]] kernel`): what is for its own
    /// addresses and not the data plane's goes there ([`Fate::Punt`]).
    ///
    /// [`Fate::Punt`]: super::Fate::Punt
    pub kernel: bool,
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
    /// Owns `a`, of either family, on this port.
    #[inline]
    pub fn owns<A: Family>(&self, a: A) -> bool {
        match a.into() {
            IpAddr::V4(a) => self.owns_v4(a),
            IpAddr::V6(a) => self.owns_v6(a),
        }
    }
    /// `a` is one of the port's own interface addresses (`[[port]]
    /// addresses`, not a frontend's), and the port has a kernel interface
    /// that holds it.
    pub fn kernel_owns(&self, a: IpAddr) -> bool {
        self.kernel && self.nets.iter().any(|n| n.addr() == a)
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
    /// The smallest port MTU: a packet no larger needs no per-port check.
    pub min_mtu: u16,
    /// Each family's gateway, its address as [`Family::bits`] (a new flow
    /// to an off-link client reads it, and an `IpAddr` costs a tag check).
    gateway_v4: Option<(PortIndex, u128)>,
    gateway_v6: Option<(PortIndex, u128)>,
    /// IPv4 connected subnets as (network, mask, port), longest first.
    routes_v4: Vec<(u32, u32, PortIndex)>,
    /// IPv6 connected subnets as (network, mask, port), longest first.
    routes_v6: Vec<(u128, u128, PortIndex)>,
    /// IPv4 subnets of internal ports as (network, mask).
    internal_v4: Vec<(u32, u32)>,
    internal_nets: Vec<IpNet>,
    owned: Vec<IpAddr>,
    /// Own IPv4 addresses of internal ports: where probes come from.
    probe_v4: Vec<Ipv4Addr>,
    /// Own IPv6 addresses of internal ports.
    probe_v6: Vec<Ipv6Addr>,
}

impl Dataplane {
    /// Builds the view; `macs[i]` is the MAC of config port `i`.
    pub fn new(cfg: &Config, macs: &[MacAddr]) -> Dataplane {
        let mut ports = Vec::new();
        let (mut gateway_v4, mut gateway_v6) = (None, None);
        for (i, p) in PortIndex::all(cfg.ports.len()).zip(&cfg.ports) {
            let owned = cfg.owned_addresses(i.index());
            ports.push(PortView {
                name: p.name.clone(),
                mac: macs[i.index()],
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
                mtu: p.mtu,
                kernel: p.kernel.is_some(),
            });
            for &g in &p.gateways {
                match g {
                    IpAddr::V4(a) => gateway_v4 = Some((i, a.bits())),
                    IpAddr::V6(a) => gateway_v6 = Some((i, a.bits())),
                }
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
        let mut routes_v4: Vec<(u32, u32, PortIndex, u8)> = PortIndex::all(ports.len())
            .zip(&ports)
            .flat_map(|(i, p)| {
                p.nets.iter().filter_map(move |n| match n {
                    IpNet::V4(n) => Some((
                        u32::from(n.network()),
                        u32::from(n.netmask()),
                        i,
                        n.prefix_len(),
                    )),
                    IpNet::V6(_) => None,
                })
            })
            .collect();
        // Longest prefix first; among equals the first port, as `route`.
        routes_v4.sort_by_key(|r| std::cmp::Reverse(r.3));
        let internal_v4 = routes_v4
            .iter()
            .filter(|r| ports[usize::from(r.2)].role == Role::Internal)
            .map(|r| (r.0, r.1))
            .collect();
        let mut routes_v6: Vec<(u128, u128, PortIndex, u8)> = PortIndex::all(ports.len())
            .zip(&ports)
            .flat_map(|(i, p)| {
                p.nets.iter().filter_map(move |n| match n {
                    IpNet::V6(n) => Some((
                        u128::from(n.network()),
                        u128::from(n.netmask()),
                        i,
                        n.prefix_len(),
                    )),
                    IpNet::V4(_) => None,
                })
            })
            .collect();
        routes_v6.sort_by_key(|r| std::cmp::Reverse(r.3));
        let probe_v4 = internal_sources_v4(cfg)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        let probe_v6 = internal_sources_v6(cfg)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        Dataplane {
            min_mtu: ports.iter().map(|p| p.mtu).min().unwrap_or(1500),
            ports,
            probe_v4,
            probe_v6,
            internal_v4,
            routes_v4: routes_v4
                .into_iter()
                .map(|(n, m, p, _)| (n, m, p))
                .collect(),
            routes_v6: routes_v6
                .into_iter()
                .map(|(n, m, p, _)| (n, m, p))
                .collect(),
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
        for (i, p) in PortIndex::all(self.ports.len()).zip(&self.ports) {
            for n in &p.nets {
                if n.contains(&dst) && best.is_none_or(|(_, l)| n.prefix_len() > l) {
                    best = Some((i, n.prefix_len()));
                }
            }
        }
        match best {
            Some((port, _)) => Some((port, dst)),
            None if dst.is_ipv4() => self
                .gateway_v4
                .map(|(p, g)| (p, IpAddr::V4(Family::from_bits(g)))),
            None => self
                .gateway_v6
                .map(|(p, g)| (p, IpAddr::V6(Family::from_bits(g)))),
        }
    }

    /// [`Dataplane::route`] on precomputed masks, for either family: what
    /// every new flow asks twice.
    #[inline]
    pub fn route_of<A: Family>(&self, dst: A) -> Option<(PortIndex, A)> {
        let d = dst.bits();
        if A::V6 {
            for &(net, mask, port) in &self.routes_v6 {
                if d & mask == net {
                    return Some((port, dst));
                }
            }
        } else {
            let d = d as u32;
            for &(net, mask, port) in &self.routes_v4 {
                if d & mask == net {
                    return Some((port, dst));
                }
            }
        }
        let (port, g) = if A::V6 {
            self.gateway_v6
        } else {
            self.gateway_v4
        }?;
        Some((port, A::from_bits(g)))
    }

    /// The first address of family `A` configured on `port` (where the
    /// ICMP errors Sluice originates come from).
    pub fn address_of<A: Family>(&self, port: PortIndex) -> Option<A> {
        self.ports
            .get(port.index())?
            .nets
            .iter()
            .find_map(|n| A::from_ip(n.addr()))
    }

    /// The gateway of family `A`, if the config sets one.
    #[inline]
    pub fn gateway_of<A: Family>(&self) -> Option<A> {
        let (_, g) = if A::V6 {
            self.gateway_v6
        } else {
            self.gateway_v4
        }?;
        Some(A::from_bits(g))
    }

    /// True when `a`, of either family, is on an internal port's subnet.
    #[inline]
    pub fn is_internal(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.is_internal_v4(a),
            IpAddr::V6(_) => self.internal_nets.iter().any(|n| n.contains(&a)),
        }
    }

    /// True when `a` is on an internal port's subnet: traffic to it stays
    /// on the internal network (no SNAT).
    #[inline]
    pub fn is_internal_v4(&self, a: Ipv4Addr) -> bool {
        let a = u32::from(a);
        self.internal_v4.iter().any(|&(n, m)| a & m == n)
    }

    /// True when TCP to `dst` port `dport` is a reply to a health probe:
    /// `dst` is an internal port's own address and `dport` in
    /// [`super::PROBE_PORTS`].
    #[inline]
    pub fn is_probe_reply(&self, dst: IpAddr, dport: u16) -> bool {
        dport >= *super::PROBE_PORTS.start()
            && dport <= *super::PROBE_PORTS.end()
            && match dst {
                IpAddr::V4(a) => self.probe_v4.contains(&a),
                IpAddr::V6(a) => self.probe_v6.contains(&a),
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

/// The own IPv4 addresses of internal ports with their prefix lengths, in
/// config order: where health probes come from.
pub fn internal_sources_v4(cfg: &Config) -> Vec<(Ipv4Addr, u8)> {
    cfg.ports
        .iter()
        .filter(|p| p.role == Role::Internal)
        .flat_map(|p| p.addresses.iter())
        .filter_map(|n| match n {
            IpNet::V4(n) => Some((n.addr(), n.prefix_len())),
            IpNet::V6(_) => None,
        })
        .collect()
}

/// The own IPv6 addresses of internal ports with their prefix lengths, in
/// config order: where IPv6 health probes come from.
pub fn internal_sources_v6(cfg: &Config) -> Vec<(Ipv6Addr, u8)> {
    cfg.ports
        .iter()
        .filter(|p| p.role == Role::Internal)
        .flat_map(|p| p.addresses.iter())
        .filter_map(|n| match n {
            IpNet::V6(n) => Some((n.addr(), n.prefix_len())),
            IpNet::V4(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn route_of_agrees_with_route() {
        let dp = crate::craft::example_dataplane();
        for a in [
            Ipv4Addr::new(203, 0, 113, 7),
            Ipv4Addr::new(10, 0, 0, 11),
            Ipv4Addr::new(10, 0, 1, 1),
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(255, 255, 255, 255),
        ] {
            let want = dp.route(IpAddr::V4(a));
            let got = dp.route_of(a).map(|(p, nh)| (p, IpAddr::V4(nh)));
            assert_eq!(got, want, "{a}");
        }
        assert_eq!(
            dp.route_of(Ipv4Addr::new(198, 51, 100, 1)),
            Some((
                crate::neigh::PortIndex::new(0),
                Ipv4Addr::new(203, 0, 113, 254)
            )),
            "off-link goes to the gateway"
        );
    }
}
