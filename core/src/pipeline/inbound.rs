//! The miss path of inbound flows, written once for both families: a first
//! packet to a frontend matches a service, passes the security rules,
//! picks a member of the frontend's family and inserts the flow under both
//! keys. What no inbound service takes goes to the outbound side.

use super::l3::{Header, Ip, ETH};
use super::l4::{self, L4, TCP, UDP};
use super::{Context, Counters, DropReason, Stat};
use crate::config::Direction;
use crate::family::Dir;
use crate::flow::{tcp, FlowKey, NewFlow};
use crate::neigh::PortIndex;
use crate::wire::IpProtocol;

/// What the flow part of the full path found for a packet: its flow
/// (entry, direction of this packet) and L4 header.
pub(super) type Tracked = ((u32, Dir), L4);

/// The flow a non-ICMP packet belongs to, created if it is the first
/// packet of an inbound (or outbound) flow. `missed`: the key's hash, when
/// the burst's lookup pass found no flow for it. `Err` is the drop reason,
/// or `None` for a probe reply.
/// Always inlined: its callers are one per family, and the call and its
/// returned tuple cost a new flow more than the copy.
#[inline(always)]
pub(super) fn track<A: Ip>(
    cx: &Context<'_>,
    rx_port: PortIndex,
    room: &[u8],
    h: &Header<A>,
    owned: bool,
    missed: Option<u64>,
    c: &mut Counters,
) -> Result<Tracked, Option<DropReason>> {
    let first_fragment = h.frag.is_some();
    let Some(l4) = l4::parse(room, ETH + h.l4, h.total - h.l4, h.proto) else {
        return Err(Some(DropReason::L4Malformed));
    };
    if owned && h.proto == TCP && cx.dataplane.is_probe_reply(h.dst.into(), l4.dport) {
        return Err(first_fragment.then_some(DropReason::Fragment));
    }
    let key = FlowKey {
        src: h.src,
        dst: h.dst,
        sport: l4.sport,
        dport: l4.dport,
        proto: h.proto,
    };
    let found = if missed.is_some() {
        None
    } else {
        A::flows(cx).lookup(&key)
    };
    let found = match found {
        Some(found) => found,
        // A frontend takes flows on whichever port they arrive (an internal
        // frontend is often reached through a route via Sluice).
        None => {
            new_flow(cx, rx_port, (&key, missed), owned, first_fragment, l4, c).map_err(Some)?
        }
    };
    Ok((found, l4))
}

/// Creates the flow a first packet to a frontend asks for: service, TCP
/// SYN, security rules, member, routes, insert. The state machine starts
/// at SynSent, so the SYN itself then applies as no change. `hash`: the
/// key's, when the caller has it.
#[inline(never)]
fn new_flow<A: Ip>(
    cx: &Context<'_>,
    rx_port: PortIndex,
    (key, hash): (&FlowKey<A>, Option<u64>),
    owned: bool,
    fragment: bool,
    l4: L4,
    c: &mut Counters,
) -> Result<(u32, Dir), DropReason> {
    let proto = key.proto;
    let Some((sid, svc)) = cx
        .services
        .lookup(key.dst.into(), IpProtocol::from(proto), key.dport)
    else {
        if fragment {
            return Err(DropReason::Fragment);
        }
        return super::outbound::no_service(*cx, rx_port, (key, hash), owned, &l4, c);
    };
    if fragment && !svc.fragments {
        return Err(DropReason::Fragment);
    }
    // Mid-stream: a segment of a connection this instance has no record
    // of (a lost sync record, an instance that just joined) continues on
    // the member the same Maglev table gives every instance.
    let pickup = proto == TCP && l4.flags != tcp::Class::Syn;
    if pickup && !(svc.pickup && matches!(l4.flags, tcp::Class::Ack | tcp::Class::Fin)) {
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
    let Some((member, maddr)) = svc.pick(key) else {
        return Err(DropReason::NoHealthyMember);
    };
    let bport = if svc.backend_port == 0 {
        key.dport
    } else {
        svc.backend_port
    };
    let mut reply = FlowKey {
        src: if svc.floating_ip { key.dst } else { maddr },
        dst: key.src,
        sport: bport,
        dport: key.sport,
        proto,
    };
    // Hairpin: a client on an internal subnet (a member of the pool, or a
    // host beside them) would get the member's reply straight, not through
    // Sluice. Its flow leaves from the frontend address instead, on a port
    // no other flow to that member's port uses.
    // Such a client comes in on an internal port.
    let inside = cx.dataplane.ports[rx_port.index()].role != crate::config::Role::External;
    let hairpin = inside
        && !svc.floating_ip
        && (proto == TCP || proto == UDP)
        && cx.dataplane.is_internal(key.src.into());
    if hairpin {
        reply.dst = key.dst;
        reply.dport = hairpin_port(cx, &reply, key).ok_or(DropReason::HairpinExhausted)?;
    }
    let (Some((p0, nh0)), Some((p1, nh1))) =
        (cx.dataplane.route_of(maddr), cx.dataplane.route_of(key.src))
    else {
        return Err(DropReason::NoRoute);
    };
    let f = NewFlow {
        key: [*key, reply],
        egress: [p0, p1],
        next_hop: [nh0, nh1],
        state: if pickup {
            tcp::State::Unconfirmed
        } else if proto == TCP {
            tcp::State::SynSent
        } else {
            tcp::State::Other
        },
        tcp_reset: svc.tcp_reset,
        idle_timeout: svc.idle_timeout,
        rule: crate::lb::snat::RuleRef::Service(sid),
        member,
        now: cx.now,
        generation: cx.services.generation,
        snat: false,
        rfc_timers: false,
    };
    let (idx, hashes) = A::flows(cx)
        .insert_hashed(&f, [hash, None])
        .map_err(|_| DropReason::FlowTableFull)?;
    if hairpin {
        hairpin_claimed(cx, &reply, idx, c)?;
    }
    c.flow_created::<A>(idx, hashes);
    cx.traffic.flow(cx.services.traffic_slot(sid, member));
    if pickup {
        c.add(Stat::PickedUp, 1);
    }
    Ok((idx, Dir::Original))
}

/// Confirms a hairpin flow's port after its insert: another worker may
/// have taken the same port for the same member at this moment, and the
/// one that sees the other gives way.
#[cold]
#[inline(never)]
fn hairpin_claimed<A: Ip>(
    cx: &Context<'_>,
    reply: &FlowKey<A>,
    idx: u32,
    c: &mut Counters,
) -> Result<(), DropReason> {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    if A::flows(cx).has_other(reply, idx) {
        A::flows(cx).withdraw(idx);
        return Err(DropReason::HairpinExhausted);
    }
    c.add(Stat::HairpinCreated, 1);
    Ok(())
}

/// A source port on the frontend for a hairpin flow whose reply key is
/// `reply` (its destination port to be chosen): free when no flow has that
/// reply key. Tried from a place the client's key picks, at most 64. In a
/// cluster, only ports `p` with `p % instances == instance` are this
/// instance's to take, so two instances never give two clients one port.
#[cold]
#[inline(never)]
fn hairpin_port<A: Ip>(cx: &Context<'_>, reply: &FlowKey<A>, key: &FlowKey<A>) -> Option<u16> {
    const FIRST: u32 = 1024;
    let span = 65536 - FIRST;
    let (inst, n) = cx.sync.map_or((0, 1), |s| {
        (u32::from(s.instance), u32::from(s.instances.max(1)))
    });
    let start = (key.hash() >> 32) as u32 % span;
    (0..64u32)
        .map(|j| FIRST + (start + j * 7919) % span)
        .map(|p| p - p % n + inst)
        .filter(|&p| (FIRST..65536).contains(&p))
        .map(|p| p as u16)
        .find(|&p| {
            let k = FlowKey { dport: p, ..*reply };
            A::flows(cx).lookup(&k).is_none()
        })
}
