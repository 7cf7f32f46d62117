//! Displacement (cuckoo hashing) for inserts whose two buckets are full:
//! a slot of one of them moves to its own other bucket, or one of that
//! bucket's slots moves first, up to [`MAX_DEPTH`] moves, found breadth
//! first so the shortest path is taken. With two buckets of eight slots a
//! table accepts keys well past its 80% design load (tests: none refused
//! at 95% of the slots).
//!
//! Moves are lock-free against readers and other inserting workers. A
//! move copies the slot into its free slot in the other bucket (for a
//! moment the key is in both), counts itself in `moves`, then clears the
//! old slot; a lookup that misses re-reads `moves` and looks again when it
//! changed (see `FlowTable::find`), so a key moving from the bucket it had
//! not read yet to the one it had read is not missed. A move whose source
//! changed under it (removed, or moved by another worker) takes its copy
//! back and the insert tries again from the start.

use super::{FlowTable, CHOICES, SLOTS};
use crate::family::{Dir, Family};
use std::sync::atomic::Ordering::*;

/// Most slots moved for one insert.
const MAX_DEPTH: usize = 4;
/// Most slots the breadth-first search looks at.
const MAX_NODES: usize = 2 * SLOTS * (1 + SLOTS + SLOTS * SLOTS / 4);
/// Searches started again after a race before the insert gives up.
const ATTEMPTS: usize = 4;

/// One slot the search reached: bucket, slot, the node it was reached
/// from (its value would move into this slot's place) and moves to here.
#[derive(Clone, Copy, Default)]
struct Node {
    bucket: u32,
    slot: u8,
    depth: u8,
    parent: u16,
}

const ROOT: u16 = u16::MAX;

impl<A: Family> FlowTable<A> {
    /// Places slot value `v` in one of buckets `bs` (both full when
    /// called) by moving others out of the way. False when no path of at
    /// most [`MAX_DEPTH`] moves was found, or races kept defeating it.
    #[cold]
    #[inline(never)]
    pub(super) fn displace(&self, bs: [usize; CHOICES], v: u64) -> bool {
        (0..ATTEMPTS).any(|_| self.displace_once(bs, v) == Some(true))
    }

    /// One search and its moves: `Some(true)` placed, `Some(false)` no
    /// path, `None` lost a race.
    fn displace_once(&self, bs: [usize; CHOICES], v: u64) -> Option<bool> {
        let mut q = [Node::default(); MAX_NODES];
        let mut n = 0;
        for b in bs {
            for j in 0..SLOTS {
                q[n] = Node {
                    bucket: b as u32,
                    slot: j as u8,
                    depth: 0,
                    parent: ROOT,
                };
                n += 1;
            }
        }
        let mut head = 0;
        while head < n {
            let node = q[head];
            let here = node.bucket as usize;
            let x = self.buckets[here].0[usize::from(node.slot)].load(Relaxed);
            if x == 0 {
                // Freed since the search began: the path ends here.
                return self.shift(&q, head, None, v);
            }
            if let Some(alt) = self.other_bucket(x, here) {
                let b = &self.buckets[alt].0;
                if let Some(j) = (0..SLOTS).find(|&j| b[j].load(Relaxed) == 0) {
                    return self.shift(&q, head, Some((alt, j)), v);
                }
                if usize::from(node.depth) + 1 < MAX_DEPTH {
                    for j in 0..SLOTS {
                        if n == MAX_NODES {
                            break;
                        }
                        q[n] = Node {
                            bucket: alt as u32,
                            slot: j as u8,
                            depth: node.depth + 1,
                            parent: head as u16,
                        };
                        n += 1;
                    }
                }
            }
            head += 1;
        }
        Some(false)
    }

    /// The bucket other than `here` of the key slot value `x` points to;
    /// `None` when the slot no longer names a key of bucket `here`.
    fn other_bucket(&self, x: u64, here: usize) -> Option<usize> {
        let idx = (x as u32).wrapping_sub(1);
        let e = self.entries.get(idx as usize)?;
        let h = e.key(Dir::from_bit(x >> 32)).hash();
        if Self::sig(h) != (x >> 48) as u16 {
            return None;
        }
        let [b1, b2] = Self::candidates(h, self.mask);
        match here {
            _ if here == b1 => Some(b2),
            _ if here == b2 => Some(b1),
            _ => None,
        }
    }

    /// Carries out the path ending at node `at`: from the end back, each
    /// slot's value moves into the free slot after it (`free`: the free
    /// slot found for `at`'s value; `None`: `at` itself is free), then `v`
    /// takes the first node's slot.
    fn shift(
        &self,
        q: &[Node],
        at: usize,
        mut free: Option<(usize, usize)>,
        v: u64,
    ) -> Option<bool> {
        let mut i = at;
        loop {
            let node = q[i];
            let src = (node.bucket as usize, usize::from(node.slot));
            if let Some(dst) = free {
                self.move_slot(src, dst)?;
            }
            free = Some(src);
            if node.parent == ROOT {
                break;
            }
            i = usize::from(node.parent);
        }
        let (b, j) = free?;
        self.buckets[b].0[j]
            .compare_exchange(0, v, Release, Relaxed)
            .ok()
            .map(|_| true)
    }

    /// Moves the slot value at `src` into free slot `dst` (in the value's
    /// other bucket): copy, count, clear. `None` when a race defeated it
    /// (nothing is left changed).
    fn move_slot(&self, (sb, sj): (usize, usize), (db, dj): (usize, usize)) -> Option<()> {
        let s = &self.buckets[sb].0[sj];
        let d = &self.buckets[db].0[dj];
        let x = s.load(Relaxed);
        if x == 0 {
            // Gone already (removed): its slot is free, nothing to move.
            return Some(());
        }
        if self.other_bucket(x, sb) != Some(db) {
            return None;
        }
        d.compare_exchange(0, x, Release, Relaxed).ok()?;
        self.moves.0.fetch_add(1, AcqRel);
        if s.compare_exchange(x, 0, Release, Relaxed).is_err() {
            // Removed or moved by someone else meanwhile: take the copy
            // back.
            let _ = d.compare_exchange(x, 0, Release, Relaxed);
            return None;
        }
        Some(())
    }
}
