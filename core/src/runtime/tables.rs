//! Control's work on the flow tables, once per family: carrying flows over
//! a reload, moving UDP flows off members that went down, ageing, and
//! returning entries for reuse after their grace period.

use crate::family::Family;
use crate::flow::age::{self, Ager};
use crate::flow::{FlowInfo, FlowKey, FlowRecord, FlowTable, Reclaimer};
use crate::lb::{Carry, Services};

/// A flow this instance ended: its keys, and how long it had idled (ms).
pub(super) type Ended<A> = ([FlowKey<A>; 2], u32);

/// The state of that work for one family's table.
#[derive(Debug)]
pub(super) struct TableWork<A: Family> {
    ager: Ager,
    reclaimer: Reclaimer,
    /// Established flows of `tcp_reset` rules that ended (idle or by a
    /// reload) and want a RST at both ends; drained by control.
    pub(super) resets: Vec<FlowInfo<A>>,
    /// In a cluster: the keys of flows this instance ended and how long
    /// they had been idle (ms; 0 for an end by rule, not by idling), for
    /// control to tell the peers (`None`: no cluster, nothing kept).
    pub(super) ended: Option<Vec<Ended<A>>>,
}

impl<A: Family> Default for TableWork<A> {
    fn default() -> Self {
        TableWork {
            ager: Ager::new(),
            reclaimer: Reclaimer::new(),
            resets: Vec::new(),
            ended: None,
        }
    }
}

impl<A: Family> TableWork<A> {
    /// Moves each flow of the old snapshot to its new rule and member ids,
    /// or ends it. Returns the flows ended.
    pub(super) fn carry(
        &mut self,
        t: &FlowTable<A>,
        carry: &Carry,
        generation: bool,
        adopted: bool,
    ) -> u64 {
        let mut ended = 0;
        for idx in 0..t.high_water() {
            let Some(f) = t.info(idx) else {
                continue;
            };
            if f.generation == generation && !adopted {
                continue; // created by the new snapshot
            }
            match carry.get(f.rule, f.member) {
                Some((rule, member)) => t.retag(idx, rule, member, generation),
                None => {
                    if self.reclaimer.remove(t, idx) {
                        ended += 1;
                        if let Some(e) = &mut self.ended {
                            e.push((f.key, 0));
                        }
                        if age::wants_reset(&f) {
                            self.resets.push(f);
                        }
                    }
                }
            }
        }
        ended
    }

    /// Ends the UDP flows of members that may not take new flows, when
    /// their rule has a member that may. Returns the flows ended.
    pub(super) fn move_udp(&mut self, t: &FlowTable<A>, services: &Services) -> u64 {
        let mut moved = 0;
        for idx in 0..t.high_water() {
            let Some(f) = t.info(idx) else {
                continue;
            };
            if f.kind() != crate::flow::FlowKind::Inbound
                || f.key[0].proto != 17
                || f.generation != services.generation
            {
                continue;
            }
            let crate::lb::snat::RuleRef::Service(rule) = f.rule else {
                continue;
            };
            let Some(s) = services.services.get(usize::from(rule)) else {
                continue;
            };
            let down = s.eligible.get(usize::from(f.member)) == Some(&false);
            if down && s.maglev.is_some() && self.reclaimer.remove(t, idx) {
                moved += 1;
                if let Some(e) = &mut self.ended {
                    e.push((f.key, 0));
                }
            }
        }
        moved
    }

    /// Ends the live flows at `indices` (an operator's delete): each
    /// established TCP flow gets a RST at both ends, whatever its rule's
    /// `tcp_reset`. Returns the flows ended.
    pub(super) fn end(&mut self, t: &FlowTable<A>, indices: &[u32]) -> u64 {
        let mut n = 0;
        for &idx in indices {
            let Some(f) = t.info(idx) else { continue };
            if !self.reclaimer.remove(t, idx) {
                continue;
            }
            n += 1;
            if let Some(e) = &mut self.ended {
                e.push((f.key, 0));
            }
            let tcp = f.kind() != crate::flow::FlowKind::Cone && f.key[0].proto == 6;
            if tcp && f.state == crate::flow::tcp::State::Established {
                self.resets.push(f);
            }
        }
        n
    }

    /// Visits `budget` entries, removing flows idle past their timeout.
    /// Returns the flows removed.
    pub(super) fn age(&mut self, t: &FlowTable<A>, ms: u32, scale: u32, budget: u32) -> usize {
        let (resets, ended) = (&mut self.resets, &mut self.ended);
        self.ager
            .sweep(t, &mut self.reclaimer, ms, scale, budget, |f| {
                if age::wants_reset(f) {
                    resets.push(*f);
                }
                if let Some(e) = ended {
                    e.push((f.key, ms.wrapping_sub(f.last_seen).max(1)));
                }
            })
    }

    /// Removes the flow a peer removed. A removal by idling out (`age`
    /// above 0) is taken only when the copy here has idled out too: an
    /// instance that saw too few of a flow's packets, or none of the ones
    /// that moved its state on, must not end it where it is alive.
    /// `Some(removed)` when it was here.
    pub(super) fn remove_synced(
        &mut self,
        t: &FlowTable<A>,
        r: &FlowRecord<A>,
        (ms, scale): (u32, u32),
    ) -> Option<bool> {
        let idx = t.find_record(r)?;
        let f = t.info(idx)?;
        if r.age > 0 && !age::expired(&f, ms, scale) {
            return Some(false);
        }
        Some(self.reclaimer.remove(t, idx))
    }

    /// Frees the entries whose grace period is over; returns how many.
    pub(super) fn reclaim(&mut self, t: &FlowTable<A>) -> usize {
        self.reclaimer.poll(t)
    }
}
