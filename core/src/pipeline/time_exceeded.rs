//! The ICMP errors Sluice itself sends (RFC 792, RFC 4443, RFC 1812
//! 4.3.2.7): Time Exceeded when a packet's TTL / hop limit runs out here,
//! so traceroute shows Sluice's hop, and "fragmentation needed" / Packet
//! Too Big when a packet is larger than its egress port's MTU. From the
//! receiving port's own address of the family; built in place over the
//! packet, rate limited per worker, and never about an ICMP error.

use super::fast::Oversize;
use super::icmp_error::{icmp_sum, is_error};
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

/// What an error Sluice originates says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Error {
    /// The TTL / hop limit ran out here.
    TimeExceeded,
    /// Larger than the egress port's MTU (given), and not to be
    /// fragmented here: ICMP "fragmentation needed" / ICMPv6 Packet Too Big.
    TooBig(u16),
}

/// What an error needs of the packet it is about.
#[derive(Debug, Clone, Copy)]
pub(super) struct About<A> {
    /// Its sender, the error's destination.
    pub(super) src: A,
    /// Its IP length, header included.
    pub(super) total: usize,
    /// Offset of its upper-layer header from its IP header.
    pub(super) l4: usize,
    /// Its upper-layer protocol.
    pub(super) proto: u8,
    /// A fragment other than the first: no error is sent about it.
    pub(super) later_fragment: bool,
}

impl<A: Ip> About<A> {
    pub(super) fn of(h: &Header<A>) -> About<A> {
        About {
            src: h.src,
            total: h.total,
            l4: h.l4,
            proto: h.proto,
            later_fragment: h.frag.is_some_and(|f| !f.first),
        }
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
    send_error(cx, rx_port, room, About::of(h), Error::TimeExceeded, c)
        .unwrap_or(Fate::Drop(DropReason::TtlExceeded))
}

/// Replaces the packet in `room` (`about`) with ICMP error `err` to its
/// sender, from `rx_port`'s own address. `None` when none may be sent: an
/// ICMP error is never about an ICMP error, a later fragment or a martian
/// source, needs an address of the family on the port, and at most
/// [`PER_WINDOW`] go out per [`WINDOW_MS`] per worker.
pub(super) fn send_error<A: Ip>(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    about: About<A>,
    err: Error,
    c: &mut Counters,
) -> Option<Fate> {
    let icmp = if A::V6 { 58 } else { 1 };
    if about.proto == icmp && is_error(A::V6, room.get(ETH + about.l4).copied().unwrap_or(0)) {
        return None;
    }
    if about.later_fragment || martian(about.src.into()) {
        return None;
    }
    let src = cx.dataplane.address_of::<A>(rx_port)?;
    // IPv4 quotes the header and 8 bytes, IPv6 what fits 1280 bytes.
    let hl = A::HEADER_LEN;
    let quote = if A::V6 {
        about.total.min(MIN_MTU_V6 - hl - ICMP_HEADER)
    } else {
        (about.l4 + 8).min(about.total)
    };
    let at = ETH + hl + ICMP_HEADER;
    if at + quote > room.len() || !c.icmp_limit.take(cx.now) {
        return None;
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
        ip[24..40].copy_from_slice(&about.src.bits().to_be_bytes());
    } else {
        ip[0] = 0x45;
        wr16(ip, 2, (hl + msg_len) as u16);
        ip[8] = 64;
        ip[9] = icmp;
        ip[12..16].copy_from_slice(&(src.bits() as u32).to_be_bytes());
        ip[16..20].copy_from_slice(&(about.src.bits() as u32).to_be_bytes());
        let cs = checksum::checksum(&ip[..hl]);
        wr16(ip, 10, cs);
    }
    let msg = &mut ip[hl..hl + msg_len];
    msg[..ICMP_HEADER].fill(0);
    match (err, A::V6) {
        (Error::TimeExceeded, false) => msg[0] = 11,
        (Error::TimeExceeded, true) => msg[0] = 3,
        (Error::TooBig(mtu), false) => {
            (msg[0], msg[1]) = (3, 4);
            wr16(msg, 6, mtu);
        }
        (Error::TooBig(mtu), true) => {
            msg[0] = 2;
            msg[4..8].copy_from_slice(&u32::from(mtu).to_be_bytes());
        }
    }
    wr16(msg, 2, !checksum::fold(icmp_sum(src, about.src, msg)));
    c.add(
        match err {
            Error::TimeExceeded => Stat::TimeExceededSent,
            Error::TooBig(_) => Stat::TooBigSent,
        },
        1,
    );
    Some(super::host::route_reply(
        cx,
        room,
        ETH + hl + msg_len,
        about.src.into(),
    ))
}

/// A packet of `total` IP bytes in `room`, to leave on a port whose MTU is
/// `mtu`: IPv6, or IPv4 with DF set, gets the ICMP error that makes its
/// sender learn the path MTU (or is dropped as `mtu_exceeded` when none
/// may be sent); IPv4 without DF is fragmented ([`super::split`]).
#[inline(never)]
pub(super) fn too_big<A: Ip>(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    about: About<A>,
    mtu: u16,
    c: &mut Counters,
) -> Oversize {
    let df = A::V6 || room.get(ETH + 6).is_some_and(|f| f & 0x40 != 0);
    if !df {
        return Oversize::Split(mtu);
    }
    let sent = send_error(cx, rx_port, room, about, Error::TooBig(mtu), c);
    Oversize::Refused(sent.unwrap_or(Fate::Drop(DropReason::MtuExceeded)))
}

/// A source no error may go to.
fn martian(a: IpAddr) -> bool {
    a.is_unspecified()
        || a.is_multicast()
        || a.is_loopback()
        || matches!(a, IpAddr::V4(v) if v.is_broadcast())
}
