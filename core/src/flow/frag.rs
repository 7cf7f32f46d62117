//! The fragment table: which flow (entry, direction) the first fragment of
//! an IPv4 datagram went with, keyed by (source, destination, protocol,
//! IP id), so the later fragments (which carry no ports) follow it.
//!
//! Direct-mapped and shared by every worker: a newer datagram that hashes
//! to the same slot replaces an older one (whose remaining fragments are
//! then deferred and time out, counted). Each slot is written under a
//! version word so a reader never takes a half-written slot.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Slots in the table.
pub const SLOTS: usize = 4096;
/// How long (ms) a first fragment's decision stands.
pub const LIFETIME_MS: u32 = 2000;

#[derive(Default)]
struct Slot {
    /// id << 16 | proto << 8 | 1 (valid): 0 while being written.
    tag: AtomicU64,
    addrs: AtomicU64,
    /// Entry index << 1 | direction.
    value: AtomicU64,
    tick: AtomicU32,
}

/// The fragment table.
pub struct FragTable {
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for FragTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FragTable").finish_non_exhaustive()
    }
}

impl Default for FragTable {
    fn default() -> Self {
        FragTable {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

#[inline]
fn words(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16) -> (u64, u64) {
    (
        u64::from(u32::from(src)) << 32 | u64::from(u32::from(dst)),
        u64::from(id) << 16 | u64::from(proto) << 8 | 1,
    )
}

#[inline]
fn slot_of(a: u64, t: u64) -> usize {
    (super::key::mix(a, t) as usize) & (SLOTS - 1)
}

impl FragTable {
    #[allow(clippy::too_many_arguments)]
    /// Records that the datagram's first fragment went with flow `idx` in
    /// direction `dir` at tick `now`.
    pub fn record(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        id: u16,
        idx: u32,
        dir: usize,
        now: u32,
    ) {
        let (a, t) = words(src, dst, proto, id);
        let s = &self.slots[slot_of(a, t)];
        s.tag.store(0, Release);
        s.addrs.store(a, Relaxed);
        s.value.store(u64::from(idx) << 1 | dir as u64 & 1, Relaxed);
        s.tick.store(now, Relaxed);
        s.tag.store(t, Release);
    }

    /// The flow a later fragment follows, if its first fragment was seen in
    /// the last [`LIFETIME_MS`].
    #[inline]
    pub fn lookup(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        id: u16,
        now: u32,
    ) -> Option<(u32, usize)> {
        let (a, t) = words(src, dst, proto, id);
        let s = &self.slots[slot_of(a, t)];
        let t1 = s.tag.load(Acquire);
        if t1 != t {
            return None;
        }
        let (addrs, v, tick) = (
            s.addrs.load(Relaxed),
            s.value.load(Relaxed),
            s.tick.load(Relaxed),
        );
        std::sync::atomic::fence(Acquire);
        if s.tag.load(Relaxed) != t1 || addrs != a || now.wrapping_sub(tick) > LIFETIME_MS {
            return None;
        }
        Some(((v >> 1) as u32, (v & 1) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_fragments_find_the_first_ones_flow_while_it_is_fresh() {
        let t = FragTable::default();
        let (s, d) = (
            Ipv4Addr::new(203, 0, 113, 100),
            Ipv4Addr::new(10, 0, 0, 100),
        );
        assert_eq!(t.lookup(s, d, 17, 7, 0), None);
        t.record(s, d, 17, 7, 42, 1, 100);
        assert_eq!(t.lookup(s, d, 17, 7, 100 + LIFETIME_MS), Some((42, 1)));
        assert_eq!(t.lookup(s, d, 17, 8, 100), None, "another datagram");
        assert_eq!(t.lookup(s, d, 6, 7, 100), None, "another protocol");
        assert_eq!(t.lookup(d, s, 17, 7, 100), None, "the other way");
        assert_eq!(t.lookup(s, d, 17, 7, 101 + LIFETIME_MS), None, "stale");
    }
}
