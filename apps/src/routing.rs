//! Announcements through the routing daemon (`[routing]`): what this
//! instance can serve, computed from readiness, maintenance and each
//! frontend's rules, handed to BIRD 2 as a file of static routes its
//! config includes, applied with `configure` on BIRD's control socket.
//! The daemon's own interface only: no route is put in the kernel behind
//! its back. A thread of its own talks to BIRD, so a slow or absent daemon
//! never stalls the control loop (neighbours, the exception path's BFD).

use ipnet::IpNet;
use sluice_core::config::{Config, FrontendKind, Routing};
use sluice_core::lb::{Kind, Services};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

/// How long one exchange with the daemon may take.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(2);
/// Retry interval after the daemon refused or could not be reached.
const RETRY: Duration = Duration::from_secs(1);

/// Routes to announce: towards the external side (public frontends, SNAT
/// addresses) and the internal side (internal frontends, `internal_routes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// External side.
    pub ext: Vec<IpNet>,
    /// Internal side.
    pub int: Vec<IpNet>,
}

impl Routes {
    /// Nothing announced.
    pub fn none() -> Routes {
        Routes::default()
    }

    /// What an instance that is ready and not in maintenance announces:
    /// each frontend address with an available rule (a member that may
    /// take new flows, or `all_down = "all_up"`), every SNAT address, and
    /// the internal routes. Sorted, without repeats.
    pub fn serving(cfg: &Config, services: &Services, routing: &Routing) -> Routes {
        let mut r = Routes::none();
        let host = |a: IpAddr| IpNet::from(a);
        for f in &cfg.frontends {
            let available = services.services.iter().any(|s| {
                s.frontend == f.address
                    && match s.kind {
                        Kind::Lb(_) => s.maglev.is_some(),
                        _ => s.eligible.iter().any(|e| *e),
                    }
            });
            if available {
                match f.kind {
                    FrontendKind::Public => r.ext.push(host(f.address)),
                    FrontendKind::Internal => r.int.push(host(f.address)),
                }
            }
        }
        for o in &cfg.outbound_rules {
            for f in &o.frontends {
                r.ext.push(host(cfg.frontends[*f].address));
            }
        }
        r.int.extend(routing.internal_routes.iter().copied());
        for l in [&mut r.ext, &mut r.int] {
            l.sort();
            l.dedup();
        }
        r
    }

    /// Every prefix, external then internal.
    pub fn all(&self) -> impl Iterator<Item = &IpNet> {
        self.ext.iter().chain(&self.int)
    }
}

/// What the announcer has done, for status and metrics.
#[derive(Debug, Clone, Default)]
pub struct AnnounceState {
    /// What the daemon last accepted (`None`: nothing yet).
    pub announced: Option<Routes>,
    /// What sluiced wants announced now.
    pub wanted: Routes,
    /// Configurations the daemon accepted.
    pub applied: u64,
    /// Attempts that failed (daemon unreachable, or it refused the file).
    pub failed: u64,
    /// The last failure's words, until an attempt succeeds.
    pub last_error: Option<String>,
}

/// The announcer: [`Announcer::set`] from the control loop, the daemon
/// driven from a thread of its own.
#[derive(Debug)]
pub struct Announcer {
    tx: Sender<Routes>,
    last: Option<Routes>,
    state: Arc<Mutex<AnnounceState>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Announcer {
    /// Starts driving the daemon of `routing`; the first thing it tells
    /// the daemon is that nothing is announced (a fresh start is not
    /// ready yet).
    pub fn start(routing: &Routing) -> Announcer {
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(Mutex::new(AnnounceState::default()));
        let (r, s) = (routing.clone(), state.clone());
        let thread = std::thread::Builder::new()
            .name("sluice-routing".into())
            .spawn(move || drive(&r, &rx, &s))
            .expect("spawning the routing thread");
        let mut a = Announcer {
            tx,
            last: None,
            state,
            thread: Some(thread),
        };
        a.set(Routes::none());
        a
    }

    /// Asks for `routes` to be announced (and everything else withdrawn).
    pub fn set(&mut self, routes: Routes) {
        if self.last.as_ref() == Some(&routes) {
            return;
        }
        let (was, now) = (self.last.take().unwrap_or_default(), &routes);
        for n in now.all().filter(|n| !was.all().any(|w| w == *n)) {
            info!(prefix = %n, "announcing");
        }
        for n in was.all().filter(|n| !now.all().any(|w| w == *n)) {
            info!(prefix = %n, "withdrawing");
        }
        self.state.lock().expect("announce state").wanted = routes.clone();
        let _ = self.tx.send(routes.clone());
        self.last = Some(routes);
    }

    /// What has been done so far.
    pub fn state(&self) -> AnnounceState {
        self.state.lock().expect("announce state").clone()
    }

    /// Withdraws everything and waits (at most `DAEMON_TIMEOUT`) for the
    /// daemon to take it: at a clean stop.
    pub fn withdraw_all(mut self) {
        self.set(Routes::none());
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: applies the newest routes asked for, retrying each
/// [`RETRY`] until the daemon takes them; when the sender goes (a stop),
/// one last try of what is pending, then it ends.
fn drive(r: &Routing, rx: &Receiver<Routes>, state: &Mutex<AnnounceState>) {
    let mut want: Option<Routes> = None;
    let mut done = true;
    loop {
        let wait = if done {
            Duration::from_secs(3600)
        } else {
            RETRY
        };
        let last = match rx.recv_timeout(wait) {
            Ok(routes) => {
                want = Some(routes);
                while let Ok(newer) = rx.try_recv() {
                    want = Some(newer);
                }
                done = false;
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if let (false, Some(routes)) = (done, &want) {
            done = apply(r, routes, state);
        }
        if last {
            return;
        }
    }
}

/// Writes `routes` for the daemon and has it configure; records the
/// outcome. True when the daemon took them.
fn apply(r: &Routing, routes: &Routes, state: &Mutex<AnnounceState>) -> bool {
    let result = write_bird(&r.routes_file, routes).and_then(|()| bird_configure(&r.socket));
    let mut s = state.lock().expect("announce state");
    match result {
        Ok(()) => {
            if s.last_error.take().is_some() {
                info!(socket = %r.socket.display(), "routing daemon took the announcements");
            }
            s.announced = Some(routes.clone());
            s.applied += 1;
            true
        }
        Err(e) => {
            if s.last_error.as_deref() != Some(e.as_str()) {
                warn!(socket = %r.socket.display(), "routing daemon: {e}; retrying every second");
            }
            s.failed += 1;
            s.last_error = Some(e);
            false
        }
    }
}

/// Writes the routes as BIRD static protocols, one per side and family
/// (`sluice_ext4`, `sluice_ext6`, `sluice_int4`, `sluice_int6`: the
/// daemon's BGP export filters pick them by name), atomically.
fn write_bird(path: &Path, routes: &Routes) -> Result<(), String> {
    let mut text = String::from(
        "# Written by sluiced: the routes this instance announces now. Do not edit;\n\
         # include it from bird.conf and export by protocol name (docs/cluster.md).\n",
    );
    for (side, list) in [("ext", &routes.ext), ("int", &routes.int)] {
        for (family, v4) in [("4", true), ("6", false)] {
            text += &format!("protocol static sluice_{side}{family} {{\n  ipv{family};\n");
            for n in list.iter().filter(|n| n.addr().is_ipv4() == v4) {
                text += &format!("  route {n} blackhole;\n");
            }
            text += "}\n";
        }
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `configure` on BIRD's control socket: Ok when BIRD says it
/// reconfigured (or is doing so), else its own words.
fn bird_configure(socket: &Path) -> Result<(), String> {
    let s = UnixStream::connect(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    s.set_read_timeout(Some(DAEMON_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(DAEMON_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(s).lines();
    let mut reply = || -> Result<(u16, String), String> {
        loop {
            let l = lines
                .next()
                .ok_or("the daemon closed the socket")?
                .map_err(|e| format!("reading the daemon's reply: {e}"))?;
            // "CCCC-text" continues a reply, "CCCC text" ends it; lines
            // starting with a space continue the previous one.
            let (Some(code), Some(sep)) = (l.get(..4).and_then(|c| c.parse().ok()), l.get(4..5))
            else {
                continue;
            };
            if sep == " " {
                return Ok((code, l[5..].to_string()));
            }
        }
    };
    let (hello, text) = reply()?;
    if hello != 1 {
        return Err(format!("unexpected greeting {hello} {text}"));
    }
    w.write_all(b"configure\n").map_err(|e| e.to_string())?;
    let (code, text) = reply()?;
    // 0003 Reconfigured, 0004 in progress, 0018/0019 confirmed / nothing
    // to do; 8xxx and 9xxx are errors (a parse error names file and line).
    if code < 1000 {
        Ok(())
    } else {
        Err(format!("configure refused: {code} {text}"))
    }
}

/// How often the control loop looks again at what it can serve.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Readiness, maintenance and the announcer, as the control loop keeps
/// them: [`Availability::update`] each [`CHECK_EVERY`].
#[derive(Debug)]
pub struct Availability {
    announcer: Option<Announcer>,
    routing: Option<Routing>,
    /// `sluicectl maintenance on`, or a stop draining.
    pub maintenance: bool,
    /// Ready: ports up, bulk sync done (before the loop starts), and every
    /// probed member probed once (or the wait for that ran out).
    ready: bool,
    started: std::time::Instant,
    /// The longest to wait for the first probes.
    probe_wait: Duration,
    checked: Option<std::time::Instant>,
}

impl Availability {
    /// For `cfg`; the announcer starts (announcing nothing) when it has
    /// `[routing]`.
    pub fn new(cfg: &Config) -> Availability {
        // Two rounds of the slowest probe: a member that answers has
        // answered by then.
        let probe_wait = cfg
            .probes
            .iter()
            .map(|p| p.interval + p.timeout)
            .max()
            .unwrap_or_default()
            * 2;
        Availability {
            announcer: cfg.routing.as_ref().map(Announcer::start),
            routing: cfg.routing.clone(),
            maintenance: false,
            ready: false,
            started: std::time::Instant::now(),
            probe_wait,
            checked: None,
        }
    }

    /// Ready for traffic (what systemd's READY=1 and the announcements
    /// wait for).
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Looks again (at most each [`CHECK_EVERY`]): readiness from
    /// `probed` (every probed member has a first result), then the routes
    /// to announce. True when the instance just became ready.
    pub fn update(&mut self, cfg: &Config, services: &Services, probed: bool) -> bool {
        if self.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return false;
        }
        self.checked = Some(std::time::Instant::now());
        let became = !self.ready && (probed || self.started.elapsed() >= self.probe_wait);
        if became {
            self.ready = true;
            info!(
                probed,
                "ready: ports up, peers' flows taken, first probes run"
            );
        }
        if let (Some(a), Some(r)) = (&mut self.announcer, &self.routing) {
            let routes = if self.ready && !self.maintenance {
                Routes::serving(cfg, services, r)
            } else {
                Routes::none()
            };
            a.set(routes);
        }
        became
    }

    /// Makes the next [`Availability::update`] look at once.
    pub fn changed(&mut self) {
        self.checked = None;
    }

    /// For `sluicectl status`: readiness, maintenance, and what is
    /// announced.
    pub fn status(&self) -> serde_json::Value {
        let list = |r: &Routes| -> Vec<String> { r.all().map(ToString::to_string).collect() };
        let announcer = self.announcer.as_ref().map(|a| {
            let s = a.state();
            serde_json::json!({
                "daemon": "bird",
                "socket": self.routing.as_ref().map(|r| r.socket.display().to_string()),
                "announced": s.announced.as_ref().map(list),
                "announced_count": {
                    "ext": s.announced.as_ref().map_or(0, |r| r.ext.len()),
                    "int": s.announced.as_ref().map_or(0, |r| r.int.len()),
                },
                "wanted": list(&s.wanted),
                "applied": s.applied,
                "failed": s.failed,
                "last_error": s.last_error,
            })
        });
        serde_json::json!({
            "ready": self.ready,
            "maintenance": self.maintenance,
            "routing": announcer,
        })
    }

    /// The announcer's state, when there is one.
    pub fn announce_state(&self) -> Option<AnnounceState> {
        self.announcer.as_ref().map(Announcer::state)
    }

    /// The drain time at a stop: `[routing] drain_time`, or none without
    /// a routing daemon (nothing would move the traffic away).
    pub fn drain_time(&self) -> Duration {
        self.routing
            .as_ref()
            .map_or(Duration::ZERO, |r| r.drain_time)
    }

    /// At the end: everything withdrawn, the daemon told.
    pub fn finish(self) {
        if let Some(a) = self.announcer {
            a.withdraw_all();
        }
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
