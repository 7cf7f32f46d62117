//! Flow sync between two instances (issue #16): sluiced A and B on the
//! same external and internal segments, a router namespace in front
//! (kernel routing, static routes) that sends the clients' traffic for
//! the frontend to one of them, and backends whose default route names
//! one of them. Real programs in the namespace lab (tests/src/lab.rs);
//! each test tears its lab down. Two instances, their busy-polling
//! workers and a few hundred connections are more than a debug build
//! carries on this 2-core machine: these labs run the release binaries
//! (`make test` builds them).
//!
//! ```text
//!  cl 192.0.2.100 ─┐                ┌─ A ext 203.0.113.1 ── int 10.0.0.1 ─┐
//!                  r 203.0.113.254 ─┤                                      ├─ b1 10.0.0.11
//! inet 192.0.3.200 ┘   (xs switch)  └─ B ext 203.0.113.2 ── int 10.0.0.2 ─┘  b2 10.0.0.12
//!   frontend and SNAT address 198.51.100.10, routed by r via A or B
//! ```

use sluice_tests::daemon::Daemon;
use sluice_tests::lab::Lab;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const VIP: &str = "198.51.100.10";
const CLIENT: &str = "192.0.2.100";
const INET: &str = "192.0.3.200";
const ROUTER: &str = "203.0.113.254";
const EXT: [&str; 2] = ["203.0.113.1", "203.0.113.2"];
const INT: [&str; 2] = ["10.0.0.1", "10.0.0.2"];

/// The two instances' lab: the standard one (b1, b2 on the internal
/// switch), a second Sluice namespace, the router and the two hosts
/// behind it.
struct Pair {
    lab: Lab,
    /// Sluice namespaces of A and B.
    ns: [String; 2],
    router: String,
    client: String,
    inet: String,
    key: PathBuf,
}

fn sluiced() -> PathBuf {
    sluice_tests::release_bin("sluiced")
}

fn sh(lab: &Lab, ns: &str, script: &str) {
    let out = lab.sh(ns, script);
    assert!(
        out.status.success(),
        "in {ns}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pair {
    fn new() -> Pair {
        let mut lab = Lab::new(2);
        let b = lab.extra_ns("lb2");
        for k in ["all", "default"] {
            let _ = lab.exec(
                &b,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{k}.disable_ipv6=1"),
                ],
            );
        }
        lab.wire_external(&b, "ext0");
        lab.wire_internal(&b, "int0");
        sh(&lab, &b, "ip link set ext0 up && ip link set int0 up");
        let router = lab.extra_ns("r");
        lab.wire_external(&router, "eth0");
        let client = lab.extra_ns("cl");
        let inet = lab.extra_ns("inet");
        lab.veth(&router, "eth1", &client, "eth0");
        lab.veth(&router, "eth2", &inet, "eth0");
        sh(
            &lab,
            &router,
            &format!(
                "ip addr add {ROUTER}/24 dev eth0 && ip link set eth0 up && \
                 ip addr add 192.0.2.1/24 dev eth1 && ip addr add 192.0.3.1/24 dev eth2 && \
                 sysctl -qw net.ipv4.ip_forward=1 && ip route add {VIP}/32 via {}",
                EXT[0]
            ),
        );
        for (ns, addr, gw) in [(&client, CLIENT, "192.0.2.1"), (&inet, INET, "192.0.3.1")] {
            sh(
                &lab,
                ns,
                &format!("ip addr add {addr}/24 dev eth0 && ip route add default via {gw}"),
            );
        }
        let key = lab.dir.join("cluster.key");
        std::fs::write(&key, "lab cluster secret: not for production\n").unwrap();
        Pair {
            ns: [lab.lb(), b],
            router,
            client,
            inet,
            key,
            lab,
        }
    }

    fn dir(&self, i: usize) -> PathBuf {
        self.lab.dir.join(format!("instance-{i}"))
    }

    fn socket(&self, i: usize) -> PathBuf {
        self.lab.dir.join(format!("sluiced-{i}.sock"))
    }

    /// Instance `i`'s config: A's main lcore is 0 and its worker 1, B's
    /// the other way round, so each core has one busy worker.
    fn config(&self, i: usize) -> (String, String) {
        self.config_with(i, "capacity = 65536")
    }

    /// [`Pair::config`] with `flow_table` as its `[flow_table]` section.
    fn config_with(&self, i: usize, flow_table: &str) -> (String, String) {
        let prefix = format!("{}-{i}", self.ns[0]);
        let (main, worker) = if i == 0 { (0, 1) } else { (1, 0) };
        let text = format!(
            r#"
[dpdk]
eal_args = ["-l", "0-1", "--main-lcore", "{main}", "--no-huge", "-m", "512", "--no-pci",
            "--file-prefix={prefix}", "--vdev=net_af_packet0,iface=ext0", "--vdev=net_af_packet1,iface=int0,framecnt=8192"]
workers = [{worker}]
mbufs = 8191
burst = 32
# Two busy-polling workers would hold both cores of this machine and starve
# the kernel's veth and bridge work the lab runs on.
idle_sleep_us = 50

[[port]]
name = "ext"
device = "net_af_packet0"
role = "external"
addresses = ["{ext}/24"]
gateway = ["{ROUTER}"]

[[port]]
name = "int"
device = "net_af_packet1"
role = "internal"
addresses = ["{int}/24"]

[[frontend]]
name = "vip"
address = "{VIP}"
kind = "public"

[[pool]]
name = "stream-pool"
members = [{{ address = "10.0.0.11", name = "s1" }}, {{ address = "10.0.0.12", name = "s2" }}]

[[lb_rule]]
name = "tcp-stream"
frontend = "vip"
protocol = "tcp"
frontend_port = 7000
backend_port = 7000
pool = "stream-pool"
disable_outbound_snat = true

[[lb_rule]]
name = "udp-stream"
frontend = "vip"
protocol = "udp"
frontend_port = 7000
backend_port = 7000
pool = "stream-pool"
disable_outbound_snat = true

[[outbound_rule]]
name = "egress"
frontends = ["vip"]
pool = "stream-pool"
protocol = "all"
ports_per_member = 1024

[[security_rule]]
name = "allow-streams"
priority = 100
direction = "inbound"
action = "allow"
source = "*"
destination = "{VIP}/32"
protocol = "any"
destination_ports = "7000"

[flow_table]
{flow_table}

[cluster]
instance = {i}
instances = 2
peers = ["{peer}"]
sync_port = 7400
secret_file = "{key}"

[control]
socket = "{socket}"
state_dir = "{state}"
log = "info"
"#,
            ext = EXT[i],
            int = INT[i],
            peer = INT[1 - i],
            key = self.key.display(),
            socket = self.socket(i).display(),
            state = self.dir(i).join("state").display(),
        );
        (text, prefix)
    }

    fn start(&self, i: usize) -> Daemon {
        let (text, prefix) = self.config(i);
        Daemon::start_bin(
            &sluiced(),
            &self.dir(i),
            &text,
            Some(&self.ns[i]),
            &prefix,
            &[],
        )
    }

    fn start_with(&self, i: usize, (text, prefix): (String, String)) -> Daemon {
        Daemon::start_bin(
            &sluiced(),
            &self.dir(i),
            &text,
            Some(&self.ns[i]),
            &prefix,
            &[],
        )
    }

    fn start_args(&self, i: usize, extra: &[&str]) -> Daemon {
        let (text, prefix) = self.config(i);
        Daemon::start_bin(
            &sluiced(),
            &self.dir(i),
            &text,
            Some(&self.ns[i]),
            &prefix,
            extra,
        )
    }

    fn status(&self, i: usize) -> serde_json::Value {
        self.json(i, &["status"])
    }

    fn json(&self, i: usize, args: &[&str]) -> serde_json::Value {
        let mut v = vec!["--json"];
        v.extend_from_slice(args);
        let out = sluice_tests::run(
            std::process::Command::new(sluice_tests::release_bin("sluicectl"))
                .arg("--socket")
                .arg(self.socket(i))
                .args(&v),
        );
        assert!(out.status.success(), "sluicectl {args:?} on {i}: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Echo servers on 7000 on b1, b2 and the internet host.
    fn servers(&self) {
        for ns in [self.lab.backend(0), self.lab.backend(1), self.inet.clone()] {
            let out = self.lab.dir.join(format!("echo-{ns}.out"));
            self.lab
                .server(&ns, &["echo", "7000", out.to_str().unwrap()]);
            assert!(self.lab.wait_until(&ns, "ss -ltn | grep -q ':7000 '", 10));
        }
    }

    /// Sends the clients' traffic for the frontend (and SNAT address) to
    /// instance `i`.
    fn route_inbound_to(&self, i: usize) {
        sh(
            &self.lab,
            &self.router,
            &format!("ip route replace {VIP}/32 via {}", EXT[i]),
        );
    }

    /// Points the backends' default route at instance `i`.
    fn route_backends_to(&self, i: usize) {
        for b in 0..2 {
            sh(
                &self.lab,
                &self.lab.backend(b),
                &format!("ip route replace default via {}", INT[i]),
            );
        }
    }

    /// A generator of `tests/data/lab_server.py` in `ns`, writing `name`.out.
    fn run(&self, ns: &str, args: &[&str], name: &str) -> PathBuf {
        let out = self.lab.dir.join(format!("{name}.out"));
        let mut v = args.to_vec();
        v.push(out.to_str().unwrap());
        self.lab.server(ns, &v);
        out
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn field(text: &str, key: &str) -> u64 {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
}

/// The non-zero drop and sync counters of an exit report, for failures.
fn counts(r: &sluice_tests::daemon::Report) -> String {
    r.counters
        .iter()
        .filter(|(k, v)| {
            **v != 0 && (k.starts_with("drop.") || k.starts_with("sync.") || k.starts_with("port."))
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn wait_all(outs: &[&Path], secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while outs.iter().any(|p| read(p).is_empty()) {
        assert!(Instant::now() < end, "the generators did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Instance `i`'s TCP flows: (direction, public address:port for
/// outbound ones, packets it forwarded itself).
fn tcp_flows(p: &Pair, i: usize) -> Vec<(String, String, u64)> {
    let f = p.json(i, &["flows", "--limit", "10000", "--protocol", "tcp"]);
    f["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["direction"].as_str().unwrap_or("").to_string(),
                f["public"].as_str().unwrap_or("").to_string(),
                f["packets"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The public address:port of every outbound TCP flow instance `i` lists.
fn snat_publics(p: &Pair, i: usize) -> Vec<String> {
    let mut v: Vec<String> = tcp_flows(p, i)
        .into_iter()
        .filter(|f| f.0 == "outbound")
        .map(|f| f.1)
        .collect();
    v.sort();
    v
}

#[test]
fn connections_fail_over_to_the_other_instance_when_one_is_killed() {
    let p = Pair::new();
    p.servers();
    let a = p.start(0);
    let b = p.start(1);
    let blog = b.log();
    assert!(
        blog.contains("bulk copy from every peer received"),
        "{blog}"
    );
    let (secs, every) = ("20", "0.05");
    let inbound = p.run(
        &p.client,
        &["tcp-many", VIP, "7000", "100", secs, every],
        "inbound",
    );
    let out1 = p.run(
        &p.lab.backend(0),
        &["tcp-many", INET, "7000", "50", secs, every],
        "out-b1",
    );
    let out2 = p.run(
        &p.lab.backend(1),
        &["tcp-many", INET, "7000", "50", secs, every],
        "out-b2",
    );
    let udp = p.run(&p.client, &["udp-stream", VIP, "7000", secs, every], "udp");
    std::thread::sleep(Duration::from_secs(5));
    let before = snat_publics(&p, 0);
    assert_eq!(before.len(), 100, "A's outbound flows: {before:?}");
    let sb = p.status(1);
    assert!(
        sb["flows"].as_u64().unwrap() >= 201,
        "B holds A's flows: {sb}"
    );
    let t = Instant::now();
    p.route_inbound_to(1);
    p.route_backends_to(1);
    let alog = a.kill9();
    eprintln!(
        "failover: routes moved to B and A killed in {} ms",
        t.elapsed().as_millis()
    );
    wait_all(&[&inbound, &out1, &out2, &udp], 90);
    let flows = tcp_flows(&p, 1);
    let after = snat_publics(&p, 1);
    let sb = p.status(1);
    let r = b.stop();
    for (name, path, n) in [
        ("inbound", &inbound, 100),
        ("outbound b1", &out1, 50),
        ("outbound b2", &out2, 50),
    ] {
        let t = read(path);
        assert_eq!(field(&t, "conns"), n, "{name}: {t}");
        assert_eq!(
            field(&t, "ok"),
            n,
            "{name}: connections broke: {t}\nA:\n{alog}\nB:\n{}",
            r.log
        );
    }
    // Each connection carried data through B after the switch (B's own
    // packet counts: a synced entry starts at 0; the close alone is 4).
    for dir in ["inbound", "outbound"] {
        let through_b = flows.iter().filter(|f| f.0 == dir && f.2 > 8).count();
        assert!(
            through_b >= 100,
            "{dir}: {through_b} flows carried data through B: {flows:?}"
        );
    }
    // The outbound connections kept their public address and port: B
    // lists exactly the mappings A made.
    assert_eq!(after, before, "B's outbound mappings are A's");
    let u = read(&udp);
    let lost = field(&u, "sent") - field(&u, "echoed");
    eprintln!("failover: the UDP stream (a datagram every 50 ms) lost {lost}: {u}");
    assert!(lost <= 20, "more than a second of the UDP stream lost: {u}");
    let c = &sb["cluster"];
    eprintln!("failover: B's cluster view: {c}");
    assert!(c["received"].as_u64().unwrap() >= 201, "{c}");
    assert_eq!(c["counters"]["refused_mac"], 0, "{c}");
}

#[test]
fn connections_open_and_carry_data_over_asymmetric_paths() {
    let p = Pair::new();
    p.servers();
    // Clients' traffic through A, the backends' replies through B.
    p.route_backends_to(1);
    let a = p.start(0);
    let b = p.start(1);
    let inbound = p.run(
        &p.client,
        &["tcp-many", VIP, "7000", "20", "6", "0.05"],
        "asym",
    );
    let udp = p.run(
        &p.client,
        &["udp-stream", VIP, "7000", "6", "0.05"],
        "asym-udp",
    );
    wait_all(&[&inbound, &udp], 40);
    let (sa, sb) = (p.status(0), p.status(1));
    let (ra, rb) = (a.stop(), b.stop());
    assert!(rb.get("sync.created") >= 21, "B's exit report: {}", rb.log);
    let t = read(&inbound);
    assert_eq!(field(&t, "ok"), 20, "{t}\nA:\n{}\nB:\n{}", ra.log, rb.log);
    assert!(field(&t, "sent") > 20 * 20, "{t}");
    // A member's reply that reaches B before the record of its flow is
    // lost (it looks like a new outbound flow until the record displaces
    // it); records go first, so that is rare: a slow (debug) build under
    // this lab's load sees a few.
    let u = read(&udp);
    let lost = field(&u, "sent") - field(&u, "echoed");
    assert!(lost <= 5, "{u}\nA: {}\nB: {}", counts(&ra), counts(&rb));
    // Each saw one direction: A the clients', B the replies; both synced.
    for (name, s) in [("A", &sa), ("B", &sb)] {
        let c = &s["cluster"];
        assert!(c["sent"].as_u64().unwrap() >= 21, "{name}: {c}");
        assert!(c["received"].as_u64().unwrap() >= 21, "{name}: {c}");
    }
}

/// One sync datagram from A to B, captured on B's switch port.
fn capture_one(p: &Pair, pcap: &Path) {
    let is = p.lab.ns("is");
    let out = p.lab.sh(&is, "ls /sys/class/net | grep '^p-int0'");
    let port = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!port.is_empty(), "no switch port of B's int0");
    p.lab.spawn(
        &is,
        &[
            "timeout",
            "20",
            "tcpdump",
            "-i",
            &port,
            "-c",
            "1",
            "-U",
            "-w",
            pcap.to_str().unwrap(),
            "udp and dst port 7400 and dst host 10.0.0.2",
        ],
    );
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn untrusted_sync_datagrams_change_nothing_and_are_counted() {
    let mut p = Pair::new();
    p.servers();
    let a = p.start(0);
    let b = p.start(1);
    // A host on the internal segment that is no instance.
    let x = p.lab.extra_ns("x");
    p.lab.wire_internal(&x, "eth0");
    sh(
        &p.lab,
        &x,
        "ip addr add 10.0.0.66/24 dev eth0 && ip link set eth0 up",
    );
    let pcap = p.lab.dir.join("sync.pcap");
    capture_one(&p, &pcap);
    // A connection that outlives the test: its record is what A sends.
    p.run(
        &p.client,
        &["tcp-many", VIP, "7000", "1", "60", "0.5"],
        "one",
    );
    assert!(
        p.lab.wait_until(
            &p.ns[0],
            &format!("test $(stat -c %s {}) -gt 100", pcap.display()),
            10
        ),
        "no sync datagram captured"
    );
    // A says nothing more: whatever B's counters do now is the forgeries'.
    let _ = a.stop();
    std::thread::sleep(Duration::from_millis(300));
    let before = p.status(1);
    let flows = before["flows"].as_u64().unwrap();
    let script = sluice_tests::workspace().join("tests/data/sync_attack.py");
    for mode in ["badmac", "replay", "nonpeer"] {
        let out = p.lab.exec(
            &x,
            &[
                "python3",
                script.to_str().unwrap(),
                "eth0",
                pcap.to_str().unwrap(),
                mode,
            ],
        );
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = p.status(1);
    let (c0, c) = (
        &before["cluster"]["counters"],
        &after["cluster"]["counters"],
    );
    let grew = |k: &str| c[k].as_u64().unwrap() - c0[k].as_u64().unwrap();
    assert_eq!(grew("refused_mac"), 1, "{c}");
    assert_eq!(grew("refused_replay"), 1, "{c}");
    assert_eq!(grew("refused_not_peer"), 1, "{c}");
    assert_eq!(
        grew("created") + grew("updated") + grew("removed"),
        0,
        "{c}"
    );
    assert_eq!(
        after["flows"].as_u64().unwrap(),
        flows,
        "B's table unchanged"
    );
    // The metrics are copied once a second.
    let scrape = || {
        let out = p.lab.exec(
            &p.ns[1],
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://127.0.0.1:9631/metrics",
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let seen = |m: &str, event: &str| {
        sluice_tests::metric(m, "sluice_sync_events_total", &[("event", event)]).unwrap_or(0.0)
            >= 1.0
    };
    let end = Instant::now() + Duration::from_secs(5);
    let mut m = scrape();
    while !["refused_mac", "refused_replay", "refused_not_peer"]
        .iter()
        .all(|e| seen(&m, e))
    {
        assert!(
            Instant::now() < end,
            "the refusals never reached the metrics:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(200));
        m = scrape();
    }
    let _ = b.stop();
}

/// The number after `key=` in a log line's fields.
fn log_field(log: &str, line: &str, key: &str) -> u64 {
    let l = log
        .lines()
        .find(|l| l.contains(line))
        .unwrap_or_else(|| panic!("no \"{line}\" in the log:\n{log}"));
    field(l, key)
}

#[test]
fn a_starting_instance_takes_a_million_flows_from_its_peer() {
    const N: u64 = 1_000_000;
    let p = Pair::new();
    // A adopts a table a tool filled with a million flows of its config.
    let file = p.lab.dir.join("flows");
    let a_cfg = p.config_with(
        0,
        &format!("capacity = 2097152\nfile = \"{}\"", file.display()),
    );
    let a_toml = p.lab.dir.join("a.toml");
    std::fs::write(&a_toml, &a_cfg.0).unwrap();
    let fill = sluice_tests::release_bin("sluice-fill");
    let out = sluice_tests::must(
        std::process::Command::new(&fill)
            .arg(&a_toml)
            .arg(N.to_string()),
    );
    let filled = String::from_utf8_lossy(&out.stdout).to_string();
    let made = field(&filled, "flows");
    assert!(made >= N * 999 / 1000, "{filled}");
    let a = p.start_with(0, a_cfg);
    let alog = a.log();
    assert_eq!(
        log_field(&alog, "adopted flows carried over", "adopted"),
        made,
        "{alog}"
    );
    let t = Instant::now();
    let b = p.start_with(1, p.config_with(1, "capacity = 2097152"));
    let ready = t.elapsed();
    let blog = b.log();
    let ms = log_field(&blog, "bulk copy from every peer received", "ms");
    let got = log_field(&blog, "bulk copy from every peer received", "flows");
    let s = p.status(1);
    eprintln!(
        "bulk copy: {got} of {made} flows from A to B in {ms} ms ({} ms from B's start to ready); B's view: {}",
        ready.as_millis(),
        s["cluster"]
    );
    assert!(got >= made * 999 / 1000, "B took {got} of {made}:\n{blog}");
    let _ = (a.stop(), b.stop());
}

#[test]
fn a_peer_keeps_the_flows_the_other_instance_carries() {
    let p = Pair::new();
    p.servers();
    // Timers / 60: a UDP flow idles out after 4 s, and B sees none of this
    // one's packets (routes on both sides name A); only refreshes keep it.
    let scale = ["--timer-scale", "60"];
    let a = p.start_args(0, &scale);
    let b = p.start_args(1, &scale);
    let udp = p.run(&p.client, &["udp-stream", VIP, "7000", "14", "0.1"], "kept");
    std::thread::sleep(Duration::from_secs(12));
    let f = p.json(1, &["flows", "--protocol", "udp"]);
    let kept: Vec<&serde_json::Value> = f["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["rule"] == "udp-stream")
        .collect();
    wait_all(&[&udp], 30);
    let sa = p.status(0);
    let (_, rb) = (a.stop(), b.stop());
    assert_eq!(
        kept.len(),
        1,
        "B still holds the stream's flow 12 s on: {f}\n{}",
        rb.log
    );
    let idle = kept[0]["idle_ms"].as_u64().unwrap();
    assert!(
        idle < 4000,
        "B's copy follows A's last packet: idle {idle} ms"
    );
    let refreshed = sa["cluster"]["counters"]["refreshed"].as_u64().unwrap();
    assert!(
        refreshed >= 8,
        "A refreshed it about once a second: {refreshed}"
    );
    // The stream went through A (what it lost, it lost on this 2-core
    // lab's veths while both busy-polling workers hold the cores: the
    // datagrams left A and never reached the router).
    let u = read(&udp);
    assert!(field(&u, "echoed") > 0, "{u}");
}
