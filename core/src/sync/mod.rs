//! Flow sync between the instances of a cluster (`[cluster]`): every flow
//! created, changed in TCP state, refreshed or removed travels to the
//! peers in authenticated UDP datagrams over the internal DPDK port, so
//! any instance translates any packet of any flow (asymmetric paths,
//! failover). Anchors: IPVS's sync daemon, conntrackd, VPP's NAT HA.
//!
//! - [`wire`]: the datagram, its records and MAC (BLAKE3 keyed hash).
//! - [`replay`]: per sender stream, epoch + sequence + a 64-wide window.
//! - [`Sync`]: what workers and control share: the key, the peers with
//!   their streams and counters, the running rules' fingerprint.
//! - [`receive`]: a datagram from a peer, checked and applied; the
//!   pipeline calls it, so a record is in the table before the next
//!   frame of the same burst is looked up.
//! - [`Outbox`]: a sender's numbering and the frame it builds.

mod receive;
pub mod replay;
pub mod wire;

pub use receive::{receive, Removal};

use crate::config::{Cluster, SyncKey};
use crate::lb::Identities;
use crossbeam_queue::ArrayQueue;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use wire::{Header, Kind};

/// Sender streams per instance: one per worker, and control's.
pub const MAX_STREAMS: usize = 32;
/// Control's stream.
pub const CONTROL_STREAM: u8 = (MAX_STREAMS - 1) as u8;
/// Removals received and waiting for control.
pub const REMOVAL_SLOTS: usize = 4096;

macro_rules! sync_stats {
    ($($(#[doc = $doc:literal])* $v:ident => $s:literal,)*) => {
        /// What sync counts, per instance.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum SyncStat { $($(#[doc = $doc])* $v,)* }
        impl SyncStat {
            /// Every value, in index order.
            pub const ALL: &'static [SyncStat] = &[$(SyncStat::$v,)*];
            /// The counter name (metrics use it).
            pub fn name(self) -> &'static str {
                match self { $(SyncStat::$v => $s,)* }
            }
        }
    };
}

sync_stats! {
    /// Datagrams sent (each peer's copy counted).
    DatagramsSent => "datagrams_sent",
    /// Records sent (each peer's copy counted).
    RecordsSent => "records_sent",
    /// Records not sent: no buffer, no route or source address, or a
    /// worker's burst log overflowed.
    SendFailed => "send_failed",
    /// Datagrams received and accepted.
    DatagramsReceived => "datagrams_received",
    /// Records received in accepted datagrams.
    RecordsReceived => "records_received",
    /// Flows created from records.
    Created => "created",
    /// Known flows brought up to date by records.
    Updated => "updated",
    /// Flows removed by records.
    Removed => "removed",
    /// Records that found the table full (or both buckets full).
    ApplyFailed => "apply_failed",
    /// Records of a flow one of whose keys another flow here holds (two
    /// instances made a flow for one tuple at once): the local one stays.
    Conflicts => "conflicts",
    /// Datagrams from an address that is not a peer.
    RefusedNotPeer => "refused_not_peer",
    /// Datagrams too short, of another version, or with records that do
    /// not decode.
    RefusedMalformed => "refused_malformed",
    /// Datagrams whose MAC did not match.
    RefusedMac => "refused_mac",
    /// Datagrams seen before (or older than the window, or of an older
    /// epoch of their sender).
    RefusedReplay => "refused_replay",
    /// Datagrams from a peer running other rules (fingerprint differs).
    RefusedConfig => "refused_config",
    /// Records naming a rule, member or port this instance does not have.
    RefusedRecord => "refused_record",
    /// Removals not passed to control (its queue was full).
    RemovalsLost => "removals_lost",
    /// Removals of flows a peer idled out that are kept here: their copy
    /// here has not idled out.
    RemovalsKept => "removals_kept",
    /// Local SNAT flows a record of an inbound flow displaced: a member's
    /// reply that reached this instance before the record of its flow
    /// looked like a new outbound flow.
    Displaced => "displaced",
    /// Bulk copies asked of peers.
    BulkRequested => "bulk_requested",
    /// Bulk copies served to peers.
    BulkServed => "bulk_served",
    /// Records of refreshes (long-lived flows) sent.
    Refreshed => "refreshed",
}

/// One peer as this instance sees it.
#[derive(Debug)]
pub struct Peer {
    /// Its internal address.
    pub addr: IpAddr,
    /// Replay state of each of its streams.
    pub streams: [replay::Stream; MAX_STREAMS],
    /// Tick (ms) + 1 of its last accepted datagram; 0: never.
    pub last_heard: AtomicU32,
    /// Records accepted from it.
    pub received: AtomicU64,
    /// Datagrams from its address refused (MAC, replay, config, malformed).
    pub refused: AtomicU64,
    /// Datagrams of its streams never seen (sequence gaps), less late ones.
    pub lost: AtomicU64,
    /// It asked for a bulk copy that is not served yet.
    pub bulk_wanted: AtomicBool,
    /// It finished the bulk copy this instance asked for.
    pub bulk_done: AtomicBool,
    /// The instance index it reports.
    pub instance: AtomicU32,
    /// The MAC key of its latest epoch heard (a key derivation per
    /// restart of the peer, not per datagram).
    pub mac: arc_swap::ArcSwapOption<(u64, wire::Mac)>,
}

/// What workers and control share about the cluster.
#[derive(Debug)]
pub struct Sync {
    /// This instance's index.
    pub instance: u8,
    /// Instances in the cluster.
    pub instances: u8,
    /// The sync UDP port.
    pub port: u16,
    key: SyncKey,
    /// This process's MAC key (its epoch's).
    mac: wire::Mac,
    /// The other instances.
    pub peers: Vec<Peer>,
    /// Fingerprint of the running rule and member ids.
    pub fingerprint: AtomicU64,
    /// This process's epoch (ns since 1970 at start).
    pub epoch: u64,
    stats: [AtomicU64; SyncStat::ALL.len()],
    /// Removals received, for control (which owns removal).
    pub removals: ArrayQueue<Removal>,
}

impl Sync {
    /// The sync state of `c`, whose running rules have `ids`.
    pub fn new(c: &Cluster, ids: &Identities) -> Sync {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Sync {
            instance: c.instance,
            instances: c.instances,
            port: c.sync_port,
            key: c.key.clone(),
            mac: wire::Mac::of(&c.key, c.instance, epoch),
            peers: c
                .peers
                .iter()
                .map(|&addr| Peer {
                    addr,
                    streams: std::array::from_fn(|_| Default::default()),
                    last_heard: AtomicU32::new(0),
                    received: AtomicU64::new(0),
                    refused: AtomicU64::new(0),
                    lost: AtomicU64::new(0),
                    bulk_wanted: AtomicBool::new(false),
                    bulk_done: AtomicBool::new(false),
                    instance: AtomicU32::new(u32::MAX),
                    mac: Default::default(),
                })
                .collect(),
            fingerprint: AtomicU64::new(fingerprint(ids)),
            epoch,
            stats: std::array::from_fn(|_| AtomicU64::new(0)),
            removals: ArrayQueue::new(REMOVAL_SLOTS),
        }
    }

    /// The shared key.
    pub fn key(&self) -> &SyncKey {
        &self.key
    }

    /// The MAC key this process seals its datagrams with.
    pub fn mac(&self) -> &wire::Mac {
        &self.mac
    }

    /// Adds `n` to a counter.
    #[inline]
    pub fn count(&self, s: SyncStat, n: u64) {
        self.stats[s as usize].fetch_add(n, Relaxed);
    }

    /// A counter's value.
    pub fn stat(&self, s: SyncStat) -> u64 {
        self.stats[s as usize].load(Relaxed)
    }

    /// The peer at `addr`.
    pub fn peer(&self, addr: IpAddr) -> Option<&Peer> {
        self.peers.iter().find(|p| p.addr == addr)
    }

    /// Takes the fingerprint of new rules (a reload).
    pub fn set_rules(&self, ids: &Identities) {
        self.fingerprint.store(fingerprint(ids), Relaxed);
    }
}

/// A fingerprint of what rule and member ids mean: two instances whose
/// fingerprints are equal give every id the same rule and member.
pub fn fingerprint(ids: &Identities) -> u64 {
    let mut h = blake3::Hasher::new();
    for s in &ids.services {
        h.update(b"S");
        h.update(s.name.as_bytes());
        h.update(&[0]);
        h.update(s.kind.as_bytes());
        h.update(format!("{}/{}/{}", s.frontend, s.backend_port, s.floating_ip).as_bytes());
        if let Some(f) = s.forwarded {
            h.update(f.to_string().as_bytes());
        }
        for m in &s.members {
            h.update(b"m");
            h.update(m.to_string().as_bytes());
        }
    }
    for m in &ids.snat {
        h.update(b"N");
        h.update(m.rule.as_bytes());
        h.update(&[0]);
        h.update(m.address.to_string().as_bytes());
        for (a, p, n) in &m.runs {
            h.update(format!("{a}/{p}/{n}").as_bytes());
        }
    }
    let b = h.finalize();
    u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or_default())
}

/// One sender stream's numbering (a worker's, or control's).
#[derive(Debug)]
pub struct Outbox {
    stream: u8,
    seq: u64,
}

impl Outbox {
    /// Stream `stream`'s numbering, from 1.
    pub fn new(stream: u8) -> Outbox {
        Outbox { stream, seq: 0 }
    }

    /// The header of this stream's next datagram of `kind`.
    pub fn next(&mut self, s: &Sync, kind: Kind) -> Header {
        self.seq += 1;
        Header {
            kind,
            instance: s.instance,
            stream: self.stream,
            fingerprint: s.fingerprint.load(Relaxed),
            epoch: s.epoch,
            seq: self.seq,
        }
    }
}

impl Outbox {
    /// Seals a record of every live entry in `touched` (a burst's new and
    /// changed flows, [`crate::pipeline::Touched`]) into as many payloads
    /// as they fill, each built in `buf` and handed to `each` with its
    /// record count.
    pub fn seal_touched(
        &mut self,
        s: &Sync,
        tables: (
            &crate::flow::FlowTable<crate::family::V4>,
            &crate::flow::FlowTable<crate::family::V6>,
        ),
        touched: &crate::pipeline::Touched,
        now: u32,
        buf: &mut [u8; wire::MAX_PAYLOAD],
        mut each: impl FnMut(&[u8], u64),
    ) {
        let mut it = touched.iter().peekable();
        while it.peek().is_some() {
            let h = self.next(s, Kind::Records);
            let mut w = wire::Writer::new(&mut buf[..], &h);
            while let Some(&(v6, idx)) = it.peek() {
                let fits = if v6 {
                    wire::put(&mut w, tables.1, idx, now, wire::Op::Upsert)
                } else {
                    wire::put(&mut w, tables.0, idx, now, wire::Op::Upsert)
                };
                if !fits {
                    break;
                }
                it.next();
            }
            let n = u64::from(w.count());
            if n > 0 {
                let len = w.finish(s.mac());
                each(&buf[..len], n);
            }
        }
    }
}

#[cfg(test)]
mod tests;
