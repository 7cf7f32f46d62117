//! The full path per family: what the fast path did not take. Each
//! family's prelude (ICMP, the IPv4 header checksum, fragments) is its own;
//! the flow part ([`inbound::track`]) and the forward are shared.

use super::fast::{forward_full, NeighMemo};
use super::l3::{Header, Ip, ETH};
use super::{fragment, host, icmp_error, inbound, Context, Counters, DropReason, Fate, Slowpath};
use crate::family::{V4, V6};
use crate::neigh::PortIndex;
use std::net::IpAddr;

/// IPv4 that is not ARP: flows first, then new flows, then Sluice's own
/// services (echo).
pub(super) fn ipv4_input(
    cx: &Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    c: &mut Counters,
    lookup: (Option<u64>, &mut NeighMemo),
) -> Fate {
    let h = match V4::parse(&room[ETH..len]) {
        Ok(h) => h,
        Err(r) => return Fate::Drop(r),
    };
    let owned = cx.dataplane.ports[usize::from(rx_port)].owns(h.dst);
    if h.proto == V4::ICMP {
        if owned && h.frag.is_some() {
            return Fate::Drop(DropReason::Fragment);
        }
        let t = room.get(ETH + h.l4).copied().unwrap_or(0);
        if h.frag.is_none() && icmp_error::is_error(false, t) {
            let f = icmp_error::icmp_error(*cx, room, len, &h, c);
            return punt_or(cx, rx_port, h.dst.into(), f);
        }
        if owned {
            let f = host::ipv4_input(*cx, rx_port, room, len, c);
            return punt_or(cx, rx_port, h.dst.into(), f);
        }
        // ICMP is never balanced, and outbound rules carry TCP and UDP.
        return Fate::Drop(super::outbound::not_forwarded(
            *cx, rx_port, h.src, h.dst, false,
        ));
    }
    if !super::l3::v4_header_ok(&room[ETH..ETH + h.l4]) {
        return Fate::Drop(DropReason::Ipv4BadChecksum);
    }
    flow_input(cx, rx_port, room, len, &h, owned, lookup, c)
}

/// IPv6 that is not neighbour discovery or echo for Sluice: flows first,
/// then new flows. Extension headers are walked to the transport header.
pub(super) fn ipv6_input<S: Slowpath>(
    cx: &Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    slow: &mut S,
    c: &mut Counters,
    lookup: (Option<u64>, &mut NeighMemo),
) -> Fate {
    let h = match V6::parse(&room[ETH..len]) {
        Ok(h) => h,
        Err(r) => return Fate::Drop(r),
    };
    if h.proto == V6::ICMP {
        // Errors about tracked flows are translated, whoever they are
        // addressed to (a router on the client's path sends a Packet Too
        // Big for a reply to the frontend); the rest is Sluice's own (ND,
        // echo).
        let t = room.get(ETH + h.l4).copied().unwrap_or(0);
        if h.frag.is_none() && icmp_error::is_error(true, t) {
            let f = icmp_error::icmp_error(*cx, room, len, &h, c);
            return punt_or(cx, rx_port, h.dst.into(), f);
        }
        let f = host::ipv6_input(*cx, rx_port, room, len, slow, c);
        return punt_or(cx, rx_port, h.dst.into(), f);
    }
    let owned = cx.dataplane.ports[usize::from(rx_port)].owns(h.dst);
    flow_input(cx, rx_port, room, len, &h, owned, lookup, c)
}

/// The part both families share once their prelude is done: TTL / hop
/// limit (checked once here for every forwarded packet, deferred fragments
/// included, before any flow is created for it), later fragments, the
/// flow (found or created), the first fragment's record, the forward.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn flow_input<A: Ip>(
    cx: &Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    h: &Header<A>,
    owned: bool,
    (missed, memo): (Option<u64>, &mut NeighMemo),
    c: &mut Counters,
) -> Fate {
    if h.ttl <= 1 {
        return super::time_exceeded::time_exceeded(*cx, rx_port, room, h, c);
    }
    if h.frag.is_some_and(|f| !f.first) {
        return fragment::later_fragment(*cx, room, len, h, c);
    }
    if owned && h.proto == super::l4::UDP && h.frag.is_none() {
        if let Some(s) = cx.sync {
            if let Some(f) = sync_input(s, cx, room, h, c) {
                return f;
            }
        }
    }
    let (found, l4) = match inbound::track(cx, rx_port, room, h, owned, missed, c) {
        Ok(t) => t,
        Err(None) => return Fate::Probe,
        Err(Some(r)) => return punt_or(cx, rx_port, h.dst.into(), Fate::Drop(r)),
    };
    if let Some(f) = h.frag {
        // Fragments are forwarded on rules that take them (HA ports, or
        // `fragments = true`); the later ones follow this one's flow.
        let (idx, dir) = found;
        if !cx.services.takes_fragments(A::flows(cx).entry(idx).rule()) {
            return Fate::Drop(DropReason::Fragment);
        }
        A::frags(cx).record(h.src, h.dst, h.proto, f.id, idx, dir, cx.now);
    }
    forward_full::<A>(cx, found, room, len, h.l4, h.proto, l4, memo, c)
}

/// `fate`, or [`Fate::Punt`] when it drops what is addressed to an
/// interface address of `rx_port` that its kernel interface holds, for a
/// reason that means "not the data plane's": no service there (BGP, BFD,
/// SSH), ICMP it does not answer (echo replies, errors about the kernel's
/// own connections), neighbour discovery for the kernel's link-local
/// address.
#[inline]
fn punt_or(cx: &Context<'_>, rx_port: PortIndex, dst: IpAddr, fate: Fate) -> Fate {
    match fate {
        Fate::Drop(
            DropReason::NoService
            | DropReason::IcmpUnhandled
            | DropReason::IcmpNoFlow
            | DropReason::NdNotOurs,
        ) if kernel_takes(cx, rx_port, dst) => Fate::Punt,
        f => f,
    }
}

/// The kernel interface of `rx_port` holds `dst`: one of the port's
/// interface addresses, or (IPv6) a link-local or solicited-node address
/// the kernel has there of its own.
#[cold]
fn kernel_takes(cx: &Context<'_>, rx_port: PortIndex, dst: IpAddr) -> bool {
    let p = &cx.dataplane.ports[usize::from(rx_port)];
    p.kernel
        && match dst {
            IpAddr::V4(_) => p.kernel_owns(dst),
            IpAddr::V6(a) => {
                p.kernel_owns(dst)
                    || a.segments()[0] & 0xffc0 == 0xfe80
                    || a.segments()[..6] == [0xff02, 0, 0, 0, 0, 1]
            }
        }
}

/// A datagram to the sync port of an own address: a peer's flow records,
/// applied now (see [`crate::sync::receive`]). `None` for any other port.
#[cold]
#[inline(never)]
fn sync_input<A: Ip>(
    s: &crate::sync::Sync,
    cx: &Context<'_>,
    room: &[u8],
    h: &Header<A>,
    c: &mut Counters,
) -> Option<Fate> {
    let u = room.get(ETH + h.l4..ETH + h.total)?;
    if u.len() < 8 || u16::from_be_bytes([u[2], u[3]]) != s.port {
        return None;
    }
    let payload = &u[8..];
    crate::sync::receive(s, cx, h.src.into(), payload, &mut |hash| {
        c.inserted.note(hash)
    });
    c.add(super::Stat::SyncReceived, 1);
    Some(Fate::Consumed)
}
