//! What the prober probes: each `[[probe]]` a load-balancing rule uses, as
//! a [`Spec`], with the members it covers ([`targets`]).

use sluice_core::config::{Config, ProbeProtocol};
use std::net::{IpAddr, SocketAddr};

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
    pub(crate) fn passes(&self, code: u16) -> bool {
        self.expected_status
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    /// The name TLS is sent: `sni`, else `host` without its port when it
    /// names a host.
    pub(crate) fn server_name(&self) -> Option<String> {
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
