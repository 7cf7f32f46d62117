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

pub use cache::{Cache, CacheConfig, CacheCounters, HoldOutcome, Released};
pub use solicit::{build_arp_request, build_neighbor_solicit, solicited_node};

use crate::wire::MacAddr;
use std::collections::HashMap;
use std::net::IpAddr;

/// Port index as Sluice numbers ports (the config's order).
pub type PortIndex = u16;

/// The resolved neighbours workers read: (port, IP) -> MAC.
#[derive(Debug, Clone, Default)]
pub struct NeighView {
    map: HashMap<(PortIndex, IpAddr), MacAddr>,
}

impl NeighView {
    /// The MAC of `ip` on `port`, if resolved.
    #[inline]
    pub fn lookup(&self, port: PortIndex, ip: IpAddr) -> Option<MacAddr> {
        self.map.get(&(port, ip)).copied()
    }
    /// Number of resolved entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True when nothing is resolved.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Every entry, for listings.
    pub fn iter(&self) -> impl Iterator<Item = (PortIndex, IpAddr, MacAddr)> + '_ {
        self.map.iter().map(|(&(p, ip), &m)| (p, ip, m))
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
        self.map.insert((port, ip), mac);
    }
}
