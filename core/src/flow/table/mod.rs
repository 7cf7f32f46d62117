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
use crate::neigh::PortIndex;
use crate::shm::Slab;
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::time::Duration;

mod types;
mod window;
pub use types::{FlowInfo, FlowKind, InsertError, NewFlow, RawRewrite, Rewrite};
use window::{NO_WSCALE, WSCALE_SHIFT};

const SLOTS: usize = 8;
/// Buckets probed per key: two choices of one cache line each.
const CHOICES: usize = 2;

/// One cache line of slots: signature << 48 | direction << 32 | index + 1.
#[repr(C, align(64))]
#[derive(Default)]
pub struct Bucket([AtomicU64; SLOTS]);

/// One flow in one 64-byte cache line for IPv4, two for IPv6 (a packet
/// touches its bucket and this entry, nothing else of the table). Every field is atomic: workers read it
/// while another worker may update the state, counters or last-seen tick.
/// Checksum deltas are not stored: [`Entry::rewrite`] derives them from the
/// two keys it loads anyway, in a few adds.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Entry<A: Family = crate::family::V4> {
    /// `[direction][word]`: the key each direction's packets carry. Bits
    /// 40..48 of the ports word hold that direction's egress port, bits
    /// 48..64 what that direction's TCP sender told of its receive window
    /// ([`WSCALE_SHIFT`], [`WINDOW_SHIFT`]); lookups mask both off.
    key: [A::Slots; 2],
    /// Next hop per direction as [`Family::hop_code`] (direction 1 in the
    /// high half).
    next_hop: AtomicU64,
    /// Bits 0..3 TCP state, 4 tcp_reset, 5 live, 6 generation, 7 SNAT,
    /// 8 RFC timers, 16..32 idle timeout (s).
    state: AtomicU32,
    /// Coarse tick (ms) of the last packet; written only when it changes.
    last_seen: AtomicU32,
    /// Rule | member << 16; the free-list link while the entry is free.
    meta: AtomicU32,
    /// Packets, both directions. Each direction's worker adds without a
    /// locked instruction, so two workers racing may lose a count.
    packets: AtomicU32,
    /// Per direction, the sequence number after the last segment seen.
    next_seq: [AtomicU32; 2],
    /// IPv6: the original direction's next hop when its code cannot name
    /// it (floating IP); nothing for IPv4.
    far_hop: A::FarHop,
    _align: A::EntryAlign,
}

impl<A: Family> Default for Entry<A> {
    fn default() -> Self {
        Entry {
            key: Default::default(),
            next_hop: AtomicU64::new(0),
            state: AtomicU32::new(0),
            last_seen: AtomicU32::new(0),
            meta: AtomicU32::new(0),
            packets: AtomicU32::new(0),
            next_seq: Default::default(),
            far_hop: Default::default(),
            _align: Default::default(),
        }
    }
}

/// Bytes one IPv4 flow's entry takes.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();
/// Bytes one IPv6 flow's entry takes.
pub const ENTRY_BYTES_V6: usize = std::mem::size_of::<Entry<crate::family::V6>>();

const LIVE: u32 = 1 << 5;
/// Which rules snapshot (generation parity) the rule and member ids are of.
const GENERATION: u32 = 1 << 6;
/// An outbound SNAT flow (or cone mapping): its own release timers.
const SNAT: u32 = 1 << 7;
/// An SNAT flow whose rule keeps RFC timers.
const RFC_TIMERS: u32 = 1 << 8;
const TCP_RESET: u32 = 1 << 4;

#[inline]
fn load<A: Family>(slots: &A::Slots) -> A::Words {
    let mut w = A::Words::default();
    for (d, s) in w.as_mut().iter_mut().zip(slots.as_ref()) {
        *d = s.load(Relaxed);
    }
    w
}

impl<A: Family> Entry<A> {
    /// How packets of direction `dir` are rewritten: into the reverse of the
    /// other direction's key.
    #[inline]
    pub fn rewrite(&self, dir: Dir) -> Rewrite<A> {
        let r = self.raw_rewrite(dir);
        let (src, dst) = A::unpack(r.addrs.as_ref());
        Rewrite {
            to: FlowKey {
                src,
                dst,
                sport: (r.ports >> 16) as u16,
                dport: r.ports as u16,
                proto: r.proto,
            },
            delta: r.delta,
            egress: r.egress,
            hop: r.hop,
            far: r.far,
        }
    }

    /// [`Entry::rewrite`] in the words a packet carries, for the fast path.
    #[inline]
    pub fn raw_rewrite(&self, dir: Dir) -> RawRewrite<A> {
        let other = load::<A>(&self.key[dir.other().index()]);
        let this = load::<A>(&self.key[dir.index()]);
        let (b, fb) = (other.as_ref()[A::ADDR_WORDS], this.as_ref()[A::ADDR_WORDS]);
        // The reverse of the other direction's key: addresses and ports
        // swap places.
        let mut addrs = other;
        A::swap(addrs.as_mut());
        let hop = (self.next_hop.load(Relaxed) >> (32 * dir.index() as u32)) as u32;
        RawRewrite {
            addrs,
            ports: ((b >> 8) as u32).rotate_left(16),
            proto: b as u8,
            delta: Delta::between_words::<A>(this.as_ref(), other.as_ref()),
            egress: PortIndex::new((fb >> 40) as u8),
            hop,
            far: if A::V6 && dir == Dir::Original && hop > 1 {
                A::load_far(&self.far_hop)
            } else {
                A::UNSPECIFIED
            },
        }
    }

    /// The key packets of direction `dir` carry.
    #[inline]
    pub fn key(&self, dir: Dir) -> FlowKey<A> {
        FlowKey::from_words(load::<A>(&self.key[dir.index()]).as_ref())
    }

    /// Moves the last-seen tick forward to `tick` (control: a cone mapping
    /// lives as long as the flows that use it).
    pub fn refresh(&self, tick: u32) {
        let cur = self.last_seen.load(Relaxed);
        if (tick.wrapping_sub(cur) as i32) > 0 {
            self.last_seen.store(tick, Relaxed);
        }
    }

    /// The service or SNAT member the flow belongs to.
    #[inline]
    pub fn rule(&self) -> RuleRef {
        RuleRef::from_id(self.rule_id())
    }

    /// [`Entry::rule`] as its stored id: the index of its per-rule traffic
    /// slot, for the fast path.
    #[inline]
    pub fn rule_id(&self) -> u16 {
        self.meta.load(Relaxed) as u16
    }

    /// The TCP state.
    #[inline]
    pub fn tcp_state(&self) -> State {
        State::from_bits(self.state.load(Relaxed))
    }

    /// Moves the TCP state from `old` to `new` unless another worker moved it
    /// first (then theirs stands: the next segment corrects it).
    #[inline]
    pub fn set_tcp_state(&self, old: State, new: State) {
        let cur = self.state.load(Relaxed);
        if State::from_bits(cur) == old {
            let _ = self
                .state
                .compare_exchange(cur, (cur & !7) | new as u32, Relaxed, Relaxed);
        }
    }

    /// Records a packet in direction `dir` at tick `now`. Each field is
    /// written only when it changes, so a quiet flow's cache line stays
    /// shared between the cores that read it.
    /// True when the tick moved (the first packet of this millisecond).
    #[inline]
    pub fn touch(&self, dir: Dir, now: u32) -> bool {
        let moved = self.last_seen.load(Relaxed) != now;
        if moved {
            self.last_seen.store(now, Relaxed);
        }
        // One worker per direction (RSS), so load + store loses nothing
        // that matters and avoids a locked instruction.
        let _ = dir;
        let p = &self.packets;
        p.store(p.load(Relaxed).wrapping_add(1), Relaxed);
        moved
    }

    /// A decoded copy of the whole entry.
    fn info(&self, idx: u32) -> FlowInfo<A> {
        let st = self.state.load(Relaxed);
        let meta = self.meta.load(Relaxed);
        FlowInfo {
            index: idx,
            key: [self.key(Dir::Original), self.key(Dir::Reply)],
            state: State::from_bits(st),
            tcp_reset: st & TCP_RESET != 0,
            generation: st & GENERATION != 0,
            snat: st & SNAT != 0,
            rfc_timers: st & RFC_TIMERS != 0,
            idle_timeout: Duration::from_secs(u64::from(st >> 16)),
            last_seen: self.last_seen.load(Relaxed),
            rule: RuleRef::from_id(meta as u16),
            member: (meta >> 16) as u16,
            next_seq: [
                self.next_seq[0].load(Relaxed),
                self.next_seq[1].load(Relaxed),
            ],
            packets: self.packets.load(Relaxed),
            rewrite: [self.rewrite(Dir::Original), self.rewrite(Dir::Reply)],
        }
    }
}

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
        let nbuckets = Self::bucket_count(capacity);
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

    /// The first entry under key words `w` (hash `h`) that `take` accepts.
    #[inline(always)]
    fn find(&self, w: &[u64], h: u64, take: impl Fn(u32) -> bool) -> Option<(u32, Dir)> {
        let sig = Self::sig(h);
        for bi in Self::candidates(h, self.mask) {
            for s in &self.buckets[bi].0 {
                let v = s.load(Acquire);
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

    fn place(&self, h: u64, dir: Dir, idx: u32) -> bool {
        let v = slot_value(Self::sig(h), dir, idx);
        for bi in Self::candidates(h, self.mask) {
            for s in &self.buckets[bi].0 {
                if s.load(Relaxed) == 0 && s.compare_exchange(0, v, Release, Relaxed).is_ok() {
                    return true;
                }
            }
        }
        false
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
        self.insert_hashed(f).map(|(idx, _)| idx)
    }

    /// [`FlowTable::insert`], also returning the hashes of the two keys.
    pub fn insert_hashed(&self, f: &NewFlow<A>) -> Result<(u32, [u64; 2]), InsertError> {
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
        let h = [f.key[0].hash(), f.key[1].hash()];
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
pub use persist::{Header, Opened};
pub use reclaim::Reclaimer;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod persist_tests;
