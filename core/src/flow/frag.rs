//! The fragment table of one family: which flow (entry, direction) the
//! first fragment of a datagram went with, keyed by (source, destination,
//! protocol, identification: 16 bits in IPv4, 32 in IPv6's fragment
//! header), so the later fragments (which carry no ports) follow it.
//!
//! Direct-mapped and shared by every worker: a newer datagram that hashes
//! to the same slot replaces an older one (whose remaining fragments are
//! then deferred and time out, counted). Each slot is written under a
//! version word so a reader never takes a half-written slot.

use super::key::hash_words;
use super::FlowKey;
use crate::family::{Dir, Family};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Slots in the table.
pub const SLOTS: usize = 4096;
/// How long (ms) a first fragment's decision stands.
pub const LIFETIME_MS: u32 = 2000;

struct Slot<A: Family> {
    /// id << 16 | proto << 8 | 1 (valid): 0 while being written.
    tag: AtomicU64,
    /// The address words (a flow key's; the ports word unused).
    addrs: A::Slots,
    /// Entry index << 1 | direction.
    value: AtomicU64,
    tick: AtomicU32,
}

impl<A: Family> Default for Slot<A> {
    fn default() -> Self {
        Slot {
            tag: AtomicU64::new(0),
            addrs: Default::default(),
            value: AtomicU64::new(0),
            tick: AtomicU32::new(0),
        }
    }
}

/// Both families' fragment tables (one reference in the pipeline's
/// context).
#[derive(Debug, Default)]
pub struct Fragments {
    /// IPv4 datagrams.
    pub v4: FragTable<crate::family::V4>,
    /// IPv6 datagrams.
    pub v6: FragTable<crate::family::V6>,
}

/// The fragment table of family `A`.
pub struct FragTable<A: Family = crate::family::V4> {
    slots: Box<[Slot<A>]>,
}

impl<A: Family> std::fmt::Debug for FragTable<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FragTable").finish_non_exhaustive()
    }
}

impl<A: Family> Default for FragTable<A> {
    fn default() -> Self {
        FragTable {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

/// The key's address words with the tag in the ports word, and the tag.
#[inline]
fn words<A: Family>(src: A, dst: A, proto: u8, id: u32) -> (A::Words, u64) {
    let t = u64::from(id) << 16 | u64::from(proto) << 8 | 1;
    let mut w = FlowKey {
        src,
        dst,
        sport: 0,
        dport: 0,
        proto: 0,
    }
    .words();
    w.as_mut()[A::ADDR_WORDS] = t;
    (w, t)
}

impl<A: Family> FragTable<A> {
    #[inline]
    fn slot(&self, w: &A::Words) -> &Slot<A> {
        &self.slots[(hash_words(w.as_ref()) as usize) & (SLOTS - 1)]
    }

    #[allow(clippy::too_many_arguments)]
    /// Records that the datagram's first fragment went with flow `idx` in
    /// direction `dir` at tick `now`.
    pub fn record(&self, src: A, dst: A, proto: u8, id: u32, idx: u32, dir: Dir, now: u32) {
        let (w, t) = words(src, dst, proto, id);
        let s = self.slot(&w);
        s.tag.store(0, Release);
        for (slot, v) in s.addrs.as_ref().iter().zip(&w.as_ref()[..A::ADDR_WORDS]) {
            slot.store(*v, Relaxed);
        }
        s.value
            .store(u64::from(idx) << 1 | dir.index() as u64, Relaxed);
        s.tick.store(now, Relaxed);
        s.tag.store(t, Release);
    }

    /// The flow a later fragment follows, if its first fragment was seen in
    /// the last [`LIFETIME_MS`].
    #[inline]
    pub fn lookup(&self, src: A, dst: A, proto: u8, id: u32, now: u32) -> Option<(u32, Dir)> {
        let (w, t) = words(src, dst, proto, id);
        let s = self.slot(&w);
        let t1 = s.tag.load(Acquire);
        if t1 != t {
            return None;
        }
        let same = s
            .addrs
            .as_ref()
            .iter()
            .zip(&w.as_ref()[..A::ADDR_WORDS])
            .all(|(slot, v)| slot.load(Relaxed) == *v);
        let (v, tick) = (s.value.load(Relaxed), s.tick.load(Relaxed));
        std::sync::atomic::fence(Acquire);
        if s.tag.load(Relaxed) != t1 || !same || now.wrapping_sub(tick) > LIFETIME_MS {
            return None;
        }
        Some(((v >> 1) as u32, Dir::from_bit(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn later_fragments_find_the_first_ones_flow_while_it_is_fresh() {
        let t = FragTable::default();
        let (s, d) = (
            Ipv4Addr::new(203, 0, 113, 100),
            Ipv4Addr::new(10, 0, 0, 100),
        );
        assert_eq!(t.lookup(s, d, 17, 7, 0), None);
        t.record(s, d, 17, 7, 42, Dir::Reply, 100);
        assert_eq!(
            t.lookup(s, d, 17, 7, 100 + LIFETIME_MS),
            Some((42, Dir::Reply))
        );
        assert_eq!(t.lookup(s, d, 17, 8, 100), None, "another datagram");
        assert_eq!(t.lookup(s, d, 6, 7, 100), None, "another protocol");
        assert_eq!(t.lookup(d, s, 17, 7, 100), None, "the other way");
        assert_eq!(t.lookup(s, d, 17, 7, 101 + LIFETIME_MS), None, "stale");
    }

    #[test]
    fn ipv6_datagrams_are_told_apart_by_every_address_bit_and_the_32_bit_id() {
        let t = FragTable::<Ipv6Addr>::default();
        let s: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        let d: Ipv6Addr = "2001:db8:2::100".parse().unwrap();
        t.record(s, d, 17, 0x1234_5678, 9, Dir::Original, 5);
        assert_eq!(t.lookup(s, d, 17, 0x1234_5678, 6), Some((9, Dir::Original)));
        assert_eq!(t.lookup(s, d, 17, 0x5678, 6), None, "the id's high half");
        let other: Ipv6Addr = "2001:db8:1:1::100".parse().unwrap();
        assert_eq!(t.lookup(other, d, 17, 0x1234_5678, 6), None);
    }
}
