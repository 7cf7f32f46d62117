//! Neighbours: who is at which MAC address on which port.
//!
//! The table is owned by the control thread ([`Cache`]); workers never write
//! it. They read an immutable [`NeighView`] that control republishes (an
//! `arc-swap`) whenever an entry becomes usable or goes away, and they hand
//! control what they learn from ARP/ND and the packets whose next hop is not
//! resolved yet. Neighbour changes happen at control-plane rates, so a
//! rebuilt map per change is cheaper than a concurrent table on the fast path.
//!
//! The answering half (ARP replies, neighbour advertisements) lives in the
//! pipeline: it needs no table, it answers the asker.

mod cache;
mod solicit;

pub use cache::{Cache, CacheConfig, CacheCounters, HoldOutcome, NeighStat, Released};
pub use solicit::{
    build_arp_request, build_neighbor_solicit, build_unsolicited_advert, solicited_node,
};

use crate::fxmap::FxMap;
use crate::wire::MacAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A port as Sluice numbers them: its place in the config's `[[port]]`
/// list, not a DPDK port id. A flow entry keeps it in 8 bits, so the config
/// allows at most [`PortIndex::MAX_PORTS`] ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortIndex(u8);

impl PortIndex {
    /// How many ports a config may list.
    pub const MAX_PORTS: usize = 256;

    /// The port at place `i` of the config's list.
    pub const fn new(i: u8) -> Self {
        PortIndex(i)
    }
    /// The index of the `i`th port, if `i` is below [`Self::MAX_PORTS`].
    pub fn from_index(i: usize) -> Option<Self> {
        u8::try_from(i).ok().map(PortIndex)
    }
    /// Every port of a config with `n` ports (validation keeps `n` within
    /// [`Self::MAX_PORTS`]).
    pub fn all(n: usize) -> impl Iterator<Item = PortIndex> {
        (0..n.min(Self::MAX_PORTS)).map(|i| PortIndex(i as u8))
    }
    /// The place in the config's list, for indexing per-port arrays.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
    /// The 8 bits a flow entry keeps.
    #[inline(always)]
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl From<u8> for PortIndex {
    fn from(i: u8) -> PortIndex {
        PortIndex(i)
    }
}

impl From<PortIndex> for usize {
    #[inline(always)]
    fn from(p: PortIndex) -> usize {
        p.index()
    }
}

impl From<PortIndex> for u64 {
    #[inline(always)]
    fn from(p: PortIndex) -> u64 {
        u64::from(p.0)
    }
}

impl std::fmt::Display for PortIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The resolved neighbours workers read: (port, IP) -> MAC. IPv4 entries
/// sit in their own map under one integer key, since every forwarded
/// packet looks its next hop up here.
#[derive(Debug, Clone, Default)]
pub struct NeighView {
    v4: FxMap<u64, MacAddr>,
    /// IPv6 under (port, address halves): hashing an `IpAddr` cost a
    /// fifth of an IPv6 packet.
    v6: FxMap<(PortIndex, u64, u64), MacAddr>,
}

#[inline]
fn v6_key(port: PortIndex, ip: Ipv6Addr) -> (PortIndex, u64, u64) {
    let a = u128::from(ip);
    (port, (a >> 64) as u64, a as u64)
}

#[inline]
fn v4_key(port: PortIndex, ip: Ipv4Addr) -> u64 {
    u64::from(port) << 32 | u64::from(u32::from(ip))
}

impl NeighView {
    /// The MAC of `ip` on `port`, if resolved.
    #[inline]
    pub fn lookup(&self, port: PortIndex, ip: IpAddr) -> Option<MacAddr> {
        match ip {
            IpAddr::V4(a) => self.lookup_v4(port, a),
            IpAddr::V6(a) => self.v6.get(&v6_key(port, a)).copied(),
        }
    }
    /// The MAC of IPv4 `ip` on `port`, if resolved.
    #[inline]
    pub fn lookup_v4(&self, port: PortIndex, ip: Ipv4Addr) -> Option<MacAddr> {
        self.v4.get(&v4_key(port, ip)).copied()
    }
    /// Number of resolved entries.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
    /// True when nothing is resolved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every entry, for listings.
    pub fn iter(&self) -> impl Iterator<Item = (PortIndex, IpAddr, MacAddr)> + '_ {
        let v4 = self.v4.iter().map(|(&k, &m)| {
            (
                PortIndex((k >> 32) as u8),
                IpAddr::V4(Ipv4Addr::from(k as u32)),
                m,
            )
        });
        v4.chain(self.v6.iter().map(|(&(port, hi, lo), &m)| {
            let a = Ipv6Addr::from(u128::from(hi) << 64 | u128::from(lo));
            (port, IpAddr::V6(a), m)
        }))
    }
    /// A view holding `entries` (for tests and benchmarks).
    pub fn with_entries(
        entries: impl IntoIterator<Item = (PortIndex, IpAddr, MacAddr)>,
    ) -> NeighView {
        let mut v = NeighView::default();
        for (p, ip, m) in entries {
            v.insert(p, ip, m);
        }
        v
    }
    pub(crate) fn insert(&mut self, port: PortIndex, ip: IpAddr, mac: MacAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.v4.insert(v4_key(port, a), mac);
            }
            IpAddr::V6(a) => {
                self.v6.insert(v6_key(port, a), mac);
            }
        }
    }
}
