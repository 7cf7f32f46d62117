//! ICMP Time Exceeded (ICMPv6 Time Exceeded, type 3) that Sluice itself
//! sends when a packet's TTL / hop limit runs out here (RFC 792, RFC 4443,
//! RFC 1812 4.3.2.7): from the receiving port's own address of the
//! family, so traceroute shows Sluice's hop. Built in place over the
//! packet, rate limited per worker, and never about an ICMP error.

use super::icmp_error::is_error;
use super::l3::{Header, Ip, ETH};
use super::l4::wr16;
use super::{Context, Counters, DropReason, Fate, Stat};
use crate::neigh::PortIndex;
use crate::wire::checksum;
use std::net::IpAddr;

const ICMP_HEADER: usize = 8;
/// IPv6 errors fill at most the minimum MTU (RFC 4443 2.4 (c)).
const MIN_MTU_V6: usize = 1280;
/// Errors a worker sends per [`WINDOW_MS`] at most.
pub(super) const PER_WINDOW: u32 = 10;
/// The rate limiter's window, in ticks (ms).
pub(super) const WINDOW_MS: u32 = 10;

/// A worker's budget of ICMP errors it originates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Limiter {
    window: u32,
    sent: u32,
}

impl Limiter {
    /// Takes one error from the budget of the window `now` falls in.
    pub(super) fn take(&mut self, now: u32) -> bool {
        let w = now / WINDOW_MS;
        if w != self.window {
            (self.window, self.sent) = (w, 0);
        }
        self.sent += 1;
        self.sent <= PER_WINDOW
    }
}

/// Answers the packet in `room` (header `h`), whose TTL / hop limit would
/// reach 0 here, with a Time Exceeded to its sender; the packet itself is
/// dropped as `ttl_exceeded` when no error may be sent.
pub(super) fn time_exceeded<A: Ip>(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    h: &Header<A>,
    c: &mut Counters,
) -> Fate {
    let drop = Fate::Drop(DropReason::TtlExceeded);
    let icmp = if A::V6 { 58 } else { 1 };
    if h.proto == icmp && is_error(A::V6, room.get(ETH + h.l4).copied().unwrap_or(0)) {
        return drop;
    }
    if h.frag.is_some_and(|f| !f.first) || martian(h.src.into()) {
        return drop;
    }
    let Some(src) = cx.dataplane.address_of::<A>(rx_port) else {
        return drop;
    };
    // IPv4 quotes the header and 8 bytes, IPv6 what fits 1280 bytes.
    let hl = A::HEADER_LEN;
    let quote = if A::V6 {
        h.total.min(MIN_MTU_V6 - hl - ICMP_HEADER)
    } else {
        (h.l4 + 8).min(h.total)
    };
    let at = ETH + hl + ICMP_HEADER;
    if at + quote > room.len() || !c.icmp_limit.take(cx.now) {
        return drop;
    }
    room.copy_within(ETH..ETH + quote, at);
    let msg_len = ICMP_HEADER + quote;
    let ip = &mut room[ETH..];
    ip[..hl].fill(0);
    if A::V6 {
        ip[0] = 0x60;
        wr16(ip, 4, msg_len as u16);
        ip[6] = icmp;
        ip[7] = 64;
        ip[8..24].copy_from_slice(&src.bits().to_be_bytes());
        ip[24..40].copy_from_slice(&h.src.bits().to_be_bytes());
    } else {
        ip[0] = 0x45;
        wr16(ip, 2, (hl + msg_len) as u16);
        ip[8] = 64;
        ip[9] = icmp;
        ip[12..16].copy_from_slice(&(src.bits() as u32).to_be_bytes());
        ip[16..20].copy_from_slice(&(h.src.bits() as u32).to_be_bytes());
        let cs = checksum::checksum(&ip[..hl]);
        wr16(ip, 10, cs);
    }
    let msg = &mut ip[hl..hl + msg_len];
    msg[..ICMP_HEADER].fill(0);
    msg[0] = if A::V6 { 3 } else { 11 };
    let body = checksum::sum(msg);
    let sum = if A::V6 {
        let (IpAddr::V6(s), IpAddr::V6(d)) = (src.into(), h.src.into()) else {
            return drop;
        };
        checksum::combine(checksum::pseudo_header_v6(s, d, 58, msg_len as u32), body)
    } else {
        body
    };
    wr16(msg, 2, !checksum::fold(sum));
    c.add(Stat::TimeExceededSent, 1);
    super::host::route_reply(cx, room, ETH + hl + msg_len, h.src.into())
}

/// A source no error may go to.
fn martian(a: IpAddr) -> bool {
    a.is_unspecified()
        || a.is_multicast()
        || a.is_loopback()
        || matches!(a, IpAddr::V4(v) if v.is_broadcast())
}
