//! The smoltcp device of the prober: IP packets in (probe replies the
//! workers handed over, copied off their mbufs) and IP packets out (handed
//! to the control plane, which routes them and sends them on the internal
//! port). Outgoing buffers are recycled.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::collections::VecDeque;

/// Packets waiting for the interface; beyond this, replies are dropped and
/// counted (the probes they answer then time out).
pub const RX_QUEUE: usize = 4096;
/// IP MTU the probes use (their segments are small).
pub const MTU: usize = 1500;

/// Queues between the prober and the control plane.
#[derive(Debug, Default)]
pub struct Pipe {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    /// Replies dropped because [`RX_QUEUE`] were waiting.
    pub rx_dropped: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
}

impl Pipe {
    fn buffer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b.extend_from_slice(bytes);
        b
    }

    /// Queues one received IP packet (a copy); false when the queue is full.
    pub fn push_rx(&mut self, packet: &[u8]) -> bool {
        if self.rx.len() >= RX_QUEUE {
            self.rx_dropped += 1;
            return false;
        }
        let b = self.buffer(packet);
        self.rx.push_back(b);
        self.rx_packets += 1;
        true
    }

    /// Hands every packet the interface sent to `send`.
    pub fn drain_tx(&mut self, mut send: impl FnMut(&[u8])) {
        while let Some(b) = self.tx.pop_front() {
            send(&b);
            self.spare.push(b);
        }
    }
}

/// A received packet.
pub struct RxToken(Vec<u8>);
/// Room for one packet to send.
pub struct TxToken<'a>(&'a mut Pipe);

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut b = self.0.spare.pop().unwrap_or_default();
        b.clear();
        b.resize(len, 0);
        let r = f(&mut b);
        self.0.tx.push_back(b);
        self.0.tx_packets += 1;
        r
    }
}

impl Device for Pipe {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let b = self.rx.pop_front()?;
        Some((RxToken(b), TxToken(self)))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = MTU;
        c
    }
}
