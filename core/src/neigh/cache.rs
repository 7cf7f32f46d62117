//! The control thread's neighbour cache: resolution with retries, a bounded
//! queue of packets per unresolved next hop, and ageing with re-probing.
//! Time is passed in, so every timer is unit-tested without sleeping.

use super::{NeighView, PortIndex};
use crate::wire::MacAddr;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// Tunables; the defaults follow common router practice.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// How long an answer is trusted before the neighbour is probed again.
    pub reachable: Duration,
    /// Time between requests while resolving or probing.
    pub retry_interval: Duration,
    /// Requests sent before giving up.
    pub max_tries: u32,
    /// Packets held per unresolved next hop.
    pub queue_len: usize,
    /// Entries in the cache; a new next hop beyond this fails.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            reachable: Duration::from_secs(60),
            retry_interval: Duration::from_secs(1),
            max_tries: 3,
            queue_len: 16,
            max_entries: 65536,
        }
    }
}

crate::named_enum! {
    /// What the neighbour cache counts, by its report name.
    NeighStat {
        /// Requests (ARP or NS) asked for.
        Requests => "neigh.requests",
        /// Entries that became resolved.
        Resolved => "neigh.resolved",
        /// Packets queued while resolving.
        Held => "neigh.held",
        /// Held packets released after resolution.
        Released => "neigh.released",
        /// Packets dropped because the next hop's queue was full.
        QueueFull => "neigh.queue_full",
        /// Packets dropped because resolution failed.
        Failed => "neigh.failed",
        /// Entries removed after a failed re-probe.
        Expired => "neigh.expired",
        /// Packets dropped because the cache was full.
        TableFull => "neigh.table_full",
    }
}

/// What the cache did, for the daemon's counters: one per [`NeighStat`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters([u64; NeighStat::COUNT]);

impl CacheCounters {
    /// Counter `s`.
    pub fn get(&self, s: NeighStat) -> u64 {
        self.0[s as usize]
    }

    fn add(&mut self, s: NeighStat, n: u64) {
        self.0[s as usize] += n;
    }
}

#[derive(Debug)]
enum State {
    /// Request out, no answer yet.
    Incomplete { tries: u32, next_try: Duration },
    /// Answered at `confirmed`.
    Reachable { mac: MacAddr, confirmed: Duration },
    /// Still used, but being re-probed.
    Probing {
        mac: MacAddr,
        tries: u32,
        next_try: Duration,
    },
}

#[derive(Debug)]
struct Entry<P> {
    state: State,
    queue: VecDeque<P>,
}

/// Outcome of [`Cache::hold`].
#[derive(Debug, PartialEq, Eq)]
pub enum HoldOutcome<P> {
    /// Queued; send a request now when `solicit` is true.
    Queued {
        /// A request must go out (first packet for this next hop).
        solicit: bool,
    },
    /// Already resolved: send it to this MAC right away.
    Resolved(MacAddr, P),
    /// Not queued (queue or table full); the packet comes back to be freed.
    Dropped(P),
}

/// A packet released by resolution, with the MAC to send it to.
#[derive(Debug, PartialEq, Eq)]
pub struct Released<P> {
    /// Port to send on.
    pub port: PortIndex,
    /// Destination MAC.
    pub mac: MacAddr,
    /// The packet.
    pub packet: P,
}

/// The neighbour cache. `P` is the held packet type (an `Mbuf` in the daemon).
#[derive(Debug)]
pub struct Cache<P> {
    cfg: CacheConfig,
    entries: HashMap<(PortIndex, IpAddr), Entry<P>>,
    counters: CacheCounters,
    dirty: bool,
}

impl<P> Cache<P> {
    /// An empty cache.
    pub fn new(cfg: CacheConfig) -> Self {
        Cache {
            cfg,
            entries: HashMap::new(),
            counters: CacheCounters::default(),
            dirty: false,
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> CacheCounters {
        self.counters
    }

    /// A neighbour told us its MAC (ARP reply or request, NA, NS option).
    /// Creates or refreshes the entry and returns the packets waiting for it.
    pub fn learn(
        &mut self,
        port: PortIndex,
        ip: IpAddr,
        mac: MacAddr,
        now: Duration,
    ) -> Vec<Released<P>> {
        if !mac.is_unicast() {
            return Vec::new();
        }
        if !self.entries.contains_key(&(port, ip)) && self.entries.len() >= self.cfg.max_entries {
            return Vec::new();
        }
        let e = self.entries.entry((port, ip)).or_insert_with(|| Entry {
            state: State::Incomplete {
                tries: 0,
                next_try: now,
            },
            queue: VecDeque::new(),
        });
        let was = match e.state {
            State::Reachable { mac: m, .. } | State::Probing { mac: m, .. } => Some(m),
            State::Incomplete { .. } => None,
        };
        if was.is_none() {
            self.counters.add(NeighStat::Resolved, 1);
        }
        if was != Some(mac) {
            self.dirty = true;
        }
        e.state = State::Reachable {
            mac,
            confirmed: now,
        };
        let released: Vec<Released<P>> = e
            .queue
            .drain(..)
            .map(|packet| Released { port, mac, packet })
            .collect();
        self.counters
            .add(NeighStat::Released, released.len() as u64);
        released
    }

    /// A packet needs `ip` on `port` as next hop. Resolved: hand it back with
    /// the MAC. Otherwise queue it (bounded) and say whether to solicit.
    pub fn hold(
        &mut self,
        port: PortIndex,
        ip: IpAddr,
        packet: P,
        now: Duration,
    ) -> HoldOutcome<P> {
        if !self.entries.contains_key(&(port, ip)) && self.entries.len() >= self.cfg.max_entries {
            self.counters.add(NeighStat::TableFull, 1);
            return HoldOutcome::Dropped(packet);
        }
        let mut solicit = false;
        let e = self.entries.entry((port, ip)).or_insert_with(|| {
            solicit = true;
            Entry {
                state: State::Incomplete {
                    tries: 1,
                    next_try: now + self.cfg.retry_interval,
                },
                queue: VecDeque::new(),
            }
        });
        match e.state {
            State::Reachable { mac, .. } | State::Probing { mac, .. } => {
                HoldOutcome::Resolved(mac, packet)
            }
            State::Incomplete { .. } if e.queue.len() >= self.cfg.queue_len => {
                self.counters.add(NeighStat::QueueFull, 1);
                HoldOutcome::Dropped(packet)
            }
            State::Incomplete { .. } => {
                e.queue.push_back(packet);
                self.counters.add(NeighStat::Held, 1);
                if solicit {
                    self.counters.add(NeighStat::Requests, 1);
                }
                HoldOutcome::Queued { solicit }
            }
        }
    }

    /// Starts resolving `ip` on `port` with nothing queued (for next hops
    /// known in advance: gateways, pool members). Returns true when a request
    /// must go out now.
    pub fn resolve(&mut self, port: PortIndex, ip: IpAddr, now: Duration) -> bool {
        if self.entries.contains_key(&(port, ip)) || self.entries.len() >= self.cfg.max_entries {
            return false;
        }
        self.entries.insert(
            (port, ip),
            Entry {
                state: State::Incomplete {
                    tries: 1,
                    next_try: now + self.cfg.retry_interval,
                },
                queue: VecDeque::new(),
            },
        );
        self.counters.add(NeighStat::Requests, 1);
        true
    }

    /// Advances timers. Pushes the requests to send to `solicit`, and returns
    /// the packets dropped because their next hop never answered.
    pub fn poll(&mut self, now: Duration, solicit: &mut Vec<(PortIndex, IpAddr)>) -> Vec<P> {
        let cfg = self.cfg;
        let mut dropped = Vec::new();
        let mut gone = Vec::new();
        for (&key, e) in self.entries.iter_mut() {
            match &mut e.state {
                State::Reachable { mac, confirmed } => {
                    if now >= *confirmed + cfg.reachable {
                        e.state = State::Probing {
                            mac: *mac,
                            tries: 1,
                            next_try: now + cfg.retry_interval,
                        };
                        solicit.push(key);
                    }
                }
                State::Incomplete { tries, next_try }
                | State::Probing {
                    tries, next_try, ..
                } => {
                    if now < *next_try {
                        continue;
                    }
                    if *tries >= cfg.max_tries {
                        gone.push(key);
                    } else {
                        *tries += 1;
                        *next_try = now + cfg.retry_interval;
                        solicit.push(key);
                    }
                }
            }
        }
        self.counters.add(NeighStat::Requests, solicit.len() as u64);
        for key in gone {
            if let Some(e) = self.entries.remove(&key) {
                if matches!(e.state, State::Probing { .. }) {
                    self.counters.add(NeighStat::Expired, 1);
                    self.dirty = true;
                }
                self.counters.add(NeighStat::Failed, e.queue.len() as u64);
                dropped.extend(e.queue);
            }
        }
        dropped
    }

    /// When the usable set changed since the last call, the new view.
    pub fn take_view(&mut self) -> Option<NeighView> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let mut v = NeighView::default();
        for (&(port, ip), e) in &self.entries {
            if let State::Reachable { mac, .. } | State::Probing { mac, .. } = e.state {
                v.insert(port, ip, mac);
            }
        }
        Some(v)
    }

    /// Entries in any state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const P0: PortIndex = PortIndex::new(0);
    const P1: PortIndex = PortIndex::new(1);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);

    fn ip() -> IpAddr {
        "10.0.0.11".parse().unwrap()
    }

    fn cache() -> Cache<u32> {
        Cache::new(CacheConfig {
            queue_len: 2,
            max_entries: 4,
            ..CacheConfig::default()
        })
    }

    #[test]
    fn holds_then_releases_in_order() {
        let mut c = cache();
        assert_eq!(
            c.hold(P1, ip(), 10, S(0)),
            HoldOutcome::Queued { solicit: true }
        );
        assert_eq!(
            c.hold(P1, ip(), 11, S(0)),
            HoldOutcome::Queued { solicit: false }
        );
        assert_eq!(
            c.hold(P1, ip(), 12, S(0)),
            HoldOutcome::Dropped(12),
            "queue of 2 is full"
        );
        assert_eq!(c.counters().get(NeighStat::QueueFull), 1);
        assert!(c.take_view().is_none(), "nothing usable yet");
        let r = c.learn(P1, ip(), MAC, S(0));
        assert_eq!(r.iter().map(|r| r.packet).collect::<Vec<_>>(), vec![10, 11]);
        assert!(r.iter().all(|r| r.mac == MAC && r.port == P1));
        assert_eq!(c.take_view().unwrap().lookup(P1, ip()), Some(MAC));
        assert_eq!(c.hold(P1, ip(), 13, S(1)), HoldOutcome::Resolved(MAC, 13));
    }

    #[test]
    fn retries_then_fails_and_drops_the_queue() {
        let mut c = cache();
        c.hold(P0, ip(), 1, S(0));
        let mut sol = Vec::new();
        assert!(c.poll(Duration::from_millis(500), &mut sol).is_empty());
        assert!(sol.is_empty(), "not yet time to retry");
        c.poll(S(1), &mut sol);
        assert_eq!(sol, vec![(P0, ip())], "second request");
        sol.clear();
        c.poll(S(2), &mut sol);
        assert_eq!(sol.len(), 1, "third request");
        sol.clear();
        let dropped = c.poll(S(3), &mut sol);
        assert_eq!(dropped, vec![1]);
        assert!(sol.is_empty());
        assert_eq!(c.counters().get(NeighStat::Failed), 1);
        assert_eq!(c.counters().get(NeighStat::Requests), 3);
        assert!(c.is_empty());
    }

    #[test]
    fn ages_then_probes_and_expires_silent_neighbours() {
        let mut c = cache();
        c.learn(P0, ip(), MAC, S(0));
        c.take_view();
        let mut sol = Vec::new();
        c.poll(S(59), &mut sol);
        assert!(sol.is_empty());
        c.poll(S(60), &mut sol);
        assert_eq!(sol.len(), 1, "probe when the answer is old");
        assert!(c.take_view().is_none(), "still usable while probing");
        // An answer keeps it.
        c.learn(P0, ip(), MAC, S(61));
        sol.clear();
        c.poll(S(100), &mut sol);
        assert!(sol.is_empty());
        // Silence removes it after max_tries probes.
        for t in 121..=124 {
            c.poll(S(t), &mut sol);
        }
        assert!(c.is_empty());
        assert_eq!(c.counters().get(NeighStat::Expired), 1);
        assert!(c.take_view().unwrap().is_empty());
    }

    #[test]
    fn full_table_fails_only_new_next_hops() {
        let mut c = cache();
        for i in 0..4u8 {
            c.learn(P0, IpAddr::from([10, 0, 0, 20 + i]), MAC, S(0));
        }
        assert_eq!(c.hold(P0, ip(), 7, S(0)), HoldOutcome::Dropped(7));
        assert_eq!(c.counters().get(NeighStat::TableFull), 1);
        assert!(matches!(
            c.hold(P0, IpAddr::from([10, 0, 0, 20]), 8, S(0)),
            HoldOutcome::Resolved(_, 8)
        ));
    }

    #[test]
    fn mac_change_republishes() {
        let mut c = cache();
        c.learn(P0, ip(), MAC, S(0));
        c.take_view();
        c.learn(P0, ip(), MAC, S(1));
        assert!(c.take_view().is_none(), "same MAC: nothing to publish");
        let other = MacAddr([2, 0, 0, 0, 0, 0x99]);
        c.learn(P0, ip(), other, S(2));
        assert_eq!(c.take_view().unwrap().lookup(P0, ip()), Some(other));
        assert!(c.learn(P0, ip(), MacAddr::BROADCAST, S(3)).is_empty());
        assert!(c.take_view().is_none(), "a broadcast MAC is never learned");
    }

    #[test]
    fn resolve_in_advance() {
        let mut c = cache();
        assert!(c.resolve(P0, ip(), S(0)));
        assert!(!c.resolve(P0, ip(), S(0)), "already resolving");
        c.learn(P0, ip(), MAC, S(0));
        assert_eq!(c.take_view().unwrap().lookup(P0, ip()), Some(MAC));
    }
}
