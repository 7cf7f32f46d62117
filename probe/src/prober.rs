//! The prober: one smoltcp interface holding Sluice's internal addresses,
//! a TCP socket per probe in flight, and the members' health.
//!
//! Each `[[probe]]` used by a load-balancing rule probes every (IPv4) member
//! of those rules' pools, once per interval, the members spread over the
//! interval ([`Schedule`]). A probe is a TCP connection from an internal
//! port's own address, from a local port of [`PROBE_PORTS`] (each member
//! walks the range on its own, so a member sees a 4-tuple again only after
//! a thousand of its probes, long after any TIME_WAIT):
//!
//! - `tcp`: handshake, then our FIN and the member's: success. A RST, at any
//!   point, is an immediate failure; no handshake before the timeout is a
//!   timeout.
//! - `http`: handshake, `GET path HTTP/1.1` with a Host header (the
//!   probe's `host`, else the member's `address:port`), then the status
//!   line: a status of `expected_status` (200 by default) is success, any
//!   other status (or a RST, or a close before a status line) an immediate
//!   failure.
//! - `https`: the same inside TLS (rustls over the same socket, no
//!   certificate verification; see [`crate::tls`]; the server name sent is
//!   the probe's `sni`, else its `host`'s name). A failed handshake is an
//!   immediate failure.
//!
//! The prober is pure logic over an injected clock and two packet queues
//! ([`Pipe`]): the daemon feeds it the replies the workers hand over and
//! sends what it emits; tests connect it to a second interface.

use crate::device::Pipe;
pub use crate::spec::{targets, Spec};
use crate::state::{MemberHealth, Outcome, Schedule};
use rustls::ClientConnection;
use sluice_core::config::{Config, ProbeProtocol};
use sluice_core::pipeline::PROBE_PORTS;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Bytes of a response kept to find the status line.
const HEAD_MAX: usize = 1024;
/// How long a finished probe's socket may take to close before it is reset.
const LINGER_MS: u64 = 2000;

/// A member's probe status, for the control command, metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// Probe name.
    pub probe: String,
    /// Member address.
    pub address: IpAddr,
    /// Health and its history.
    pub health: MemberHealth,
    /// Probes finished.
    pub probes: u64,
}

/// A member whose verdict changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Probe name.
    pub probe: String,
    /// Member address.
    pub address: IpAddr,
    /// New verdict.
    pub up: bool,
    /// The result that flipped it.
    pub outcome: Outcome,
}

/// How long one successful probe took, from its SYN to its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    /// Probe name.
    pub probe: String,
    /// Member address.
    pub address: IpAddr,
    /// Milliseconds.
    pub ms: u64,
}

/// Prober counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProberCounters {
    /// Probes started.
    pub started: u64,
    /// Probes that succeeded.
    pub succeeded: u64,
    /// Probes that timed out.
    pub timeouts: u64,
    /// Probes the member refused (RST, status other than 200, TLS failure).
    pub refused: u64,
    /// Probe slots skipped because the member's previous probe was still
    /// running (a timeout longer than the interval).
    pub skipped: u64,
    /// Verdict changes.
    pub changes: u64,
    /// Replies received.
    pub rx_packets: u64,
    /// Replies dropped: the prober's queue was full.
    pub rx_dropped: u64,
    /// Packets sent.
    pub tx_packets: u64,
}

impl ProberCounters {
    /// Every counter by its report name (`probe.started`, ...): the exit
    /// report's lines and the `event` label of `sluice_probe_events_total`.
    pub fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("probe.started", self.started),
            ("probe.succeeded", self.succeeded),
            ("probe.timeouts", self.timeouts),
            ("probe.refused", self.refused),
            ("probe.skipped", self.skipped),
            ("probe.changes", self.changes),
            ("probe.rx_packets", self.rx_packets),
            ("probe.rx_dropped", self.rx_dropped),
            ("probe.tx_packets", self.tx_packets),
        ]
    }
}

#[derive(Debug)]
struct Target {
    address: IpAddr,
    health: MemberHealth,
    cursor: u16,
    busy: bool,
    probes: u64,
}

#[derive(Debug)]
struct Group {
    /// Index in `Config::probes`.
    index: usize,
    spec: Spec,
    targets: Vec<Target>,
    schedule: Schedule,
}

struct Attempt {
    group: usize,
    target: usize,
    handle: SocketHandle,
    deadline: u64,
    established: bool,
    closing: bool,
    last_ack: bool,
    sent: bool,
    tls: Option<Box<ClientConnection>>,
    head: Vec<u8>,
}

/// Health probes of every member, over smoltcp.
pub struct Prober {
    iface: Interface,
    pipe: Pipe,
    sockets: SocketSet<'static>,
    groups: Vec<Group>,
    /// (probe index, member) -> (group, target).
    index: HashMap<(usize, IpAddr), (usize, usize)>,
    sources: Vec<IpCidr>,
    active: Vec<Attempt>,
    /// Sockets of finished probes: (handle, reset after, already reset).
    lingering: Vec<(SocketHandle, u64, bool)>,
    tls: Arc<rustls::ClientConfig>,
    counters: ProberCounters,
    seed: u64,
    last_ms: Option<u64>,
    /// Latencies of successful probes since the last [`Prober::take_latencies`].
    latencies: Vec<Latency>,
}

/// Latencies kept between two takes (a second's worth at any sane rate).
const MAX_LATENCIES: usize = 4096;

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("groups", &self.groups)
            .field("active", &self.active.len())
            .field("counters", &self.counters)
            .finish()
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Prober {
    /// A prober for `cfg`'s probes, sending from `sources` (the internal
    /// ports' own addresses and prefixes, of both families), starting at
    /// `now` (ms). `seed` varies TCP initial sequence numbers and first
    /// ports between runs.
    pub fn new(cfg: &Config, sources: &[(IpAddr, u8)], seed: u64, now: u64) -> Prober {
        let mut pipe = Pipe::default();
        let mut ic = IfaceConfig::new(HardwareAddress::Ip);
        ic.random_seed = seed;
        let mut iface = Interface::new(ic, &mut pipe, Instant::from_millis(now as i64));
        let sources: Vec<IpCidr> = sources
            .iter()
            .map(|&(a, len)| IpCidr::new(a.into(), len))
            .collect();
        iface.update_ip_addrs(|addrs| {
            for s in &sources {
                // More than the interface holds: the rest reach their
                // members through the default routes below.
                let _ = addrs.push(*s);
            }
        });
        // The control plane routes what the prober sends; smoltcp only
        // needs to believe every member is reachable, in either family.
        if let Some(IpAddress::Ipv4(a)) = sources
            .iter()
            .map(|c| c.address())
            .find(|a| matches!(a, IpAddress::Ipv4(_)))
        {
            let _ = iface.routes_mut().add_default_ipv4_route(a);
        }
        if let Some(IpAddress::Ipv6(a)) = sources
            .iter()
            .map(|c| c.address())
            .find(|a| matches!(a, IpAddress::Ipv6(_)))
        {
            let _ = iface.routes_mut().add_default_ipv6_route(a);
        }
        let mut p = Prober {
            iface,
            pipe,
            sockets: SocketSet::new(Vec::new()),
            groups: Vec::new(),
            index: HashMap::new(),
            sources,
            active: Vec::new(),
            lingering: Vec::new(),
            tls: crate::tls::client_config(),
            counters: ProberCounters::default(),
            seed,
            last_ms: None,
            latencies: Vec::new(),
        };
        p.reconfigure(cfg, now);
        p
    }

    /// The latencies of the probes that succeeded since the last call.
    pub fn take_latencies(&mut self) -> Vec<Latency> {
        std::mem::take(&mut self.latencies)
    }

    /// Follows a new config: members that stay (same probe name and
    /// address) keep their health; new ones start up. Probes in flight are
    /// abandoned (reset), and each probe's schedule starts again at `now`.
    pub fn reconfigure(&mut self, cfg: &Config, now: u64) {
        let mut old: HashMap<(String, IpAddr), (MemberHealth, u16, u64)> = HashMap::new();
        for g in &self.groups {
            for t in &g.targets {
                old.insert(
                    (g.spec.name.clone(), t.address),
                    (t.health, t.cursor, t.probes),
                );
            }
        }
        for a in std::mem::take(&mut self.active) {
            self.sockets.get_mut::<tcp::Socket>(a.handle).abort();
            self.lingering.push((a.handle, 0, true));
        }
        self.groups.clear();
        self.index.clear();
        for (gi, (index, spec, members)) in targets(cfg).into_iter().enumerate() {
            let n = members.len();
            let targets = members
                .into_iter()
                .enumerate()
                .map(|(ti, address)| {
                    self.index.insert((index, address), (gi, ti));
                    let (health, cursor, probes) = old
                        .get(&(spec.name.clone(), address))
                        .copied()
                        .unwrap_or_else(|| {
                            let span = u64::from(*PROBE_PORTS.end() - *PROBE_PORTS.start()) + 1;
                            let bits = match address {
                                IpAddr::V4(a) => u128::from(u32::from(a)),
                                IpAddr::V6(a) => u128::from(a),
                            };
                            let folded = (bits >> 64) as u64 ^ bits as u64;
                            let start = mix(self.seed ^ folded) % span;
                            (MemberHealth::default(), start as u16, 0)
                        });
                    Target {
                        address,
                        health,
                        cursor,
                        busy: false,
                        probes,
                    }
                })
                .collect();
            let schedule = Schedule::new(n, spec.interval_ms, now);
            self.groups.push(Group {
                index,
                spec,
                targets,
                schedule,
            });
        }
    }

    /// Queues a received IP packet (a reply to a probe).
    pub fn push_rx(&mut self, packet: &[u8]) -> bool {
        self.pipe.push_rx(packet)
    }

    /// Hands every IP packet the prober sent since the last call to `send`.
    pub fn drain_tx(&mut self, send: impl FnMut(&[u8])) {
        self.pipe.drain_tx(send)
    }

    /// True unless probe `probe` (an index in `Config::probes`) says the
    /// member at `address` is down. Members no probe covers are up.
    pub fn eligible(&self, probe: usize, address: IpAddr) -> bool {
        self.index
            .get(&(probe, address))
            .is_none_or(|&(g, t)| self.groups[g].targets[t].health.up)
    }

    /// What probe `name` last said about `address`, if it probes it.
    pub fn health(&self, name: &str, address: IpAddr) -> Option<MemberHealth> {
        let g = self.groups.iter().find(|g| g.spec.name == name)?;
        let &(gi, ti) = self.index.get(&(g.index, address))?;
        Some(self.groups[gi].targets[ti].health)
    }

    /// Per pool of `cfg` (the config the prober follows): (pool name,
    /// healthy members, members). A member is healthy when it is admin up
    /// and every probe of a rule over the pool says up.
    pub fn pool_health(&self, cfg: &Config) -> Vec<(String, usize, usize)> {
        cfg.pools
            .iter()
            .enumerate()
            .map(|(pi, pool)| {
                let probes: Vec<usize> = cfg
                    .lb_rules
                    .iter()
                    .filter(|r| r.pool == pi)
                    .filter_map(|r| r.probe)
                    .collect();
                let healthy = pool
                    .members
                    .iter()
                    .filter(|m| {
                        m.admin_state == sluice_core::config::AdminState::Up
                            && probes.iter().all(|&p| self.eligible(p, m.address))
                    })
                    .count();
                (pool.name.clone(), healthy, pool.members.len())
            })
            .collect()
    }

    /// Every probed member's status.
    pub fn status(&self) -> Vec<MemberStatus> {
        self.groups
            .iter()
            .flat_map(|g| {
                g.targets.iter().map(|t| MemberStatus {
                    probe: g.spec.name.clone(),
                    address: t.address,
                    health: t.health,
                    probes: t.probes,
                })
            })
            .collect()
    }

    /// Counters so far.
    pub fn counters(&self) -> ProberCounters {
        ProberCounters {
            rx_packets: self.pipe.rx_packets,
            rx_dropped: self.pipe.rx_dropped,
            tx_packets: self.pipe.tx_packets,
            ..self.counters
        }
    }

    /// Probes in flight.
    pub fn in_flight(&self) -> usize {
        self.active.len()
    }

    /// One round at `now` (ms): starts the probes that are due, runs the
    /// interface, finishes probes. Returns the members whose verdict
    /// changed.
    pub fn poll(&mut self, now: u64) -> Vec<Change> {
        let tick = self.last_ms != Some(now);
        if !tick && self.active.is_empty() && self.lingering.is_empty() {
            return Vec::new();
        }
        let ts = Instant::from_millis(now as i64);
        self.iface.poll(ts, &mut self.pipe, &mut self.sockets);
        let mut changes = Vec::new();
        let mut i = 0;
        while i < self.active.len() {
            let spec = &self.groups[self.active[i].group].spec;
            let outcome = step(&mut self.sockets, &mut self.active[i], spec, &self.tls, now);
            match outcome {
                None => i += 1,
                Some(o) => {
                    let a = self.active.swap_remove(i);
                    if let Some(c) = self.finish(a, o, now) {
                        changes.push(c);
                    }
                }
            }
        }
        self.linger(now);
        if tick {
            // Schedules move in whole milliseconds; after the steps, so a
            // probe that times out now frees its member for its next slot.
            self.last_ms = Some(now);
            self.start_due(now);
        }
        // What the steps wrote and the new probes' SYNs go out now.
        self.iface.poll(ts, &mut self.pipe, &mut self.sockets);
        changes
    }

    fn start_due(&mut self, now: u64) {
        for gi in 0..self.groups.len() {
            let due = self.groups[gi].schedule.due(now);
            for ti in due {
                if self.groups[gi].targets[ti].busy {
                    self.counters.skipped += 1;
                    continue;
                }
                self.start(gi, ti, now);
            }
        }
    }

    fn start(&mut self, gi: usize, ti: usize, now: u64) {
        let g = &mut self.groups[gi];
        let t = &mut g.targets[ti];
        let span = *PROBE_PORTS.end() - *PROBE_PORTS.start() + 1;
        let local_port = *PROBE_PORTS.start() + t.cursor % span;
        t.cursor = (t.cursor + 1) % span;
        t.busy = true;
        self.counters.started += 1;
        let (rx, tx) = match g.spec.protocol {
            ProbeProtocol::Https => (32 * 1024, 4096),
            _ => (4096, 1024),
        };
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx]),
            tcp::SocketBuffer::new(vec![0; tx]),
        );
        s.set_ack_delay(None);
        s.set_nagle_enabled(false);
        let target = IpAddress::from(t.address);
        let remote = (target, g.spec.port);
        let same_family = |c: &&IpCidr| c.address().version() == target.version();
        let source = self
            .sources
            .iter()
            .find(|c| c.contains_addr(&target))
            .or_else(|| self.sources.iter().find(same_family))
            .map(|c| c.address());
        let connected = source.is_some_and(|src| {
            s.connect(self.iface.context(), remote, (src, local_port))
                .is_ok()
        });
        let handle = self.sockets.add(s);
        let a = Attempt {
            group: gi,
            target: ti,
            handle,
            deadline: now + g.spec.timeout_ms,
            established: false,
            closing: false,
            last_ack: false,
            sent: false,
            tls: None,
            head: Vec::new(),
        };
        if connected {
            self.active.push(a);
        } else {
            // No internal address to probe from: the probe cannot succeed.
            self.finish(a, Outcome::Timeout, now);
        }
    }

    fn finish(&mut self, a: Attempt, outcome: Outcome, now: u64) -> Option<Change> {
        match outcome {
            Outcome::Success => self.counters.succeeded += 1,
            Outcome::Timeout => self.counters.timeouts += 1,
            Outcome::Refused(_) => self.counters.refused += 1,
        }
        let s = self.sockets.get_mut::<tcp::Socket>(a.handle);
        match s.state() {
            tcp::State::Closed | tcp::State::TimeWait => {
                self.sockets.remove(a.handle);
            }
            _ if outcome == Outcome::Timeout => {
                s.abort();
                self.lingering.push((a.handle, now, true));
            }
            _ => {
                s.close();
                self.lingering.push((a.handle, now + LINGER_MS, false));
            }
        }
        let g = &mut self.groups[a.group];
        let t = &mut g.targets[a.target];
        t.busy = false;
        t.probes += 1;
        if outcome == Outcome::Success && self.latencies.len() < MAX_LATENCIES {
            let started = a.deadline.saturating_sub(g.spec.timeout_ms);
            self.latencies.push(Latency {
                probe: g.spec.name.clone(),
                address: t.address,
                ms: now.saturating_sub(started),
            });
        }
        let up = t.health.record(outcome, now, g.spec.threshold)?;
        self.counters.changes += 1;
        Some(Change {
            probe: g.spec.name.clone(),
            address: t.address,
            up,
            outcome,
        })
    }

    /// Sockets of finished probes: removed once closed; reset when they
    /// take too long (removed after the reset went out).
    fn linger(&mut self, now: u64) {
        let sockets = &mut self.sockets;
        self.lingering.retain_mut(|(h, until, reset)| {
            let s = sockets.get_mut::<tcp::Socket>(*h);
            let closed = matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait);
            if closed || *reset {
                sockets.remove(*h);
                return false;
            }
            if now >= *until {
                s.abort();
                *reset = true;
            }
            true
        });
    }
}

#[path = "exchange.rs"]
mod exchange;
#[cfg(test)]
use exchange::status;
use exchange::step;

#[cfg(test)]
#[path = "prober_tests.rs"]
mod tests;
