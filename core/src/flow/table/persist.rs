//! A flow table that outlives its process: the table in a file-backed
//! shared mapping (`[flow_table] file`), which a restarted sluiced adopts
//! instead of starting empty, as Katran keeps its pinned connection table.
//!
//! The file is a header page (magic, layout version, family, capacity,
//! bucket count, entry and bucket sizes), then the buckets, then the
//! entries: indices, never pointers. A file whose header does not match
//! exactly what this build would write (another version, capacity or
//! family, or a table whose creation was cut short) is refused and a fresh
//! table made in its place.
//!
//! A `kill -9` can stop a worker anywhere in an insert or control in a
//! removal. Stores reach the shared pages in program order (x86-64 is TSO;
//! the slot is published with a release CAS after every field), so a bucket
//! slot never points at a half-written entry. What may be left is a flow
//! reachable under one key only, a live entry no slot points at, or slots
//! pointing at free entries; adoption checks every slot against its entry
//! (live, right signature, in one of its key's two buckets, once per
//! direction), takes out every flow that is not whole, and rebuilds the
//! free list and the live count from what is left. Adopted flows start a
//! new idle period (their ticks were of the old process's clock); their
//! rule and member ids are the old process's until control carries them
//! over (`lb::Carry::from_identities`).

use super::{Bucket, Entry, FlowTable, Padded, LIVE};
use crate::family::{Dir, Family};
use crate::shm::{Found, Mapping, Plain};
use crossbeam_queue::ArrayQueue;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

const MAGIC: u64 = u64::from_be_bytes(*b"SLUICEFT");
/// Bumped whenever the entry, bucket or slot layout changes.
pub const LAYOUT_VERSION: u64 = 1;
const HEADER_BYTES: usize = 4096;
/// Files are whole 2 MB pages, so hugetlbfs takes them too.
const HUGE_PAGE: usize = 2 << 20;
const HEADER_WORDS: usize = 7;

/// The first words of a table file.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Header {
    words: [AtomicU64; HEADER_WORDS],
}

/// What [`FlowTable::open`] found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A fresh table; why the file was not adopted (`None`: there was no
    /// file, or an empty one).
    Fresh(Option<String>),
    /// The previous process's table: `flows` kept whole, `dropped` taken
    /// out as not whole (an insert or removal cut short).
    Adopted {
        /// Flows adopted.
        flows: usize,
        /// Flows taken out.
        dropped: usize,
    },
}

/// Where a table of some capacity lives in its file.
struct Layout {
    buckets: usize,
    entries_at: usize,
    len: usize,
}

impl<A: Family> FlowTable<A>
where
    Entry<A>: Plain,
{
    fn layout(capacity: u32) -> Layout {
        let buckets = Self::bucket_count(capacity);
        let entries_at =
            (HEADER_BYTES + buckets * std::mem::size_of::<Bucket>()).next_multiple_of(4096);
        let len = (entries_at + capacity as usize * std::mem::size_of::<Entry<A>>())
            .next_multiple_of(HUGE_PAGE);
        Layout {
            buckets,
            entries_at,
            len,
        }
    }

    /// The header this build writes for `capacity`.
    fn header_words(capacity: u32, buckets: usize) -> [u64; HEADER_WORDS] {
        [
            MAGIC,
            LAYOUT_VERSION,
            if A::V6 { 6 } else { 4 },
            u64::from(capacity),
            buckets as u64,
            std::mem::size_of::<Entry<A>>() as u64,
            std::mem::size_of::<Bucket>() as u64,
        ]
    }

    /// The table for `capacity` flows in the file at `path`: the one a
    /// previous process left there when its header matches, adopted, or a
    /// fresh one. The file stays locked while the table lives, so a second
    /// sluiced cannot share it (an error).
    pub fn open(
        path: &Path,
        capacity: u32,
        workers: usize,
    ) -> std::io::Result<(FlowTable<A>, Opened)> {
        let capacity = capacity.clamp(1, u32::MAX - 2);
        let l = Self::layout(capacity);
        let want = Self::header_words(capacity, l.buckets);
        let before = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut why = (before != 0 && before != l.len as u64)
            .then(|| format!("file of {before} bytes, this table {}", l.len));
        let (map, found) = Mapping::open(path, l.len, HEADER_BYTES, |h| {
            let got: Vec<u64> = h
                .chunks_exact(8)
                .take(HEADER_WORDS)
                .map(|w| u64::from_ne_bytes(w.try_into().unwrap_or_default()))
                .collect();
            let names = [
                "magic",
                "layout version",
                "family",
                "capacity",
                "buckets",
                "entry size",
                "bucket size",
            ];
            why = names
                .iter()
                .zip(got.iter().zip(&want))
                .find(|(_, (g, w))| g != w)
                .map(|(n, (g, w))| format!("{n} {g}, this build {w}"));
            why.is_none()
        })?;
        let t = FlowTable {
            buckets: map.slab(HEADER_BYTES, l.buckets),
            mask: l.buckets - 1,
            entries: map.slab(l.entries_at, capacity as usize),
            bump: AtomicU32::new(0),
            free: AtomicU64::new(0),
            orphans: ArrayQueue::new(1024),
            quiescent: (0..workers).map(|_| Padded::default()).collect(),
            live: AtomicU64::new(0),
            leaked: AtomicU64::new(0),
            moves: Default::default(),
            compare: crate::simd::Compare::at_start(),
        };
        let header = map.slab::<Header>(0, 1);
        match found {
            Found::Kept => {
                let (flows, dropped) = t.adopt();
                Ok((t, Opened::Adopted { flows, dropped }))
            }
            Found::Zeroed => {
                // Magic last: a file cut short before it is refused.
                for (w, v) in header[0].words.iter().zip(want).skip(1) {
                    w.store(v, Relaxed);
                }
                header[0].words[0].store(MAGIC, Release);
                Ok((t, Opened::Fresh(why)))
            }
        }
    }

    /// Checks every slot against its entry, takes out every flow that is
    /// not whole, and rebuilds the free list and counts: (flows, dropped).
    fn adopt(&self) -> (usize, usize) {
        let cap = self.entries.len();
        let mut seen = vec![0u8; cap];
        // The entries a bucket points at are random in the table: loading
        // those of a bucket a few ahead overlaps the misses (1M flows: 100
        // ms without, 32 ms with).
        const AHEAD: usize = 8;
        let entry_of = |v: u64| self.entries.get((v as u32).wrapping_sub(1) as usize);
        for (bi, b) in self.buckets.iter().enumerate() {
            if let Some(next) = self.buckets.get(bi + AHEAD) {
                for s in &next.0 {
                    if let Some(e) = entry_of(s.load(Relaxed)) {
                        crate::prefetch::prefetch(e);
                    }
                }
            }
            for s in &b.0 {
                let v = s.load(Relaxed);
                if v == 0 {
                    continue;
                }
                let idx = (v as u32).wrapping_sub(1) as usize;
                let dir = if v >> 32 & 1 == 0 {
                    Dir::Original
                } else {
                    Dir::Reply
                };
                let whole = idx < cap
                    && self.entries[idx].state.load(Relaxed) & LIVE != 0
                    && seen[idx] & 1 << dir.index() == 0
                    && {
                        let h = self.entries[idx].key(dir).hash();
                        Self::sig(h) == (v >> 48) as u16
                            && Self::candidates(h, self.mask).contains(&bi)
                    };
                if whole {
                    seen[idx] |= 1 << dir.index();
                } else {
                    s.store(0, Relaxed);
                }
            }
        }
        let (mut flows, mut dropped, mut high) = (0, 0, 0);
        for (i, e) in self.entries.iter().enumerate() {
            if e.state.load(Relaxed) & LIVE == 0 {
                continue;
            }
            if seen[i] == 3 {
                // The idle clock restarts: ticks are the old process's.
                e.last_seen.store(0, Relaxed);
                flows += 1;
                high = i + 1;
                continue;
            }
            for d in [Dir::Original, Dir::Reply] {
                if seen[i] & 1 << d.index() != 0 {
                    self.unplace(&e.key(d), d, i as u32);
                }
            }
            e.state.fetch_and(!LIVE, Relaxed);
            dropped += 1;
        }
        self.bump.store(high as u32, Relaxed);
        for i in (0..high).rev() {
            if self.entries[i].state.load(Relaxed) & LIVE == 0 {
                self.push_free(i as u32);
            }
        }
        self.live.store(flows as u64, Relaxed);
        (flows, dropped)
    }
}
