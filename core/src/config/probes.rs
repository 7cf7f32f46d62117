//! `[[probe]]`: protocol, port, path, timers, and for HTTP the statuses
//! that pass, the Host header and the TLS server name.

use super::raw;
use super::types::*;
use super::validate::{duration, in_range, port_number, unique_name, word, Ctx};
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

pub(super) fn check_probes(ctx: &mut Ctx, raw: Vec<(String, raw::Probe)>) -> Vec<Probe> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (obj, p) in raw {
        unique_name(ctx, &mut names, &obj, &p.name);
        let protocol = word(
            ctx,
            &obj,
            "protocol",
            &p.protocol,
            &[
                ("tcp", ProbeProtocol::Tcp),
                ("http", ProbeProtocol::Http),
                ("https", ProbeProtocol::Https),
            ],
        )
        .unwrap_or(ProbeProtocol::Tcp);
        let port = port_number(ctx, &obj, "port", p.port, false);
        match (&protocol, &p.path) {
            (ProbeProtocol::Tcp, Some(_)) => ctx.err(&obj, "path", "a tcp probe has no path"),
            (ProbeProtocol::Http | ProbeProtocol::Https, None) => ctx.err(
                &obj,
                "path",
                "http and https probes need a path (\"/health\")",
            ),
            (_, Some(path)) if !path.starts_with('/') || path.contains(char::is_whitespace) => ctx
                .err(
                    &obj,
                    "path",
                    format!("\"{path}\" must start with / and hold no spaces"),
                ),
            _ => {}
        }
        let s = Duration::from_secs;
        let interval = duration(
            ctx,
            &obj,
            "interval",
            p.interval.as_deref(),
            s(5),
            s(1),
            s(3600),
        );
        let timeout = duration(
            ctx,
            &obj,
            "timeout",
            p.timeout.as_deref(),
            interval.min(s(30)),
            Duration::from_millis(100),
            s(30),
        );
        let threshold =
            in_range(ctx, &obj, "threshold", p.threshold.unwrap_or(1), 1, 100).unwrap_or(1) as u32;
        let http = protocol != ProbeProtocol::Tcp;
        for (key, set) in [
            ("expected_status", p.expected_status.is_some()),
            ("host", p.host.is_some()),
        ] {
            if set && !http {
                ctx.err(&obj, key, "only http and https probes have it");
            }
        }
        if p.sni.is_some() && protocol != ProbeProtocol::Https {
            ctx.err(&obj, "sni", "only https probes have it");
        }
        let expected_status = match p.expected_status.as_deref().map(parse_status_list) {
            None => vec![(200, 200)],
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                ctx.err(&obj, "expected_status", e);
                vec![(200, 200)]
            }
        };
        let header_safe =
            |v: &str| !v.is_empty() && v.len() <= 253 && v.bytes().all(|b| b.is_ascii_graphic());
        for (key, v) in [("host", &p.host), ("sni", &p.sni)] {
            if let Some(v) = v {
                if !header_safe(v) {
                    ctx.err(
                        &obj,
                        key,
                        format!("\"{v}\" must be 1..253 printable characters without spaces"),
                    );
                }
            }
        }
        if let Some(v) = &p.sni {
            if v.parse::<IpAddr>().is_ok() {
                ctx.err(
                    &obj,
                    "sni",
                    "a server name, not an address (without sni, none is sent)",
                );
            }
        }
        out.push(Probe {
            expected_status,
            host: p.host,
            sni: p.sni,
            name: p.name,
            protocol,
            port,
            path: p.path,
            interval,
            timeout,
            threshold,
        });
    }
    out
}
