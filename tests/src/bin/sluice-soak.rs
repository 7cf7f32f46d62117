//! `make soak`: a long mixed load through sluiced in the namespace lab, in
//! the manner of FD.io CSIT's soak tests, reporting every loss at both ends
//! against a zero-loss baseline measured in the same run, and how memory
//! moves (RSS, mbufs out of the pool, flow table).
//!
//! ```text
//! sluice-soak [--minutes M (30)] [--baseline-secs B (60)] [--out FILE]
//! ```
//!
//! The baseline runs the same generators for B seconds between two
//! namespaces joined by a plain veth (no Sluice): what the generators
//! themselves lose on this machine. Then, for M minutes through sluiced:
//!
//! - inbound: two UDP streams (a datagram every 10 ms) and four TCP
//!   connections (a line every 50 ms) to an lb_rule over b1..b3, echoed,
//!   and a new HTTP connection every 100 ms to conf/lab.toml's HTTP rule;
//! - outbound SNAT: b1 streams UDP and TCP the same way to the internet
//!   host's echo server;
//! - probes flapping: b3's probe target (port 8081) stops and starts every
//!   30 s, so b3 leaves and rejoins the echo pool (its echo server stays
//!   up: TCP flows stay on it, UDP flows move);
//! - a reload a minute, alternately by sluicectl and SIGHUP, adding and
//!   removing a rule the load does not use.
//!
//! Every 10 s it samples sluiced's RSS, `sluicectl status` (flows, mbufs
//! in use, drops). At the end it prints a Markdown report (also written to
//! `--out`, default target/soak-results.md) and exits 1 when the soak lost
//! more than the baseline.

use serde_json::Value;
use sluice_tests::daemon::Trigger;
use sluice_tests::kernel::{link_drops, udp_errors};
use sluice_tests::lab::{with_outbound, Lab, EGRESS_AND_SSH_POOL, FRONTEND, INTERNET};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The echo pool (b1..b3, probed on 8081), its UDP and TCP rules on 7000,
/// and a security rule for them.
const SOAK_RULES: &str = r#"
[[probe]]
name = "soak-health"
protocol = "http"
port = 8081
path = "/"
interval = "1s"
threshold = 2

[[pool]]
name = "soak-pool"
members = [
  { address = "10.0.0.11", name = "s1" },
  { address = "10.0.0.12", name = "s2" },
  { address = "10.0.0.13", name = "s3" },
]

[[lb_rule]]
name = "soak-udp"
frontend = "web"
protocol = "udp"
frontend_port = 7000
backend_port = 7000
pool = "soak-pool"
probe = "soak-health"
disable_outbound_snat = true

[[lb_rule]]
name = "soak-tcp"
frontend = "web"
protocol = "tcp"
frontend_port = 7000
backend_port = 7000
pool = "soak-pool"
probe = "soak-health"
disable_outbound_snat = true

[[security_rule]]
name = "allow-soak"
priority = 120
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "any"
destination_ports = "7000-8080"
"#;

/// What the reloads add and remove: a rule on 8080 the load never uses.
const CHURN: &str = "[[lb_rule]]\nname = \"churn\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
frontend_port = 8080\nbackend_port = 8080\npool = \"web-pool\"\ndisable_outbound_snat = true\n";

struct Args {
    minutes: f64,
    baseline_secs: f64,
    out: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        minutes: 30.0,
        baseline_secs: 60.0,
        out: sluice_tests::workspace().join("target/soak-results.md"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage(&k));
        match k.as_str() {
            "--minutes" => a.minutes = v.parse().unwrap_or_else(|_| usage(&k)),
            "--baseline-secs" => a.baseline_secs = v.parse().unwrap_or_else(|_| usage(&k)),
            "--out" => a.out = v.into(),
            _ => usage(&k),
        }
    }
    a
}

fn usage(at: &str) -> ! {
    eprintln!("sluice-soak: bad argument {at:?}\nusage: sluice-soak [--minutes M] [--baseline-secs B] [--out FILE]");
    std::process::exit(2)
}

/// One generator: where it runs, what it does, where it writes its counts.
struct Gen {
    name: &'static str,
    ns: String,
    args: Vec<String>,
    out: PathBuf,
}

/// The generators of one phase, `secs` long, sending to `inbound` (the
/// echo service on 7000 and HTTP on 80) and, when given, `outbound` from
/// `snat_ns`.
fn generators(
    lab: &Lab,
    tag: &str,
    client: &str,
    inbound: &str,
    snat: Option<(&str, &str)>,
    secs: f64,
) -> Vec<Gen> {
    let secs = format!("{secs}");
    let out = |n: &str| lab.dir.join(format!("{tag}-{n}.out"));
    let mk = |name: &'static str, ns: &str, args: Vec<String>| Gen {
        name,
        ns: ns.into(),
        args,
        out: out(name),
    };
    let stream = |kind: &str, host: &str, every: &str, o: &Path| {
        vec![
            kind.to_string(),
            host.into(),
            "7000".into(),
            secs.clone(),
            every.into(),
            o.display().to_string(),
        ]
    };
    let mut g = vec![
        mk(
            "udp-in-1",
            client,
            stream("udp-stream", inbound, "0.01", &out("udp-in-1")),
        ),
        mk(
            "udp-in-2",
            client,
            stream("udp-stream", inbound, "0.01", &out("udp-in-2")),
        ),
    ];
    for name in ["tcp-in-1", "tcp-in-2", "tcp-in-3", "tcp-in-4"] {
        g.push(mk(
            name,
            client,
            stream("tcp-stream", inbound, "0.05", &out(name)),
        ));
    }
    let mut http = stream("http-loop", inbound, "0.1", &out("http-in"));
    http[2] = "80".into();
    g.push(mk("http-in", client, http));
    if let Some((ns, host)) = snat {
        g.push(mk(
            "udp-snat",
            ns,
            stream("udp-stream", host, "0.01", &out("udp-snat")),
        ));
        g.push(mk(
            "tcp-snat",
            ns,
            stream("tcp-stream", host, "0.05", &out("tcp-snat")),
        ));
    }
    g
}

fn start(lab: &Lab, gens: &[Gen]) {
    for g in gens {
        let a: Vec<&str> = g.args.iter().map(String::as_str).collect();
        lab.server(&g.ns, &a);
    }
}

/// Waits for every generator's result (they end on their own).
fn results(gens: &[Gen], within: Duration) -> Vec<(&'static str, String)> {
    let end = Instant::now() + within;
    loop {
        let r: Vec<_> = gens
            .iter()
            .map(|g| (g.name, std::fs::read_to_string(&g.out).unwrap_or_default()))
            .collect();
        if r.iter().all(|(_, t)| !t.is_empty()) || Instant::now() > end {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn field(text: &str, key: &str) -> u64 {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Messages lost by one generator: sent but not echoed (HTTP: failed), or
/// everything when it reported nothing.
fn lost(text: &str) -> u64 {
    if text.is_empty() {
        return u64::MAX;
    }
    if text.contains("ok=") {
        return field(text, "sent") - field(text, "ok").min(field(text, "sent"));
    }
    let broke = u64::from(!text.contains("error=none") && text.contains("error="));
    field(text, "sent") - field(text, "echoed").min(field(text, "sent")) + broke
}

/// Echo servers' counts ("udp=N tcp=M") summed over `files`.
fn echoed_at(files: &[PathBuf], kind: &str) -> u64 {
    files
        .iter()
        .map(|f| field(&std::fs::read_to_string(f).unwrap_or_default(), kind))
        .sum()
}

#[derive(Default)]
struct Sample {
    at_s: u64,
    rss_kb: u64,
    flows: u64,
    mbufs: u64,
    drops: u64,
}

fn sample(lab: &Lab, pid: u32, t0: Instant) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let s: Value = lab.ctl_json(&["status"]);
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    Sample {
        at_s: t0.elapsed().as_secs(),
        rss_kb,
        flows: n("flows") + n("flows_v6"),
        mbufs: n("mbufs_in_use"),
        drops: n("drops"),
    }
}

fn delta(after: [u64; 3], before: [u64; 3]) -> [u64; 3] {
    [0, 1, 2].map(|i| after[i].saturating_sub(before[i]))
}

fn main() {
    let a = args();
    let soak_secs = a.minutes * 60.0;
    let mut lab = Lab::new(3);
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Soak: {} min through sluiced, baseline {} s without it\n",
        a.minutes, a.baseline_secs
    );

    // The baseline: the same generators between two namespaces on a veth.
    let (ba, bb) = (lab.extra_ns("base-a"), lab.extra_ns("base-b"));
    lab.veth(&ba, "bva", &bb, "bvb");
    lab.ip_in(&ba, "addr add 10.99.0.1/24 dev bva");
    lab.ip_in(&bb, "addr add 10.99.0.2/24 dev bvb");
    let base_echo = lab.dir.join("base-echo.out");
    lab.server(&bb, &["echo", "7000", base_echo.to_str().unwrap()]);
    lab.server(&bb, &["http", "80", "base"]);
    assert!(lab.wait_until(
        &bb,
        "ss -ltn | grep -q ':7000 ' && ss -ltn | grep -q ':80 '",
        10
    ));
    eprintln!("soak: baseline for {} s", a.baseline_secs);
    // The worker core is busy in the soak (sluiced polls it): here a
    // spinner takes it, so the generators get the same CPU.
    lab.spawn(
        &ba,
        &["taskset", "-c", "1", "sh", "-c", "while :; do :; done"],
    );
    let base_ns = [ba.clone(), bb.clone()];
    let base_before: Vec<_> = base_ns.iter().map(|n| udp_errors(&lab, n)).collect();
    let base = generators(&lab, "base", &ba, "10.99.0.2", None, a.baseline_secs);
    start(&lab, &base);
    let base_results = results(&base, Duration::from_secs_f64(a.baseline_secs + 30.0));
    let base_kernel: Vec<_> = base_ns
        .iter()
        .zip(&base_before)
        .map(|(n, b)| (n.clone(), delta(udp_errors(&lab, n), *b)))
        .collect();
    lab.sh(&ba, "pkill -f 'while :; do :; done'");

    // The soak.
    let echo_outs: Vec<PathBuf> = (0..3)
        .map(|i| lab.dir.join(format!("echo-b{}.out", i + 1)))
        .collect();
    for (i, out) in echo_outs.iter().enumerate() {
        let b = lab.backend(i);
        lab.server(&b, &["echo", "7000", out.to_str().unwrap()]);
        lab.server(&b, &["http", "8081", &format!("s{}", i + 1)]);
    }
    lab.http_backends(3, 80);
    let inet_echo = lab.dir.join("echo-internet.out");
    lab.server(
        &lab.internet(),
        &["echo", "7000", inet_echo.to_str().unwrap()],
    );
    for i in 0..3 {
        assert!(lab.wait_until(
            &lab.backend(i),
            "ss -ltn | grep -q ':8081 ' && ss -ltn | grep -q ':7000 '",
            10
        ));
    }
    let (text, prefix) = lab.config(&format!("{SOAK_RULES}\n{EGRESS_AND_SSH_POOL}"));
    let base_cfg = with_outbound(&text);
    let config = |churn: bool| {
        if churn {
            format!("{base_cfg}\n{CHURN}")
        } else {
            base_cfg.clone()
        }
    };
    let d = lab.start_sluiced_with(&config(false), &prefix);
    // All three members up before the load starts.
    let up = |lab: &Lab| {
        let h = lab.ctl_json(&["health"]);
        h.to_string().matches("\"up\"").count()
    };
    let t = Instant::now();
    while up(&lab) < 6 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("soak: {} min through sluiced (pid {})", a.minutes, d.pid());
    let soak = generators(
        &lab,
        "soak",
        &lab.client(),
        FRONTEND,
        Some((&lab.backend(0), INTERNET)),
        soak_secs,
    );
    let soak_ns = [
        lab.client(),
        lab.backend(0),
        lab.backend(1),
        lab.backend(2),
        lab.internet(),
    ];
    let soak_before: Vec<_> = soak_ns.iter().map(|n| udp_errors(&lab, n)).collect();
    let link_ns = [
        lab.ns("xs"),
        lab.ns("is"),
        lab.lb(),
        lab.client(),
        lab.backend(0),
        lab.backend(1),
        lab.backend(2),
        lab.internet(),
    ];
    let links_before: Vec<u64> = link_ns.iter().map(|n| link_drops(&lab, n)).collect();
    start(&lab, &soak);
    let t0 = Instant::now();
    let mut samples = vec![sample(&lab, d.pid(), t0)];
    let (mut reloads, mut rejected, mut flaps) = (0u32, 0u32, 0u32);
    let mut b3_up = true;
    let end = t0 + Duration::from_secs_f64(soak_secs);
    let mut tick = 0u64;
    while Instant::now() + Duration::from_secs(10) < end {
        std::thread::sleep(Duration::from_secs(10));
        tick += 1;
        if tick.is_multiple_of(3) {
            let b3 = lab.backend(2);
            if b3_up {
                lab.sh(&b3, "pkill -f 'lab_server.py http 8081 s3$'");
            } else {
                lab.server(&b3, &["http", "8081", "s3"]);
            }
            b3_up = !b3_up;
            flaps += 1;
        }
        if tick.is_multiple_of(6) {
            let how = if reloads % 2 == 0 {
                Trigger::Sluicectl
            } else {
                Trigger::Sighup
            };
            if d.reload_by(&config(reloads % 2 == 0), how, Some(&lab.socket())) {
                reloads += 1;
            } else {
                rejected += 1;
            }
        }
        samples.push(sample(&lab, d.pid(), t0));
    }
    if !b3_up {
        lab.server(&lab.backend(2), &["http", "8081", "s3"]);
    }
    let soak_results = results(
        &soak,
        end.saturating_duration_since(Instant::now()) + Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_millis(500));
    samples.push(sample(&lab, d.pid(), t0));
    let soak_kernel: Vec<_> = soak_ns
        .iter()
        .zip(&soak_before)
        .map(|(n, b)| (n.clone(), delta(udp_errors(&lab, n), *b)))
        .collect();
    let links: Vec<(String, u64)> = link_ns
        .iter()
        .zip(&links_before)
        .map(|(n, b)| (n.clone(), link_drops(&lab, n).saturating_sub(*b)))
        .collect();
    let r = d.stop();

    // The report.
    let _ = writeln!(
        report,
        "| generator | baseline | lost | soak | lost |\n|---|---|---|---|---|"
    );
    let mut soak_lost = 0;
    let mut base_lost = 0;
    for (name, text) in &soak_results {
        let b = base_results
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.trim());
        let bl = b.map_or(0, lost);
        let sl = lost(text);
        base_lost += bl;
        soak_lost += sl;
        let _ = writeln!(
            report,
            "| {name} | {} | {bl} | {} | {sl} |",
            b.unwrap_or("(none: SNAT runs only through sluiced)"),
            text.trim()
        );
    }
    let sent = |prefix: &str, key: &str| -> u64 {
        soak_results
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| field(t, key))
            .sum()
    };
    let _ = writeln!(
        report,
        "\nAt the far end: the members' echo servers counted {} datagrams and {} lines \
         (the inbound generators sent {} and {}); the internet host's {} and {} \
         (b1 sent {} and {}).",
        echoed_at(&echo_outs, "udp"),
        echoed_at(&echo_outs, "tcp"),
        sent("udp-in", "sent"),
        sent("tcp-in", "sent"),
        echoed_at(std::slice::from_ref(&inet_echo), "udp"),
        echoed_at(std::slice::from_ref(&inet_echo), "tcp"),
        sent("udp-snat", "sent"),
        sent("tcp-snat", "sent"),
    );
    let _ = writeln!(
        report,
        "\nThe kernels' UDP drops (RcvbufErrors, InErrors, SndbufErrors) while the generators ran:\n"
    );
    for (phase, rows) in [("baseline", &base_kernel), ("soak", &soak_kernel)] {
        for (ns, [rcv, inerr, snd]) in rows {
            let _ = writeln!(report, "- {phase}, {ns}: {rcv}, {inerr}, {snd}");
        }
    }
    let _ = writeln!(
        report,
        "\nFrames the lab's links dropped (veths, bridges) during the soak:\n"
    );
    for (ns, n) in &links {
        let _ = writeln!(report, "- {ns}: {n}");
    }
    let port = |k: &str| -> u64 {
        ["ext", "int"]
            .iter()
            .map(|p| r.get(&format!("port.{p}.{k}")))
            .sum()
    };
    let _ = writeln!(
        report,
        "\nsluiced's ports: {} frames missed (RX ring full), {} RX errors, {} TX errors.",
        port("imissed"),
        port("ierrors"),
        port("oerrors")
    );
    let _ = writeln!(
        report,
        "\nReloads applied {reloads}, rejected {rejected}; b3's probe target flapped {flaps} times \
         (flows moved by health: {}, health snapshots published: {}).\n",
        r.get("flows.moved_by_health"),
        r.get("health.published")
    );
    let _ = writeln!(
        report,
        "| t (s) | RSS (KiB) | flows | mbufs in use | drops |\n|---|---|---|---|---|"
    );
    let step = (samples.len() / 12).max(1);
    for (i, s) in samples.iter().enumerate() {
        if i % step == 0 || i + 1 == samples.len() {
            let _ = writeln!(
                report,
                "| {} | {} | {} | {} | {} |",
                s.at_s, s.rss_kb, s.flows, s.mbufs, s.drops
            );
        }
    }
    // Growth after the first minute (start-up settles in it).
    let settled = samples.iter().find(|s| s.at_s >= 60).unwrap_or(&samples[0]);
    let last = samples.last().unwrap_or(settled);
    let _ = writeln!(
        report,
        "\nGrowth from t={} s to the end: RSS {:+} KiB, mbufs in use {:+}, flows {:+}.",
        settled.at_s,
        last.rss_kb as i64 - settled.rss_kb as i64,
        last.mbufs as i64 - settled.mbufs as i64,
        last.flows as i64 - settled.flows as i64,
    );
    let mut drops: Vec<_> = r
        .counters
        .iter()
        .filter(|(k, v)| k.starts_with("drop.") && **v > 0)
        .collect();
    drops.sort();
    let _ = writeln!(report, "\nDrops at exit (every non-zero `drop.*`):\n");
    for (k, v) in drops {
        let _ = writeln!(report, "- `{k}` {v}");
    }
    let _ = writeln!(
        report,
        "\nLost: baseline {base_lost}, soak {soak_lost} (of {} messages sent through sluiced).",
        soak_results
            .iter()
            .map(|(_, t)| field(t, "sent"))
            .sum::<u64>()
    );
    print!("{report}");
    if let Some(dir) = a.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&a.out, &report);
    drop(lab);
    if soak_lost > base_lost {
        eprintln!("soak: the soak lost {soak_lost}, the baseline {base_lost}");
        std::process::exit(1);
    }
}
