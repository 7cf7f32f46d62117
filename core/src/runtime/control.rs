//! The control side of the data plane: drains what workers hand over,
//! drives the neighbour cache (requests, retries, ageing), sends released
//! and originated frames through a worker, and republishes the neighbour
//! view. Runs on the main lcore; may allocate, log and sleep.

pub use super::sync_work::BulkState;
use super::sync_work::SyncWork;
use super::tables::TableWork;
use super::{Shared, SlowEvent};
use crate::control_counters::{ControlCounters, ControlStat};
use crate::dpdk::{Mbuf, Mempool};
use crate::family::{Family, V4, V6};
use crate::lb::{Carry, Services};
use crate::neigh::{
    build_arp_request, build_neighbor_solicit, Cache, CacheConfig, HoldOutcome, PortIndex,
};
use crate::pipeline::Dataplane;
use crate::wire::{ethernet, MacAddr};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod cluster;
mod kernel;
mod resets;

/// Events drained per poll, so one poll stays short.
const DRAIN: usize = 1024;

/// Later fragments that may wait for their first fragment at once.
pub const FRAG_BUFFER: usize = 256;
/// How long one may wait.
pub const FRAG_WAIT: Duration = Duration::from_secs(1);

/// The ager visits the whole table once per period, in slices sized by
/// the time since the last one: its cost follows the table's size, not
/// how often control polls (a 1M-flow table is about a million entry
/// visits a second, not twenty million).
const AGE_PERIOD: Duration = Duration::from_secs(1);
/// Most entries one poll visits.
const AGE_BUDGET_MAX: u64 = 65536;

/// Control's half of the data plane.
#[derive(Debug)]
pub struct ControlPlane {
    shared: Arc<Shared>,
    pool: Arc<Mempool>,
    cache: Cache<Mbuf>,
    start: Instant,
    counters: ControlCounters,
    solicit: Vec<(PortIndex, IpAddr)>,
    v4: TableWork<V4>,
    v6: TableWork<V6>,
    timer_scale: u32,
    /// When the ager last took a slice.
    aged_at: Duration,
    fragments: std::collections::VecDeque<(Duration, Mbuf)>,
    /// A reload whose flows are still to be carried over: the workers'
    /// quiescent counters at the swap, what carries over, and the new
    /// snapshot's generation.
    carrying: Option<(Vec<u64>, Carry, bool)>,
    /// A health change whose UDP flows are still to move: the workers'
    /// quiescent counters when it was published.
    moving: Option<Vec<u64>>,
    /// Control's own TX queue per port, where the device had a spare one.
    own_tx: Vec<Option<crate::dpdk::TxQueue>>,
    burst: crate::dpdk::Burst,
    /// Flow sync's control side, in a cluster.
    sync: Option<SyncWork>,
    /// The data ports' kernel interfaces (the exception path).
    kernel: Vec<kernel::KernelPort>,
}

impl ControlPlane {
    /// Control for `shared`, allocating originated frames from `pool`;
    /// flow timeouts are divided by `timer_scale`.
    pub fn new(
        shared: Arc<Shared>,
        pool: Arc<Mempool>,
        cfg: CacheConfig,
        timer_scale: u32,
    ) -> ControlPlane {
        let sync = shared.sync.is_some().then(SyncWork::new);
        let (mut v4, mut v6) = (TableWork::default(), TableWork::default());
        if sync.is_some() {
            v4.ended = Some(Vec::new());
            v6.ended = Some(Vec::new());
        }
        ControlPlane {
            shared,
            pool,
            cache: Cache::new(cfg),
            start: Instant::now(),
            counters: ControlCounters::default(),
            solicit: Vec::new(),
            v4,
            v6,
            timer_scale: timer_scale.max(1),
            aged_at: Duration::ZERO,
            fragments: Default::default(),
            carrying: None,
            moving: None,
            own_tx: Vec::new(),
            burst: Default::default(),
            sync,
            kernel: Vec::new(),
        }
    }

    /// Gives control its own TX queue on `port`: what it sends there no
    /// longer goes through worker 0.
    pub fn own_tx(&mut self, port: PortIndex, q: crate::dpdk::TxQueue) {
        let i = usize::from(port);
        if self.own_tx.len() <= i {
            self.own_tx.resize_with(i + 1, || None);
        }
        self.own_tx[i] = Some(q);
    }

    /// The mbuf pool: (in use, capacity).
    pub fn mbufs(&self) -> (u32, u32) {
        (self.pool.in_use(), self.pool.capacity())
    }

    /// Counters so far.
    pub fn counters(&self) -> ControlCounters {
        let mut c = self.counters;
        c.neigh = self.cache.counters();
        c
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Starts resolving next hops known in advance (gateways).
    pub fn resolve(&mut self, port: PortIndex, ip: IpAddr) {
        if self.cache.resolve(port, ip, self.now()) {
            self.send_request(port, ip);
        }
    }

    /// One round of control work; true when there was something to do.
    pub fn poll(&mut self) -> bool {
        let now = self.now();
        let ms = now.as_millis() as u32;
        self.shared.now_ms.store(ms, Ordering::Relaxed);
        let mut busy = self.carry_flows(now);
        busy |= self.move_udp_flows();
        busy |= self.age_flows(ms, now);
        busy |= self.sync_poll(ms, now);
        busy |= self.kernel_poll();
        for _ in 0..DRAIN {
            let Some(ev) = self.shared.to_control.pop() else {
                break;
            };
            busy = true;
            match ev {
                SlowEvent::Fragment { mbuf } => {
                    if self.fragments.len() >= FRAG_BUFFER {
                        self.counters.add(ControlStat::FragOverflow, 1);
                    } else {
                        self.fragments.push_back((now, mbuf));
                    }
                }
                SlowEvent::Learn { port, ip, mac } => {
                    for r in self.cache.learn(port, ip, mac, now) {
                        self.send_to(r.port, r.mac, r.packet);
                    }
                }
                SlowEvent::Hold {
                    port,
                    next_hop,
                    mbuf,
                } => self.send_via(port, next_hop, mbuf, now),
            }
        }
        busy |= self.retry_fragments(now);
        let mut solicit = std::mem::take(&mut self.solicit);
        let dropped = self.cache.poll(now, &mut solicit);
        busy |= !dropped.is_empty() || !solicit.is_empty();
        drop(dropped);
        for (port, ip) in solicit.drain(..) {
            self.send_request(port, ip);
        }
        self.solicit = solicit;
        if let Some(view) = self.cache.take_view() {
            self.shared.neigh.store(Arc::new(view));
            self.counters.add(ControlStat::ViewsPublished, 1);
            busy = true;
        }
        busy
    }

    /// Sends on the waiting fragments whose first fragment has come; drops
    /// those that waited too long.
    fn retry_fragments(&mut self, now: Duration) -> bool {
        if self.fragments.is_empty() {
            return false;
        }
        let shared = self.shared.clone();
        let (dp, neigh, services) = (
            shared.dataplane.load(),
            shared.neigh.load(),
            shared.services.load(),
        );
        let cx = crate::pipeline::Context {
            dataplane: &dp,
            neigh: &neigh,
            services: &services,
            flows: &shared.flows,
            flows6: &shared.flows6,
            frags: &shared.frags,
            now: now.as_millis() as u32,
            worker: 0,
            traffic: &shared.traffic[shared.traffic.len() - 1],
            sync: shared.sync.as_ref(),
        };
        let mut busy = false;
        for _ in 0..self.fragments.len() {
            let Some((since, mut m)) = self.fragments.pop_front() else {
                break;
            };
            let (room, len) = m.room_and_len_mut();
            match crate::pipeline::retry_fragment(cx, room, len) {
                None if now - since > FRAG_WAIT => {
                    self.counters.add(ControlStat::FragTimeout, 1);
                    busy = true;
                }
                None => self.fragments.push_back((since, m)),
                Some(fate) => {
                    busy = true;
                    self.counters.add(ControlStat::FragReleased, 1);
                    match fate {
                        crate::pipeline::Fate::Tx { port, len } => {
                            m.set_len(usize::from(len));
                            self.transmit(port, m);
                        }
                        crate::pipeline::Fate::Hold {
                            port,
                            next_hop,
                            len,
                        } => {
                            m.set_len(usize::from(len));
                            self.send_via(port, next_hop, m, now);
                        }
                        crate::pipeline::Fate::Split { port, len, mtu } => {
                            m.set_len(usize::from(len));
                            let (pool, mut c) = (Arc::clone(&self.pool), Default::default());
                            let mut out = Vec::new();
                            super::worker::split_out(&pool, m, mtu, &mut c, |m, _| out.push(m));
                            if out.is_empty() {
                                self.counters.add(ControlStat::FragSplitFailed, 1);
                            }
                            for m in out {
                                self.transmit(port, m);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        busy
    }

    /// Publishes a new data plane and rule snapshot (a reload). Flows carry
    /// over to the new snapshot's ids once every worker has moved to it; a
    /// flow whose rule changed or went, or whose member left, ends then (RST
    /// to both ends for established flows of `tcp_reset` rules).
    pub fn reload(&mut self, dataplane: Dataplane, mut services: Services) {
        // One reload at a time: the previous one's flows are carried first
        // (its grace period is one worker loop, microseconds).
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.carrying.is_some() && Instant::now() < deadline {
            if !self.carry_flows(self.now()) {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let old = self.shared.services.load_full();
        services.generation = !old.generation;
        if let Some(snat) = Arc::get_mut(&mut services.snat) {
            snat.inherit_counters(&old.snat);
        }
        let carry = Carry::between(&old, &services);
        let generation = services.generation;
        self.shared.dataplane.store(Arc::new(dataplane));
        self.shared.services.store(Arc::new(services));
        let epochs = self.shared.flows.epochs();
        self.carrying = Some((epochs.clone(), carry, generation));
        // Members the reload made ineligible (admin down) lose their UDP
        // flows as a probe-down member does; carried first, same grace.
        self.moving = Some(epochs);
        self.counters.add(ControlStat::Reloads, 1);
    }

    /// Publishes `services`, compiled from the running config with new
    /// member health: rule and member ids are those of the running
    /// snapshot, so flows keep theirs. Once every worker uses it, UDP flows
    /// of members that may no longer take new flows end, and their next
    /// datagram makes a flow to a healthy member; TCP flows stay.
    pub fn publish_health(&mut self, mut services: Services) {
        let old = self.shared.services.load_full();
        services.generation = old.generation;
        services.snat = old.snat.clone();
        self.shared.services.store(Arc::new(services));
        self.moving = Some(self.shared.flows.epochs());
        self.counters.add(ControlStat::HealthPublished, 1);
    }

    /// After the grace period of [`ControlPlane::publish_health`] (or of a
    /// reload, once its flows are carried): ends the UDP
    /// flows of members that may not take new flows, when their rule has a
    /// member that may (with none, there is nowhere to move them).
    fn move_udp_flows(&mut self) -> bool {
        let ready = match &self.moving {
            Some(then) => self.shared.flows.passed_since(then),
            None => false,
        };
        if !ready {
            return false;
        }
        self.moving = None;
        let services = self.shared.services.load();
        let moved = self.v4.move_udp(&self.shared.flows, &services)
            + self.v6.move_udp(&self.shared.flows6, &services);
        self.counters.add(ControlStat::FlowsMovedByHealth, moved);
        true
    }

    /// Sends an IP packet of either family control originated (a health
    /// probe): routed as any other, from the egress port's MAC, through the
    /// neighbour cache. False when it could not go (no route, no mbuf, too
    /// long, not IP).
    pub fn send_ip(&mut self, packet: &[u8]) -> bool {
        let v6 = packet.first().map(|b| b >> 4) == Some(6);
        let dst = if v6 {
            packet
                .get(24..40)
                .map(|d| IpAddr::V6(<V6 as Family>::read(d)))
        } else {
            packet
                .get(16..20)
                .map(|d| IpAddr::V4(<V4 as Family>::read(d)))
        };
        let Some(dst) = dst else {
            return false;
        };
        let dp = self.shared.dataplane.load();
        let Some((port, nh)) = dp.route(dst) else {
            self.counters.add(ControlStat::OriginatedNoRoute, 1);
            return false;
        };
        let mac = dp.ports[usize::from(port)].mac;
        let Some(mut m) = self.pool.alloc() else {
            self.counters.add(ControlStat::AllocFailed, 1);
            return false;
        };
        let (room, _) = m.room_and_len_mut();
        let len = ethernet::HEADER_LEN + packet.len();
        if room.len() < len {
            return false;
        }
        ethernet::Repr {
            src: mac,
            dst: MacAddr([0; 6]),
            ethertype: if v6 {
                ethernet::EtherType::Ipv6
            } else {
                ethernet::EtherType::Ipv4
            },
        }
        .emit(&mut ethernet::Frame::new_unchecked(&mut room[..len]));
        room[ethernet::HEADER_LEN..len].copy_from_slice(packet);
        m.set_len(len);
        self.counters.add(ControlStat::Originated, 1);
        self.send_via(port, nh, m, self.now());
        true
    }

    /// The flows of tables adopted from a previous process (`adopted` kept
    /// whole, `cut_short` taken out): moved to this snapshot's ids by
    /// `carry` (from the identities that process saved), or ended as a
    /// reload ends them (RST where `tcp_reset`). Before the workers start.
    pub fn adopt(&mut self, carry: &Carry, adopted: u64, cut_short: u64) {
        let generation = self.shared.services.load().generation;
        let shared = self.shared.clone();
        let ended = self.v4.carry(&shared.flows, carry, generation, true)
            + self.v6.carry(&shared.flows6, carry, generation, true);
        self.counters.add(ControlStat::FlowsAdopted, adopted);
        self.counters.add(ControlStat::FlowsCutShort, cut_short);
        self.counters.add(ControlStat::FlowsEndedByRestart, ended);
        self.counters
            .add(ControlStat::FlowsRemapped, adopted.saturating_sub(ended));
        self.send_resets(self.now());
    }

    /// Protocol timers are divided by this (`--timer-scale`).
    pub fn timer_scale(&self) -> u32 {
        self.timer_scale
    }

    /// Counts a reload that was rejected before anything changed.
    pub fn reload_rejected(&mut self) {
        self.counters.add(ControlStat::ReloadsRejected, 1);
    }

    /// Once every worker uses the snapshot of the last reload: moves each
    /// flow of the old snapshot to its new rule and member ids, or ends it.
    fn carry_flows(&mut self, now: Duration) -> bool {
        let ready = match &self.carrying {
            Some((then, _, _)) => self.shared.flows.passed_since(then),
            None => false,
        };
        if !ready {
            return false;
        }
        let (_, carry, generation) = self.carrying.take().expect("checked above");
        let shared = self.shared.clone();
        let ended = self.v4.carry(&shared.flows, &carry, generation, false)
            + self.v6.carry(&shared.flows6, &carry, generation, false);
        self.counters.add(ControlStat::FlowsEndedByReload, ended);
        self.send_resets(now);
        true
    }

    /// Removes flows that idled out, resetting established TCP flows of
    /// rules with `tcp_reset` at both ends, and recycles entries whose grace
    /// period is over.
    fn age_flows(&mut self, ms: u32, now: Duration) -> bool {
        let shared = self.shared.clone();
        let since = now.saturating_sub(self.aged_at).as_micros() as u64;
        let budget = |t: u32| {
            (u64::from(t) * since / AGE_PERIOD.as_micros() as u64).min(AGE_BUDGET_MAX) as u32
        };
        let (b4, b6) = (
            budget(shared.flows.high_water()),
            budget(shared.flows6.high_water()),
        );
        if b4 > 0 || b6 > 0 {
            self.aged_at = now;
        }
        let scale = self.timer_scale;
        let removed =
            self.v4.age(&shared.flows, ms, scale, b4) + self.v6.age(&shared.flows6, ms, scale, b6);
        self.counters.add(ControlStat::FlowsExpired, removed as u64);
        self.send_resets(now);
        let freed = self.v4.reclaim(&shared.flows) + self.v6.reclaim(&shared.flows6);
        self.counters.add(ControlStat::FlowsReclaimed, freed as u64);
        removed > 0 || freed > 0
    }

    /// Sends a frame out of `port` to `next_hop`'s MAC, or holds it while
    /// the neighbour resolves (asking for it when this is the first).
    fn send_via(&mut self, port: PortIndex, next_hop: IpAddr, m: Mbuf, now: Duration) {
        match self.cache.hold(port, next_hop, m, now) {
            HoldOutcome::Queued { solicit: true } => self.send_request(port, next_hop),
            HoldOutcome::Queued { solicit: false } => {}
            HoldOutcome::Resolved(mac, m) => self.send_to(port, mac, m),
            HoldOutcome::Dropped(m) => drop(m),
        }
    }

    /// Fills in the destination MAC and sends through worker 0.
    fn send_to(&mut self, port: PortIndex, mac: MacAddr, mut m: Mbuf) {
        let (room, len) = m.room_and_len_mut();
        if len >= ethernet::HEADER_LEN {
            ethernet::Frame::new_unchecked(&mut room[..len]).set_dst_addr(mac);
        }
        self.transmit(port, m);
    }

    fn transmit(&mut self, port: PortIndex, m: Mbuf) {
        let mut m = m;
        if let Some(Some(q)) = self.own_tx.get_mut(usize::from(port)) {
            // A burst of one: control sends little, and at once.
            let _ = self.burst.push(m);
            if q.tx(&mut self.burst) == 1 {
                self.counters.add(ControlStat::TxOwn, 1);
                return;
            }
            // Refused (full, or a queue the peer never connected, as a
            // net_memif peer with fewer rings leaves it): worker 0 sends it.
            self.counters.add(ControlStat::TxOwnFull, 1);
            match self.burst.take(0) {
                Some(back) => m = back,
                None => return,
            }
            self.burst.clear();
        }
        if self.shared.from_control.push((port, m)).is_err() {
            self.counters.add(ControlStat::ToWorkerFull, 1);
        }
    }

    /// Announces every address Sluice owns, on its port: a gratuitous ARP
    /// (sender and target the address) for IPv4, an unsolicited neighbour
    /// advertisement for IPv6. At start, so neighbours that cached another
    /// MAC (a restart on other hardware, a failover) learn this one.
    pub fn announce_addresses(&mut self) {
        let dp = self.shared.dataplane.load_full();
        for (port, p) in PortIndex::all(dp.ports.len()).zip(&dp.ports) {
            let addrs =
                p.v4.iter()
                    .map(|&a| IpAddr::V4(a))
                    .chain(p.v6.iter().map(|&a| IpAddr::V6(a)));
            for a in addrs {
                let Some(mut m) = self.pool.alloc() else {
                    self.counters.add(ControlStat::AllocFailed, 1);
                    return;
                };
                let (room, _) = m.room_and_len_mut();
                let len = match a {
                    IpAddr::V4(a) => build_arp_request(room, p.mac, a, a),
                    IpAddr::V6(a) => crate::neigh::build_unsolicited_advert(room, p.mac, a),
                };
                m.set_len(len);
                self.counters.add(ControlStat::Announced, 1);
                self.transmit(port, m);
            }
        }
    }

    fn send_request(&mut self, port: PortIndex, ip: IpAddr) {
        let dp = self.shared.dataplane.load();
        let p = &dp.ports[usize::from(port)];
        let Some(src) = p.source_for(ip) else {
            self.counters.add(ControlStat::NoSource, 1);
            return;
        };
        let Some(mut m) = self.pool.alloc() else {
            self.counters.add(ControlStat::AllocFailed, 1);
            return;
        };
        let (room, _) = m.room_and_len_mut();
        let len = match (src, ip) {
            (IpAddr::V4(s), IpAddr::V4(t)) => build_arp_request(room, p.mac, s, t),
            (IpAddr::V6(s), IpAddr::V6(t)) => build_neighbor_solicit(room, p.mac, s, t),
            _ => {
                self.counters.add(ControlStat::NoSource, 1);
                return;
            }
        };
        m.set_len(len);
        self.transmit(port, m);
    }
}
