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
use crate::state::{MemberHealth, Outcome, Schedule};
use rustls::ClientConnection;
use sluice_core::config::{Config, ProbeProtocol};
use sluice_core::pipeline::PROBE_PORTS;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Bytes of a response kept to find the status line.
const HEAD_MAX: usize = 1024;
/// How long a finished probe's socket may take to close before it is reset.
const LINGER_MS: u64 = 2000;

/// One `[[probe]]`, as the prober uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Probe name.
    pub name: String,
    /// tcp, http or https.
    pub protocol: ProbeProtocol,
    /// Port probed on each member.
    pub port: u16,
    /// Path (http/https).
    pub path: String,
    /// Interval (ms).
    pub interval_ms: u64,
    /// Timeout (ms).
    pub timeout_ms: u64,
    /// Consecutive results that flip a member.
    pub threshold: u32,
    /// HTTP statuses that pass: inclusive ranges (`[(200, 200)]` by
    /// default).
    pub expected_status: Vec<(u16, u16)>,
    /// The Host header; `None`: the member's `address:port`.
    pub host: Option<String>,
    /// The TLS server name (SNI); `None`: the host's name when `host` is
    /// one, else none (the member is addressed by IP).
    pub sni: Option<String>,
}

impl Spec {
    fn passes(&self, code: u16) -> bool {
        self.expected_status
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    /// The name TLS is sent: `sni`, else `host` without its port when it
    /// names a host.
    fn server_name(&self) -> Option<String> {
        if let Some(n) = &self.sni {
            return Some(n.clone());
        }
        let host = self.host.as_deref()?;
        if host.parse::<IpAddr>().is_ok()
            || host.parse::<SocketAddr>().is_ok()
            || host.starts_with('[')
        {
            return None;
        }
        let name =
            host.rsplit_once(':').map_or(
                host,
                |(n, p)| if p.parse::<u16>().is_ok() { n } else { host },
            );
        Some(name.to_string())
    }
}

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

/// The probes of `cfg` that some load-balancing rule uses, with the
/// members they probe, each by its first address (a dual-stack member is
/// probed once; its verdict covers both addresses): (probe index, spec,
/// members).
pub fn targets(cfg: &Config) -> Vec<(usize, Spec, Vec<IpAddr>)> {
    let mut out: Vec<(usize, Spec, Vec<IpAddr>)> = Vec::new();
    for r in &cfg.lb_rules {
        let Some(p) = r.probe else { continue };
        let pos = match out.iter().position(|(i, _, _)| *i == p) {
            Some(pos) => pos,
            None => {
                let c = &cfg.probes[p];
                out.push((
                    p,
                    Spec {
                        name: c.name.clone(),
                        protocol: c.protocol,
                        port: c.port,
                        path: c.path.clone().unwrap_or_else(|| "/".into()),
                        interval_ms: c.interval.as_millis() as u64,
                        timeout_ms: c.timeout.as_millis() as u64,
                        threshold: c.threshold,
                        expected_status: c.expected_status.clone(),
                        host: c.host.clone(),
                        sni: c.sni.clone(),
                    },
                    Vec::new(),
                ));
                out.len() - 1
            }
        };
        for m in &cfg.pools[r.pool].members {
            if !out[pos].2.contains(&m.address) {
                out[pos].2.push(m.address);
            }
        }
    }
    out
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

/// Parses an HTTP status line at the start of `head`: the status once the
/// line is complete, `Err` when it is not HTTP.
fn status(head: &[u8]) -> Option<Result<u16, ()>> {
    let end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..end]).map_err(|_| ());
    let code = line.and_then(|l| {
        let mut parts = l.split(' ');
        match (parts.next(), parts.next()) {
            (Some(v), Some(c)) if v.starts_with("HTTP/1.") && c.len() == 3 => {
                c.parse::<u16>().map_err(|_| ())
            }
            _ => Err(()),
        }
    });
    Some(code)
}

fn request(spec: &Spec, address: IpAddr) -> String {
    let host = match &spec.host {
        Some(h) => h.clone(),
        None => SocketAddr::new(address, spec.port).to_string(),
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        spec.path,
    )
}

/// Moves one probe on; its outcome once there is one.
fn step(
    sockets: &mut SocketSet<'static>,
    a: &mut Attempt,
    spec: &Spec,
    tls: &Arc<rustls::ClientConfig>,
    now: u64,
) -> Option<Outcome> {
    let s = sockets.get_mut::<tcp::Socket>(a.handle);
    if !a.established {
        match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived => {
                return (now >= a.deadline).then_some(Outcome::Timeout);
            }
            // Refused: a RST answered the SYN.
            tcp::State::Closed => return Some(Outcome::Refused(0)),
            _ => a.established = true,
        }
    }
    let outcome = match spec.protocol {
        ProbeProtocol::Tcp => tcp_close(s, a),
        ProbeProtocol::Http => http(s, a, spec),
        ProbeProtocol::Https => https(s, a, spec, tls),
    };
    match outcome {
        Some(o) => Some(o),
        None if now >= a.deadline => Some(Outcome::Timeout),
        None => None,
    }
}

/// TCP probe after the handshake: our FIN, then theirs.
fn tcp_close(s: &mut tcp::Socket<'_>, a: &mut Attempt) -> Option<Outcome> {
    if !a.closing {
        s.close();
        a.closing = true;
    }
    match s.state() {
        tcp::State::LastAck => {
            a.last_ack = true;
            None
        }
        tcp::State::TimeWait => Some(Outcome::Success),
        tcp::State::Closed if a.last_ack => Some(Outcome::Success),
        tcp::State::Closed => Some(Outcome::Refused(0)),
        _ => None,
    }
}

/// The response head so far decides, else the connection's end does.
fn verdict(head: &[u8], s: &tcp::Socket<'_>, spec: &Spec) -> Option<Outcome> {
    match status(head) {
        Some(Ok(code)) if spec.passes(code) => return Some(Outcome::Success),
        Some(Ok(code)) => return Some(Outcome::Refused(code)),
        Some(Err(())) => return Some(Outcome::Refused(0)),
        None if head.len() >= HEAD_MAX => return Some(Outcome::Refused(0)),
        None => {}
    }
    // Reset, or closed before a status line.
    (!s.may_recv() && !s.can_recv()).then_some(Outcome::Refused(0))
}

fn http(s: &mut tcp::Socket<'_>, a: &mut Attempt, spec: &Spec) -> Option<Outcome> {
    if !a.sent && s.can_send() {
        let addr = remote(s)?;
        let req = request(spec, addr);
        if s.send_slice(req.as_bytes()).ok()? != req.len() {
            return Some(Outcome::Refused(0));
        }
        a.sent = true;
    }
    let mut buf = [0u8; 512];
    while s.can_recv() && a.head.len() < HEAD_MAX {
        match s.recv_slice(&mut buf) {
            Ok(n) if n > 0 => a.head.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    verdict(&a.head, s, spec)
}

fn remote(s: &tcp::Socket<'_>) -> Option<IpAddr> {
    Some(s.remote_endpoint()?.addr.into())
}

/// Writes TLS records into the socket's send buffer.
struct SocketWriter<'a, 'b>(&'a mut tcp::Socket<'b>);

impl Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.send_slice(buf) {
            Ok(0) => Err(std::io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(_) => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn https(
    s: &mut tcp::Socket<'_>,
    a: &mut Attempt,
    spec: &Spec,
    config: &Arc<rustls::ClientConfig>,
) -> Option<Outcome> {
    if a.tls.is_none() {
        let addr = remote(s)?;
        let name = match spec.server_name() {
            Some(n) => match rustls::pki_types::ServerName::try_from(n) {
                Ok(n) => n,
                Err(_) => return Some(Outcome::Refused(0)),
            },
            None => rustls::pki_types::ServerName::IpAddress(addr.into()),
        };
        let Ok(mut conn) = ClientConnection::new(config.clone(), name) else {
            return Some(Outcome::Refused(0));
        };
        // Sent once the handshake is done.
        if conn
            .writer()
            .write_all(request(spec, addr).as_bytes())
            .is_err()
        {
            return Some(Outcome::Refused(0));
        }
        a.tls = Some(Box::new(conn));
    }
    let conn = a.tls.as_mut().expect("set above");
    // Socket -> TLS.
    let mut buf = [0u8; 4096];
    while s.can_recv() {
        let n = match s.recv_slice(&mut buf) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let mut rd = &buf[..n];
        while !rd.is_empty() {
            if conn.read_tls(&mut rd).is_err() || conn.process_new_packets().is_err() {
                // A TLS alert or garbage: the member does not serve TLS.
                return Some(Outcome::Refused(0));
            }
        }
    }
    // TLS -> plaintext response head.
    loop {
        if a.head.len() >= HEAD_MAX {
            break;
        }
        match conn.reader().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => a.head.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    // TLS -> socket.
    while conn.wants_write() && s.can_send() {
        if conn.write_tls(&mut SocketWriter(s)).is_err() {
            break;
        }
    }
    verdict(&a.head, s, spec)
}

#[cfg(test)]
mod tests {
    //! The prober against a second smoltcp interface playing the members,
    //! packets passed by hand: every probe kind and verdict without a
    //! network (the lab tests run the same against nginx).
    use super::*;
    use smoltcp::iface::Interface;
    use std::net::Ipv4Addr;

    const B1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
    const B2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);
    const B3: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 13);

    fn config(probe: &str) -> Config {
        let text = format!(
            r#"
[dpdk]
eal_args = ["-l", "0-1", "--no-huge"]
workers = [1]
[[port]]
name = "int"
device = "net_null0"
role = "internal"
addresses = ["10.0.0.1/24"]
[[frontend]]
name = "fe"
address = "10.0.0.100"
kind = "internal"
[[pool]]
name = "p"
members = [{{ address = "10.0.0.11" }}, {{ address = "10.0.0.12" }}, {{ address = "10.0.0.13" }}]
{probe}
[[lb_rule]]
name = "r"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 80
pool = "p"
probe = "pr"
"#
        );
        Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// The members: B1 answers HTTP with `status` on port 80, B2 has
    /// nothing listening (RSTs), B3 never answers (its packets are lost).
    struct Members {
        iface: Interface,
        pipe: Pipe,
        sockets: SocketSet<'static>,
        http: SocketHandle,
        status: u16,
        /// The Host header B1 expects.
        host: String,
    }

    impl Members {
        fn new(status: u16) -> Members {
            let mut pipe = Pipe::default();
            let mut iface = Interface::new(
                IfaceConfig::new(HardwareAddress::Ip),
                &mut pipe,
                Instant::from_millis(0),
            );
            iface.update_ip_addrs(|a| {
                a.push(IpCidr::new(IpAddress::Ipv4(B1), 24)).unwrap();
                a.push(IpCidr::new(IpAddress::Ipv4(B2), 24)).unwrap();
            });
            let mut sockets = SocketSet::new(Vec::new());
            let mut listener = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 4096]),
                tcp::SocketBuffer::new(vec![0; 4096]),
            );
            listener.listen((IpAddress::Ipv4(B1), 80)).unwrap();
            let http = sockets.add(listener);
            Members {
                iface,
                pipe,
                sockets,
                http,
                status,
                host: "10.0.0.11:80".into(),
            }
        }

        fn serve(&mut self, now: u64) {
            let ts = Instant::from_millis(now as i64);
            self.iface.poll(ts, &mut self.pipe, &mut self.sockets);
            let s = self.sockets.get_mut::<tcp::Socket>(self.http);
            match s.state() {
                tcp::State::Closed | tcp::State::TimeWait => {
                    s.abort();
                    s.listen((IpAddress::Ipv4(B1), 80)).unwrap();
                }
                tcp::State::Established | tcp::State::CloseWait if s.can_recv() => {
                    let mut buf = [0u8; 1024];
                    let n = s.recv_slice(&mut buf).unwrap();
                    let req = std::str::from_utf8(&buf[..n]).unwrap();
                    let want = format!("GET /health HTTP/1.1\r\nHost: {}\r\n", self.host);
                    assert!(req.starts_with(&want), "{req:?}");
                    let resp = format!("HTTP/1.1 {} X\r\nContent-Length: 0\r\n\r\n", self.status);
                    s.send_slice(resp.as_bytes()).unwrap();
                    s.close();
                }
                tcp::State::CloseWait => s.close(),
                _ => {}
            }
            self.iface.poll(ts, &mut self.pipe, &mut self.sockets);
        }
    }

    /// Runs prober and members for `ms` milliseconds from `from`; every
    /// change seen.
    fn run(p: &mut Prober, m: &mut Members, from: u64, ms: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        for now in from..from + ms {
            changes.extend(p.poll(now));
            let mut out = Vec::new();
            p.drain_tx(|pkt| out.push(pkt.to_vec()));
            for pkt in out {
                // Only packets to B1 and B2 arrive; B3 is silent.
                if pkt[16..20] != B3.octets() {
                    m.pipe.push_rx(&pkt);
                }
                assert_eq!(pkt[12..16], [10, 0, 0, 1], "from the internal address");
                let sport = u16::from_be_bytes([pkt[20], pkt[21]]);
                assert!(PROBE_PORTS.contains(&sport), "from a probe port: {sport}");
            }
            m.serve(now);
            let mut back = Vec::new();
            m.pipe.drain_tx(|pkt| back.push(pkt.to_vec()));
            for pkt in back {
                p.push_rx(&pkt);
            }
        }
        changes
    }

    fn prober(probe: &str) -> Prober {
        Prober::new(
            &config(probe),
            &[(Ipv4Addr::new(10, 0, 0, 1).into(), 24)],
            7,
            0,
        )
    }

    fn health(p: &Prober, a: Ipv4Addr) -> MemberHealth {
        p.health("pr", IpAddr::V4(a)).unwrap()
    }

    const HTTP: &str = "[[probe]]\nname = \"pr\"\nprotocol = \"http\"\nport = 80\npath = \"/health\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nthreshold = 2\n";

    #[test]
    fn http_200_keeps_a_member_up_a_reset_downs_at_once_silence_after_threshold() {
        let mut p = prober(HTTP);
        let mut m = Members::new(200);
        let changes = run(&mut p, &mut m, 0, 1000);
        // One round: B2 refused (down at once); B3 one timeout (not yet).
        assert_eq!(health(&p, B1).last, Some(Outcome::Success));
        assert!(health(&p, B1).up);
        assert_eq!(health(&p, B2).last, Some(Outcome::Refused(0)));
        assert!(!health(&p, B2).up);
        assert!(changes.iter().any(|c| c.address == IpAddr::V4(B2) && !c.up));
        // B3's second probe starts at 1666 and times out at 2166.
        let changes = run(&mut p, &mut m, 1000, 1200);
        assert_eq!(health(&p, B3).last, Some(Outcome::Timeout));
        assert!(!health(&p, B3).up, "two timeouts");
        assert!(changes.iter().any(|c| c.address == IpAddr::V4(B3) && !c.up));
        assert!(p.eligible(0, IpAddr::V4(B1)));
        assert!(!p.eligible(0, IpAddr::V4(B2)));
        let c = p.counters();
        assert_eq!((c.succeeded, c.refused, c.timeouts), (3, 2, 2), "{c:?}");
        assert_eq!(c.skipped, 0);
        assert_eq!(p.sockets.iter().count(), p.in_flight() + p.lingering.len());
    }

    #[test]
    fn expected_status_ranges_pass_and_the_host_header_is_the_probes() {
        let probe = format!("{HTTP}expected_status = \"200-399\"\nhost = \"www.example.com\"\n");
        let mut p = prober(&probe);
        let mut m = Members::new(302);
        m.host = "www.example.com".into();
        run(&mut p, &mut m, 0, 1000);
        assert_eq!(
            health(&p, B1).last,
            Some(Outcome::Success),
            "302 is in 200-399"
        );
        m.status = 404;
        run(&mut p, &mut m, 1000, 1000);
        assert_eq!(health(&p, B1).last, Some(Outcome::Refused(404)));
        assert!(!health(&p, B1).up);
    }

    #[test]
    fn the_tls_server_name_is_sni_else_the_hosts_name() {
        let spec = |host: Option<&str>, sni: Option<&str>| Spec {
            name: "pr".into(),
            protocol: ProbeProtocol::Https,
            port: 443,
            path: "/".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            threshold: 1,
            expected_status: vec![(200, 200)],
            host: host.map(String::from),
            sni: sni.map(String::from),
        };
        assert_eq!(spec(None, None).server_name(), None, "by address: no SNI");
        assert_eq!(
            spec(Some("www.example.com"), None).server_name().as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            spec(Some("www.example.com:8443"), None)
                .server_name()
                .as_deref(),
            Some("www.example.com")
        );
        assert_eq!(spec(Some("10.0.0.11:443"), None).server_name(), None);
        assert_eq!(spec(Some("[2001:db8::1]:443"), None).server_name(), None);
        assert_eq!(
            spec(Some("a.example"), Some("b.example"))
                .server_name()
                .as_deref(),
            Some("b.example")
        );
    }

    #[test]
    fn any_status_but_200_is_a_refusal() {
        let mut p = prober(HTTP);
        let mut m = Members::new(503);
        run(&mut p, &mut m, 0, 1000);
        assert_eq!(health(&p, B1).last, Some(Outcome::Refused(503)));
        assert!(!health(&p, B1).up);
        // Healthy again: up after two successes.
        m.status = 200;
        run(&mut p, &mut m, 1000, 1000);
        assert!(!health(&p, B1).up, "one success is not enough");
        let changes = run(&mut p, &mut m, 2000, 1000);
        assert!(health(&p, B1).up);
        assert!(changes.iter().any(|c| c.address == IpAddr::V4(B1) && c.up));
    }

    #[test]
    fn a_tcp_probe_is_a_handshake_and_a_clean_close() {
        let probe = HTTP
            .replace("protocol = \"http\"", "protocol = \"tcp\"")
            .replace("path = \"/health\"\n", "");
        let mut p = prober(&probe);
        let mut m = Members::new(200);
        run(&mut p, &mut m, 0, 3000);
        assert_eq!(health(&p, B1).last, Some(Outcome::Success));
        assert_eq!(health(&p, B1).consecutive, 3);
        assert_eq!(health(&p, B2).last, Some(Outcome::Refused(0)));
        assert_eq!(health(&p, B3).last, Some(Outcome::Timeout));
        // Every socket is gone once its probe is over.
        run(&mut p, &mut m, 3000, 100);
        assert!(
            p.sockets.iter().count() <= 1,
            "{}",
            p.sockets.iter().count()
        );
    }

    #[test]
    fn a_member_walks_the_probe_ports() {
        let mut p = prober(HTTP);
        let mut m = Members::new(200);
        let mut ports = std::collections::HashSet::new();
        for round in 0..5 {
            let from = round * 1000;
            for now in from..from + 1000 {
                p.poll(now);
                let mut out = Vec::new();
                p.drain_tx(|pkt| out.push(pkt.to_vec()));
                for pkt in out {
                    if pkt[16..20] == B1.octets() && pkt[33] & 0x02 != 0 {
                        ports.insert(u16::from_be_bytes([pkt[20], pkt[21]]));
                    }
                    m.pipe.push_rx(&pkt);
                }
                m.serve(now);
                let mut back = Vec::new();
                m.pipe.drain_tx(|pkt| back.push(pkt.to_vec()));
                for pkt in back {
                    p.push_rx(&pkt);
                }
            }
        }
        assert_eq!(ports.len(), 5, "a new local port each time: {ports:?}");
    }

    #[test]
    fn status_lines() {
        assert_eq!(status(b"HTTP/1.1 200 OK\r\n"), Some(Ok(200)));
        assert_eq!(status(b"HTTP/1.0 503 Busy\r\nX: y"), Some(Ok(503)));
        assert_eq!(status(b"HTTP/1.1 200"), None, "line not complete");
        assert_eq!(status(b"SSH-2.0-OpenSSH\r\n"), Some(Err(())));
        assert_eq!(status(b"HTTP/1.1 2000 OK\r\n"), Some(Err(())));
    }

    #[test]
    fn health_survives_a_reconfigure_by_probe_name_and_address() {
        let mut p = prober(HTTP);
        let mut m = Members::new(200);
        run(&mut p, &mut m, 0, 1000);
        assert!(!health(&p, B2).up);
        p.reconfigure(&config(HTTP), 1000);
        assert!(!health(&p, B2).up, "kept across a reconfigure");
        assert_eq!(p.pool_health(&config(HTTP)), [("p".to_string(), 2, 3)]);
        // A member that leaves and comes back starts again, up.
        let mut without = config(HTTP);
        without.pools[0].members.remove(1);
        p.reconfigure(&without, 1000);
        assert!(p.health("pr", IpAddr::V4(B2)).is_none());
        p.reconfigure(&config(HTTP), 1000);
        assert!(health(&p, B2).up);
    }
}
