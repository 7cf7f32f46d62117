//! Outbound SNAT in the pipeline: a new flow from the internal side to an
//! address off the internal network leaves from a public port of its
//! member's blocks when an outbound rule covers the member and protocol,
//! and is dropped otherwise; a UDP datagram to a public port from a new
//! port of an address the port's cone mapping was made for gets in.
//!
//! The flow table is the port allocator: see `lb::snat`. Written once for
//! both families; each family's flows and cone mappings live in its own
//! table.

use super::l3::Ip;
use super::l4::{L4, TCP, UDP};
use super::{Context, Counters, DropReason, Stat};
use crate::config::{Direction, Role};
use crate::family::{Dir, Family};
use crate::flow::{tcp, FlowKey, NewFlow};
use crate::lb::snat::{RuleRef, SnatMember, CONE};
use crate::neigh::PortIndex;
use std::sync::atomic::Ordering::Relaxed;

/// Ports tried per new flow at most before it fails as exhausted: bounds
/// the work a member whose ports are all busy towards one destination can
/// cause per packet.
pub const MAX_PROBES: u32 = 4096;

/// A new flow no inbound rule serves: SNAT, a cone reply, or the drop that
/// says why not. `Ok` is (entry, direction of this packet); `hash`: the
/// key's, when the caller has it. Out of line: inlined, it makes every
/// inbound new flow pay for its registers.
#[inline(never)]
pub(super) fn no_service<A: Ip>(
    cx: Context<'_>,
    rx_port: PortIndex,
    (key, hash): (&FlowKey<A>, Option<u64>),
    owned: bool,
    l4: &L4,
    c: &mut Counters,
) -> Result<(u32, Dir), DropReason> {
    let snat = &cx.services.snat;
    if snat.is_public(key.dst) {
        if key.proto == UDP {
            return cone_reply(cx, key, c);
        }
        return Err(DropReason::SnatNoMapping);
    }
    if !owned && leaves(cx, rx_port, key.dst) && (key.proto == TCP || key.proto == UDP) {
        if let Some((mi, m)) = snat.member(key.src, key.proto) {
            return snat_flow(cx, (key, hash), l4, mi, m, c);
        }
    }
    Err(not_forwarded(cx, rx_port, key.src, key.dst, owned))
}

/// From the internal side to an address off the internal network.
#[inline]
fn leaves<A: Family>(cx: Context<'_>, rx_port: PortIndex, dst: A) -> bool {
    cx.dataplane.ports[usize::from(rx_port)].role == Role::Internal
        && !cx.dataplane.is_internal(dst.into())
}

/// Why a packet that creates no flow is dropped: leaving without an
/// outbound rule for it (`egress_denied`, or `snat_protocol` when the
/// member's rule does not cover the protocol), for Sluice with no service
/// there, or for no one.
pub(super) fn not_forwarded<A: Family>(
    cx: Context<'_>,
    rx_port: PortIndex,
    src: A,
    dst: A,
    owned: bool,
) -> DropReason {
    if owned {
        DropReason::NoService
    } else if !leaves(cx, rx_port, dst) {
        DropReason::NoRule
    } else if cx.services.snat.has_rule(src) {
        DropReason::SnatProtocol
    } else {
        DropReason::EgressDenied
    }
}

/// The cone mapping key of a member's (address, port) towards `remote`
/// (direction 0), and of `remote` towards the public (address, port)
/// (direction 1).
fn cone_keys<A: Family>(member: (A, u16), remote: A, public: (A, u16)) -> [FlowKey<A>; 2] {
    [
        FlowKey {
            src: member.0,
            dst: remote,
            sport: member.1,
            dport: 0,
            proto: CONE,
        },
        FlowKey {
            src: remote,
            dst: public.0,
            sport: 0,
            dport: public.1,
            proto: CONE,
        },
    ]
}

/// The cone mapping of an outbound UDP flow's key, if one exists: its
/// public (address, port).
pub(super) fn cone_of<A: Ip>(cx: Context<'_>, k: &FlowKey<A>) -> Option<(u32, A, u16)> {
    let probe = cone_keys((k.src, k.sport), k.dst, (A::UNSPECIFIED, 0))[0];
    let (idx, dir) = A::flows(&cx).lookup(&probe)?;
    (dir == Dir::Original).then_some(())?;
    let public = A::flows(&cx).entry(idx).key(Dir::Reply);
    Some((idx, public.dst, public.dport))
}

/// The key whose absence makes public (`pa`, `pp`) free for `key`: the
/// public 5-tuple for TCP, the cone mapping for UDP.
#[inline]
fn probe_key<A: Family>(key: &FlowKey<A>, (pa, pp): (A, u16)) -> FlowKey<A> {
    if key.proto == UDP {
        cone_keys((key.src, key.sport), key.dst, (pa, pp))[1]
    } else {
        FlowKey {
            src: key.dst,
            dst: pa,
            sport: key.dport,
            dport: pp,
            proto: key.proto,
        }
    }
}

/// For the burst's prefetch pass: starts loading the buckets the first
/// port probe of `key` (whose hash the lookup pass has: `hash`) will
/// read, if `key` would be an SNAT flow.
#[inline]
pub(super) fn prefetch_probe<A: Ip>(cx: Context<'_>, key: &FlowKey<A>, hash: u64) {
    if key.proto != TCP && key.proto != UDP {
        return;
    }
    let Some((_, m)) = cx.services.snat.member(key.src, key.proto) else {
        return;
    };
    let n = cx.services.snat.workers();
    debug_assert_eq!(hash, key.hash());
    let h = (hash >> 32) as u32;
    let len = m.spans.first().copied().unwrap_or(0);
    if let Some((first, own)) = own_slice(0, len, (cx.worker as u32) % n, n) {
        if let Some(public) = m.port_at::<A>(first + n * (h % own)) {
            A::flows(&cx).prefetch_buckets(probe_key(key, public).hash());
        }
    }
}

/// Worker `w`'s indices (of `n` workers) in the span `base..base + len` of
/// a member's ports: (the first, how many; the others follow `n` apart).
#[inline]
fn own_slice(base: u32, len: u32, w: u32, n: u32) -> Option<(u32, u32)> {
    let first = base + (w + n - base % n) % n;
    (first < base + len).then(|| (first, (base + len - 1 - first) / n + 1))
}

/// A free public port for `key` among member `m`'s ports: address by
/// address in the rule's order (the first until all its ports are in use),
/// on each first this worker's slice, from a place the key's hash picks so
/// flows spread over it, then the other workers' slices. The flag: the
/// port is from another worker's slice, and the caller confirms its claim
/// after the insert ([`claimed`]). At most [`MAX_PROBES`] ports are tried.
///
/// In a cluster the member's ports are first divided among the instances
/// (port index `i` is instance `i % instances`'s), then this instance's
/// among its workers: no two instances ever hand out the same public port,
/// and none takes another's. `hash`: the key's, when the caller has it.
/// The last of the three: a TCP flow's reply key's hash (its probe key),
/// for the insert.
fn pick<A: Ip>(
    cx: Context<'_>,
    (key, hash): (&FlowKey<A>, Option<u64>),
    m: &SnatMember,
) -> Option<((A, u16), bool, Option<u64>)> {
    let n = cx.services.snat.workers();
    let w = (cx.worker as u32) % n;
    let (inst, ninst) = cx.sync.map_or((0, 1), |s| {
        (u32::from(s.instance), u32::from(s.instances.max(1)))
    });
    let h = (hash.unwrap_or_else(|| key.hash()) >> 32) as u32;
    let flows = A::flows(&cx);
    let mut probes = 0;
    // `v`: an index among this instance's ports, `v * ninst + inst`.
    let mut free = |v: u32| -> Option<Option<((A, u16), u64)>> {
        if probes == MAX_PROBES {
            return None;
        }
        probes += 1;
        let public = m.port_at::<A>(v * ninst + inst)?;
        let w = probe_key(key, public).words();
        let ph = crate::flow::hash_words(w.as_ref());
        Some(
            flows
                .lookup_words(w.as_ref(), ph)
                .is_none()
                .then_some((public, ph)),
        )
    };
    let reply = |ph: u64| (key.proto == TCP).then_some(ph);
    let mut base = 0u32;
    for &len in &m.spans {
        // This instance's ports of the span, as indices among its own.
        let Some((v0, count)) = own_slice(base, len, inst, ninst).map(|(i, c)| (i / ninst, c))
        else {
            base += len;
            continue;
        };
        if let Some((first, own)) = own_slice(v0, count, w, n) {
            let s = h % own;
            for j in 0..own {
                if let Some((p, ph)) = free(first + n * ((s + j) % own))? {
                    return Some((p, false, reply(ph)));
                }
            }
        }
        if n > 1 {
            let s = h % count;
            for j in 0..count {
                let v = v0 + (s + j) % count;
                if v % n == w {
                    continue;
                }
                if let Some((p, ph)) = free(v)? {
                    return Some((p, true, reply(ph)));
                }
            }
        }
        base += len;
    }
    None
}

/// After inserting entry `idx` under a port [`pick`] took from another
/// worker's slice: true when no other entry holds `probe` (the key that
/// makes the port used), so the claim stands. The fence orders this
/// worker's insert before its look, so of two workers racing for a port at
/// least one sees the other's entry.
fn claimed<A: Ip>(cx: Context<'_>, probe: &FlowKey<A>, idx: u32) -> bool {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    !A::flows(&cx).has_other(probe, idx)
}

/// Inserts the SNAT flow of `key` leaving from (`pa`, `pp`); `known`: the
/// hashes of its two keys the caller has.
fn insert<A: Ip>(
    cx: Context<'_>,
    (key, known): (&FlowKey<A>, [Option<u64>; 2]),
    (pa, pp): (A, u16),
    mi: u16,
    m: &SnatMember,
    state: tcp::State,
) -> Result<(u32, [u64; 2]), DropReason> {
    let reply = FlowKey {
        src: key.dst,
        dst: pa,
        sport: key.dport,
        dport: pp,
        proto: key.proto,
    };
    insert_entry(cx, ([*key, reply], known), key, mi, m, state)
}

/// Inserts a table entry under `keys` for member `m` (a flow, or a cone
/// mapping), routed as `flow`: towards its destination, and back to the
/// member; `known`: the keys' hashes the caller has. Returns the entry and
/// its keys' hashes.
fn insert_entry<A: Ip>(
    cx: Context<'_>,
    (keys, known): ([FlowKey<A>; 2], [Option<u64>; 2]),
    flow: &FlowKey<A>,
    mi: u16,
    m: &SnatMember,
    state: tcp::State,
) -> Result<(u32, [u64; 2]), DropReason> {
    let rule = &cx.services.snat.rules[usize::from(m.rule)];
    let (Some((p0, nh0)), Some((p1, nh1))) = (
        cx.dataplane.route_of(flow.dst),
        cx.dataplane.route_of(flow.src),
    ) else {
        return Err(DropReason::NoRoute);
    };
    let f = NewFlow {
        key: keys,
        egress: [p0, p1],
        next_hop: [nh0, nh1],
        state,
        tcp_reset: rule.tcp_reset && flow.proto == TCP,
        idle_timeout: rule.idle_timeout,
        rule: RuleRef::Snat(mi),
        member: 0,
        now: cx.now,
        generation: cx.services.generation,
        snat: true,
        rfc_timers: rule.timers == crate::config::Timers::Rfc,
    };
    A::flows(&cx)
        .insert_hashed(&f, known)
        .map_err(|_| DropReason::FlowTableFull)
}

/// A new flow from a member that an outbound rule covers.
fn snat_flow<A: Ip>(
    cx: Context<'_>,
    (key, hash): (&FlowKey<A>, Option<u64>),
    l4: &L4,
    mi: u16,
    m: &SnatMember,
    c: &mut Counters,
) -> Result<(u32, Dir), DropReason> {
    if key.proto == TCP && l4.flags != tcp::Class::Syn {
        return Err(DropReason::TcpNoFlow);
    }
    if !cx.services.security.allows(
        Direction::Outbound,
        key.src,
        key.dst,
        key.proto,
        key.dport,
        true,
    ) {
        return Err(DropReason::SecurityDeny);
    }
    let counters = &m.counters[cx.worker % m.counters.len()];
    let existing = if key.proto == UDP {
        cone_of(cx, key).map(|(_, a, p)| (a, p))
    } else {
        None
    };
    // A port taken from another worker's slice may be lost to that worker
    // at the same moment: then the next free one is tried.
    let mut attempts = 0;
    let (idx, hashes) = loop {
        attempts += 1;
        let picked = existing
            .map(|p| (p, false, None))
            .or_else(|| pick(cx, (key, hash), m));
        let Some((public, stolen, reply)) = picked.filter(|_| attempts <= 3) else {
            counters
                .failed
                .store(counters.failed.load(Relaxed) + 1, Relaxed);
            return Err(DropReason::SnatExhausted);
        };
        let fresh = existing.is_none();
        if let Some(opened) = open(
            cx,
            (key, [hash, reply]),
            public,
            (fresh, stolen),
            (mi, m),
            c,
        )? {
            break opened;
        }
    };
    counters.ok.store(counters.ok.load(Relaxed) + 1, Relaxed);
    c.flow_created::<A>(idx, hashes);
    cx.traffic.flow(RuleRef::Snat(mi).id());
    c.add(Stat::SnatCreated, 1);
    Ok((idx, Dir::Original))
}

/// Inserts the flow of `key` (the hashes of its keys the caller has beside
/// it) leaving from `public` (and, for a new UDP mapping, `fresh`, its cone
/// mapping first). `Ok(None)`: the port was
/// taken from another worker's slice (`stolen`) and that worker won it;
/// nothing stays inserted.
#[inline(never)]
fn open<A: Ip>(
    cx: Context<'_>,
    (key, known): (&FlowKey<A>, [Option<u64>; 2]),
    public: (A, u16),
    (fresh, stolen): (bool, bool),
    (mi, m): (u16, &SnatMember),
    c: &mut Counters,
) -> Result<Option<(u32, [u64; 2])>, DropReason> {
    if key.proto == UDP && fresh {
        // Keyed with protocol 253, which no packet has: no lookup of this
        // chunk can find it, so it is not counted as a flow.
        let mapping = cone_keys((key.src, key.sport), key.dst, public);
        let (mx, _) = insert_entry(cx, (mapping, [None; 2]), key, mi, m, tcp::State::Other)?;
        if stolen && !claimed(cx, &mapping[1], mx) {
            A::flows(&cx).withdraw(mx);
            return Ok(None);
        }
        c.touch::<A>(mx);
    }
    let state = if key.proto == TCP {
        tcp::State::SynSent
    } else {
        tcp::State::Other
    };
    let (idx, hashes) = insert(cx, (key, known), public, mi, m, state)?;
    if stolen && key.proto == TCP && !claimed(cx, &probe_key(key, public), idx) {
        A::flows(&cx).withdraw(idx);
        return Ok(None);
    }
    Ok(Some((idx, hashes)))
}

/// UDP to a public SNAT port from a port of an address whose cone mapping
/// holds that port: a new flow to the mapping's member. From any other
/// address: dropped.
fn cone_reply<A: Ip>(
    cx: Context<'_>,
    key: &FlowKey<A>,
    c: &mut Counters,
) -> Result<(u32, Dir), DropReason> {
    let probe = cone_keys((A::UNSPECIFIED, 0), key.src, (key.dst, key.dport))[1];
    let Some((idx, Dir::Reply)) = A::flows(&cx).lookup(&probe) else {
        return Err(DropReason::SnatNoMapping);
    };
    let e = A::flows(&cx).entry(idx);
    let RuleRef::Snat(mi) = e.rule() else {
        return Err(DropReason::SnatNoMapping);
    };
    let Some(m) = cx.services.snat.get(mi) else {
        return Err(DropReason::SnatNoMapping);
    };
    let member = e.key(Dir::Original);
    let original = FlowKey {
        src: member.src,
        dst: key.src,
        sport: member.sport,
        dport: key.sport,
        proto: UDP,
    };
    let (idx, hashes) = insert(
        cx,
        (&original, [None; 2]),
        (key.dst, key.dport),
        mi,
        m,
        tcp::State::Other,
    )?;
    c.flow_created::<A>(idx, hashes);
    Ok((idx, Dir::Reply))
}
