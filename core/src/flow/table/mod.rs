//! The shared flow table. See the module docs in `flow` for the design.
//!
//! Memory ordering: an inserting worker writes every field of a free entry
//! with relaxed stores, then publishes it by a release compare-and-swap of
//! a bucket slot; a reader's acquire load of that slot makes the fields
//! visible. Entries are only reused after a grace period (every worker has
//! passed a quiescent point since the entry was unlinked), so a reader
//! never sees an entry change identity under it.

use super::key::{hash_words, Delta, FlowKey, KEY_MASK};
use super::tcp::State;
use crate::family::{Dir, Family};
use crate::lb::snat::RuleRef;
use crate::memory::huge_vec;
use crate::shm::Slab;
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

mod cuckoo;
mod entry;
mod types;
mod window;
pub use entry::{Entry, ENTRY_BYTES, ENTRY_BYTES_V6};
use entry::{GENERATION, LIVE, RFC_TIMERS, SNAT, TCP_RESET};
pub use types::{FlowInfo, FlowKind, InsertError, NewFlow, RawRewrite, Rewrite};
use window::{NO_WSCALE, WSCALE_SHIFT};

const SLOTS: usize = crate::simd::SLOTS;
/// Buckets probed per key: two choices of one cache line each.
const CHOICES: usize = 2;

/// One cache line of slots: signature << 48 | direction << 32 | index + 1.
#[repr(C, align(64))]
#[derive(Default)]
pub struct Bucket([AtomicU64; SLOTS]);

/// The shared flow table of one address family.
pub struct FlowTable<A: Family = crate::family::V4> {
    buckets: Slab<Bucket>,
    mask: usize,
    entries: Slab<Entry<A>>,
    /// Entries handed out so far from the never-used tail.
    bump: AtomicU32,
    /// Treiber stack of free entries: tag << 32 | (index + 1).
    free: AtomicU64,
    /// Entries a worker abandoned after a failed insert; control retires
    /// them (a reader may have seen them).
    orphans: ArrayQueue<u32>,
    /// Per-worker quiescent-state counters, each on its own line.
    quiescent: Box<[Padded]>,
    live: AtomicU64,
    leaked: AtomicU64,
    /// Slots moved to their other bucket so far ([`cuckoo`]): a lookup
    /// that misses while it moves looks again.
    moves: Padded,
    /// The bucket compare this CPU runs best.
    compare: crate::simd::Compare,
}

#[repr(align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

impl<A: Family> std::fmt::Debug for FlowTable<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowTable")
            .field("capacity", &self.capacity())
            .field("live", &self.len())
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

#[inline]
fn slot_value(sig: u16, dir: Dir, idx: u32) -> u64 {
    u64::from(sig) << 48 | (dir.index() as u64) << 32 | u64::from(idx + 1)
}

impl<A: Family> FlowTable<A> {
    /// A table for `capacity` flows read by `workers` workers. Buckets are
    /// sized so both keys of every flow fit at 80% load.
    pub fn new(capacity: u32, workers: usize) -> FlowTable<A> {
        let capacity = capacity.clamp(1, u32::MAX - 2);
        Self::with_buckets(capacity, Self::bucket_count(capacity), workers)
    }

    /// A table of `capacity` entries over `nbuckets` buckets (a power of
    /// two): tests load buckets past the design load with it.
    fn with_buckets(capacity: u32, nbuckets: usize, workers: usize) -> FlowTable<A> {
        FlowTable {
            buckets: Slab::from_vec(huge_vec(nbuckets, |_| Bucket::default())),
            mask: nbuckets - 1,
            entries: Slab::from_vec(huge_vec(capacity as usize, |_| Entry::default())),
            bump: AtomicU32::new(0),
            free: AtomicU64::new(0),
            orphans: ArrayQueue::new(1024),
            quiescent: (0..workers).map(|_| Padded::default()).collect(),
            live: AtomicU64::new(0),
            leaked: AtomicU64::new(0),
            moves: Padded::default(),
            compare: crate::simd::Compare::at_start(),
        }
    }

    /// Buckets for `capacity` flows: both keys of every flow at 80% load.
    fn bucket_count(capacity: u32) -> usize {
        (2 * capacity as usize * 5 / 4)
            .div_ceil(SLOTS)
            .next_power_of_two()
            .max(2)
    }

    /// True when it lives in a shared mapping ([`FlowTable::open`]).
    pub fn is_mapped(&self) -> bool {
        self.entries.is_mapped()
    }

    /// Flows it holds at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Flows in it now.
    pub fn len(&self) -> usize {
        self.live.load(Relaxed) as usize
    }

    /// True when it holds no flow.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes it takes: entries and buckets.
    pub fn memory_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry<A>>()
            + self.buckets.len() * std::mem::size_of::<Bucket>()
    }

    /// Entries abandoned and never recovered (the orphan queue was full).
    pub fn leaked(&self) -> u64 {
        self.leaked.load(Relaxed)
    }

    /// Entry `idx`.
    #[inline]
    pub fn entry(&self, idx: u32) -> &Entry<A> {
        &self.entries[idx as usize]
    }

    #[inline]
    fn candidates(h: u64, mask: usize) -> [usize; CHOICES] {
        let b1 = h as usize & mask;
        let mut b2 = (h >> 32) as usize & mask;
        if b2 == b1 {
            b2 ^= 1;
        }
        [b1, b2 & mask]
    }

    #[inline]
    fn sig(h: u64) -> u16 {
        (h.wrapping_mul(0xFF51_AFD7_ED55_8CCD) >> 48) as u16
    }

    /// Finds `k`: (entry index, direction).
    #[inline]
    pub fn lookup(&self, k: &FlowKey<A>) -> Option<(u32, Dir)> {
        let w = k.words();
        self.lookup_words(w.as_ref(), hash_words(w.as_ref()))
    }

    /// [`FlowTable::lookup`] of a key given as its words (see
    /// [`crate::flow::hash_words`]) and hash `h`.
    #[inline]
    pub fn lookup_words(&self, w: &[u64], h: u64) -> Option<(u32, Dir)> {
        self.find(w, h, |_| true)
    }

    /// The first step of a lookup in two: the slot of the first signature
    /// match for the key hashed `h` (0: none), whose entry the caller
    /// starts loading ([`FlowTable::prefetch_entry`] of
    /// [`FlowTable::nominee_index`]) before [`FlowTable::confirm`] compares
    /// its key. The burst's lookup pass takes both steps for every frame in
    /// turn, so the entries' cache misses overlap as the buckets' do.
    #[inline]
    pub fn nominate(&self, h: u64) -> u64 {
        let sig = Self::sig(h);
        let [b1, b2] = Self::candidates(h, self.mask);
        let first = |b: &Bucket| {
            let m = crate::simd::match_sig(&b.0, sig);
            if m == 0 {
                0
            } else {
                b.0[(m.trailing_zeros() / 2) as usize].load(Acquire)
            }
        };
        match first(&self.buckets[b1]) {
            0 => first(&self.buckets[b2]),
            v => v,
        }
    }

    /// The entry a nominated slot value points to.
    #[inline]
    pub fn nominee_index(v: u64) -> u32 {
        (v as u32).wrapping_sub(1)
    }

    /// Keys moved between buckets so far: read before [`FlowTable::nominate`]
    /// and handed to [`FlowTable::confirm`].
    #[inline]
    pub fn moves(&self) -> u64 {
        self.moves.0.load(Acquire)
    }

    /// The second step: the flow under key words `w` (hash `h`), given
    /// what [`FlowTable::nominate`] found after [`FlowTable::moves`] said
    /// `moves`. A nominee holding the key is the answer; none at all is a
    /// miss unless a key moved meanwhile; else (another key with the same
    /// signature) the whole lookup.
    #[inline]
    pub fn confirm(&self, w: &[u64], h: u64, v: u64, moves: u64) -> Option<(u32, Dir)> {
        let idx = Self::nominee_index(v);
        let dir = Dir::from_bit(v >> 32);
        match self.entries.get(idx as usize) {
            Some(e) if v != 0 && Self::matches(&e.key[dir.index()], w) => Some((idx, dir)),
            // No signature matched and no key moved: a miss (a new flow's
            // first packet), without a call.
            _ if v == 0 && self.moves() == moves => None,
            _ => self.confirm_other(w, h),
        }
    }

    /// [`FlowTable::confirm`] when the nominee is not the key's, or a key
    /// moved: the whole lookup, out of line so the hit keeps its
    /// registers.
    #[inline(never)]
    fn confirm_other(&self, w: &[u64], h: u64) -> Option<(u32, Dir)> {
        self.lookup_words(w, h)
    }

    /// The first entry under key words `w` (hash `h`) that `take` accepts.
    /// A miss while a slot moved to its other bucket ([`cuckoo`]) looks
    /// again: the move may have taken the key from the bucket not yet read
    /// to the one already read.
    #[inline(always)]
    fn find(&self, w: &[u64], h: u64, take: impl Fn(u32) -> bool) -> Option<(u32, Dir)> {
        let moves = self.moves.0.load(Acquire);
        if let Some(hit) = self.find_once(w, h, &take) {
            return Some(hit);
        }
        if self.moves.0.load(Acquire) == moves {
            return None;
        }
        self.find_again(w, h, &take)
    }

    /// [`FlowTable::find`] after a miss that raced a move: until a look
    /// sees no move under it.
    #[cold]
    #[inline(never)]
    fn find_again(&self, w: &[u64], h: u64, take: &impl Fn(u32) -> bool) -> Option<(u32, Dir)> {
        loop {
            let moves = self.moves.0.load(Acquire);
            if let Some(hit) = self.find_once(w, h, take) {
                return Some(hit);
            }
            if self.moves.0.load(Acquire) == moves {
                return None;
            }
        }
    }

    #[inline(always)]
    fn find_once(&self, w: &[u64], h: u64, take: &impl Fn(u32) -> bool) -> Option<(u32, Dir)> {
        let sig = Self::sig(h);
        let [b1, b2] = Self::candidates(h, self.mask);
        let (b1, b2) = (&self.buckets[b1], &self.buckets[b2]);
        #[cfg(target_arch = "x86_64")]
        if self.compare == crate::simd::Compare::Avx2 {
            let [m1, m2] = crate::simd::match_sig2_avx2([&b1.0, &b2.0], sig);
            return self
                .take_match(b1, m1, sig, w, take)
                .or_else(|| self.take_match(b2, m2, sig, w, take));
        }
        // The second bucket only when the first has no match: at the load
        // a table mostly runs at, a key is in its first bucket.
        self.take_match(b1, crate::simd::match_sig(&b1.0, sig), sig, w, take)
            .or_else(|| self.take_match(b2, crate::simd::match_sig(&b2.0, sig), sig, w, take))
    }

    /// The first slot of bucket `b` among compare result `m` whose entry
    /// holds key words `w` and that `take` accepts.
    #[inline(always)]
    fn take_match(
        &self,
        b: &Bucket,
        mut m: u32,
        sig: u16,
        w: &[u64],
        take: &impl Fn(u32) -> bool,
    ) -> Option<(u32, Dir)> {
        while m != 0 {
            let j = (m.trailing_zeros() / 2) as usize;
            m &= m - 1;
            let v = b.0[j].load(Acquire);
            if v == 0 || (v >> 48) as u16 != sig {
                continue;
            }
            let idx = (v as u32).wrapping_sub(1);
            let dir = Dir::from_bit(v >> 32);
            let Some(e) = self.entries.get(idx as usize) else {
                continue;
            };
            if Self::matches(&e.key[dir.index()], w) && take(idx) {
                return Some((idx, dir));
            }
        }
        None
    }

    /// True when an entry's key slots hold the key words `w`.
    #[inline]
    fn matches(slots: &A::Slots, w: &[u64]) -> bool {
        let s = slots.as_ref();
        let n = A::ADDR_WORDS;
        for i in 0..n {
            if s[i].load(Relaxed) != w[i] {
                return false;
            }
        }
        s[n].load(Relaxed) & KEY_MASK == w[n]
    }

    /// Starts loading entry `idx`: its one cache line (IPv4) or both
    /// (IPv6: the second holds the reply key's end, state and counters).
    #[inline]
    pub fn prefetch_entry(&self, idx: u32) {
        if let Some(e) = self.entries.get(idx as usize) {
            crate::prefetch::prefetch(e);
            if std::mem::size_of::<Entry<A>>() > 64 {
                crate::prefetch::prefetch(&e.state);
            }
        }
    }

    /// Starts loading the buckets of the key whose hash is `h`
    /// ([`FlowKey::hash`]), ahead of its lookup.
    #[inline]
    pub fn prefetch_buckets(&self, h: u64) {
        for bi in Self::candidates(h, self.mask) {
            crate::prefetch::prefetch(&self.buckets[bi]);
        }
    }

    fn alloc(&self) -> Option<u32> {
        let mut head = self.free.load(Acquire);
        while head as u32 != 0 {
            let idx = head as u32 - 1;
            let next = self.entries[idx as usize].meta.load(Relaxed);
            let new = ((head >> 32) + 1) << 32 | u64::from(next);
            match self.free.compare_exchange_weak(head, new, AcqRel, Acquire) {
                Ok(_) => return Some(idx),
                Err(h) => head = h,
            }
        }
        if self.bump.load(Relaxed) as usize >= self.entries.len() {
            return None;
        }
        let idx = self.bump.fetch_add(1, Relaxed);
        ((idx as usize) < self.entries.len()).then_some(idx)
    }

    fn push_free(&self, idx: u32) {
        let mut head = self.free.load(Acquire);
        loop {
            self.entries[idx as usize].meta.store(head as u32, Relaxed);
            let new = ((head >> 32) + 1) << 32 | u64::from(idx + 1);
            match self.free.compare_exchange_weak(head, new, AcqRel, Acquire) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Puts slot value `v` of the key hashed `h` into a free slot of one
    /// of its buckets; when both are full, moves others out of the way
    /// ([`cuckoo`]).
    fn place(&self, h: u64, dir: Dir, idx: u32) -> bool {
        let v = slot_value(Self::sig(h), dir, idx);
        let bs = Self::candidates(h, self.mask);
        for bi in bs {
            for s in &self.buckets[bi].0 {
                if s.load(Relaxed) == 0 && s.compare_exchange(0, v, Release, Relaxed).is_ok() {
                    return true;
                }
            }
        }
        self.displace(bs, v)
    }

    fn unplace(&self, k: &FlowKey<A>, dir: Dir, idx: u32) -> bool {
        let h = k.hash();
        let v = slot_value(Self::sig(h), dir, idx);
        for bi in Self::candidates(h, self.mask) {
            for s in &self.buckets[bi].0 {
                if s.load(Relaxed) == v && s.compare_exchange(v, 0, Release, Relaxed).is_ok() {
                    return true;
                }
            }
        }
        false
    }

    /// Inserts a flow under both keys; any worker may call it. The caller
    /// has looked the key up first; two workers racing on one new key may
    /// both insert, and lookups then find one of them (the other ages out).
    pub fn insert(&self, f: &NewFlow<A>) -> Result<u32, InsertError> {
        self.insert_hashed(f, [None; 2]).map(|(idx, _)| idx)
    }

    /// [`FlowTable::insert`], also returning the hashes of the two keys.
    /// `known`: the hashes of the keys the caller has them for (the burst's
    /// lookup pass hashed a new flow's first packet, an SNAT port's probe
    /// the reply key), so none is computed twice.
    pub fn insert_hashed(
        &self,
        f: &NewFlow<A>,
        known: [Option<u64>; 2],
    ) -> Result<(u32, [u64; 2]), InsertError> {
        let idx = self.alloc().ok_or(InsertError::Full)?;
        let e = &self.entries[idx as usize];
        for d in 0..2 {
            let mut w = f.key[d].words();
            w.as_mut()[A::ADDR_WORDS] |=
                u64::from(f.egress[d].bits()) << 40 | NO_WSCALE << WSCALE_SHIFT;
            for (s, v) in e.key[d].as_ref().iter().zip(w.as_ref()) {
                s.store(*v, Relaxed);
            }
            e.next_seq[d].store(0, Relaxed);
        }
        e.packets.store(0, Relaxed);
        // Direction d is rewritten into the reverse of the other key: its
        // destination is the other key's source.
        let hop0 = A::hop_code_far(f.next_hop[0], f.key[1].src, &e.far_hop);
        let hop1 = A::hop_code(f.next_hop[1], f.key[0].src);
        e.next_hop
            .store(u64::from(hop0) | u64::from(hop1) << 32, Relaxed);
        let secs = f.idle_timeout.as_secs().min(u64::from(u16::MAX)) as u32;
        let reset = if f.tcp_reset { TCP_RESET } else { 0 };
        let generation = if f.generation { GENERATION } else { 0 };
        let snat = if f.snat { SNAT } else { 0 };
        let rfc = if f.rfc_timers { RFC_TIMERS } else { 0 };
        e.state.store(
            f.state as u32 | reset | LIVE | generation | snat | rfc | secs << 16,
            Relaxed,
        );
        e.last_seen.store(f.now, Relaxed);
        e.meta
            .store(u32::from(f.rule.id()) | u32::from(f.member) << 16, Relaxed);
        // Reply key first: once the original key is visible, replies find
        // the flow too.
        let h = [
            known[0].unwrap_or_else(|| f.key[0].hash()),
            known[1].unwrap_or_else(|| f.key[1].hash()),
        ];
        debug_assert_eq!(
            h,
            f.key.map(|k| k.hash()),
            "the caller's hashes are the keys'"
        );
        if !self.place(h[1], Dir::Reply, idx) {
            self.abandon(idx);
            return Err(InsertError::NoSlot);
        }
        if !self.place(h[0], Dir::Original, idx) {
            self.unplace(&f.key[1], Dir::Reply, idx);
            self.abandon(idx);
            return Err(InsertError::NoSlot);
        }
        self.live.fetch_add(1, Relaxed);
        Ok((idx, h))
    }

    /// True when an entry other than `idx` holds key `k`: a worker that
    /// took a public port from another worker's slice confirms its claim.
    pub fn has_other(&self, k: &FlowKey<A>, idx: u32) -> bool {
        let w = k.words();
        let live = |i: u32| i != idx && self.entries[i as usize].state.load(Relaxed) & LIVE != 0;
        self.find(w.as_ref(), hash_words(w.as_ref()), live)
            .is_some()
    }

    fn abandon(&self, idx: u32) {
        self.entries[idx as usize].state.fetch_and(!LIVE, Relaxed);
        if self.orphans.push(idx).is_err() {
            self.leaked.fetch_add(1, Relaxed);
        }
    }

    /// A worker is between bursts: it holds no reference into the table.
    #[inline]
    pub fn quiescent(&self, worker: usize) {
        if let Some(q) = self.quiescent.get(worker) {
            q.0.store(q.0.load(Relaxed).wrapping_add(1), Release);
        }
    }

    /// Every worker's quiescent counter now: pass it to
    /// [`FlowTable::passed_since`] later.
    pub fn epochs(&self) -> Vec<u64> {
        self.quiescent.iter().map(|q| q.0.load(Acquire)).collect()
    }

    /// True when every worker has been quiescent since `then` was taken:
    /// none still uses anything it read before.
    pub fn passed_since(&self, then: &[u64]) -> bool {
        then.iter()
            .zip(self.quiescent.iter())
            .all(|(a, q)| *a != q.0.load(Acquire))
    }

    /// Moves live flow `idx` to `rule` and `member` of the rules snapshot
    /// of `generation` (the ids a reload gave them); control only.
    pub fn retag(&self, idx: u32, rule: RuleRef, member: u16, generation: bool) {
        if let Some(e) = self.entries.get(idx as usize) {
            if e.state.load(Relaxed) & LIVE != 0 {
                e.meta
                    .store(u32::from(rule.id()) | u32::from(member) << 16, Relaxed);
                if generation {
                    e.state.fetch_or(GENERATION, Relaxed);
                } else {
                    e.state.fetch_and(!GENERATION, Relaxed);
                }
            }
        }
    }

    /// Entries ever handed out: live entries have indices below this.
    pub fn high_water(&self) -> u32 {
        self.bump.load(Relaxed).min(self.entries.len() as u32)
    }

    /// A decoded copy of entry `idx`, if it holds a live flow.
    pub fn info(&self, idx: u32) -> Option<FlowInfo<A>> {
        let e = self.entries.get(idx as usize)?;
        (e.state.load(Relaxed) & LIVE != 0).then(|| e.info(idx))
    }
}

mod persist;
mod reclaim;
mod sync;
pub use persist::{Header, Opened};
pub use reclaim::Reclaimer;
pub use sync::{FlowRecord, Imported};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod persist_tests;

#[cfg(test)]
mod cuckoo_tests;
