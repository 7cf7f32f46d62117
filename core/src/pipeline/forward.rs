//! Forwarding through the flow table (IPv4): a tracked flow's packets are
//! rewritten with the entry's precomputed rewrite and sent to its next hop;
//! the first packet of a new inbound flow matches a service, passes the
//! security rules, picks a member and inserts the flow under both keys.
//! ICMP errors about a tracked flow are translated, outer and embedded
//! headers both.

use super::{host, Context, Counters, DropReason, Fate, Stat};
use crate::config::Direction;
use crate::flow::{tcp, Delta, FlowKey, NewFlow, RawRewrite};
use crate::neigh::PortIndex;
use crate::wire::{checksum, ethernet, icmpv4, ipv4, IpProtocol, MacAddr};
use std::net::{IpAddr, Ipv4Addr};

const ETH: usize = ethernet::HEADER_LEN;
pub(super) const TCP: u8 = 6;
pub(super) const UDP: u8 = 17;
const ICMP: u8 = 1;

/// Offsets of fields in the IPv4 header.
const IP_TTL: usize = 8;
const IP_CSUM: usize = 10;
const IP_SRC: usize = 12;
const IP_DST: usize = 16;

#[inline]
fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline]
fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// What the L4 header told us.
#[derive(Clone, Copy)]
pub(super) struct L4 {
    sport: u16,
    dport: u16,
    /// TCP only: flags, sequence number and the sequence after this segment.
    pub(super) flags: tcp::Class,
    seq_end: u32,
}

/// Reads ports (and TCP flags) at `l4` of a packet whose IP payload is
/// `payload_len` bytes. `None` when the header does not fit.
#[inline]
fn parse_l4(b: &[u8], l4: usize, payload_len: usize, proto: u8) -> Option<L4> {
    match proto {
        TCP => {
            if payload_len < 20 || b.len() < l4 + 20 {
                return None;
            }
            let off = usize::from(b[l4 + 12] >> 4) * 4;
            if off < 20 || off > payload_len {
                return None;
            }
            let f = crate::wire::tcp::Flags(b[l4 + 13]);
            let seq = rd32(b, l4 + 4);
            let syn_fin = u32::from(f.contains(crate::wire::tcp::Flags::SYN))
                + u32::from(f.contains(crate::wire::tcp::Flags::FIN));
            Some(L4 {
                sport: rd16(b, l4),
                dport: rd16(b, l4 + 2),
                flags: tcp::classify(f),
                seq_end: seq
                    .wrapping_add((payload_len - off) as u32)
                    .wrapping_add(syn_fin),
            })
        }
        UDP => {
            if payload_len < 8 || b.len() < l4 + 8 {
                return None;
            }
            Some(L4 {
                sport: rd16(b, l4),
                dport: rd16(b, l4 + 2),
                flags: tcp::Class::Ack,
                seq_end: 0,
            })
        }
        _ => Some(L4 {
            sport: 0,
            dport: 0,
            flags: tcp::Class::Ack,
            seq_end: 0,
        }),
    }
}

/// A flow key read straight from a plain IPv4 frame's bytes (not a
/// fragment), as [`FlowKey`] words, and its hash.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Peek {
    a: u64,
    b: u64,
    pub(super) h: u64,
}

impl Peek {
    /// The key it read.
    pub(super) fn key(&self) -> FlowKey {
        FlowKey::from_words(self.a, self.b)
    }
}

/// The flow key of a plain IPv4 frame, for the burst's lookup pass; `None`
/// for anything else, which then takes the full path.
#[inline]
pub(super) fn peek(room: &[u8], len: usize) -> Option<Peek> {
    let b = room.get(..len)?;
    if b.len() < ETH + 20 || b[12] != 0x08 || b[13] != 0x00 || b[ETH] >> 4 != 4 {
        return None;
    }
    let hl = usize::from(b[ETH] & 0x0f) * 4;
    if rd16(b, ETH + 6) & 0x3fff != 0 {
        return None;
    }
    let proto = b[ETH + 9];
    let a = u64::from_be_bytes(b[ETH + IP_SRC..ETH + IP_DST + 4].try_into().ok()?);
    let ports = match proto {
        TCP | UDP => u64::from(rd32(b.get(..ETH + hl + 4)?, ETH + hl)),
        _ => 0,
    };
    let b = ports << 8 | u64::from(proto);
    Some(Peek {
        a,
        b,
        h: crate::flow::hash_words(a, b),
    })
}

/// The burst's lookup pass: the flow a peeked frame belongs to.
#[inline]
pub(super) fn lookup(cx: Context<'_>, p: &Peek) -> Option<(u32, usize)> {
    cx.flows.lookup_words(p.a, p.b, p.h)
}

/// The last next hop resolved in this burst: most of a burst's packets
/// often go to one (the gateway, for replies).
#[derive(Debug, Clone, Copy)]
pub(super) struct NeighMemo {
    key: u64,
    mac: MacAddr,
}

impl Default for NeighMemo {
    fn default() -> NeighMemo {
        NeighMemo {
            key: u64::MAX,
            mac: MacAddr([0; 6]),
        }
    }
}

/// The fast path for a TCP or UDP packet of the flow the lookup pass found
/// for it: the checks of the full path that can fail for such a packet,
/// then [`forward`]. `None` when any check fails: the caller then runs the
/// full path, which drops it with the reason.
#[inline]
pub(super) fn established(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    (idx, dir): (u32, usize),
    memo: &mut NeighMemo,
    c: &mut Counters,
) -> Option<Fate> {
    let mac = cx.dataplane.ports.get(usize::from(rx_port))?.mac;
    let b = room.get(..len)?;
    // `peek` saw an untagged IPv4 frame, version 4, not a fragment.
    if b.len() < ETH + 20 || b[..6] != mac.0 || b[6..12] == mac.0 {
        return None;
    }
    let hl = usize::from(b[ETH] & 0x0f) * 4;
    let total = usize::from(rd16(b, ETH + 2));
    if hl < 20 || total < hl || ETH + total > b.len() || b[ETH + IP_TTL] <= 1 {
        return None;
    }
    if checksum::checksum(&b[ETH..ETH + hl]) != 0 {
        return None;
    }
    let proto = b[ETH + 9];
    if proto != TCP && proto != UDP {
        return None;
    }
    let l4 = parse_l4(b, ETH + hl, total - hl, proto)?;
    Some(forward(cx, idx, dir, room, len, hl, proto, l4, memo, c))
}

/// IPv4 that is not ARP/ND: flows first, then new flows, then Sluice's own
/// services (echo).
pub(super) fn ipv4_input(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    c: &mut Counters,
    missed: bool,
) -> Fate {
    let Ok(ip) = ipv4::Packet::new_checked(&room[ETH..len]) else {
        return Fate::Drop(DropReason::Ipv4Malformed);
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let proto = u8::from(ip.protocol());
    let owned = cx.dataplane.ports[usize::from(rx_port)].owns_v4(dst);
    if proto == ICMP {
        if owned && ip.is_fragment() {
            return Fate::Drop(DropReason::Fragment);
        }
        let t = room.get(ETH + ip.header_len()).copied().unwrap_or(0);
        if !ip.is_fragment() && icmpv4::Message::from(t).is_error() {
            return icmp_error(cx, room, len, c);
        }
        if owned {
            return host::ipv4_input(cx, rx_port, room, len, c);
        }
        // ICMP is never balanced, and outbound rules carry TCP and UDP.
        return Fate::Drop(super::outbound::not_forwarded(cx, rx_port, src, dst, false));
    }
    if !ip.verify_checksum() {
        return Fate::Drop(DropReason::Ipv4BadChecksum);
    }
    // Checked once here for every forwarded packet (deferred fragments
    // included), before any flow is created for it.
    if ip.ttl() <= 1 {
        return Fate::Drop(DropReason::TtlExceeded);
    }
    let hl = ip.header_len();
    let first_fragment = ip.is_fragment();
    if first_fragment && ip.frag_offset() != 0 {
        let id = ip.ident();
        return later_fragment(cx, room, len, hl, (src, dst, proto, id), c);
    }
    let id = ip.ident();
    let payload_len = usize::from(ip.total_len()) - hl;
    let Some(l4) = parse_l4(room, ETH + hl, payload_len, proto) else {
        return Fate::Drop(DropReason::L4Malformed);
    };
    if owned && proto == TCP && cx.dataplane.is_probe_reply(dst, l4.dport) {
        return if first_fragment {
            Fate::Drop(DropReason::Fragment)
        } else {
            Fate::Probe
        };
    }
    let key = FlowKey {
        src,
        dst,
        sport: l4.sport,
        dport: l4.dport,
        proto,
    };
    let found = if missed { None } else { cx.flows.lookup(&key) };
    let (idx, dir) = match found {
        Some(found) => found,
        // A frontend takes flows on whichever port they arrive (an internal
        // frontend is often reached through a route via Sluice).
        None => match new_flow(cx, rx_port, &key, owned, first_fragment, l4, c) {
            Ok(found) => found,
            Err(reason) => return Fate::Drop(reason),
        },
    };
    if first_fragment {
        // Fragments are forwarded on HA-ports rules only; the later ones
        // follow this one's flow.
        if !cx.services.is_ha(cx.flows.entry(idx).rule()) {
            return Fate::Drop(DropReason::Fragment);
        }
        cx.frags.record(src, dst, proto, id, idx, dir, cx.now);
    }
    forward(
        cx,
        idx,
        dir,
        room,
        len,
        hl,
        proto,
        l4,
        &mut NeighMemo::default(),
        c,
    )
}

/// Creates the flow a first packet to a frontend asks for: service, TCP
/// SYN, security rules, member, routes, insert. The state machine starts
/// at SynSent, so the SYN itself then applies as no change.
fn new_flow(
    cx: Context<'_>,
    rx_port: PortIndex,
    key: &FlowKey,
    owned: bool,
    fragment: bool,
    l4: L4,
    c: &mut Counters,
) -> Result<(u32, usize), DropReason> {
    let proto = key.proto;
    let Some((sid, svc)) = cx
        .services
        .lookup(key.dst, IpProtocol::from(proto), key.dport)
    else {
        if fragment {
            return Err(DropReason::Fragment);
        }
        return super::outbound::no_service(cx, rx_port, key, owned, &l4, c);
    };
    if fragment && !svc.ha_ports {
        return Err(DropReason::Fragment);
    }
    if proto == TCP && l4.flags != tcp::Class::Syn {
        return Err(DropReason::TcpNoFlow);
    }
    if !cx.services.security.allows(
        Direction::Inbound,
        key.src,
        key.dst,
        proto,
        key.dport,
        !svc.public,
    ) {
        return Err(DropReason::SecurityDeny);
    }
    let (member, maddr) = svc.pick(key).ok_or(DropReason::NoHealthyMember)?;
    let bport = if svc.backend_port == 0 {
        key.dport
    } else {
        svc.backend_port
    };
    let reply = FlowKey {
        src: if svc.floating_ip { key.dst } else { maddr },
        dst: key.src,
        sport: bport,
        dport: key.sport,
        proto,
    };
    let (Some((p0, nh0)), Some((p1, nh1))) =
        (cx.dataplane.route_v4(maddr), cx.dataplane.route_v4(key.src))
    else {
        return Err(DropReason::NoRoute);
    };
    let f = NewFlow {
        key: [*key, reply],
        egress: [p0, p1],
        next_hop: [nh0, nh1],
        state: if proto == TCP {
            tcp::State::SynSent
        } else {
            tcp::State::Other
        },
        tcp_reset: svc.tcp_reset,
        idle_timeout: svc.idle_timeout,
        rule: sid,
        member,
        now: cx.now,
        generation: cx.services.generation,
        snat: false,
    };
    let idx = cx.flows.insert(&f).map_err(|_| DropReason::FlowTableFull)?;
    c.add(Stat::FlowsCreated, 1);
    Ok((idx, 0))
}

/// Rewrites a tracked flow's packet in place and sends it on.
#[allow(clippy::too_many_arguments)]
#[inline]
fn forward(
    cx: Context<'_>,
    idx: u32,
    dir: usize,
    room: &mut [u8],
    len: usize,
    hl: usize,
    proto: u8,
    l4: L4,
    memo: &mut NeighMemo,
    c: &mut Counters,
) -> Fate {
    let e = cx.flows.entry(idx);
    let ip = &mut room[ETH..];
    if proto == TCP {
        let s = e.tcp_state();
        let n = tcp::next(s, dir, l4.flags);
        if n != s {
            e.set_tcp_state(s, n);
        }
        e.track_seq(dir, l4.seq_end);
    }
    e.touch(dir, cx.now);
    let rw = e.raw_rewrite(dir);
    let syn = proto == TCP && matches!(l4.flags, tcp::Class::Syn | tcp::Class::SynAck);
    cx.traffic
        .count(e.rule(), dir, usize::from(rd16(ip, 2)), syn);
    rewrite_headers(ip, hl, proto, &rw);
    c.add(Stat::Forwarded, 1);
    send(cx, room, len, rw.egress, rw.next_hop, memo)
}

/// A fragment after the first: it follows the flow its first fragment went
/// with (addresses only: it carries no L4 header), or waits for it.
fn later_fragment(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    hl: usize,
    (src, dst, proto, id): (Ipv4Addr, Ipv4Addr, u8, u16),
    c: &mut Counters,
) -> Fate {
    let Some((idx, dir)) = cx.frags.lookup(src, dst, proto, id, cx.now) else {
        return Fate::Defer;
    };
    let ip = &mut room[ETH..];
    let e = cx.flows.entry(idx);
    e.touch(dir, cx.now);
    let rw = e.raw_rewrite(dir);
    cx.traffic
        .count(e.rule(), dir, usize::from(rd16(ip, 2)), false);
    rewrite_headers(ip, hl, 0, &rw);
    c.add(Stat::FragmentsForwarded, 1);
    send(
        cx,
        room,
        len,
        rw.egress,
        rw.next_hop,
        &mut NeighMemo::default(),
    )
}

/// See [`super::retry_fragment`].
pub(super) fn retry_fragment(cx: Context<'_>, room: &mut [u8], len: usize) -> Option<Fate> {
    let ip = ipv4::Packet::new_checked(&room[ETH..len]).ok()?;
    let key = (
        ip.src_addr(),
        ip.dst_addr(),
        u8::from(ip.protocol()),
        ip.ident(),
    );
    let hl = ip.header_len();
    cx.frags.lookup(key.0, key.1, key.2, key.3, cx.now)?;
    let mut c = Counters::default();
    Some(later_fragment(cx, room, len, hl, key, &mut c))
}

/// Writes addresses, TTL and ports, and updates both checksums by the
/// precomputed deltas.
#[inline]
fn rewrite_headers(ip: &mut [u8], hl: usize, proto: u8, rw: &RawRewrite) {
    ip[IP_SRC..IP_DST + 4].copy_from_slice(&rw.addrs.to_be_bytes());
    ip[IP_TTL] -= 1;
    let cs = rd16(ip, IP_CSUM);
    wr16(ip, IP_CSUM, Delta::apply(cs, rw.delta.ip));
    let l4 = &mut ip[hl..];
    match proto {
        TCP => {
            l4[..4].copy_from_slice(&rw.ports.to_be_bytes());
            let cs = rd16(l4, 16);
            wr16(l4, 16, Delta::apply(cs, rw.delta.l4));
        }
        UDP => {
            l4[..4].copy_from_slice(&rw.ports.to_be_bytes());
            let cs = rd16(l4, 6);
            if cs != 0 {
                let n = Delta::apply(cs, rw.delta.l4);
                wr16(l4, 6, if n == 0 { 0xffff } else { n });
            }
        }
        _ => {}
    }
}

/// Ethernet addresses for `next_hop` on `port`, or a hold while control
/// resolves it.
#[inline]
fn send(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    port: PortIndex,
    nh: u32,
    memo: &mut NeighMemo,
) -> Fate {
    let mac = cx.dataplane.ports[usize::from(port)].mac;
    room[6..12].copy_from_slice(&mac.0);
    let key = u64::from(port) << 32 | u64::from(nh);
    let m = if memo.key == key {
        Some(memo.mac)
    } else {
        let m = cx.neigh.lookup_v4(port, Ipv4Addr::from(nh));
        if let Some(m) = m {
            *memo = NeighMemo { key, mac: m };
        }
        m
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
            next_hop: IpAddr::V4(Ipv4Addr::from(nh)),
            len: len as u16,
        },
    }
}

/// An ICMP error (destination unreachable, fragmentation needed, time
/// exceeded, parameter problem) whose embedded packet belongs to a tracked
/// flow: the embedded header is restored to what its sender sent, the outer
/// destination becomes that sender, and an outer source that was the
/// rewritten endpoint itself becomes the address its peer knows.
fn icmp_error(cx: Context<'_>, room: &mut [u8], len: usize, c: &mut Counters) -> Fate {
    let outer = ipv4::Packet::new_unchecked(&room[ETH..len]);
    if !outer.verify_checksum() {
        return Fate::Drop(DropReason::Ipv4BadChecksum);
    }
    let hl = outer.header_len();
    let total = usize::from(outer.total_len());
    let osrc = outer.src_addr();
    let icmp_at = ETH + hl;
    let inner_at = icmp_at + icmpv4::HEADER_LEN;
    let end = ETH + total;
    // The embedded IPv4 header and the first 8 bytes of its payload.
    if end < inner_at + 20 {
        return Fate::Drop(DropReason::IcmpMalformed);
    }
    if checksum::checksum(&room[icmp_at..end]) != 0 {
        return Fate::Drop(DropReason::IcmpMalformed);
    }
    let ihl = usize::from(room[inner_at] & 0x0f) * 4;
    let l4_at = inner_at + ihl;
    if room[inner_at] >> 4 != 4 || ihl < 20 || end < l4_at + 8 {
        return Fate::Drop(DropReason::IcmpMalformed);
    }
    let iproto = room[inner_at + 9];
    let (isport, idport) = match iproto {
        TCP | UDP => (rd16(room, l4_at), rd16(room, l4_at + 2)),
        _ => (0, 0),
    };
    let inner = FlowKey {
        src: Ipv4Addr::from(rd32(room, inner_at + IP_SRC)),
        dst: Ipv4Addr::from(rd32(room, inner_at + IP_DST)),
        sport: isport,
        dport: idport,
        proto: iproto,
    };
    let Some((idx, d)) = cx.flows.lookup(&inner.reversed()) else {
        return Fate::Drop(DropReason::IcmpNoFlow);
    };
    let e = cx.flows.entry(idx);
    let rw = e.rewrite(d);
    // The embedded packet went the other way, already rewritten; restore it.
    let original = rw.to.reversed();
    let this_side = inner.reversed(); // the key of direction d
    {
        let ip = &mut room[inner_at..];
        ip[IP_SRC..IP_SRC + 4].copy_from_slice(&original.src.octets());
        ip[IP_DST..IP_DST + 4].copy_from_slice(&original.dst.octets());
        wr16(ip, IP_CSUM, 0);
        let cs = checksum::checksum(&ip[..ihl]);
        wr16(ip, IP_CSUM, cs);
    }
    if matches!(iproto, TCP | UDP) {
        let delta = Delta::between(&inner, &original).l4;
        let quoted = end - l4_at;
        let l4 = &mut room[l4_at..end];
        wr16(l4, 0, original.sport);
        wr16(l4, 2, original.dport);
        let at = if iproto == TCP { 16 } else { 6 };
        if quoted >= at + 2 {
            let cs = rd16(l4, at);
            if !(iproto == UDP && cs == 0) {
                wr16(l4, at, Delta::apply(cs, delta));
            }
        }
    }
    // Outer header.
    let ip = &mut room[ETH..];
    if ip[IP_TTL] <= 1 {
        return Fate::Drop(DropReason::TtlExceeded);
    }
    ip[IP_TTL] -= 1;
    if osrc == this_side.src {
        ip[IP_SRC..IP_SRC + 4].copy_from_slice(&rw.to.src.octets());
    }
    ip[IP_DST..IP_DST + 4].copy_from_slice(&original.src.octets());
    wr16(ip, IP_CSUM, 0);
    let cs = checksum::checksum(&ip[..hl]);
    wr16(ip, IP_CSUM, cs);
    wr16(room, icmp_at + 2, 0);
    let cs = checksum::checksum(&room[icmp_at..end]);
    wr16(room, icmp_at + 2, cs);
    e.touch(d, cx.now);
    c.add(Stat::IcmpTranslated, 1);
    send(
        cx,
        room,
        len,
        rw.egress,
        u32::from(rw.next_hop),
        &mut NeighMemo::default(),
    )
}
