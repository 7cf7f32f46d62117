//! Control's share of flow sync, as one step of its poll: removals from
//! peers applied, and what goes to them sent through the neighbour cache.
//! A child of the control module: it reaches the control plane's parts.

use super::{BulkState, ControlPlane, SyncWork, DRAIN};
use crate::sync::{Removal, SyncStat};
use std::time::Duration;

impl ControlPlane {
    /// Where the bulk copy this instance asked its peers for stands
    /// (`None`: no cluster).
    pub fn bulk_state(&self) -> Option<BulkState> {
        self.sync.as_ref().map(SyncWork::bulk_state)
    }

    /// Flow sync's share of a poll: removals from peers applied, and what
    /// goes to them (removals, refreshes, a bulk copy, a bulk request).
    pub(super) fn sync_poll(&mut self, ms: u32, now: Duration) -> bool {
        let Some(mut w) = self.sync.take() else {
            return false;
        };
        let shared = self.shared.clone();
        let mut busy = false;
        if let Some(s) = &shared.sync {
            for _ in 0..DRAIN {
                let Some(r) = s.removals.pop() else { break };
                busy = true;
                let removed = match r {
                    Removal::V4(r) => {
                        self.v4
                            .remove_synced(&shared.flows, &r, (ms, self.timer_scale))
                    }
                    Removal::V6(r) => {
                        self.v6
                            .remove_synced(&shared.flows6, &r, (ms, self.timer_scale))
                    }
                };
                match removed {
                    Some(true) => s.count(SyncStat::Removed, 1),
                    Some(false) => s.count(SyncStat::RemovalsKept, 1),
                    None => {}
                }
            }
        }
        let mut out = Vec::new();
        if let (Some(e4), Some(e6)) = (&mut self.v4.ended, &mut self.v6.ended) {
            busy |= w.send_ended(&shared, &self.pool, (e4, e6), &mut out);
        }
        busy |= w.refresh(&shared, &self.pool, (ms, now), self.timer_scale, &mut out);
        let ring = shared.from_control.len();
        busy |= w.serve_bulk(&shared, &self.pool, (ms, now), ring, &mut out);
        busy |= w.ask_bulk(&shared, &self.pool, now, &mut out);
        for (port, nh, m) in out {
            self.send_via(port, nh, m, now);
        }
        self.sync = Some(w);
        busy
    }
}
