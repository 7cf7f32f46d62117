//! The exception path's control side: each data port's kernel interface
//! (a DPDK `net_tap` port, [`crate::dpdk::create_tap`]). What workers punt
//! ([`crate::pipeline::Fate::Punt`], and copies of ARP / ND) comes through
//! the bounded [`crate::runtime::Shared::to_kernel`] ring and goes to the tap; what the
//! kernel sends on the tap leaves through the data port like any frame
//! control sends. Nothing here is on the packet path: control polls it.

use super::ControlPlane;
use crate::dpdk::{Burst, Port, RxQueue, TxQueue};
use crate::neigh::PortIndex;
use crate::runtime::ControlCounters;
use crate::runtime::ControlStat;

/// Frames moved each way per poll, at most.
const KERNEL_BURST: usize = 32;
/// Frames taken off the ring per poll, at most.
const DRAIN: usize = 256;

/// One data port's kernel interface.
#[derive(Debug)]
pub(super) struct KernelPort {
    /// The data port it stands for.
    port: PortIndex,
    rx: RxQueue,
    tx: TxQueue,
    /// Frames on their way to the kernel, sent once per poll.
    out: Burst,
}

impl ControlPlane {
    /// Serves `tap` as the kernel interface of data port `port`.
    pub fn add_kernel(&mut self, port: PortIndex, tap: &Port) {
        self.kernel.push(KernelPort {
            port,
            rx: tap.rx_queue(0),
            tx: tap.tx_queue(0),
            out: Burst::default(),
        });
    }

    /// Moves frames between the data ports and their kernel interfaces;
    /// true when there were any.
    pub(super) fn kernel_poll(&mut self) -> bool {
        if self.kernel.is_empty() {
            return false;
        }
        let mut busy = false;
        for _ in 0..DRAIN {
            let Some((port, m)) = self.shared.to_kernel.pop() else {
                break;
            };
            busy = true;
            let Some(k) = self.kernel.iter_mut().find(|k| k.port == port) else {
                self.counters.add(ControlStat::ToKernelDropped, 1);
                continue;
            };
            if let Err(m) = k.out.push(m) {
                flush(k, &mut self.counters);
                let _ = k.out.push(m);
            }
        }
        let mut from = Burst::default();
        for i in 0..self.kernel.len() {
            let k = &mut self.kernel[i];
            flush(k, &mut self.counters);
            let port = k.port;
            if k.rx.rx(&mut from, KERNEL_BURST) == 0 {
                continue;
            }
            busy = true;
            for j in 0..from.len() {
                if let Some(m) = from.take(j) {
                    self.counters.add(ControlStat::FromKernel, 1);
                    self.transmit(port, m);
                }
            }
            from.clear();
        }
        busy
    }
}

/// Sends `k`'s waiting frames to the kernel; what the tap refuses is freed
/// and counted.
fn flush(k: &mut KernelPort, c: &mut ControlCounters) {
    if k.out.is_empty() {
        return;
    }
    let sent = k.tx.tx(&mut k.out);
    c.add(ControlStat::ToKernel, sent as u64);
    c.add(ControlStat::ToKernelDropped, k.out.len() as u64);
    k.out.clear();
}
