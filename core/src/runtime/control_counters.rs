//! The control thread's counters, and the names the report and the metrics
//! give them: one list, so neither can miss one.

use crate::neigh::CacheCounters;

/// Control-side counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControlCounters {
    /// Neighbour cache counters.
    pub neigh: CacheCounters,
    /// Frames dropped because the ring to worker 0 was full.
    pub to_worker_full: u64,
    /// Frames sent on control's own TX queues.
    pub tx_own: u64,
    /// Frames control's own TX queue did not take (handed to worker 0).
    pub tx_own_full: u64,
    /// Requests not sent: no mbuf.
    pub alloc_failed: u64,
    /// Requests not sent: no address of that family on the port.
    pub no_source: u64,
    /// Neighbour views published.
    pub views_published: u64,
    /// Flows removed because they idled out.
    pub flows_expired: u64,
    /// Established flows reset at both ends when they idled out.
    pub flows_reset: u64,
    /// RST segments sent (two per reset flow, unless one could not be).
    pub rst_sent: u64,
    /// Flow entries returned for reuse after their grace period.
    pub flows_reclaimed: u64,
    /// Later fragments that waited for their first fragment and went on.
    pub frag_released: u64,
    /// Later fragments dropped: their first fragment never came in time.
    pub frag_timeout: u64,
    /// Later fragments dropped: the waiting buffer was full.
    pub frag_overflow: u64,
    /// Released fragments too big for their egress (no DF) that could not
    /// be cut again (no mbufs): dropped.
    pub frag_split_failed: u64,
    /// Gratuitous ARPs and unsolicited neighbour advertisements sent for
    /// owned addresses (at start).
    pub announced: u64,
    /// Flows found whole in a table a previous process left (restart
    /// adoption), ended or not by the new config.
    pub flows_adopted: u64,
    /// Flows of such a table taken out as not whole (an insert or removal
    /// the previous process's death cut short).
    pub flows_cut_short: u64,
    /// Adopted flows ended because the new config removed their rule or
    /// member.
    pub flows_ended_by_restart: u64,
    /// Adopted flows moved to the new config's rule and member ids.
    pub flows_remapped: u64,
    /// Rule snapshots published by a reload.
    pub reloads: u64,
    /// Flows ended by a reload: their rule changed or went, or their
    /// member left the pool.
    pub flows_ended_by_reload: u64,
    /// Reloads rejected (invalid config, or a change that needs a restart).
    pub reloads_rejected: u64,
    /// Rule snapshots published because a member's health changed.
    pub health_published: u64,
    /// UDP flows ended because their member went down (their next
    /// datagram goes to a healthy member).
    pub flows_moved_by_health: u64,
    /// IPv4 packets control originated (health probes) and sent on.
    pub originated: u64,
    /// Originated packets with no route to their destination.
    pub originated_no_route: u64,
    /// Flows ended by `sluicectl flows --delete`.
    pub flows_deleted: u64,
    /// Frames handed to kernel interfaces (the exception path).
    pub to_kernel: u64,
    /// Frames for a kernel interface that it did not take (its queue
    /// full), or for a port without one: dropped.
    pub to_kernel_dropped: u64,
    /// Frames the kernel sent on its interfaces, put out on their data
    /// ports.
    pub from_kernel: u64,
}

impl ControlCounters {
    /// Every counter by its report name (`counter NAME VALUE` at exit; the
    /// `event` label of `sluice_control_events_total`).
    pub fn named(&self) -> [(&'static str, u64); 37] {
        let n = &self.neigh;
        [
            ("neigh.requests", n.requests),
            ("neigh.resolved", n.resolved),
            ("neigh.held", n.held),
            ("neigh.released", n.released),
            ("neigh.queue_full", n.queue_full),
            ("neigh.failed", n.failed),
            ("neigh.expired", n.expired),
            ("neigh.table_full", n.table_full),
            ("control.to_worker_full", self.to_worker_full),
            ("control.tx_own", self.tx_own),
            ("control.tx_own_full", self.tx_own_full),
            ("control.alloc_failed", self.alloc_failed),
            ("control.no_source", self.no_source),
            ("control.announced", self.announced),
            ("flows.expired", self.flows_expired),
            ("flows.reset", self.flows_reset),
            ("flows.rst_sent", self.rst_sent),
            ("flows.reclaimed", self.flows_reclaimed),
            ("frag.released", self.frag_released),
            ("frag.timeout", self.frag_timeout),
            ("frag.overflow", self.frag_overflow),
            ("frag.split_failed", self.frag_split_failed),
            ("reload.ok", self.reloads),
            ("reload.rejected", self.reloads_rejected),
            ("flows.ended_by_reload", self.flows_ended_by_reload),
            ("flows.adopted", self.flows_adopted),
            ("flows.cut_short", self.flows_cut_short),
            ("flows.ended_by_restart", self.flows_ended_by_restart),
            ("flows.remapped", self.flows_remapped),
            ("flows.moved_by_health", self.flows_moved_by_health),
            ("flows.deleted", self.flows_deleted),
            ("health.published", self.health_published),
            ("control.originated", self.originated),
            ("control.originated_no_route", self.originated_no_route),
            ("kernel.to_kernel", self.to_kernel),
            ("kernel.to_kernel_dropped", self.to_kernel_dropped),
            ("kernel.from_kernel", self.from_kernel),
        ]
    }

    /// The frames control lost after a worker handed them on (held for a
    /// neighbour, deferred fragments, frames to send), by the reason name
    /// `sluice_drops_total` gives them: part of the drop total.
    pub fn drops(&self) -> [(&'static str, u64); 9] {
        let n = &self.neigh;
        [
            ("neigh_queue_full", n.queue_full),
            ("neigh_failed", n.failed),
            ("neigh_table_full", n.table_full),
            ("frag_timeout", self.frag_timeout),
            ("frag_overflow", self.frag_overflow),
            ("frag_split_failed", self.frag_split_failed),
            ("control_to_worker_full", self.to_worker_full),
            ("originated_no_route", self.originated_no_route),
            ("kernel_tap_full", self.to_kernel_dropped),
        ]
    }

    /// The sum of [`ControlCounters::drops`].
    pub fn total_drops(&self) -> u64 {
        self.drops().iter().map(|d| d.1).sum()
    }
}
