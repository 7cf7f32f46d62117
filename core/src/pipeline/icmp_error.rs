//! ICMP and ICMPv6 errors about tracked flows (destination unreachable,
//! fragmentation needed / packet too big, time exceeded, parameter
//! problem), written once for both families: the embedded header is
//! restored to what its sender sent, the outer destination becomes that
//! sender, and an outer source that was the rewritten endpoint itself
//! becomes the address its peer knows. Checksums: the embedded L4 one by
//! delta, the IPv4 headers and the ICMP message (with the IPv6
//! pseudo-header) recomputed.

use super::fast::{send_to, NeighMemo};
use super::l3::{Header, Ip, ETH};
use super::l4::{rd16, wr16, TCP, UDP};
use super::{Context, Counters, DropReason, Fate, Stat};
use crate::family::Family;
use crate::flow::{Delta, FlowKey};
use crate::wire::checksum;
use std::net::IpAddr;

/// Length of the ICMP header before the quoted packet.
const ICMP_HEADER: usize = 8;

/// True for the ICMP (`v6`: ICMPv6) types that are errors quoting a packet.
pub(super) fn is_error(v6: bool, icmp_type: u8) -> bool {
    if v6 {
        (1..=4).contains(&icmp_type)
    } else {
        crate::wire::icmpv4::Message::from(icmp_type).is_error()
    }
}

/// The ICMP checksum over `msg` sent from `src` to `dst` (IPv6 covers a
/// pseudo-header, IPv4 the message alone).
pub(super) fn icmp_sum<A: Family>(src: A, dst: A, msg: &[u8]) -> u32 {
    let body = checksum::sum(msg);
    match (src.into(), dst.into()) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            checksum::combine(checksum::pseudo_header_v6(s, d, 58, msg.len() as u32), body)
        }
        _ => body,
    }
}

/// Recomputes an IPv4 header's checksum (IPv6 has none).
fn fix_header<A: Family>(ip: &mut [u8], hl: usize) {
    if !A::V6 {
        wr16(ip, 10, 0);
        let cs = checksum::checksum(&ip[..hl]);
        wr16(ip, 10, cs);
    }
}

/// Translates the ICMP error `h` (already parsed) about a tracked flow.
pub(super) fn icmp_error<A: Ip>(
    cx: Context<'_>,
    room: &mut [u8],
    len: usize,
    h: &Header<A>,
    c: &mut Counters,
) -> Fate {
    if !A::V6 && checksum::checksum(&room[ETH..ETH + h.l4]) != 0 {
        return Fate::Drop(DropReason::Ipv4BadChecksum);
    }
    let icmp_at = ETH + h.l4;
    let inner_at = icmp_at + ICMP_HEADER;
    let end = ETH + h.total;
    // The embedded IP header and the first 8 bytes of its payload.
    if end < inner_at + A::HEADER_LEN || end > len {
        return Fate::Drop(DropReason::IcmpMalformed);
    }
    if checksum::fold(icmp_sum(h.src, h.dst, &room[icmp_at..end])) != 0xffff {
        return Fate::Drop(DropReason::IcmpMalformed);
    }
    let (version, ihl, iproto) = if A::V6 {
        (6, 40, room[inner_at + 6])
    } else {
        let ihl = usize::from(room[inner_at] & 0x0f) * 4;
        (4, ihl, room[inner_at + 9])
    };
    let l4_at = inner_at + ihl;
    if room[inner_at] >> 4 != version || ihl < A::HEADER_LEN || end < l4_at + 8 {
        return Fate::Drop(DropReason::IcmpMalformed);
    }
    let (isport, idport) = match iproto {
        TCP | UDP => (rd16(room, l4_at), rd16(room, l4_at + 2)),
        _ => (0, 0),
    };
    let at = inner_at + A::SRC;
    let w = if A::V6 { 16 } else { 4 };
    let inner = FlowKey {
        src: A::read(&room[at..]),
        dst: A::read(&room[at + w..]),
        sport: isport,
        dport: idport,
        proto: iproto,
    };
    let Some((idx, d)) = A::flows(&cx).lookup(&inner.reversed()) else {
        return Fate::Drop(DropReason::IcmpNoFlow);
    };
    let e = A::flows(&cx).entry(idx);
    let rw = e.rewrite(d);
    // The embedded packet went the other way, already rewritten; restore it.
    let original = rw.to.reversed();
    let this_side = inner.reversed(); // the key of direction d
    {
        let mut words = original.words();
        let ip = &mut room[inner_at..];
        for (i, word) in words.as_mut()[..A::ADDR_WORDS].iter().enumerate() {
            let o = A::SRC + 8 * i;
            ip[o..o + 8].copy_from_slice(&word.to_be_bytes());
        }
        fix_header::<A>(ip, ihl);
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
    if h.ttl <= 1 {
        return Fate::Drop(DropReason::TtlExceeded);
    }
    let osrc = if h.src == this_side.src {
        rw.to.src
    } else {
        h.src
    };
    let odst = original.src;
    {
        let ip = &mut room[ETH..];
        ip[A::TTL] -= 1;
        let mut w = crate::flow::FlowKey {
            src: osrc,
            dst: odst,
            sport: 0,
            dport: 0,
            proto: 0,
        }
        .words();
        for (i, word) in w.as_mut()[..A::ADDR_WORDS].iter().enumerate() {
            let o = A::SRC + 8 * i;
            ip[o..o + 8].copy_from_slice(&word.to_be_bytes());
        }
        fix_header::<A>(ip, h.l4);
    }
    wr16(room, icmp_at + 2, 0);
    let cs = !checksum::fold(icmp_sum(osrc, odst, &room[icmp_at..end]));
    wr16(room, icmp_at + 2, cs);
    e.touch(d, cx.now);
    c.add(Stat::IcmpTranslated, 1);
    let nh = rw.next_hop(|| cx.dataplane.gateway_of());
    send_to(cx, room, len, rw.egress, nh, &mut NeighMemo::default())
}
