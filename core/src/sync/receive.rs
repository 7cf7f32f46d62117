//! A sync datagram from a peer: source, MAC, replay and rules checked in
//! that order (the cheap refusals first, nothing applied until all pass),
//! then each record applied to its family's table. Upserts are applied
//! here, by the worker that received the datagram, before the rest of its
//! burst is processed; removals go to control, which owns removal.

use super::wire::{self, Kind, Op, Record, Refusal};
use super::{replay::Verdict, Sync, SyncStat};
use crate::family::{Family, V4, V6};
use crate::flow::{FlowRecord, FlowTable, Imported};
use crate::lb::snat::RuleRef;
use crate::pipeline::Context;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

/// A flow a peer removed, for control to remove here.
#[derive(Debug, Clone, Copy)]
pub enum Removal {
    /// IPv4.
    V4(FlowRecord<V4>),
    /// IPv6.
    V6(FlowRecord<V6>),
}

/// Takes the sync datagram payload `p` from `src`. `note` is given the
/// key hash of every flow created, so the burst looks its frames up again.
pub fn receive(s: &Sync, cx: &Context<'_>, src: IpAddr, p: &[u8], note: &mut impl FnMut(u64)) {
    let Some(peer) = s.peer(src) else {
        s.count(SyncStat::RefusedNotPeer, 1);
        return;
    };
    let refuse = |st| {
        s.count(st, 1);
        peer.refused.fetch_add(1, Relaxed);
    };
    let Ok(h) = wire::header(p) else {
        return refuse(SyncStat::RefusedMalformed);
    };
    if h.instance == s.instance || usize::from(h.stream) >= super::MAX_STREAMS {
        return refuse(SyncStat::RefusedMalformed);
    }
    if verify(s, peer, &h, p).is_err() {
        return refuse(SyncStat::RefusedMac);
    }
    // Checked before the replay window takes the number: a datagram
    // refused for its rules may be sent again once the rules agree.
    if h.fingerprint != s.fingerprint.load(Relaxed) {
        return refuse(SyncStat::RefusedConfig);
    }
    match peer.streams[usize::from(h.stream)].accept(h.epoch, h.seq) {
        Verdict::Replay => return refuse(SyncStat::RefusedReplay),
        Verdict::Fresh { gap } => {
            if gap > 0 {
                peer.lost.fetch_add(gap, Relaxed);
            }
        }
        Verdict::Late => {
            let _ = peer
                .lost
                .fetch_update(Relaxed, Relaxed, |l| Some(l.saturating_sub(1)));
        }
    }
    peer.last_heard
        .store(cx.now.wrapping_add(1).max(1), Relaxed);
    peer.instance.store(u32::from(h.instance), Relaxed);
    s.count(SyncStat::DatagramsReceived, 1);
    match h.kind {
        Kind::BulkRequest => {
            peer.bulk_wanted.store(true, Relaxed);
            return;
        }
        Kind::BulkDone => peer.bulk_done.store(true, Relaxed),
        Kind::Records => {}
    }
    for r in wire::records(p) {
        let Ok(r) = r else {
            s.count(SyncStat::RefusedMalformed, 1);
            break;
        };
        s.count(SyncStat::RecordsReceived, 1);
        peer.received.fetch_add(1, Relaxed);
        match r {
            Record::V4(op, r) => apply(s, cx, cx.flows, op, &r, note),
            Record::V6(op, r) => apply(s, cx, cx.flows6, op, &r, note),
        }
    }
}

/// Checks the MAC under the key of the epoch the header names: the key
/// last used for this peer when it is that epoch's, else derived (and kept
/// when the MAC passes and the epoch is newer).
fn verify(s: &Sync, peer: &super::Peer, h: &wire::Header, p: &[u8]) -> Result<(), Refusal> {
    let cached = peer.mac.load();
    if let Some(m) = cached.as_ref().filter(|m| m.0 == h.epoch) {
        return m.1.verify(p);
    }
    let mac = wire::Mac::of(s.key(), h.instance, h.epoch);
    mac.verify(p)?;
    if cached.as_ref().is_none_or(|m| m.0 < h.epoch) {
        peer.mac.store(Some(std::sync::Arc::new((h.epoch, mac))));
    }
    Ok(())
}

fn apply<A: Family>(
    s: &Sync,
    cx: &Context<'_>,
    t: &FlowTable<A>,
    op: Op,
    r: &FlowRecord<A>,
    note: &mut impl FnMut(u64),
) where
    Removal: From<FlowRecord<A>>,
{
    if op == Op::Remove {
        if s.removals.push(Removal::from(*r)).is_err() {
            s.count(SyncStat::RemovalsLost, 1);
        }
        return;
    }
    if !known(cx, r) {
        s.count(SyncStat::RefusedRecord, 1);
        return;
    }
    match t.import(r, cx.now, cx.services.generation) {
        Ok(Imported::New(_, h)) => {
            note(h[0]);
            note(h[1]);
            s.count(SyncStat::Created, 1);
        }
        Ok(Imported::Displaced(_, h)) => {
            note(h[0]);
            note(h[1]);
            s.count(SyncStat::Created, 1);
            s.count(SyncStat::Displaced, 1);
        }
        Ok(Imported::Updated(_)) => s.count(SyncStat::Updated, 1),
        Ok(Imported::Conflict) => s.count(SyncStat::Conflicts, 1),
        Err(_) => s.count(SyncStat::ApplyFailed, 1),
    }
}

impl From<FlowRecord<V4>> for Removal {
    fn from(r: FlowRecord<V4>) -> Removal {
        Removal::V4(r)
    }
}

impl From<FlowRecord<V6>> for Removal {
    fn from(r: FlowRecord<V6>) -> Removal {
        Removal::V6(r)
    }
}

/// True when the record's rule, member and egress ports exist here.
fn known<A: Family>(cx: &Context<'_>, r: &FlowRecord<A>) -> bool {
    let member = usize::from((r.meta >> 16) as u16);
    let rule = match RuleRef::from_id(r.meta as u16) {
        RuleRef::Service(sid) => cx
            .services
            .services
            .get(usize::from(sid))
            .is_some_and(|svc| member < svc.members.len().max(1)),
        RuleRef::Snat(mi) => cx.services.snat.get(mi).is_some(),
    };
    let ports = cx.dataplane.ports.len() as u64;
    rule && r
        .words
        .iter()
        .all(|w| (w.as_ref()[A::ADDR_WORDS] >> 40) & 0xff < ports)
}
