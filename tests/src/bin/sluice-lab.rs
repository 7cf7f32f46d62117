//! `make run`: builds the namespace lab (a client, an internet server, three
//! backends), runs sluiced on conf/lab.toml plus the demo's rules, and shows
//! each scenario working with live progress lines: Sluice as a host,
//! balanced inbound HTTP with client addresses kept, pool port forwarding,
//! egress through the public address, a backend failing its probe and
//! traffic moving, a reload adding a member. Ends with a summary table,
//! tears everything down, and exits non-zero if any check failed.

use sluice_tests::lab::*;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const B3_LINE: &str = "  { address = \"10.0.0.13\", name = \"b3\" },\n";

struct Demo {
    rows: Vec<(String, String, bool, String)>,
    live: bool,
}

impl Demo {
    /// Runs one check of `scenario`, printing a progress line while it
    /// runs and its outcome after.
    fn check(&mut self, scenario: &str, what: &str, f: impl FnOnce() -> Result<String, String>) {
        if self.live {
            print!("  .. {what}");
            let _ = std::io::stdout().flush();
        }
        let t = Instant::now();
        let res = f();
        let ms = t.elapsed().as_millis();
        let (ok, detail) = match res {
            Ok(d) => (true, d),
            Err(e) => (false, e),
        };
        let mark = if ok { "ok  " } else { "FAIL" };
        let clear = if self.live { "\r\x1b[K" } else { "" };
        println!("{clear}  {mark} {what} ({ms} ms): {detail}");
        self.rows.push((scenario.into(), what.into(), ok, detail));
    }
}

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `n` HTTP requests from `ns` to `url`: answers by backend name, and the
/// client addresses the backends saw.
fn requests(lab: &Lab, ns: &str, url: &str, n: usize) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut by = BTreeMap::new();
    let mut seen = Vec::new();
    for _ in 0..n {
        let out = text(&lab.sh(ns, &format!("curl -s --max-time 2 {url}")));
        let mut it = out.split_whitespace();
        if let (Some(name), Some(addr)) = (it.next(), it.next()) {
            *by.entry(name.to_string()).or_insert(0) += 1;
            seen.push(addr.to_string());
        } else {
            *by.entry("(no answer)".to_string()).or_insert(0) += 1;
        }
    }
    (by, seen)
}

fn spread(by: &BTreeMap<String, usize>) -> String {
    by.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits up to `secs` for `sluicectl health` to show `addr` in `state`
/// with `last` as its last probe result ("ok", "refused", ...).
fn wait_health(lab: &Lab, addr: &str, state: &str, last: &str, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let out = lab.ctl(&["--json", "health"]);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            let hit = v["members"].as_array().is_some_and(|ms| {
                ms.iter()
                    .any(|m| m["member"] == addr && m["state"] == state && m["last"] == last)
            });
            if hit {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Stops the HTTP server on port 80 in namespace `ns` (its probe fails).
fn stop_http80(lab: &Lab, ns: &str) {
    lab.sh(
        &lab.lb(),
        &format!(
            "for p in $(ip netns pids {ns}); do tr '\\0' ' ' < /proc/$p/cmdline | grep -q 'http 80 ' && kill $p; done; true"
        ),
    );
}

fn main() -> ExitCode {
    let mut demo = Demo {
        rows: Vec::new(),
        live: std::io::stdout().is_terminal(),
    };
    println!(
        "sluice lab: building namespaces (client, internet server, 3 backends, two switches)..."
    );
    let lab = Lab::named("sldemo", 3);
    for i in 0..3 {
        let name = format!("b{}", i + 1);
        // HTTP on 80 (the service and its /health probe) and on 22 (what the
        // pool's forwarded port reaches): both answer "NAME CLIENT_ADDR".
        lab.server(&lab.backend(i), &["http", "80", &name]);
        lab.server(&lab.backend(i), &["http", "22", &name]);
    }
    lab.server(&lab.internet(), &["http", "8000", "internet"]);
    for i in 0..3 {
        lab.wait_until(
            &lab.backend(i),
            "ss -ltn | grep -q ':80 ' && ss -ltn | grep -q ':22 '",
            10,
        );
    }
    lab.wait_until(&lab.internet(), "ss -ltn | grep -q ':8000 '", 10);
    let (base, prefix) = lab.config(EGRESS_AND_SSH_POOL);
    let base = with_outbound(&base);
    let two = base.replace(B3_LINE, "");
    println!(
        "sluice lab: starting sluiced in namespace {} (web-pool: b1, b2)",
        lab.lb()
    );
    let d = lab.start_sluiced_with(&two, &prefix);
    println!(
        "sluice lab: sluiced is up; control socket {}, metrics 127.0.0.1:9631 in {}\n",
        lab.socket().display(),
        lab.lb()
    );
    let (c, b1) = (lab.client(), lab.backend(0));
    let fe = format!("http://{FRONTEND}/");

    println!("Sluice as a host");
    demo.check(
        "host",
        &format!("client pings {SLUICE_EXT} and frontend {FRONTEND}"),
        || {
            for a in [SLUICE_EXT, FRONTEND] {
                let o = lab.exec(&c, &["ping", "-c", "2", "-i", "0.2", "-W", "2", a]);
                if !o.status.success() {
                    return Err(format!("no echo reply from {a}"));
                }
            }
            Ok("echo replies".into())
        },
    );
    demo.check("host", "backends' probes pass", || {
        if wait_health(&lab, "10.0.0.11", "up", "ok", 10)
            && wait_health(&lab, "10.0.0.12", "up", "ok", 10)
        {
            Ok("b1 and b2 answered /health with 200 (sluicectl health)".into())
        } else {
            Err(text(&lab.ctl(&["health"])))
        }
    });

    println!("\nInbound web pool");
    demo.check(
        "inbound",
        &format!("30 requests to {fe} spread over b1 and b2"),
        || {
            let (by, seen) = requests(&lab, &c, &fe, 30);
            let both = by.get("b1").is_some_and(|n| *n > 0) && by.get("b2").is_some_and(|n| *n > 0);
            if !both || by.len() != 2 {
                return Err(spread(&by));
            }
            if let Some(a) = seen.iter().find(|a| *a != CLIENT) {
                return Err(format!("a backend saw {a}, not the client's {CLIENT}"));
            }
            Ok(format!(
                "{}; every backend saw client {CLIENT}",
                spread(&by)
            ))
        },
    );

    println!("\nPort forwarding for the pool");
    demo.check(
        "port forwarding",
        "one frontend port per member (nat_pool_rule)",
        || {
            let map = text(&lab.ctl(&["nat-map"]));
            let mut got = Vec::new();
            for (port, want) in [(50100, "b1"), (50101, "b2")] {
                let out = text(&lab.sh(
                    &c,
                    &format!("curl -s --max-time 2 http://{FRONTEND}:{port}/"),
                ));
                if !out.starts_with(&format!("{want} ")) {
                    return Err(format!("port {port}: {out:?} (want {want})\n{map}"));
                }
                got.push(format!("{port} -> {want}"));
            }
            Ok(got.join(", "))
        },
    );

    println!("\nEgress through the public address");
    demo.check(
        "egress",
        "b1 reaches the internet server as 203.0.113.10",
        || {
            let out = text(&lab.sh(
                &b1,
                &format!("curl -s --max-time 2 http://{INTERNET}:8000/"),
            ));
            if out == format!("internet {FRONTEND}") {
                Ok(format!("the server saw {FRONTEND}"))
            } else {
                Err(format!("answer {out:?}"))
            }
        },
    );

    println!("\nA backend fails its probe");
    demo.check(
        "probe failure",
        "b2's web server stops; its probe takes it out",
        || {
            stop_http80(&lab, &lab.backend(1));
            if wait_health(&lab, "10.0.0.12", "down", "refused", 10) {
                Ok("b2 down (sluicectl health)".into())
            } else {
                Err(text(&lab.ctl(&["health"])))
            }
        },
    );
    demo.check("probe failure", "new requests all go to b1", || {
        let (by, _) = requests(&lab, &c, &fe, 20);
        if by.len() == 1 && by.get("b1") == Some(&20) {
            Ok(spread(&by))
        } else {
            Err(spread(&by))
        }
    });

    println!("\nA reload adds a member");
    demo.check("reload", "sluicectl reload with b3 in web-pool", || {
        std::fs::write(d.config_path(), &base).map_err(|e| e.to_string())?;
        let out = lab.ctl(&["reload"]);
        if out.status.success() {
            Ok(text(&out))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into())
        }
    });
    demo.check(
        "reload",
        "b3 takes new requests and gets its own forwarded port",
        || {
            if !wait_health(&lab, "10.0.0.13", "up", "ok", 10) {
                return Err(text(&lab.ctl(&["health"])));
            }
            let (by, _) = requests(&lab, &c, &fe, 30);
            if by.get("b3").copied().unwrap_or(0) == 0 || by.contains_key("b2") {
                return Err(spread(&by));
            }
            let out = text(&lab.sh(
                &c,
                &format!("curl -s --max-time 2 http://{FRONTEND}:50102/"),
            ));
            if !out.starts_with("b3 ") {
                return Err(format!("port 50102: {out:?}"));
            }
            Ok(format!("{}; 50102 -> b3", spread(&by)))
        },
    );

    println!("\nWatching it");
    demo.check("metrics", "/metrics counts the HTTP connections", || {
        std::thread::sleep(Duration::from_millis(1100));
        let m = lab.metrics();
        let syns = sluice_tests::metric(
            &m,
            "sluice_frontend_syns_total",
            &[("rule", "http"), ("direction", "in")],
        )
        .unwrap_or(0.0);
        let snat = sluice_tests::metric(
            &m,
            "sluice_snat_connections_total",
            &[("rule", "egress"), ("state", "successful")],
        )
        .unwrap_or(0.0);
        if syns >= 80.0 && snat >= 1.0 {
            Ok(format!("{syns} SYNs to rule http, {snat} SNAT connections"))
        } else {
            Err(format!("syns {syns}, snat {snat}"))
        }
    });

    println!("\nsluice lab: stopping sluiced");
    let r = d.stop();
    drop(lab);
    let failed = demo.rows.iter().filter(|r| !r.2).count();
    println!("\n  {:<16} {:<58} result", "scenario", "check");
    for (scenario, what, ok, _) in &demo.rows {
        println!(
            "  {scenario:<16} {what:<58} {}",
            if *ok { "ok" } else { "FAIL" }
        );
    }
    println!(
        "\n  counters: rx {}  tx {}  flows created {}  SNAT flows {}  reloads {}  probes {}  drops {}",
        r.get("rx"),
        r.get("tx"),
        r.get("flows_created"),
        r.get("snat_created"),
        r.get("reload.ok"),
        r.get("probe.started"),
        r.get("drop.total")
    );
    println!(
        "\nsluice lab: torn down. {} of {} checks passed.",
        demo.rows.len() - failed,
        demo.rows.len()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
