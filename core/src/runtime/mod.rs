//! The running data plane: worker loops on their lcores, and the control
//! side that serves them (neighbour resolution, held packets). Workers and
//! control share one [`Shared`]: read-mostly views behind `arc-swap`, bounded
//! lock-free queues both ways, and per-worker counters.

mod control;
mod sync_out;
mod sync_work;
mod tables;
mod worker;

pub use crate::control_counters::{ControlCounters, ControlStat};
pub use control::{BulkState, ControlPlane};
pub use worker::Worker;

use crate::dpdk::Mbuf;
use crate::flow::FlowTable;
use crate::lb::Services;
use crate::neigh::{NeighView, PortIndex};
use crate::pipeline::{Dataplane, SharedCounters};
use crate::wire::MacAddr;
use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;

/// Slots in the worker -> control ring.
pub const TO_CONTROL_SLOTS: usize = 4096;
/// Slots in the workers -> prober ring (probe replies).
pub const TO_PROBER_SLOTS: usize = 4096;
/// Slots in the workers -> kernel interfaces ring (the exception path).
pub const TO_KERNEL_SLOTS: usize = 1024;
/// Slots in the control -> worker 0 ring.
pub const FROM_CONTROL_SLOTS: usize = 1024;

/// What a worker hands the control thread.
#[derive(Debug)]
pub enum SlowEvent {
    /// `ip` is at `mac` on `port`.
    Learn {
        /// Port.
        port: PortIndex,
        /// Neighbour address.
        ip: IpAddr,
        /// Its MAC.
        mac: MacAddr,
    },
    /// A later fragment waiting for its first fragment.
    Fragment {
        /// The frame as received.
        mbuf: Mbuf,
    },
    /// A frame ready to go out of `port` once `next_hop` resolves.
    Hold {
        /// Egress port.
        port: PortIndex,
        /// Next hop.
        next_hop: IpAddr,
        /// The frame.
        mbuf: Mbuf,
    },
}

/// State shared by workers and control.
#[derive(Debug)]
pub struct Shared {
    /// Ports and routes.
    pub dataplane: ArcSwap<Dataplane>,
    /// Resolved neighbours.
    pub neigh: ArcSwap<NeighView>,
    /// Inbound services (rules, Maglev tables, security rules).
    pub services: ArcSwap<Services>,
    /// The IPv4 flow table.
    pub flows: FlowTable,
    /// The IPv6 flow table.
    pub flows6: FlowTable<crate::family::V6>,
    /// Where fragmented datagrams' later fragments go.
    pub frags: crate::flow::frag::Fragments,
    /// Coarse clock in ms since start, advanced by control; workers stamp
    /// flows with it.
    pub now_ms: AtomicU32,
    /// Set by control to stop the workers.
    pub stop: AtomicBool,
    /// One per worker.
    pub counters: Vec<SharedCounters>,
    /// Per-rule traffic: one per worker, then one for what control sends
    /// on (fragments that waited).
    pub traffic: Vec<crate::pipeline::Traffic>,
    /// Worker -> control (multi-producer).
    pub to_control: ArrayQueue<SlowEvent>,
    /// Control -> worker 0: (egress port, frame). One worker sends what
    /// control originates or releases, so frames for one next hop stay in
    /// order.
    pub from_control: ArrayQueue<(PortIndex, Mbuf)>,
    /// Workers -> the prober on control (multi-producer): replies to health
    /// probes, whole frames as received.
    pub to_prober: ArrayQueue<Mbuf>,
    /// Workers -> control (multi-producer): frames for the kernel interface
    /// of the port they came in on (the exception path), bounded.
    pub to_kernel: ArrayQueue<(PortIndex, Mbuf)>,
    /// Flow sync with the other instances (`[cluster]`).
    pub sync: Option<crate::sync::Sync>,
}

impl Shared {
    /// Shared state for `workers` workers with tables of `capacity` IPv4
    /// and `capacity_v6` IPv6 flows.
    pub fn new(
        dataplane: Dataplane,
        services: Services,
        (capacity, capacity_v6): (u32, u32),
        workers: usize,
    ) -> Arc<Shared> {
        let tables = (
            FlowTable::new(capacity, workers),
            FlowTable::new(capacity_v6, workers),
        );
        Shared::with_tables(dataplane, services, tables, workers, None)
    }

    /// [`Shared::new`] with flow tables made already (opened from their
    /// files, [`FlowTable::open`]), and flow sync when in a cluster.
    pub fn with_tables(
        dataplane: Dataplane,
        services: Services,
        (flows, flows6): (FlowTable, FlowTable<crate::family::V6>),
        workers: usize,
        sync: Option<crate::sync::Sync>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            dataplane: ArcSwap::from_pointee(dataplane),
            neigh: ArcSwap::from_pointee(NeighView::default()),
            services: ArcSwap::from_pointee(services),
            flows,
            flows6,
            frags: Default::default(),
            now_ms: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            counters: (0..workers).map(|_| SharedCounters::default()).collect(),
            traffic: (0..=workers).map(|_| Default::default()).collect(),
            to_control: ArrayQueue::new(TO_CONTROL_SLOTS),
            from_control: ArrayQueue::new(FROM_CONTROL_SLOTS),
            to_prober: ArrayQueue::new(TO_PROBER_SLOTS),
            to_kernel: ArrayQueue::new(TO_KERNEL_SLOTS),
            sync,
        })
    }
}
