//! The poll-mode worker: rx burst -> process -> tx bursts per port, free what
//! was not sent, publish counters. Nothing in the loop allocates, locks,
//! logs or makes a syscall; everything it needs is set up before it starts.

use super::{Shared, SlowEvent};
use crate::dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue};
use crate::neigh::PortIndex;
use crate::pipeline::{process_burst, Context, Counters, DropReason, Fate, Slowpath, Split, Stat};
use crate::wire::MacAddr;
use crate::MAX_BURST;
use crossbeam_queue::ArrayQueue;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A worker's queues: the RX queues it polls and one TX queue on every port.
#[derive(Debug)]
pub struct Worker {
    /// Index into `Shared::counters`; worker 0 also sends for control.
    pub index: usize,
    /// (port index, queue) pairs this worker polls.
    pub rx: Vec<(PortIndex, RxQueue)>,
    /// This worker's TX queue on each port, by port index.
    pub tx: Vec<TxQueue>,
    /// Burst size.
    pub burst: usize,
    /// Where the fragments of a datagram too big for its egress come from.
    pub pool: Arc<Mempool>,
    /// Sleep this long (µs) between polls once idle ([`IDLE_POLLS`] empty
    /// polls in a row); 0: busy-poll.
    pub idle_sleep_us: u32,
}

/// Empty polls in a row after which a worker with `idle_sleep_us` sleeps.
pub const IDLE_POLLS: u32 = 256;

/// The worker's slow path: learning to control, copies for the kernel
/// interfaces in buffers of `pool`.
struct Ring<'a> {
    control: &'a ArrayQueue<SlowEvent>,
    kernel: &'a ArrayQueue<(PortIndex, Mbuf)>,
    pool: &'a Mempool,
}

impl Slowpath for Ring<'_> {
    #[inline]
    fn learn(&mut self, port: PortIndex, ip: IpAddr, mac: MacAddr) -> bool {
        self.control
            .push(SlowEvent::Learn { port, ip, mac })
            .is_ok()
    }

    #[cold]
    fn copy_to_kernel(&mut self, port: PortIndex, frame: &[u8]) -> bool {
        let Some(mut m) = self.pool.alloc() else {
            return false;
        };
        let (room, _) = m.room_and_len_mut();
        let Some(dst) = room.get_mut(..frame.len()) else {
            return false;
        };
        dst.copy_from_slice(frame);
        m.set_len(frame.len());
        self.kernel.push((port, m)).is_ok()
    }
}

/// Busy iterations between two publications of a worker's counters (and
/// always when it goes idle): the 60-odd stores of a publication are not
/// paid per burst, and a reader is at most this many bursts behind.
pub const PUBLISH_EVERY: u32 = 64;

impl Worker {
    /// Runs until `shared.stop`; returns 0.
    pub fn run(mut self, shared: Arc<Shared>) -> i32 {
        let mut c = Counters::default();
        let mut rx = Burst::default();
        let mut free = Burst::default();
        let mut tx: Vec<Burst> = self.tx.iter().map(|_| Burst::default()).collect();
        let mut fates = [Fate::Consumed; MAX_BURST];
        let mut ring = Ring {
            control: &shared.to_control,
            kernel: &shared.to_kernel,
            pool: &self.pool,
        };
        // Only worker 0 sends what control hands over (see Shared::from_control).
        let from_control = (self.index == 0).then_some(&shared.from_control);
        let mut sender = super::sync_out::Sender::new(self.index as u8);
        // The snapshots, kept here and reloaded only when control has
        // swapped one: one pointer compare each per iteration, no
        // reference counts.
        let mut dataplane = arc_swap::Cache::new(&shared.dataplane);
        let mut neigh = arc_swap::Cache::new(&shared.neigh);
        let mut services = arc_swap::Cache::new(&shared.services);
        let (mut idle, mut unpublished) = (0u32, 0u32);
        while !shared.stop.load(Ordering::Relaxed) {
            // Between iterations the worker holds nothing from the table.
            shared.flows.quiescent(self.index);
            shared.flows6.quiescent(self.index);
            let (dataplane, neigh, services) =
                (&**dataplane.load(), &**neigh.load(), &**services.load());
            let cx = Context {
                dataplane,
                neigh,
                services,
                flows: &shared.flows,
                flows6: &shared.flows6,
                frags: &shared.frags,
                now: shared.now_ms.load(Ordering::Relaxed),
                worker: self.index,
                traffic: &shared.traffic[self.index],
                sync: shared.sync.as_ref(),
            };
            let mut busy = false;
            // Cycles of iterations that received frames (not of those that
            // only sent what control handed over).
            let mut received = false;
            let started = crate::dpdk::rdtsc();
            for (port, q) in &mut self.rx {
                if q.rx(&mut rx, self.burst) == 0 {
                    continue;
                }
                busy = true;
                received = true;
                if rx.any_chained() {
                    drop_chained(&mut rx, &mut c);
                }
                let n = rx.len();
                process_burst(
                    cx,
                    *port,
                    rx.mbufs_mut(),
                    &mut fates[..n],
                    &mut ring,
                    &mut c,
                );
                if let Some(s) = &shared.sync {
                    // A peer learns of the burst's new flows before any
                    // of their packets leaves, so replies that reach it
                    // find them.
                    let out = (&mut self.tx[..], &mut tx[..], &mut c);
                    sync_out(
                        s,
                        &shared,
                        (dataplane, neigh),
                        &self.pool,
                        &mut sender,
                        out,
                        cx.now,
                    );
                }
                c.touched().clear();
                let rx_port = *port;
                let out = (&mut self.tx[..], &mut tx[..], &mut free);
                dispatch(&mut rx, &fates, rx_port, &shared, &self.pool, out, &mut c);
                free.clear();
            }
            // `is_empty` is two loads; `pop` on an empty queue also fences.
            let from_control = from_control.filter(|q| !q.is_empty());
            for _ in 0..self.burst {
                let Some((port, m)) = from_control.and_then(ArrayQueue::pop) else {
                    break;
                };
                busy = true;
                c.add(Stat::FromControl, 1);
                let p = usize::from(port);
                enqueue(&mut self.tx[p], &mut tx[p], m, &mut c);
            }
            for (q, b) in self.tx.iter_mut().zip(tx.iter_mut()) {
                flush(q, b, &mut c);
            }
            if received {
                c.add(Stat::BusyCycles, crate::dpdk::rdtsc() - started);
            }
            if busy {
                idle = 0;
                unpublished += 1;
                if unpublished >= PUBLISH_EVERY {
                    shared.counters[self.index].publish(&c);
                    unpublished = 0;
                }
            } else {
                if unpublished > 0 {
                    shared.counters[self.index].publish(&c);
                    unpublished = 0;
                }
                if self.idle_sleep_us > 0 {
                    // Not on the packet path: only after a run of empty
                    // polls, with the table released (quiescent) above.
                    idle += 1;
                    if idle >= IDLE_POLLS {
                        std::thread::sleep(std::time::Duration::from_micros(u64::from(
                            self.idle_sleep_us,
                        )));
                    }
                }
            }
        }
        shared.counters[self.index].publish(&c);
        0
    }
}

/// Hands each frame of the processed RX burst on by its fate, in one pass
/// over the burst's pointer array: into its egress port's TX burst, to
/// control, the prober or the kernel ring, or into `free` (the pipeline
/// counted the fates).
#[inline]
fn dispatch(
    rx: &mut Burst,
    fates: &[Fate],
    rx_port: PortIndex,
    shared: &Shared,
    pool: &Mempool,
    (txq, tx, free): (&mut [TxQueue], &mut [Burst], &mut Burst),
    c: &mut Counters,
) {
    rx.drain(|i, mut m| {
        let fate = &fates[i];
        match *fate {
            Fate::Tx { port, len } => {
                m.set_len(usize::from(len));
                let p = usize::from(port);
                enqueue(&mut txq[p], &mut tx[p], m, c);
            }
            Fate::Consumed | Fate::Drop(_) => {
                if let Err(m) = free.push(m) {
                    free.clear();
                    let _ = free.push(m);
                }
            }
            _ => hand_off(m, fate, rx_port, shared, pool, (txq, tx), c),
        }
    });
}

/// The fates other than send and free: out of line, the exception.
#[cold]
#[inline(never)]
fn hand_off(
    mut m: Mbuf,
    fate: &Fate,
    rx_port: PortIndex,
    shared: &Shared,
    pool: &Mempool,
    (txq, tx): (&mut [TxQueue], &mut [Burst]),
    c: &mut Counters,
) {
    match *fate {
        Fate::Split { port, len, mtu } => {
            m.set_len(usize::from(len));
            let p = usize::from(port);
            let (q, b) = (&mut txq[p], &mut tx[p]);
            split_out(pool, m, mtu, c, |m, c| enqueue(q, b, m, c));
        }
        Fate::Hold {
            port,
            next_hop,
            len,
        } => {
            m.set_len(usize::from(len));
            let held = SlowEvent::Hold {
                port,
                next_hop,
                mbuf: m,
            };
            if shared.to_control.push(held).is_err() {
                c.drop(DropReason::SlowpathFull);
            }
        }
        Fate::Defer => {
            if shared
                .to_control
                .push(SlowEvent::Fragment { mbuf: m })
                .is_err()
            {
                c.drop(DropReason::SlowpathFull);
            }
        }
        Fate::Probe => {
            if shared.to_prober.push(m).is_err() {
                c.drop(DropReason::ProbeRingFull);
            }
        }
        Fate::Punt => {
            if shared.to_kernel.push((rx_port, m)).is_err() {
                c.drop(DropReason::KernelRingFull);
            }
        }
        // Sent or freed by `dispatch`.
        Fate::Tx { .. } | Fate::Consumed | Fate::Drop(_) => drop(m),
    }
}

/// Adds `m` to TX burst `b` of queue `q`, sending the burst first when it
/// is full.
#[inline]
fn enqueue(q: &mut TxQueue, b: &mut Burst, m: Mbuf, c: &mut Counters) {
    if let Err(m) = b.push(m) {
        flush(q, b, c);
        let _ = b.push(m);
    }
}

/// Sends the sync records of the entries this burst created or changed
/// (`c`'s touched list) to every peer, each frame ahead of the burst's own
/// on its port's TX burst (`txq`, `tx`), or to control when the peer's
/// MAC is not known yet.
fn sync_out(
    s: &crate::sync::Sync,
    shared: &Shared,
    (dp, neigh): (&crate::pipeline::Dataplane, &crate::neigh::NeighView),
    pool: &Mempool,
    sender: &mut super::sync_out::Sender,
    (txq, tx, c): (&mut [TxQueue], &mut [Burst], &mut Counters),
    now: u32,
) {
    if c.touched().is_empty() {
        return;
    }
    // Taken out for the call (frames sent go to `c`'s counters) and put
    // back, so its array is not made again each burst.
    let touched = std::mem::take(c.touched());
    let tables = (&shared.flows, &shared.flows6);
    sender.send_touched(s, dp, pool, tables, &touched, now, &mut |(
        port,
        nh,
        mut m,
    )| {
        match neigh.lookup(port, nh) {
            Some(mac) => {
                let (room, _) = m.room_and_len_mut();
                crate::wire::ethernet::Frame::new_unchecked(&mut room[..6]).set_dst_addr(mac);
                let p = usize::from(port);
                enqueue(&mut txq[p], &mut tx[p], m, c);
            }
            None => {
                let held = SlowEvent::Hold {
                    port,
                    next_hop: nh,
                    mbuf: m,
                };
                if shared.to_control.push(held).is_err() {
                    s.count(crate::sync::SyncStat::SendFailed, 1);
                }
            }
        }
    });
    if touched.overflow > 0 {
        s.count(crate::sync::SyncStat::SendFailed, touched.overflow);
    }
    *c.touched() = touched;
}

/// Sends a TX burst; whatever the queue refuses is freed and counted.
#[inline]
fn flush(q: &mut TxQueue, b: &mut Burst, c: &mut Counters) {
    if b.is_empty() {
        return;
    }
    let sent = q.tx(b);
    c.add(Stat::Tx, sent as u64);
    for _ in 0..b.len() {
        c.drop(DropReason::TxFull);
    }
    b.clear();
}

/// Most fragments one datagram is cut into: a frame fits one mbuf (2 KiB)
/// and an MTU is at least 576, so 4 do.
const MAX_FRAGMENTS: usize = 8;

/// Sends the IPv4 datagram in `m` as fragments of at most `mtu` IP bytes,
/// each given to `send` in order; the later ones in mbufs from `pool`. When
/// the pool cannot give them all, none is sent (`fragment_no_buffer`).
#[cold]
#[inline(never)]
pub(super) fn split_out(
    pool: &Mempool,
    mut m: Mbuf,
    mtu: u16,
    c: &mut Counters,
    mut send: impl FnMut(Mbuf, &mut Counters),
) {
    let (room, len) = m.room_and_len_mut();
    let Some(plan) = room.get(..len).and_then(|f| Split::plan(f, mtu)) else {
        c.drop(DropReason::MtuExceeded);
        return;
    };
    if plan.count() > MAX_FRAGMENTS {
        c.drop(DropReason::FragmentNoBuffer);
        return;
    }
    let mut later: [Option<Mbuf>; MAX_FRAGMENTS] = Default::default();
    for (k, slot) in later.iter_mut().enumerate().take(plan.count()).skip(1) {
        let Some(mut f) = pool.alloc() else {
            c.drop(DropReason::FragmentNoBuffer);
            return;
        };
        let (out, _) = f.room_and_len_mut();
        let Some(n) = plan.write_later(&room[..len], k, out) else {
            c.drop(DropReason::MtuExceeded);
            return;
        };
        f.set_len(n);
        *slot = Some(f);
    }
    let first = plan.cut_first(room);
    m.set_len(first);
    c.add(Stat::FragmentsMade, plan.count() as u64);
    send(m, c);
    for f in later.into_iter().flatten() {
        send(f, c);
    }
}

/// Chained mbufs (frames larger than one buffer) are dropped before the
/// pipeline sees them: it works on one contiguous buffer.
#[inline]
fn drop_chained(rx: &mut Burst, c: &mut Counters) {
    let n = rx.len();
    let mut chained = 0;
    for i in 0..n {
        if rx.get(i).is_some_and(|m| m.nb_segs() > 1) {
            drop(rx.take(i));
            chained += 1;
        }
    }
    if chained > 0 {
        rx.compact();
        c.add(Stat::Rx, chained);
        for _ in 0..chained {
            c.drop(DropReason::MultiSegment);
        }
    }
}
