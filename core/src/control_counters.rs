//! The control thread's counters (and the neighbour cache's) by the names
//! the report and the metrics give them: generated enums, so neither can
//! miss one. Outside `runtime`, so what is built without DPDK (tests,
//! tools) names them too.

use crate::neigh::{CacheCounters, NeighStat};

crate::named_enum! {
    /// What the control thread counts (frames it sends and loses, neighbour
    /// work aside, fragments, flow ageing and removal, reloads, health,
    /// kernel interfaces), by its report name.
    ControlStat {
        /// Frames dropped because the ring to worker 0 was full.
        ToWorkerFull => "control_to_worker_full",
        /// Frames sent on control's own TX queues.
        TxOwn => "control.tx_own",
        /// Frames control's own TX queue did not take (handed to worker 0).
        TxOwnFull => "control.tx_own_full",
        /// Requests not sent: no mbuf.
        AllocFailed => "control.alloc_failed",
        /// Requests not sent: no address of that family on the port.
        NoSource => "control.no_source",
        /// Neighbour views published.
        ViewsPublished => "control.views_published",
        /// Flows removed because they idled out.
        FlowsExpired => "flows.expired",
        /// Established flows reset at both ends when they idled out.
        FlowsReset => "flows.reset",
        /// RST segments sent (two per reset flow, unless one could not be).
        RstSent => "flows.rst_sent",
        /// Flow entries returned for reuse after their grace period.
        FlowsReclaimed => "flows.reclaimed",
        /// Later fragments that waited for their first fragment and went on.
        FragReleased => "frag.released",
        /// Later fragments dropped: their first fragment never came in time.
        FragTimeout => "frag_timeout",
        /// Later fragments dropped: the waiting buffer was full.
        FragOverflow => "frag_overflow",
        /// Released fragments too big for their egress (no DF) that could not
        /// be cut again (no mbufs): dropped.
        FragSplitFailed => "frag_split_failed",
        /// Gratuitous ARPs and unsolicited neighbour advertisements sent for
        /// owned addresses (at start).
        Announced => "control.announced",
        /// Flows found whole in a table a previous process left (restart
        /// adoption), ended or not by the new config.
        FlowsAdopted => "flows.adopted",
        /// Flows of such a table taken out as not whole (an insert or removal
        /// the previous process's death cut short).
        FlowsCutShort => "flows.cut_short",
        /// Adopted flows ended because the new config removed their rule or
        /// member.
        FlowsEndedByRestart => "flows.ended_by_restart",
        /// Adopted flows moved to the new config's rule and member ids.
        FlowsRemapped => "flows.remapped",
        /// Rule snapshots published by a reload.
        Reloads => "reload.ok",
        /// Flows ended by a reload: their rule changed or went, or their
        /// member left the pool.
        FlowsEndedByReload => "flows.ended_by_reload",
        /// Reloads rejected (invalid config, or a change that needs a restart).
        ReloadsRejected => "reload.rejected",
        /// Rule snapshots published because a member's health changed.
        HealthPublished => "health.published",
        /// UDP flows ended because their member went down (their next
        /// datagram goes to a healthy member).
        FlowsMovedByHealth => "flows.moved_by_health",
        /// IPv4 packets control originated (health probes) and sent on.
        Originated => "control.originated",
        /// Originated packets with no route to their destination.
        OriginatedNoRoute => "originated_no_route",
        /// Flows ended by `sluicectl flows --delete`.
        FlowsDeleted => "flows.deleted",
        /// Frames handed to kernel interfaces (the exception path).
        ToKernel => "kernel.to_kernel",
        /// Frames for a kernel interface that it did not take (its queue
        /// full), or for a port without one: dropped.
        ToKernelDropped => "kernel_tap_full",
        /// Frames the kernel sent on its interfaces, put out on their data
        /// ports.
        FromKernel => "kernel.from_kernel",
    }
}

/// Control-side counters: the neighbour cache's, and one per
/// [`ControlStat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlCounters {
    /// Neighbour cache counters.
    pub neigh: CacheCounters,
    v: [u64; ControlStat::COUNT],
}

impl Default for ControlCounters {
    fn default() -> Self {
        ControlCounters {
            neigh: CacheCounters::default(),
            v: [0; ControlStat::COUNT],
        }
    }
}

impl ControlCounters {
    /// Adds `n` to counter `s`.
    #[inline]
    pub fn add(&mut self, s: ControlStat, n: u64) {
        self.v[s as usize] += n;
    }

    /// Counter `s`.
    pub fn get(&self, s: ControlStat) -> u64 {
        self.v[s as usize]
    }

    /// Every counter by its report name (`counter NAME VALUE` at exit; the
    /// `event` label of `sluice_control_events_total`): the neighbour
    /// cache's, then every [`ControlStat`].
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        let neigh = NeighStat::ALL
            .iter()
            .map(|s| (s.name(), self.neigh.get(*s)));
        let own = ControlStat::ALL.iter().map(|s| (s.name(), self.get(*s)));
        neigh.chain(own).collect()
    }

    /// The frames control lost after a worker handed them on (held for a
    /// neighbour, deferred fragments, frames to send), by the reason name
    /// `sluice_drops_total` gives them: part of the drop total.
    pub fn drops(&self) -> [(&'static str, u64); 9] {
        let n = &self.neigh;
        [
            ("neigh_queue_full", n.get(NeighStat::QueueFull)),
            ("neigh_failed", n.get(NeighStat::Failed)),
            ("neigh_table_full", n.get(NeighStat::TableFull)),
            ("frag_timeout", self.get(ControlStat::FragTimeout)),
            ("frag_overflow", self.get(ControlStat::FragOverflow)),
            ("frag_split_failed", self.get(ControlStat::FragSplitFailed)),
            (
                "control_to_worker_full",
                self.get(ControlStat::ToWorkerFull),
            ),
            (
                "originated_no_route",
                self.get(ControlStat::OriginatedNoRoute),
            ),
            ("kernel_tap_full", self.get(ControlStat::ToKernelDropped)),
        ]
    }

    /// The sum of [`ControlCounters::drops`].
    pub fn total_drops(&self) -> u64 {
        self.drops().iter().map(|d| d.1).sum()
    }
}
