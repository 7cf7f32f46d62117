//! Per-burst packet processing: classify each frame, act on it, and give it
//! an explicit fate (send, hold for a neighbour, consumed, or drop with a
//! reason). Pure functions over byte buffers: no EAL, no allocation, no
//! locks, no logging, so the same code is unit-tested, fuzzed and benchmarked.
//!
//! One data path for both families, split by job as VPP's nat44-ed splits
//! fast and slow nodes: [`l3`] reads each family's header, [`l4`] the
//! ports; packets of a tracked flow take [`fast`] (rewrite and send, written
//! once); a miss takes the full path of its family ([`input`]), whose flow
//! part creates inbound flows ([`inbound`]) or outbound ones
//! ([`outbound`]). ICMP errors of tracked flows ([`icmp_error`]), later
//! fragments ([`fragment`]), IPv4 fragmentation on egress ([`split`]) and Sluice as a host ([`host`]: ARP, neighbour
//! discovery, echo) have files of their own.

mod counters;
mod dataplane;
mod fast;
mod fragment;
mod host;
mod icmp_error;
mod inbound;
mod input;
mod l3;
mod l4;
mod outbound;
mod split;
mod time_exceeded;

pub use counters::{
    Counters, DropReason, SharedCounters, Stat, Touched, Traffic, TrafficCount, TRAFFIC_SLOTS,
};
pub use dataplane::{internal_sources_v4, internal_sources_v6, Dataplane, PortView};
pub use split::Split;

use crate::family::{V4, V6};
use crate::flow::frag::Fragments;
use crate::flow::FlowTable;
use crate::lb::Services;
use crate::neigh::{NeighView, PortIndex};
use crate::wire::{ethernet, EtherType, MacAddr};
use l3::Ip;
use std::net::IpAddr;

/// What happens to a frame after processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Rewritten in place; send `len` bytes out of `port`.
    Tx {
        /// Egress port.
        port: PortIndex,
        /// New frame length.
        len: u16,
    },
    /// Ready to send out of `port` once `next_hop`'s MAC is known (the
    /// Ethernet destination is filled in by whoever resolves it).
    Hold {
        /// Egress port.
        port: PortIndex,
        /// Next hop to resolve.
        next_hop: IpAddr,
        /// Frame length.
        len: u16,
    },
    /// Rewritten in place and addressed, but larger than `port`'s MTU
    /// (IPv4 without DF): send it as fragments of at most `mtu` IP bytes,
    /// cut with [`Split`].
    Split {
        /// Egress port.
        port: PortIndex,
        /// Frame length (the whole datagram).
        len: u16,
        /// The egress port's MTU.
        mtu: u16,
    },
    /// Used up (learned from); nothing to send.
    Consumed,
    /// A later fragment whose first fragment has not been seen: handed to
    /// control, which buffers it (bounded, timed) and retries it with
    /// [`retry_fragment`].
    Defer,
    /// A reply to a health probe (to Sluice's own internal address, on a
    /// port of [`PROBE_PORTS`]): handed to the prober on control.
    Probe,
    /// For one of the receiving port's own addresses and not the data
    /// plane's (BGP, BFD, SSH, replies to the kernel's own traffic): handed
    /// to that port's kernel interface (the exception path).
    Punt,
    /// Dropped.
    Drop(DropReason),
}

/// Local ports health probes leave from, on Sluice's own internal
/// addresses. TCP to one of those addresses on these ports is a probe reply
/// ([`Fate::Probe`]) and never a flow.
pub const PROBE_PORTS: std::ops::RangeInclusive<u16> = 61000..=61999;

/// Where the pipeline reports what it learned; the worker forwards it to the
/// control thread over a bounded ring.
pub trait Slowpath {
    /// `ip` is at `mac` on `port`. False when the ring is full.
    fn learn(&mut self, port: PortIndex, ip: IpAddr, mac: MacAddr) -> bool;
    /// A copy of `frame` (ARP or neighbour discovery the data plane also
    /// acted on) for `port`'s kernel interface, so the kernel learns its
    /// neighbours too. False when it could not be queued.
    fn copy_to_kernel(&mut self, port: PortIndex, frame: &[u8]) -> bool {
        let _ = (port, frame);
        false
    }
}

/// A frame buffer the pipeline may rewrite: the whole data room (so replies
/// may grow) and the current frame length.
pub trait FrameBuf {
    /// (data room, frame length); the frame is `room[..len]`.
    fn room_and_len(&mut self) -> (&mut [u8], usize);
    /// True when the NIC verified the frame's IPv4 header checksum (RX
    /// checksum offload): the fast path then does not verify it again.
    fn ip_checksum_verified(&self) -> bool {
        false
    }
}

impl FrameBuf for (Vec<u8>, usize) {
    fn room_and_len(&mut self) -> (&mut [u8], usize) {
        (&mut self.0, self.1)
    }
}

/// Everything one burst needs to read.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Ports and routes.
    pub dataplane: &'a Dataplane,
    /// Resolved neighbours.
    pub neigh: &'a NeighView,
    /// Inbound services and security rules.
    pub services: &'a Services,
    /// The shared IPv4 flow table.
    pub flows: &'a FlowTable,
    /// The shared IPv6 flow table.
    pub flows6: &'a FlowTable<V6>,
    /// Which flow each fragmented datagram follows, per family.
    pub frags: &'a Fragments,
    /// Coarse clock (ms) for last-seen ticks.
    pub now: u32,
    /// Index of the worker processing the burst (its slice of SNAT ports).
    pub worker: usize,
    /// That worker's per-rule traffic counters.
    pub traffic: &'a Traffic,
    /// Flow sync with the cluster's other instances, when there is a
    /// cluster.
    pub sync: Option<&'a crate::sync::Sync>,
}

/// Processes one frame received on `rx_port`.
pub fn process<S: Slowpath>(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    slow: &mut S,
    counters: &mut Counters,
) -> Fate {
    let memo = &mut fast::NeighMemo::default();
    process_frame(&cx, rx_port, room, len, slow, counters, (None, memo))
}

/// [`process`]; `missed`: the hash of this frame's key when the burst's
/// lookup pass found no flow for it and no flow was created since, so the
/// lookup is not repeated and a new flow's insert does not hash it again;
/// `memo`: the next hops the chunk has resolved so far.
/// Out of line: the full path is the exception, and inlined into the burst
/// loop it costs the fast path registers.
#[inline(never)]
fn process_frame<S: Slowpath>(
    cx: &Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    slow: &mut S,
    counters: &mut Counters,
    lookup: (Option<u64>, &mut fast::NeighMemo),
) -> Fate {
    let len = len.min(room.len());
    let Ok(eth) = ethernet::Frame::new_checked(&room[..len]) else {
        return Fate::Drop(DropReason::Runt);
    };
    let port = &cx.dataplane.ports[usize::from(rx_port)];
    let dst = eth.dst_addr();
    if eth.src_addr() == port.mac {
        return Fate::Drop(DropReason::Looped);
    }
    let ipv6_group = dst.0[0] == 0x33 && dst.0[1] == 0x33;
    if dst != port.mac && !dst.is_broadcast() && !ipv6_group {
        return Fate::Drop(DropReason::NotOurMac);
    }
    if eth.is_tagged() {
        return Fate::Drop(DropReason::VlanTagged);
    }
    match eth.ethertype() {
        EtherType::Arp => host::arp_input(*cx, rx_port, room, len, slow, counters),
        EtherType::Ipv4 => input::ipv4_input(cx, rx_port, room, len, counters, lookup),
        EtherType::Ipv6 => input::ipv6_input(cx, rx_port, room, len, slow, counters, lookup),
        _ => Fate::Drop(DropReason::UnknownEthertype),
    }
}

/// Retries a deferred fragment (a whole frame as received): `None` while
/// its first fragment is still unknown.
pub fn retry_fragment(cx: Context<'_>, room: &mut [u8], len: usize) -> Option<Fate> {
    fragment::retry_fragment(cx, room, len)
}

/// Processes a burst, writing each frame's fate and counting every frame
/// exactly once: rx = to_tx + held + consumed + drops.
pub fn process_burst<B: FrameBuf, S: Slowpath>(
    cx: Context<'_>,
    rx_port: PortIndex,
    frames: &mut [B],
    fates: &mut [Fate],
    slow: &mut S,
    counters: &mut Counters,
) {
    counters.add(Stat::Rx, frames.len() as u64);
    counters.add(Stat::Bursts, 1);
    for (frames, fates) in frames
        .chunks_mut(crate::MAX_BURST)
        .zip(fates.chunks_mut(crate::MAX_BURST))
    {
        process_chunk(cx, rx_port, frames, fates, slow, counters);
    }
}

/// One chunk of at most [`crate::MAX_BURST`] frames, in passes so the
/// burst's cache misses overlap instead of following one another: read
/// each plain frame's flow key (either family) and start loading its
/// buckets; find each key's first signature match and start loading that
/// entry ([`FlowTable::nominate`]); compare the keys
/// ([`FlowTable::confirm`]); then process every frame, packets of a found
/// flow on the fast path ([`fast::established`]).
#[inline(always)]
fn process_chunk<B: FrameBuf, S: Slowpath>(
    cx: Context<'_>,
    rx_port: PortIndex,
    frames: &mut [B],
    fates: &mut [Fate],
    slow: &mut S,
    counters: &mut Counters,
) {
    let mut peeks = [l3::Peek::default(); crate::MAX_BURST];
    let (mut peeked, mut v6) = (0u64, 0u64);
    for (i, f) in frames.iter_mut().enumerate() {
        let (room, len) = f.room_and_len();
        let Some(b) = room.get(..len) else { continue };
        if let Some((w, h)) = V4::peek(b) {
            cx.flows.prefetch_buckets(h);
            peeks[i] = l3::Peek { w, h };
            peeked |= 1 << i;
        } else if let Some((_, h)) = V6::peek(b) {
            cx.flows6.prefetch_buckets(h);
            peeks[i].h = h;
            peeked |= 1 << i;
            v6 |= 1 << i;
        }
    }
    let mut found = [(0u32, crate::family::Dir::Original); crate::MAX_BURST];
    // Each key's first signature match, whose entry starts loading here
    // and is compared in the next loop (an entry's key is a cache miss of
    // its own at a million flows).
    let mut nominees = [0u64; crate::MAX_BURST];
    let moves = (cx.flows.moves(), cx.flows6.moves());
    let mut m = peeked;
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        nominees[i] = if v6 >> i & 1 == 0 {
            let v = cx.flows.nominate(peeks[i].h);
            cx.flows.prefetch_entry(FlowTable::<V4>::nominee_index(v));
            v
        } else {
            let v = cx.flows6.nominate(peeks[i].h);
            cx.flows6.prefetch_entry(FlowTable::<V6>::nominee_index(v));
            v
        };
    }
    let mut hits = 0u64;
    let missed = peeked;
    while peeked != 0 {
        let i = peeked.trailing_zeros() as usize;
        peeked &= peeked - 1;
        let p = &peeks[i];
        let hit = if v6 >> i & 1 == 0 {
            cx.flows.confirm(&p.w, p.h, nominees[i], moves.0)
        } else {
            let (room, len) = frames[i].room_and_len();
            let w = room.get(..len).map_or([0; 5], l3::v6_key_words);
            cx.flows6.confirm(&w, p.h, nominees[i], moves.1)
        };
        if let Some(f) = hit {
            found[i] = f;
            hits |= 1 << i;
        }
    }
    let missed = missed & !hits;
    if cx.dataplane.ports[usize::from(rx_port)].role == crate::config::Role::Internal {
        // New flows from the inside may be SNAT flows: start loading the
        // buckets of the public tuple their first port probe will look up.
        let mut m = missed & !v6;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let p = &peeks[i];
            outbound::prefetch_probe(cx, &crate::flow::FlowKey::<V4>::from_words(&p.w), p.h);
        }
    }
    let mut memo = fast::NeighMemo::default();
    let mut fast_tx = 0;
    // No frame matches a MAC word with bits above 48: without a port, no
    // fast path.
    let rx_mac = cx
        .dataplane
        .ports
        .get(usize::from(rx_port))
        .map_or(u64::MAX, |p| fast::mac_word(p.mac));
    for (i, (f, fate)) in frames.iter_mut().zip(fates.iter_mut()).enumerate() {
        let verified = f.ip_checksum_verified();
        let (room, len) = f.room_and_len();
        let l = (len, verified);
        let done = hits >> i & 1 != 0
            && if v6 >> i & 1 == 0 {
                let out = (&mut memo, &mut *fate);
                fast::established::<V4>(cx, rx_mac, room, l, found[i], out, counters)
            } else {
                let out = (&mut memo, &mut *fate);
                fast::established::<V6>(cx, rx_mac, room, l, found[i], out, counters)
            };
        if done && matches!(*fate, Fate::Tx { .. }) {
            // The fast path's usual answer, counted in a register.
            fast_tx += 1;
            continue;
        }
        if !done {
            // Looked up in pass 2 and not found; still true unless a flow
            // this chunk has created since may be this frame's.
            let h = peeks[i].h;
            let missed = (missed >> i & 1 != 0 && !counters.inserted.may_hold(h)).then_some(h);
            *fate = process_frame(&cx, rx_port, room, len, slow, counters, (missed, &mut memo));
        }
        count_fate(fate, counters);
    }
    counters.add(Stat::ToTx, fast_tx);
    counters.inserted = Default::default();
}

/// Counts one frame's fate: to_tx, held, consumed, deferred, to the
/// prober or the kernel, or its drop reason.
#[inline]
fn count_fate(fate: &Fate, counters: &mut Counters) {
    match *fate {
        Fate::Tx { .. } => counters.add(Stat::ToTx, 1),
        Fate::Split { .. } => {
            counters.add(Stat::ToTx, 1);
            counters.add(Stat::Fragmented, 1);
        }
        Fate::Hold { .. } => counters.add(Stat::Held, 1),
        Fate::Consumed => counters.add(Stat::Consumed, 1),
        Fate::Defer => counters.add(Stat::Deferred, 1),
        Fate::Probe => counters.add(Stat::ToProber, 1),
        Fate::Punt => counters.add(Stat::ToKernel, 1),
        Fate::Drop(r) => counters.drop(r),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod forward_tests;

#[cfg(test)]
mod fast_tests;

#[cfg(test)]
mod v6_tests;

#[cfg(test)]
mod v6_frag_tests;

#[cfg(test)]
mod test_net;

#[cfg(test)]
mod kernel_tests;

#[cfg(test)]
mod pickup_tests;

#[cfg(test)]
mod tcp_tests;

#[cfg(test)]
mod floating_tests;

#[cfg(test)]
mod mtu_tests;

#[cfg(test)]
mod hairpin_tests;
