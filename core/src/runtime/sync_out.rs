//! Sending sync datagrams: a payload sealed once, framed for each peer
//! (routed like any packet, from the egress port's own address), handed to
//! the caller to address and send. Workers send the records of the flows
//! each burst created or changed, before that burst's own frames; control
//! sends removals, refreshes and bulk copies.

use crate::dpdk::{Mbuf, Mempool};
use crate::family::{V4, V6};
use crate::flow::FlowTable;
use crate::neigh::PortIndex;
use crate::pipeline::{Dataplane, Touched};
use crate::sync::wire::{self, Ends, Kind, Writer, MAX_PAYLOAD};
use crate::sync::{Outbox, Sync, SyncStat};
use crate::wire::MacAddr;
use std::net::IpAddr;

/// A frame to a peer: egress port, next hop, and the frame with its
/// destination MAC still zero.
pub(super) type PeerFrame = (PortIndex, IpAddr, Mbuf);

/// One sender stream: its numbering and a payload buffer.
#[derive(Debug)]
pub(super) struct Sender {
    outbox: Outbox,
    buf: Box<[u8; MAX_PAYLOAD]>,
}

impl Sender {
    pub(super) fn new(stream: u8) -> Sender {
        Sender {
            outbox: Outbox::new(stream),
            buf: Box::new([0; MAX_PAYLOAD]),
        }
    }

    /// Sends a record of every live entry in `touched` to every peer: as
    /// many datagrams as they fill. Each frame goes to `out`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_touched(
        &mut self,
        s: &Sync,
        dp: &Dataplane,
        pool: &Mempool,
        tables: (&FlowTable<V4>, &FlowTable<V6>),
        touched: &Touched,
        now: u32,
        out: &mut impl FnMut(PeerFrame),
    ) {
        self.outbox
            .seal_touched(s, tables, touched, now, &mut self.buf, |payload, n| {
                frame_to_peers(s, dp, pool, payload, n, None, out)
            });
    }

    /// A sealed datagram of `kind` with the records `fill` writes (it
    /// returns false once it has no more), to every peer or to `only`.
    pub(super) fn send_with(
        &mut self,
        s: &Sync,
        (dp, pool): (&Dataplane, &Mempool),
        kind: Kind,
        only: Option<IpAddr>,
        fill: impl FnOnce(&mut Writer<'_>),
        out: &mut impl FnMut(PeerFrame),
    ) -> u64 {
        let h = self.outbox.next(s, kind);
        let mut w = Writer::new(&mut self.buf[..], &h);
        fill(&mut w);
        let n = u64::from(w.count());
        let len = w.finish(s.mac());
        frame_to_peers(s, dp, pool, &self.buf[..len], n, only, out);
        n
    }
}

pub(super) use crate::sync::wire::put;

/// Frames `payload` (holding `records`) for each peer, or only `only`.
fn frame_to_peers(
    s: &Sync,
    dp: &Dataplane,
    pool: &Mempool,
    payload: &[u8],
    records: u64,
    only: Option<IpAddr>,
    out: &mut impl FnMut(PeerFrame),
) {
    for p in s.peers.iter().filter(|p| only.is_none_or(|a| a == p.addr)) {
        match frame(s, dp, pool, p.addr, payload) {
            Some(f) => {
                s.count(SyncStat::DatagramsSent, 1);
                s.count(SyncStat::RecordsSent, records);
                out(f);
            }
            None => s.count(SyncStat::SendFailed, records.max(1)),
        }
    }
}

/// One frame of `payload` to `peer`; `None` without a route, a source
/// address of its family, or a buffer.
fn frame(
    s: &Sync,
    dp: &Dataplane,
    pool: &Mempool,
    peer: IpAddr,
    payload: &[u8],
) -> Option<PeerFrame> {
    let (port, nh) = dp.route(peer)?;
    let pv = dp.ports.get(usize::from(port))?;
    let src = pv
        .source_for(peer)
        .filter(|a| a.is_ipv4() == peer.is_ipv4())?;
    let mut m = pool.alloc()?;
    let (room, _) = m.room_and_len_mut();
    let at = wire::frame_header_len(peer);
    room.get_mut(at..at + payload.len())?
        .copy_from_slice(payload);
    let ends = Ends {
        src_mac: pv.mac,
        dst_mac: MacAddr([0; 6]),
        src,
        dst: peer,
        sport: s.port,
        dport: s.port,
    };
    let len = wire::wrap(room, &ends, payload.len())?;
    m.set_len(len);
    Some((port, nh, m))
}
