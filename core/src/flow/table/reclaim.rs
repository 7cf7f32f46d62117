//! Removal, the control thread's side of the table: unlink an entry from
//! both keys now, return it to the free list once every worker has passed
//! a quiescent point since (QSBR), so no reader sees an entry change
//! identity under it; and a worker's withdrawal of an entry it has just
//! inserted, reclaimed the same way. A child of the table module: it
//! reaches the table's private parts.

use super::{Family, FlowTable, LIVE};
use crate::family::Dir;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

impl<A: Family> FlowTable<A> {
    /// Takes back a flow this worker has just inserted and no packet has
    /// used: unlinked now, reused after the grace period like any other.
    pub fn withdraw(&self, idx: u32) {
        let Some(e) = self.entries.get(idx as usize) else {
            return;
        };
        if e.state.fetch_and(!LIVE, Relaxed) & LIVE == 0 {
            return;
        }
        for d in Dir::BOTH {
            self.unplace(&e.key(d), d, idx);
        }
        self.live.fetch_sub(1, Relaxed);
        if self.orphans.push(idx).is_err() {
            self.leaked.fetch_add(1, Relaxed);
        }
    }
}

/// The control thread's side of removal: unlink now, reuse after a grace
/// period. Only one `Reclaimer` may exist per table.
#[derive(Debug, Default)]
pub struct Reclaimer {
    waiting: VecDeque<(Vec<u64>, Vec<u32>)>,
    batch: Vec<u32>,
    removed: u64,
}

impl Reclaimer {
    /// A reclaimer.
    pub fn new() -> Reclaimer {
        Reclaimer::default()
    }

    /// Unlinks flow `idx` from both keys; its entry is reused once every
    /// worker has been quiescent since. False when it was not live.
    pub fn remove<A: Family>(&mut self, t: &FlowTable<A>, idx: u32) -> bool {
        let Some(e) = t.entries.get(idx as usize) else {
            return false;
        };
        let st = e.state.fetch_and(!LIVE, Relaxed);
        if st & LIVE == 0 {
            return false;
        }
        for d in Dir::BOTH {
            t.unplace(&e.key(d), d, idx);
        }
        t.live.fetch_sub(1, Relaxed);
        self.removed += 1;
        self.batch.push(idx);
        true
    }

    /// Flows removed so far.
    pub fn removed(&self) -> u64 {
        self.removed
    }

    /// Ends the current batch and frees every batch whose grace period is
    /// over. Returns the entries freed.
    pub fn poll<A: Family>(&mut self, t: &FlowTable<A>) -> usize {
        while let Some(idx) = t.orphans.pop() {
            self.batch.push(idx);
        }
        if !self.batch.is_empty() {
            self.waiting
                .push_back((t.epochs(), std::mem::take(&mut self.batch)));
        }
        let mut freed = 0;
        while let Some((then, _)) = self.waiting.front() {
            if !t.passed_since(then) {
                break;
            }
            let (_, idxs) = self.waiting.pop_front().expect("front exists");
            for idx in idxs {
                t.push_free(idx);
                freed += 1;
            }
        }
        freed
    }

    /// Entries waiting for their grace period.
    pub fn pending(&self) -> usize {
        self.batch.len() + self.waiting.iter().map(|(_, v)| v.len()).sum::<usize>()
    }
}
