//! The running daemon as its control loop sees it: requests on the control
//! socket, reloads, health probing and announcements.

use super::PROBE_DRAIN;
use sluice::ctl::{self, Request};
use sluice::flows::FlowFilter;
use sluice::metrics;
use sluice::routing::Availability;
use sluice::rules::{effective, reload};
use sluice::server::Server;
use sluice::traffic::TrafficBook;
use sluice::views::{find_member, View};
use sluice::watch::Watch;
use sluice_core::config::Config;
use sluice_core::dpdk::Port;
use sluice_core::lb::Services;
use sluice_core::runtime::{ControlPlane, Shared};
use sluice_probe::Prober;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tracing::{info, warn};

/// The running daemon as the control loop sees it.
pub(crate) struct Daemon {
    /// The config file.
    pub(crate) path: PathBuf,
    /// Its bytes at the last load: a file event that changed nothing is
    /// not a reload.
    pub(crate) last_text: Vec<u8>,
    /// The config as loaded from the file.
    pub(crate) file_cfg: Config,
    /// What runs: `file_cfg` with drained members admin down.
    pub(crate) cfg: Config,
    /// Members `sluicectl drain` took out (until undrain or restart).
    pub(crate) drained: BTreeSet<IpAddr>,
    pub(crate) macs: Vec<sluice_core::wire::MacAddr>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) control: ControlPlane,
    pub(crate) prober: Prober,
    pub(crate) ports: Vec<Port>,
    /// The ports' kernel interfaces (closed with them).
    pub(crate) taps: Vec<Port>,
    pub(crate) clock: Instant,
    pub(crate) book: TrafficBook,
    /// Verdict changes per (probe, member), for flapping alerts.
    pub(crate) transitions: std::collections::BTreeMap<(String, IpAddr), u64>,
    /// systemd's watchdog, when the unit has `WatchdogSec`: fed once a
    /// second while every worker has passed a quiescent point since the
    /// last feed (a stuck worker stops the feeding, and systemd restarts).
    pub(crate) watchdog: Option<Vec<u64>>,
    /// Readiness, maintenance and the routing daemon's announcements.
    pub(crate) avail: Availability,
    pub(crate) metrics_at: Instant,
}

impl Daemon {
    /// One turn of the control loop: a reload when asked for (SIGHUP, the
    /// file changed), requests, metrics, control's work, probes, and what
    /// to announce.
    pub(crate) fn turn(&mut self, server: &Server, watch: Option<&Watch>, hup: &AtomicBool) {
        if hup.swap(false, Ordering::Relaxed) {
            if let Some(w) = watch {
                w.clear();
            }
            let _ = self.reload("SIGHUP");
        } else if watch.is_some_and(Watch::due) {
            let text = std::fs::read(&self.path).unwrap_or_default();
            if text != self.last_text {
                let _ = self.reload("file change");
            }
        }
        for p in server.requests.try_iter() {
            let reply = self.handle(&p.request);
            p.answer(reply);
        }
        if self.metrics_at.elapsed() >= metrics::UPDATE {
            self.metrics_at = Instant::now();
            self.book.update(&self.shared);
            metrics::update(&self.view());
            metrics::probe_latencies(&self.cfg, self.prober.take_latencies());
            self.feed_watchdog();
        }
        let busy = self.control.poll();
        let probed = self.run_probes();
        let first_probes = self.avail.ready() || self.prober.status().iter().all(|m| m.probes > 0);
        if self
            .avail
            .update(&self.cfg, &self.shared.services.load(), first_probes)
        {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        }
        if !busy && !probed {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Tells systemd this process is alive, if every worker is.
    fn feed_watchdog(&mut self) {
        let Some(then) = &self.watchdog else { return };
        if self.shared.flows.passed_since(then) {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            warn!(
                "a worker has not passed a quiescent point for a second: the watchdog is not fed"
            );
        }
        self.watchdog = Some(self.shared.flows.epochs());
    }

    /// Flows tracked, both families.
    pub(crate) fn flows(&self) -> usize {
        self.shared.flows.len() + self.shared.flows6.len()
    }

    pub(crate) fn view(&self) -> View<'_> {
        View {
            cfg: &self.cfg,
            shared: &self.shared,
            control: self.control.counters(),
            prober: &self.prober,
            ports: &self.ports,
            drained: &self.drained,
            uptime: self.clock.elapsed(),
            config_path: &self.path,
            traffic: &self.book,
            transitions: &self.transitions,
            mbufs: self.control.mbufs(),
            bulk: self.control.bulk_state(),
            availability: self.avail.status(),
        }
    }

    /// Answers one control socket request.
    pub(crate) fn handle(&mut self, r: &Request) -> serde_json::Value {
        match r.cmd.as_str() {
            "status" => ctl::ok(self.view().status()),
            "flows" => {
                let f = FlowFilter {
                    frontend: r.frontend.clone(),
                    member: r.member.clone(),
                    protocol: r.protocol.clone(),
                    client: r.client.clone(),
                    remote: r.remote.clone(),
                    limit: r.limit.unwrap_or(100),
                };
                let scale = self.control.timer_scale();
                if !r.delete {
                    return match self.view().flows(&f, scale) {
                        Ok(v) => ctl::ok(v),
                        Err(e) => ctl::fail(vec![e]),
                    };
                }
                let filtered = [&f.frontend, &f.member, &f.protocol, &f.client, &f.remote]
                    .iter()
                    .any(|x| x.is_some());
                if !filtered {
                    return ctl::fail(vec![
                        "flows --delete needs a filter (--client, --remote, --member, --frontend or --protocol)".into(),
                    ]);
                }
                match self.view().select_flows(&f, scale) {
                    Ok(sel) => {
                        let ended = self.control.end_flows(&sel.v4, &sel.v6);
                        tracing::info!(matched = sel.matched, ended, "flows deleted by sluicectl");
                        ctl::ok(serde_json::json!({
                            "matched": sel.matched,
                            "deleted": ended,
                            "shown": sel.rows.len(),
                            "flows": sel.rows,
                        }))
                    }
                    Err(e) => ctl::fail(vec![e]),
                }
            }
            "snat" => ctl::ok(self.view().snat()),
            "health" => ctl::ok(self.view().health()),
            "nat-map" => ctl::ok(self.view().nat_map()),
            "counters" => {
                self.book.update(&self.shared);
                ctl::ok(self.view().counters())
            }
            "reload" => match self.reload("sluicectl") {
                Ok(services) => ctl::ok(serde_json::json!({"applied": true, "services": services})),
                Err(errors) => ctl::fail(errors),
            },
            "drain" | "undrain" => {
                let Some(which) = r.member.as_deref() else {
                    return ctl::fail(vec![format!("{}: which member (name or address)?", r.cmd)]);
                };
                let Some(a) = find_member(&self.file_cfg, which) else {
                    return ctl::fail(vec![format!(
                        "{} {which}: no pool member has that name or address",
                        r.cmd
                    )]);
                };
                let changed = if r.cmd == "drain" {
                    self.drained.insert(a)
                } else {
                    self.drained.remove(&a)
                };
                if changed {
                    self.cfg = effective(&self.file_cfg, &self.drained);
                    self.republish();
                    info!(member = %a, "{}ed by sluicectl", r.cmd);
                }
                ctl::ok(serde_json::json!({
                    "member": a.to_string(),
                    "drained": self.drained.contains(&a),
                    "changed": changed,
                }))
            }
            "maintenance" => self.maintenance(r.state.as_deref()),
            "pick" => match sluice::pick::pick(
                &self.cfg,
                &self.shared.services.load(),
                r.frontend.as_deref().unwrap_or_default(),
                r.protocol.as_deref().unwrap_or("tcp"),
                r.port.unwrap_or_default(),
                r.client.as_deref().unwrap_or_default(),
                r.limit.unwrap_or(1),
            ) {
                Ok(v) => ctl::ok(v),
                Err(e) => ctl::fail(vec![format!("pick: {e}")]),
            },
            other => ctl::fail(vec![format!(
                "unknown command \"{other}\" (status, flows, snat, health, nat-map, counters, reload, drain, undrain, maintenance, pick)"
            )]),
        }
    }

    /// `sluicectl maintenance [on|off]`: withdraws every announcement (or
    /// brings them back) while existing flows keep being forwarded; says
    /// how many remain.
    fn maintenance(&mut self, state: Option<&str>) -> serde_json::Value {
        let on = match state {
            None => self.avail.maintenance,
            Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return ctl::fail(vec![format!("maintenance {other}: on or off")]);
            }
        };
        if self.cfg.routing.is_none() && on {
            return ctl::fail(vec![
                "maintenance: no [routing] in the config, so there is nothing to withdraw".into(),
            ]);
        }
        if on != self.avail.maintenance {
            self.avail.maintenance = on;
            self.avail.changed();
            info!(
                flows = self.flows(),
                "maintenance {} by sluicectl",
                if on { "on" } else { "off" }
            );
        }
        let mut v = self.avail.status();
        v["flows"] = self.flows().into();
        ctl::ok(v)
    }

    /// Recompiles the rules with the running config's admin states and the
    /// prober's health, and publishes them (same ids: flows keep theirs).
    fn republish(&mut self) {
        let prober = &self.prober;
        let eligible = |p: usize, a: IpAddr| prober.eligible(p, a);
        let maps = self.shared.services.load().nat_maps.clone();
        match Services::compile(&self.cfg, &eligible, &maps) {
            Ok(services) => self.control.publish_health(services),
            Err(errors) => {
                for e in errors {
                    tracing::error!("recompiling the rules: {e}");
                }
            }
        }
    }

    /// Reads the config file again and applies it, or rejects it with
    /// every error; logged and counted either way. Ok: services compiled.
    pub(crate) fn reload(&mut self, trigger: &str) -> std::result::Result<usize, Vec<String>> {
        info!(config = %self.path.display(), trigger, "reload requested");
        self.last_text = std::fs::read(&self.path).unwrap_or_default();
        let loaded = Config::load(&self.path)
            .map_err(|e| e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .and_then(|file_cfg| {
                // Drains of members still in the pools carry over.
                let drained: BTreeSet<IpAddr> = self
                    .drained
                    .iter()
                    .copied()
                    .filter(|a| find_member(&file_cfg, &a.to_string()).is_some())
                    .collect();
                let cfg = effective(&file_cfg, &drained);
                self.book.update(&self.shared);
                let n = reload(
                    &cfg,
                    &self.cfg,
                    &self.macs,
                    &self.shared,
                    &mut self.control,
                    &self.prober,
                )?;
                Ok((file_cfg, cfg, drained, n))
            });
        match loaded {
            Ok((file_cfg, cfg, drained, n)) => {
                self.file_cfg = file_cfg;
                self.cfg = cfg;
                self.drained = drained;
                self.prober
                    .reconfigure(&self.cfg, self.clock.elapsed().as_millis() as u64);
                self.book
                    .remap(&self.shared, &self.shared.services.load(), &self.cfg);
                info!(services = n, trigger, "reload applied");
                Ok(n)
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!("reload: {e}");
                }
                self.control.reload_rejected();
                warn!(
                    errors = errors.len(),
                    trigger, "reload rejected; the running config stays"
                );
                Err(errors)
            }
        }
    }

    /// One round of health probing: replies in, probes run, probe packets
    /// out. A member whose verdict changed republishes the rules with the
    /// new health (same rule and member ids). True when replies came in.
    pub(crate) fn run_probes(&mut self) -> bool {
        let mut busy = false;
        for _ in 0..PROBE_DRAIN {
            let Some(m) = self.shared.to_prober.pop() else {
                break;
            };
            busy = true;
            let frame = m.data();
            let Some(ip) = frame.get(14..) else { continue };
            // Trim Ethernet padding: the IP total length (IPv6: 40 + payload
            // length) says where it ends.
            let total = if ip.first().map(|b| b >> 4) == Some(6) {
                ip.get(4..6)
                    .map_or(0, |b| 40 + usize::from(u16::from_be_bytes([b[0], b[1]])))
            } else {
                ip.get(2..4)
                    .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            };
            self.prober.push_rx(&ip[..total.min(ip.len())]);
        }
        let changes = self.prober.poll(self.clock.elapsed().as_millis() as u64);
        for c in &changes {
            let name = sluice::views::member_name(&self.cfg, c.address);
            let result = sluice::views::outcome_words(Some(c.outcome));
            *self
                .transitions
                .entry((c.probe.clone(), c.address))
                .or_default() += 1;
            // The words in the message, the same as fields for JSON logs.
            if c.up {
                info!(member = %c.address, name, probe = %c.probe, result, "member {} up: probe {}: {result}", c.address, c.probe);
            } else {
                warn!(member = %c.address, name, probe = %c.probe, result, "member {} down: probe {}: {result}", c.address, c.probe);
            }
        }
        if !changes.is_empty() {
            self.republish();
        }
        let control = &mut self.control;
        self.prober.drain_tx(|p| {
            control.send_ip(p);
        });
        busy
    }
}
