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
use crate::wire::MacAddr;
use std::net::Ipv4Addr;

/// The last next hop of each family resolved in this burst: most of a
/// burst's packets often go to one (the gateway, for replies).
#[derive(Debug, Clone, Copy)]
pub(super) struct NeighMemo {
    /// IPv4: port << 32 | next hop.
    key: u64,
    mac: MacAddr,
    /// IPv6: next hop, and its port (`PortIndex::MAX`: none yet).
    nh6: u128,
    port6: PortIndex,
    mac6: MacAddr,
}

impl Default for NeighMemo {
    fn default() -> NeighMemo {
        NeighMemo {
            key: u64::MAX,
            mac: MacAddr([0; 6]),
            nh6: 0,
            port6: PortIndex::new(u8::MAX),
            mac6: MacAddr([0; 6]),
        }
    }
}

/// The fast path for a TCP or UDP packet of the flow the lookup pass found
/// for it: the checks of the full path that can fail for such a packet,
/// then [`forward`], whose fate goes to `out`; `verified`: the NIC verified
/// the IPv4 header checksum. False when any check fails: the caller then runs the
/// full path, which drops it with the reason.
#[inline]
pub(super) fn established<A: Ip>(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    (len, verified): (usize, bool),
    found: (u32, Dir),
    (memo, out): (&mut NeighMemo, &mut Fate),
    c: &mut Counters,
) -> bool {
    let Some(mac) = cx.dataplane.ports.get(usize::from(rx_port)).map(|p| p.mac) else {
        return false;
    };
    let Some(b) = room.get(..len) else {
        return false;
    };
    // `peek` saw an untagged frame of this family, not a fragment.
    if b.len() < ETH + A::HEADER_LEN || b[..6] != mac.0 || b[6..12] == mac.0 {
        return false;
    }
    let Some((hl, total)) = A::fast_checks(b, verified) else {
        return false;
    };
    let proto = b[ETH + A::PROTOCOL];
    if proto != TCP && proto != UDP {
        return false;
    }
    let Some(l4) = l4::parse(b, ETH + hl, total - hl, proto) else {
        return false;
    };
    // Written in place: a fate returned through the stack is stored in
    // narrow pieces and read back whole, which stalls the store buffer.
    *out = forward::<A>(&cx, found, room, len, hl, proto, l4, memo, c);
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
    forward::<A>(cx, found, room, len, hl, proto, l4, memo, c)
}

/// Rewrites a tracked flow's packet in place and sends it on. `hl` is the
/// offset of the L4 header from the IP header. Always inlined: called out
/// of line, its fate came back through a stack copy that stalled the
/// store buffer on every packet (perf: a tenth of the worker's samples).
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
) -> Fate {
    let e = A::flows(cx).entry(idx);
    let ip = &mut room[ETH..];
    if proto == TCP {
        if l4.flags == tcp::Class::Ack {
            let s = e.tcp_state();
            let n = tcp::next(s, dir, l4.flags);
            if n != s {
                e.set_tcp_state(s, n);
                c.touch::<A>(idx);
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
            return f;
        }
    }
    rewrite_and_send(cx, e, dir, room, len, (hl, proto), l4, &rw, memo, c)
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
            let f = rewrite_and_send(cx, e, dir, room, len, (hl, proto), l4, &rw, memo, c);
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
) -> Fate {
    let ip = &mut room[ETH..];
    let syn = proto == TCP && matches!(l4.flags, tcp::Class::Syn | tcp::Class::SynAck);
    let (rule, member) = e.ids();
    let slot = cx.services.traffic_slot(rule, member);
    cx.traffic.count(slot, dir, ip_len::<A>(ip), syn);
    rewrite_headers::<A>(ip, hl, proto, rw);
    c.add(Stat::Forwarded, 1);
    send(*cx, room, len, rw, memo)
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
#[inline]
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
    let port = rw.egress;
    let nh = rw.next_hop(|| cx.dataplane.gateway_of::<A>());
    send_to(cx, room, len, port, nh, memo)
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
    let mac = cx.dataplane.ports[usize::from(port)].mac;
    room[6..12].copy_from_slice(&mac.0);
    let m = if A::V6 {
        let a = nh.bits();
        if memo.port6 == port && memo.nh6 == a {
            Some(memo.mac6)
        } else {
            let m = cx.neigh.lookup(port, nh.into());
            if let Some(m) = m {
                (memo.port6, memo.nh6, memo.mac6) = (port, a, m);
            }
            m
        }
    } else {
        let key = u64::from(port) << 32 | nh.bits() as u64;
        if memo.key == key {
            Some(memo.mac)
        } else {
            let m = cx.neigh.lookup_v4(port, Ipv4Addr::from(nh.bits() as u32));
            if let Some(m) = m {
                (memo.key, memo.mac) = (key, m);
            }
            m
        }
    };
    match m {
        Some(m) => {
            room[0..6].copy_from_slice(&m.0);
            Fate::Tx {
                port,
                len: len as u16,
            }
        }
        None => Fate::Hold {
            port,
            next_hop: nh.into(),
            len: len as u16,
        },
    }
}
