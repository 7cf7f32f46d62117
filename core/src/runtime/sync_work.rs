//! Control's part of flow sync: removals both ways, refreshes of
//! long-lived flows, the bulk copy a starting peer asks for, and asking
//! for one at start. Frames are collected for control to send through its
//! neighbour cache.

use super::sync_out::{put, PeerFrame, Sender};
use super::{tables, Shared};
use crate::dpdk::Mempool;
use crate::family::{Family, V4, V6};
use crate::flow::{age, FlowRecord, FlowTable};
use crate::sync::wire::{self, Kind, Op};
use crate::sync::{SyncStat, CONTROL_STREAM};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// A flow is sent again once it has carried packets here and this share
/// of its idle timeout has passed since it was last sent: a peer that
/// sees none of its packets never ages it out.
const REFRESH_SHARE: u64 = 4;
/// The refresh scan visits the whole table once per period.
const REFRESH_PERIOD: Duration = Duration::from_secs(1);
/// A bulk request is sent again this often until its peer answers.
const BULK_RETRY: Duration = Duration::from_secs(1);
/// How long a starting instance waits for its peers' bulk copies without
/// receiving a record.
pub const BULK_WAIT: Duration = Duration::from_secs(3);
/// Frames control leaves in the ring to worker 0 at most while it copies
/// a table to a peer (the rest of the 1024 slots stay for others).
const BULK_RING_SHARE: usize = 512;
/// Datagrams per second of a bulk copy (17 IPv4 records each: about
/// 680,000 flows a second, 400 Mbit/s): a pace a peer's worker keeps up
/// with while it also forwards, so the copy is not lost to its RX queue.
const BULK_RATE: u64 = 40_000;

/// The flows this instance ended, per family.
pub(super) type Ended<'a> = (
    &'a mut Vec<tables::Ended<V4>>,
    &'a mut Vec<tables::Ended<V6>>,
);

/// Where a bulk copy to a peer stands.
#[derive(Debug)]
struct Serving {
    peer: IpAddr,
    v6: bool,
    pos: u32,
}

/// The refresh scan of one table.
#[derive(Debug, Default)]
struct Refresh {
    pos: u32,
    /// Per entry: its packet count and tick when last sent.
    last: Vec<(u32, u32)>,
}

/// What a starting instance's bulk request is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkState {
    /// Not asked yet.
    NotAsked,
    /// Asked, some peers have not finished.
    Waiting,
    /// Every peer sent its copy.
    Done,
    /// [`BULK_WAIT`] passed without a record from a peer first (a peer is
    /// down, or this instance is alone so far).
    TimedOut,
}

/// Control's sync state.
#[derive(Debug)]
pub(super) struct SyncWork {
    sender: Sender,
    refresh: (Refresh, Refresh),
    refreshed_at: Duration,
    serving: Option<Serving>,
    /// When the bulk copy last took its share of [`BULK_RATE`].
    paced_at: Duration,
    /// The first bulk request, and the last one.
    asked: Option<(Duration, Duration)>,
    /// Records received from peers when that count last grew, and when.
    progress: (u64, Duration),
    state: BulkState,
}

impl SyncWork {
    pub(super) fn new() -> SyncWork {
        SyncWork {
            sender: Sender::new(CONTROL_STREAM),
            refresh: Default::default(),
            refreshed_at: Duration::ZERO,
            serving: None,
            paced_at: Duration::ZERO,
            asked: None,
            progress: (0, Duration::ZERO),
            state: BulkState::NotAsked,
        }
    }

    pub(super) fn bulk_state(&self) -> BulkState {
        self.state
    }

    /// Remove records of the flows this instance ended.
    pub(super) fn send_ended(
        &mut self,
        shared: &Shared,
        pool: &Mempool,
        ended: Ended<'_>,
        out: &mut Vec<PeerFrame>,
    ) -> bool {
        let Some(s) = &shared.sync else { return false };
        if ended.0.is_empty() && ended.1.is_empty() {
            return false;
        }
        let dp = shared.dataplane.load();
        let mut push = |f| out.push(f);
        while !ended.0.is_empty() || !ended.1.is_empty() {
            self.sender.send_with(
                s,
                (&dp, pool),
                Kind::Records,
                None,
                |w| {
                    while w.has_room::<V4>() && pop_removal(w, ended.0) {}
                    while w.has_room::<V6>() && pop_removal(w, ended.1) {}
                },
                &mut push,
            );
        }
        true
    }

    /// Sends the flows that carried packets here and are due, a slice of
    /// each table per call (the whole table once per [`REFRESH_PERIOD`]).
    pub(super) fn refresh(
        &mut self,
        shared: &Shared,
        pool: &Mempool,
        (ms, now): (u32, Duration),
        scale: u32,
        out: &mut Vec<PeerFrame>,
    ) -> bool {
        let Some(s) = &shared.sync else { return false };
        let since = now.saturating_sub(self.refreshed_at).as_micros() as u64;
        let budget = |t: u32| (u64::from(t) * since / REFRESH_PERIOD.as_micros() as u64) as u32;
        let (b4, b6) = (
            budget(shared.flows.high_water()),
            budget(shared.flows6.high_water()),
        );
        if b4 == 0 && b6 == 0 {
            return false;
        }
        self.refreshed_at = now;
        let dp = shared.dataplane.load();
        let mut due4 = due(&mut self.refresh.0, &shared.flows, ms, scale, b4);
        let mut due6 = due(&mut self.refresh.1, &shared.flows6, ms, scale, b6);
        let n = (due4.len() + due6.len()) as u64;
        let mut push = |f| out.push(f);
        while !due4.is_empty() || !due6.is_empty() {
            self.sender.send_with(
                s,
                (&dp, pool),
                Kind::Records,
                None,
                |w| {
                    while let Some(&i) = due4.last() {
                        if !put(w, &shared.flows, i, ms, Op::Upsert) {
                            break;
                        }
                        due4.pop();
                    }
                    while let Some(&i) = due6.last() {
                        if !put(w, &shared.flows6, i, ms, Op::Upsert) {
                            break;
                        }
                        due6.pop();
                    }
                },
                &mut push,
            );
        }
        s.count(SyncStat::Refreshed, n);
        n > 0
    }

    /// Copies the tables to a peer that asked, at [`BULK_RATE`] and as far
    /// as the ring to worker 0 has room (`ring_used` of it in use);
    /// BulkDone at the end.
    pub(super) fn serve_bulk(
        &mut self,
        shared: &Shared,
        pool: &Mempool,
        (ms, now): (u32, Duration),
        ring_used: usize,
        out: &mut Vec<PeerFrame>,
    ) -> bool {
        let Some(s) = &shared.sync else { return false };
        if self.serving.is_none() {
            let Some(p) = s.peers.iter().find(|p| p.bulk_wanted.swap(false, Relaxed)) else {
                return false;
            };
            self.serving = Some(Serving {
                peer: p.addr,
                v6: false,
                pos: 0,
            });
            self.paced_at = now;
        }
        let due =
            (now.saturating_sub(self.paced_at).as_micros() as u64 * BULK_RATE / 1_000_000) as usize;
        let mut room = BULK_RING_SHARE.saturating_sub(ring_used).min(due);
        if room == 0 {
            return false;
        }
        self.paced_at = now;
        let dp = shared.dataplane.load();
        let mut push = |f| out.push(f);
        while room > 0 {
            let Some(b) = &mut self.serving else { break };
            let peer = b.peer;
            let hw = if b.v6 {
                shared.flows6.high_water()
            } else {
                shared.flows.high_water()
            };
            if b.pos >= hw {
                if !b.v6 {
                    b.v6 = true;
                    b.pos = 0;
                    continue;
                }
                self.sender.send_with(
                    s,
                    (&dp, pool),
                    Kind::BulkDone,
                    Some(peer),
                    |_| {},
                    &mut push,
                );
                s.count(SyncStat::BulkServed, 1);
                self.serving = None;
                break;
            }
            self.sender.send_with(
                s,
                (&dp, pool),
                Kind::Records,
                Some(peer),
                |w| {
                    if b.v6 {
                        b.pos = wire::fill(w, &shared.flows6, b.pos, ms);
                    } else {
                        b.pos = wire::fill(w, &shared.flows, b.pos, ms);
                    }
                },
                &mut push,
            );
            room -= 1;
        }
        true
    }

    /// At start, and again every [`BULK_RETRY`] until every peer has
    /// answered or [`BULK_WAIT`] has passed without a record: asks the
    /// peers that have not finished for a bulk copy.
    pub(super) fn ask_bulk(
        &mut self,
        shared: &Shared,
        pool: &Mempool,
        now: Duration,
        out: &mut Vec<PeerFrame>,
    ) -> bool {
        let Some(s) = &shared.sync else { return false };
        if matches!(self.state, BulkState::Done | BulkState::TimedOut) {
            return false;
        }
        let (since, last) = *self.asked.get_or_insert((now, Duration::ZERO));
        if s.peers.iter().all(|p| p.bulk_done.load(Relaxed)) {
            self.state = BulkState::Done;
            return true;
        }
        let received: u64 = s.peers.iter().map(|p| p.received.load(Relaxed)).sum();
        if received != self.progress.0 || self.progress.1 == Duration::ZERO {
            self.progress = (received, now);
        }
        if now.saturating_sub(self.progress.1) >= BULK_WAIT {
            self.state = BulkState::TimedOut;
            return true;
        }
        self.state = BulkState::Waiting;
        // Asked again only while nothing comes: a copy under way is not
        // started over.
        let quiet = self.progress.1 <= last;
        if last != Duration::ZERO && (now.saturating_sub(last) < BULK_RETRY || !quiet) {
            return false;
        }
        self.asked = Some((since, now.max(Duration::from_nanos(1))));
        let dp = shared.dataplane.load();
        let mut push = |f| out.push(f);
        for p in s.peers.iter().filter(|p| !p.bulk_done.load(Relaxed)) {
            self.sender.send_with(
                s,
                (&dp, pool),
                Kind::BulkRequest,
                Some(p.addr),
                |_| {},
                &mut push,
            );
            s.count(SyncStat::BulkRequested, 1);
        }
        true
    }
}

/// Writes a remove record of the last of `keys`; false when none is left.
fn pop_removal<A: Family>(
    w: &mut crate::sync::wire::Writer<'_>,
    keys: &mut Vec<tables::Ended<A>>,
) -> bool {
    let Some((k, age)) = keys.pop() else {
        return false;
    };
    let r = FlowRecord::<A> {
        words: [k[0].words(), k[1].words()],
        next_hop: 0,
        far: 0,
        state: 0,
        meta: 0,
        next_seq: [0; 2],
        age,
    };
    w.push(Op::Remove, &r);
    true
}

/// The entries of the next `budget` that carried packets since they were
/// last sent, and whose share of their idle timeout has passed since.
fn due<A: Family>(r: &mut Refresh, t: &FlowTable<A>, ms: u32, scale: u32, budget: u32) -> Vec<u32> {
    let hw = t.high_water();
    if r.last.len() < hw as usize {
        r.last.resize(hw as usize, (0, ms));
    }
    let mut out = Vec::new();
    for _ in 0..budget.min(hw) {
        if r.pos >= hw {
            r.pos = 0;
        }
        let idx = r.pos;
        r.pos += 1;
        let Some(f) = t.info(idx) else { continue };
        let (packets, at) = r.last[idx as usize];
        let share = age::idle_limit(&f, scale) / REFRESH_SHARE;
        if f.packets != packets && u64::from(ms.wrapping_sub(at)) >= share {
            r.last[idx as usize] = (f.packets, ms);
            out.push(idx);
        }
    }
    out
}
