//! One flow's entry: its two keys, next hops, state word, ticks and
//! counters, all atomics, and how the fast path and control read it.

use super::super::key::{Delta, FlowKey};
use super::super::tcp::{State, STATE_MASK};
use super::{FlowInfo, RawRewrite, Rewrite};
use crate::family::{Dir, Family};
use crate::lb::snat::RuleRef;
use crate::neigh::PortIndex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::time::Duration;

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
    pub(super) key: [A::Slots; 2],
    /// Next hop per direction as [`Family::hop_code`] (direction 1 in the
    /// high half).
    pub(super) next_hop: AtomicU64,
    /// Bits 0..4 TCP state, 4 tcp_reset, 5 live, 6 generation, 7 SNAT,
    /// 8 RFC timers, 16..32 idle timeout (s).
    pub(super) state: AtomicU32,
    /// Coarse tick (ms) of the last packet; written only when it changes.
    pub(super) last_seen: AtomicU32,
    /// Rule | member << 16; the free-list link while the entry is free.
    pub(super) meta: AtomicU32,
    /// Packets, both directions. Each direction's worker adds without a
    /// locked instruction, so two workers racing may lose a count.
    pub(super) packets: AtomicU32,
    /// Per direction, the sequence number after the last segment seen.
    pub(super) next_seq: [AtomicU32; 2],
    /// IPv6: the original direction's next hop when its code cannot name
    /// it (floating IP); nothing for IPv4.
    pub(super) far_hop: A::FarHop,
    pub(super) _align: A::EntryAlign,
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

pub(super) const LIVE: u32 = 1 << 5;
/// Which rules snapshot (generation parity) the rule and member ids are of.
pub(super) const GENERATION: u32 = 1 << 6;
/// An outbound SNAT flow (or cone mapping): its own release timers.
pub(super) const SNAT: u32 = 1 << 7;
/// An SNAT flow whose rule keeps RFC timers.
pub(super) const RFC_TIMERS: u32 = 1 << 8;
pub(super) const TCP_RESET: u32 = 1 << 4;

#[inline]
pub(super) fn load<A: Family>(slots: &A::Slots) -> A::Words {
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
    /// Always inlined: an IPv6 entry's was called out of line otherwise.
    #[inline(always)]
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

    /// [`Entry::rule`] as its stored id.
    #[inline]
    pub fn rule_id(&self) -> u16 {
        self.meta.load(Relaxed) as u16
    }

    /// The rule id and member index, as stored: what picks the flow's
    /// traffic slot ([`crate::lb::Services::traffic_slot`]).
    #[inline]
    pub fn ids(&self) -> (u16, u16) {
        let m = self.meta.load(Relaxed);
        (m as u16, (m >> 16) as u16)
    }

    /// The TCP state.
    #[inline]
    pub fn tcp_state(&self) -> State {
        State::from_bits(self.state.load(Relaxed))
    }

    /// The TCP state is `s`: one load and compare, for the fast path's
    /// test whether a plain ACK can change anything.
    #[inline]
    pub fn in_state(&self, s: State) -> bool {
        self.state.load(Relaxed) & STATE_MASK == s as u32
    }

    /// Moves the TCP state from `old` to `new` unless another worker moved it
    /// first (then theirs stands: the next segment corrects it).
    #[inline]
    pub fn set_tcp_state(&self, old: State, new: State) {
        let cur = self.state.load(Relaxed);
        if State::from_bits(cur) == old {
            let _ = self.state.compare_exchange(
                cur,
                (cur & !STATE_MASK) | new as u32,
                Relaxed,
                Relaxed,
            );
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
    pub(super) fn info(&self, idx: u32) -> FlowInfo<A> {
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
