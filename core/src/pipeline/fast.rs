//! The established fast path, written once for both families: a tracked
//! flow's packet is rewritten with the entry's precomputed rewrite (L3 per
//! family, ports and the L4 checksum here) and sent to its next hop.

use super::l3::{Ip, ETH};
use super::l4::{self, field, rd16, wr16, L4, TCP, UDP};
use super::time_exceeded::{too_big, About};
use super::{Context, Counters, Fate, Stat};
use crate::family::{Dir, Family};
use crate::flow::{tcp, Delta, Entry, RawRewrite};
use crate::neigh::PortIndex;
use crate::wire::tcp::Flags;
use std::net::Ipv4Addr;

/// The next hops resolved in this chunk, per family: four of each,
/// direct-mapped by the low bits of the address (a pool's members, and the
/// gateway replies go to, mostly land in different ways). Each way keeps
/// both Ethernet addresses a frame to that next hop gets, so a frame to a
/// remembered next hop costs a compare and two stores.
#[derive(Debug, Clone, Copy)]
pub(super) struct NeighMemo {
    v4: [Way; WAYS],
    v6: [Way; WAYS],
}

const WAYS: usize = 4;

/// One remembered next hop: its address bits and port, and the frame's
/// destination then source MAC.
#[derive(Debug, Clone, Copy)]
struct Way {
    nh: u128,
    port: PortIndex,
    macs: [u8; 12],
}

impl Default for NeighMemo {
    fn default() -> NeighMemo {
        // No next hop of either family is all ones (IPv4's take 32 bits;
        // IPv6's would be multicast), so no way matches before it is filled.
        let empty = Way {
            nh: u128::MAX,
            port: PortIndex::new(0),
            macs: [0; 12],
        };
        NeighMemo {
            v4: [empty; WAYS],
            v6: [empty; WAYS],
        }
    }
}

impl NeighMemo {
    #[inline(always)]
    fn way<A: Family>(&mut self, nh: u128) -> &mut Way {
        let ways = if A::V6 { &mut self.v6 } else { &mut self.v4 };
        &mut ways[nh as usize % WAYS]
    }
}

/// The receiving port's MAC as the low 48 bits of a word, read once per
/// chunk: how the fast path compares a frame's Ethernet addresses.
#[inline]
pub(super) fn mac_word(mac: crate::wire::MacAddr) -> u64 {
    let m = mac.0;
    u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
}

/// The fast path for a TCP or UDP packet of the flow the lookup pass found
/// for it: the checks of the full path that can fail for such a packet,
/// then [`forward`], whose fate goes to `out`. `rx_mac`: the receiving
/// port's [`mac_word`]; `verified`: the NIC verified the IPv4 header
/// checksum. False when any check fails: the caller then runs the full
/// path, which drops it with the reason (or forwards what the fast path
/// does not take: an IPv4 header with options, a frame too short to hold
/// a whole TCP header, which no Ethernet frame of 60 bytes or more is).
///
/// The lookup pass's `peek` already saw an untagged frame of this family,
/// not a fragment, with its IP version (and, IPv6, TCP or UDP next).
/// Every offset read here is fixed, so one length check covers them all.
#[inline]
pub(super) fn established<A: Ip>(
    cx: Context<'_>,
    rx_mac: u64,
    room: &mut [u8],
    (len, verified): (usize, bool),
    found: (u32, Dir),
    (memo, out): (&mut NeighMemo, &mut Fate),
    c: &mut Counters,
) -> bool {
    const TCP_MIN: usize = 20;
    let hl = A::HEADER_LEN;
    let at = ETH + hl;
    if len < at + TCP_MIN || len > room.len() {
        return false;
    }
    let b = &room[..len];
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    let (dst, src) = (word(0) & 0xffff_ffff_ffff, word(4) >> 16);
    if dst != rx_mac || src == rx_mac {
        return false;
    }
    let Some(total) = A::fast_checks(b, verified) else {
        return false;
    };
    let payload = total - hl;
    let proto = b[ETH + A::PROTOCOL];
    // `l4::parse` at a fixed offset: classifying only what is not a plain
    // ACK, and reading no ports, saves 16 instructions a packet (callgrind
    // profile_flows established, 555.5 with `l4::parse`).
    let l4 = if proto == TCP {
        let off = usize::from(b[at + field::TCP_OFF] >> 4) * 4;
        if off < TCP_MIN || off > payload {
            return false;
        }
        let f = b[at + field::TCP_FLAGS];
        let seq_end = l4::rd32(b, at + field::TCP_SEQ).wrapping_add((payload - off) as u32);
        if f & (Flags::SYN.0 | Flags::FIN.0 | Flags::RST.0) == 0 {
            L4::ack(seq_end)
        } else {
            L4::flagged(Flags(f), seq_end)
        }
    } else if proto == UDP && payload >= 8 {
        L4::ack(0)
    } else {
        return false;
    };
    // Written in place: a fate returned through the stack is stored in
    // narrow pieces and read back whole, which stalls the store buffer.
    forward::<A>(&cx, found, room, len, hl, proto, l4, memo, c, out);
    true
}

/// [`forward`] out of line, for the full path: there the fate returns
/// through the stack anyway, and the inlined copy would only make the
/// full path bigger (calling `forward` directly there costs a new flow
/// about 4 instructions more, callgrind `profile_flows new`).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub(super) fn forward_full<A: Ip>(
    cx: &Context<'_>,
    found: (u32, Dir),
    room: &mut [u8],
    len: usize,
    hl: usize,
    proto: u8,
    l4: L4,
    memo: &mut NeighMemo,
    c: &mut Counters,
) -> Fate {
    let mut out = Fate::Consumed;
    forward::<A>(cx, found, room, len, hl, proto, l4, memo, c, &mut out);
    out
}

/// Rewrites a tracked flow's packet in place and sends it on, its fate
/// written to `out`. `hl` is the offset of the L4 header from the IP
/// header. Always inlined: called out of line, its fate came back through
/// a stack copy that stalled the store buffer on every packet (perf: a
/// tenth of the worker's samples).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn forward<A: Ip>(
    cx: &Context<'_>,
    (idx, dir): (u32, Dir),
    room: &mut [u8],
    len: usize,
    hl: usize,
    proto: u8,
    l4: L4,
    memo: &mut NeighMemo,
    c: &mut Counters,
    out: &mut Fate,
) {
    let e = A::flows(cx).entry(idx);
    let ip = &mut room[ETH..];
    if proto == TCP {
        if l4.flags == tcp::Class::Ack {
            // A plain ACK leaves an established connection as it is, in
            // either direction: no state table lookup for most segments.
            if !e.in_state(tcp::State::Established) {
                let s = e.tcp_state();
                let n = tcp::next(s, dir, l4.flags);
                if n != s {
                    e.set_tcp_state(s, n);
                    c.touch::<A>(idx);
                }
            }
            e.track_seq(dir, l4.seq_end);
        } else {
            track_tcp_flags(e, (idx, dir), &l4, ip, hl, c);
        }
    }
    if e.touch(dir, cx.now) && proto == TCP {
        note_window(e, dir, ip, hl);
    }
    let rw = e.raw_rewrite(dir);
    // The frame's length bounds the packet's: most frames need no look at
    // the egress port.
    if len > ETH + usize::from(cx.dataplane.min_mtu) {
        if let Some(f) = oversize::<A>(cx, (idx, dir), room, len, (hl, proto), l4, memo, c) {
            *out = f;
            return;
        }
    }
    rewrite_and_send(cx, e, dir, room, len, (hl, proto), l4, &rw, memo, c, out);
}

/// [`forward`] for a packet larger than the smallest MTU: `None` when it
/// fits its egress port; else the ICMP error that answers it, or, for IPv4
/// without DF, the rewritten datagram to be sent in fragments.
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn oversize<A: Ip>(
    cx: &Context<'_>,
    (idx, dir): (u32, Dir),
    room: &mut [u8],
    len: usize,
    (hl, proto): (usize, u8),
    l4: L4,
    memo: &mut NeighMemo,
    c: &mut Counters,
) -> Option<Fate> {
    match too_big_flow::<A>(*cx, (idx, dir), room, hl, proto, false, c) {
        Oversize::Fits => None,
        Oversize::Refused(f) => Some(f),
        Oversize::Split(mtu) => {
            let e = A::flows(cx).entry(idx);
            let rw = e.raw_rewrite(dir);
            let mut f = Fate::Consumed;
            rewrite_and_send(cx, e, dir, room, len, (hl, proto), l4, &rw, memo, c, &mut f);
            Some(split(f, mtu))
        }
    }
}

/// The end of [`forward`]: count, rewrite, send.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn rewrite_and_send<A: Ip>(
    cx: &Context<'_>,
    e: &Entry<A>,
    dir: Dir,
    room: &mut [u8],
    len: usize,
    (hl, proto): (usize, u8),
    l4: L4,
    rw: &RawRewrite<A>,
    memo: &mut NeighMemo,
    c: &mut Counters,
    out: &mut Fate,
) {
    let ip = &mut room[ETH..];
    let syn = proto == TCP && matches!(l4.flags, tcp::Class::Syn | tcp::Class::SynAck);
    let (rule, member) = e.ids();
    let slot = cx.services.traffic_slot(rule, member);
    cx.traffic.count(slot, dir, ip_len::<A>(ip), syn);
    rewrite_headers::<A>(ip, hl, proto, rw);
    c.add(Stat::Forwarded, 1);
    send_into(*cx, room, len, rw, memo, out);
}

/// What a packet larger than some port's MTU needs.
pub(super) enum Oversize {
    /// It fits its own egress port.
    Fits,
    /// An ICMP error goes back instead (or it is dropped).
    Refused(Fate),
    /// IPv4 without DF: it leaves in fragments of this MTU.
    Split(u16),
}

/// The fate of a rewritten datagram to be fragmented to `mtu`: a frame
/// ready to send becomes [`Fate::Split`]; one waiting for its neighbour is
/// dropped (control would send it whole, and the port would not).
#[cold]
pub(super) fn split(f: Fate, mtu: u16) -> Fate {
    match f {
        Fate::Tx { port, len } => Fate::Split { port, len, mtu },
        _ => Fate::Drop(super::DropReason::MtuExceeded),
    }
}

/// The TCP tracking of a segment with SYN, FIN or RST (`forward` does a
/// plain ACK's inline). A RST outside the receiver's window, and a SYN on a
/// synchronized connection, change nothing (they are forwarded: the
/// endpoint decides) and are counted: a blind attacker cannot end or
/// shorten a connection. Out of line, so the data path keeps its
/// registers.
#[cold]
#[inline(never)]
fn track_tcp_flags<A: Family>(
    e: &Entry<A>,
    (idx, dir): (u32, Dir),
    l4: &L4,
    ip: &[u8],
    hl: usize,
    c: &mut Counters,
) {
    let Some(t) = ip.get(hl..) else { return };
    let s = e.tcp_state();
    match l4.flags {
        tcp::Class::Ack | tcp::Class::Fin => e.note_window(dir, rd16(t, field::TCP_WINDOW)),
        tcp::Class::Rst if !rst_acceptable(e, dir, t) => {
            c.add(Stat::TcpRstOutOfWindow, 1);
            return;
        }
        tcp::Class::Rst => {}
        tcp::Class::Syn | tcp::Class::SynAck => {
            if l4.flags == tcp::Class::Syn && s.is_synchronized() {
                c.add(Stat::TcpSynOnEstablished, 1);
                return;
            }
            if matches!(s, tcp::State::Closing | tcp::State::Reset) && dir == Dir::Original {
                e.restart_tcp();
            }
            e.note_wscale(dir, l4::wscale(t));
        }
    }
    let n = tcp::next(s, dir, l4.flags);
    if n != s {
        e.set_tcp_state(s, n);
        c.touch::<A>(idx);
    }
    e.track_seq(dir, l4.seq_end);
}

/// Samples the window field of a TCP segment: `forward` calls it when the
/// flow's last-seen tick moves (at most once a millisecond per flow, from
/// whichever direction comes first), and the table keeps the maximum.
#[inline(never)]
fn note_window<A: Family>(e: &Entry<A>, dir: Dir, ip: &[u8], hl: usize) {
    if let Some(w) = ip.get(hl + field::TCP_WINDOW..hl + field::TCP_WINDOW + 2) {
        e.note_window(dir, u16::from_be_bytes([w[0], w[1]]));
    }
}

/// [`Entry::rst_acceptable`] for the RST whose TCP header is `t`.
fn rst_acceptable<A: Family>(e: &Entry<A>, dir: Dir, t: &[u8]) -> bool {
    let seq = l4::rd32(t, field::TCP_SEQ);
    let ack = (t[field::TCP_FLAGS] & crate::wire::tcp::Flags::ACK.0 != 0)
        .then(|| l4::rd32(t, field::TCP_ACK));
    e.rst_acceptable(dir, seq, ack)
}

/// For a tracked flow's packet larger than some port's MTU: [`too_big`]
/// when it is larger than its egress port's (its TCP state has moved by
/// it: a sender that learns the smaller MTU resends the same bytes). The
/// error leaves from the port the packet came in on, the other
/// direction's egress.
#[cold]
#[inline(never)]
pub(super) fn too_big_flow<A: Ip>(
    cx: Context<'_>,
    (idx, dir): (u32, Dir),
    room: &mut [u8],
    hl: usize,
    proto: u8,
    later_fragment: bool,
    c: &mut Counters,
) -> Oversize {
    let e = A::flows(&cx).entry(idx);
    let total = ip_len::<A>(&room[ETH..]);
    let Some(port) = cx.dataplane.ports.get(e.raw_rewrite(dir).egress.index()) else {
        return Oversize::Fits;
    };
    let rx_port = e.raw_rewrite(dir.other()).egress;
    if total <= usize::from(port.mtu) {
        return Oversize::Fits;
    }
    let about = About {
        src: A::read(&room[ETH + A::SRC..]),
        total,
        l4: hl,
        proto,
        later_fragment,
    };
    too_big::<A>(cx, rx_port, room, about, port.mtu, c)
}

/// The IP packet's length as its header says.
#[inline]
pub(super) fn ip_len<A: Family>(ip: &[u8]) -> usize {
    if A::V6 {
        A::HEADER_LEN + usize::from(rd16(ip, crate::wire::ipv6::field::PAYLOAD_LEN))
    } else {
        usize::from(rd16(ip, crate::wire::ipv4::field::LENGTH))
    }
}

/// Writes addresses, TTL and ports, and updates the checksums by the
/// precomputed deltas. `proto` 0: addresses only (a later fragment).
/// Always inlined: the IPv6 fast path called it out of line otherwise.
#[inline(always)]
pub(super) fn rewrite_headers<A: Ip>(ip: &mut [u8], hl: usize, proto: u8, rw: &RawRewrite<A>) {
    A::rewrite(ip, rw);
    let l4 = &mut ip[hl..];
    match proto {
        TCP => {
            l4[field::PORTS..4].copy_from_slice(&rw.ports.to_be_bytes());
            let cs = rd16(l4, field::TCP_CSUM);
            wr16(l4, field::TCP_CSUM, Delta::apply(cs, rw.delta.l4));
        }
        UDP => {
            l4[field::PORTS..4].copy_from_slice(&rw.ports.to_be_bytes());
            let cs = rd16(l4, field::UDP_CSUM);
            if cs != 0 {
                let n = Delta::apply(cs, rw.delta.l4);
                wr16(l4, field::UDP_CSUM, if n == 0 { 0xffff } else { n });
            }
        }
        _ => {}
    }
}

/// Ethernet addresses for the rewrite's next hop, or a hold while control
/// resolves it.
#[inline]
pub(super) fn send<A: Family>(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    rw: &RawRewrite<A>,
    memo: &mut NeighMemo,
) -> Fate {
    let nh = rw.next_hop(|| cx.dataplane.gateway_of::<A>());
    send_to(cx, room, len, rw.egress, nh, memo)
}

/// [`send`], its fate written to `out`: the fast path's.
#[inline(always)]
fn send_into<A: Family>(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    rw: &RawRewrite<A>,
    memo: &mut NeighMemo,
    out: &mut Fate,
) {
    let nh = rw.next_hop(|| cx.dataplane.gateway_of::<A>());
    to_next_hop(cx, room, len, rw.egress, nh, memo, out);
}

/// [`send`] to `nh` on `port`.
#[inline]
pub(super) fn send_to<A: Family>(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    port: PortIndex,
    nh: A,
    memo: &mut NeighMemo,
) -> Fate {
    let mut out = Fate::Consumed;
    to_next_hop(cx, room, len, port, nh, memo, &mut out);
    out
}

/// Addresses the frame to `nh` on `port` from the memo (or, the first
/// time in this chunk, from the neighbour view): [`Fate::Tx`], or
/// [`Fate::Hold`] while the neighbour is unresolved.
#[inline(always)]
fn to_next_hop<A: Family>(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    port: PortIndex,
    nh: A,
    memo: &mut NeighMemo,
    out: &mut Fate,
) {
    let bits = nh.bits();
    let w = memo.way::<A>(bits);
    if (w.nh != bits || w.port != port) && !resolve(cx, port, nh, w) {
        *out = hold(cx, room, len, port, nh);
        return;
    }
    room[..12].copy_from_slice(&w.macs);
    *out = Fate::Tx {
        port,
        len: len as u16,
    };
}

/// Fills `w` with `nh` on `port` from the neighbour view; false when it is
/// not resolved.
#[cold]
#[inline(never)]
fn resolve<A: Family>(cx: Context<'_>, port: PortIndex, nh: A, w: &mut Way) -> bool {
    let m = if A::V6 {
        cx.neigh.lookup(port, nh.into())
    } else {
        cx.neigh.lookup_v4(port, Ipv4Addr::from(nh.bits() as u32))
    };
    let Some(m) = m else { return false };
    w.nh = nh.bits();
    w.port = port;
    w.macs[..6].copy_from_slice(&m.0);
    w.macs[6..].copy_from_slice(&cx.dataplane.ports[usize::from(port)].mac.0);
    true
}

/// A frame for an unresolved next hop: from the port's address, held.
#[cold]
#[inline(never)]
fn hold<A: Family>(cx: Context<'_>, room: &mut [u8], len: usize, port: PortIndex, nh: A) -> Fate {
    room[6..12].copy_from_slice(&cx.dataplane.ports[usize::from(port)].mac.0);
    Fate::Hold {
        port,
        next_hop: nh.into(),
        len: len as u16,
    }
}
