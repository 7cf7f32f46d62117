//! ICMP errors about tracked flows (IPv4): the embedded header is restored
//! to what its sender sent, the outer destination becomes that sender, and
//! an outer source that was the rewritten endpoint itself becomes the
//! address its peer knows.

use super::fast::{send_to, NeighMemo};
use super::l3::ETH;
use super::l4::{rd16, rd32, wr16, TCP, UDP};
use super::{Context, Counters, DropReason, Fate, Stat};
use crate::flow::{Delta, FlowKey};
use crate::wire::{checksum, icmpv4, ipv4};
use std::net::Ipv4Addr;

/// Offsets of fields in the IPv4 header.
const IP_TTL: usize = 8;
const IP_CSUM: usize = 10;
const IP_SRC: usize = 12;
const IP_DST: usize = 16;

/// An ICMP error (destination unreachable, fragmentation needed, time
/// exceeded, parameter problem) whose embedded packet belongs to a tracked
/// flow: the embedded header is restored to what its sender sent, the outer
/// destination becomes that sender, and an outer source that was the
/// rewritten endpoint itself becomes the address its peer knows.
pub(super) fn icmpv4_error(cx: Context<'_>, room: &mut [u8], len: usize, c: &mut Counters) -> Fate {
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
    let nh = rw.next_hop(|| cx.dataplane.gateway_of());
    send_to(cx, room, len, rw.egress, nh, &mut NeighMemo::default())
}
