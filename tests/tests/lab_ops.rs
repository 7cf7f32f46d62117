//! Operations lab tests: reloads under traffic (SIGHUP, sluicectl and the
//! file watcher), /metrics scraped with curl against traffic the test sent,
//! and every sluicectl command against a running daemon. Each test builds
//! its own lab and tears it down, also when it fails.

use serde_json::Value;
use sluice_tests::daemon::Trigger;
use sluice_tests::lab::{with_outbound, Lab, EGRESS_AND_SSH_POOL, FRONTEND, INTERNET, UDP_9000};
use sluice_tests::metric;
use std::time::{Duration, Instant};

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `key=N` from a line such as "sent=10 echoed=10".
fn field(text: &str, key: &str) -> u64 {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
}

fn field_str<'a>(text: &'a str, key: &str) -> &'a str {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("")
}

/// Two rules no reload touches (UDP and TCP echo on port 7000 over b1 and
/// b2), and a security rule for them and the churned rule's port.
const STREAM_RULES: &str = r#"
[[pool]]
name = "stream-pool"
members = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }]

[[lb_rule]]
name = "udp-stream"
frontend = "web"
protocol = "udp"
frontend_port = 7000
backend_port = 7000
pool = "stream-pool"

[[lb_rule]]
name = "tcp-stream"
frontend = "web"
protocol = "tcp"
frontend_port = 7000
backend_port = 7000
pool = "stream-pool"

[[security_rule]]
name = "allow-ops"
priority = 110
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "any"
destination_ports = "7000-8080"
"#;

/// What the reloads change: a pool that gains and loses b2, and a rule
/// over it that comes and goes.
fn churn(with: bool) -> String {
    if with {
        "[[pool]]\nname = \"churn-pool\"\nmembers = [{ address = \"10.0.0.13\" }, { address = \"10.0.0.12\" }]\n\n\
         [[lb_rule]]\nname = \"extra\"\nfrontend = \"web\"\nprotocol = \"tcp\"\nfrontend_port = 8080\n\
         backend_port = 8080\npool = \"churn-pool\"\n"
            .into()
    } else {
        "[[pool]]\nname = \"churn-pool\"\nmembers = [{ address = \"10.0.0.13\" }]\n".into()
    }
}

#[test]
fn ten_reloads_lose_nothing_on_unchanged_rules_and_new_rules_work() {
    let lab = Lab::new(3);
    let echo_outs: Vec<_> = (0..3)
        .map(|i| lab.dir.join(format!("echo{i}.out")))
        .collect();
    for (i, out) in echo_outs.iter().enumerate() {
        let b = lab.backend(i);
        lab.server(&b, &["echo", "7000", out.to_str().unwrap()]);
        lab.server(&b, &["many", &format!("b{}", i + 1), "80", "8080"]);
        assert!(lab.wait_until(
            &b,
            "ss -ltn | grep -q ':7000 ' && ss -ltn | grep -q ':8080 '",
            10
        ));
    }
    let (base, prefix) = lab.config(STREAM_RULES);
    let config = |with: bool| format!("{base}\n{}", churn(with));
    let d = lab.start_sluiced_with(&config(false), &prefix);

    // 12 s of traffic through the rules no reload touches: a datagram
    // every 10 ms, and three connections sending a line every 20 ms.
    let secs = "12";
    let udp_out = lab.dir.join("udp-stream.out");
    lab.server(
        &lab.client(),
        &[
            "udp-stream",
            FRONTEND,
            "7000",
            secs,
            "0.01",
            udp_out.to_str().unwrap(),
        ],
    );
    let tcp_outs: Vec<_> = (0..3)
        .map(|i| lab.dir.join(format!("tcp-stream{i}.out")))
        .collect();
    for out in &tcp_outs {
        lab.server(
            &lab.client(),
            &[
                "tcp-stream",
                FRONTEND,
                "7000",
                secs,
                "0.02",
                out.to_str().unwrap(),
            ],
        );
    }
    std::thread::sleep(Duration::from_millis(800));

    // Ten reloads, about one a second, by each of the three triggers in
    // turn; every other one adds b2 to churn-pool and the rule "extra".
    let triggers = [Trigger::Sighup, Trigger::Sluicectl, Trigger::FileChange];
    for i in 0..10 {
        let with = i % 2 == 0;
        let how = triggers[i % 3];
        let t = Instant::now();
        assert!(
            d.reload_by(&config(with), how, Some(&lab.socket())),
            "reload {i} ({how:?}) rejected:\n{}",
            d.log()
        );
        if with {
            let out = lab.sh(
                &lab.client(),
                &format!("curl -s --max-time 3 http://{FRONTEND}:8080/"),
            );
            let body = String::from_utf8_lossy(&out.stdout);
            assert!(
                body.starts_with("b2 ") || body.starts_with("b3 "),
                "the rule added by reload {i} does not work: {body:?}\n{}",
                d.log()
            );
        }
        std::thread::sleep(Duration::from_millis(900).saturating_sub(t.elapsed()));
    }

    // The clients end on their own (12 s, then 1 s for the last echoes).
    let done = |p: &std::path::Path| !read(p).is_empty();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(done(&udp_out) && tcp_outs.iter().all(|p| done(p))) {
        assert!(
            Instant::now() < deadline,
            "the stream clients did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let backends: Vec<String> = echo_outs.iter().map(|p| read(p)).collect();
    let at_backends = |kind: &str| -> u64 {
        backends
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| field(t, kind))
            .sum()
    };

    let udp = read(&udp_out);
    let sent = field(&udp, "sent");
    assert!(sent > 1000, "{udp}");
    assert_eq!(
        field(&udp, "echoed"),
        sent,
        "datagrams lost end to end: {udp}"
    );
    assert_eq!(
        at_backends("udp"),
        sent,
        "datagrams lost on the way in: {backends:?}"
    );
    let mut lines = 0;
    for p in &tcp_outs {
        let t = read(p);
        assert_eq!(field_str(&t, "error"), "none", "{t}");
        assert!(field(&t, "sent") > 100, "{t}");
        assert_eq!(field(&t, "echoed"), field(&t, "sent"), "{t}");
        lines += field(&t, "sent");
    }
    assert_eq!(at_backends("tcp"), lines, "{backends:?}");

    let r = d.stop();
    assert_eq!(r.get("reload.ok"), 10, "{}", r.log);
    assert_eq!(r.get("reload.rejected"), 0, "{}", r.log);
    for how in ["SIGHUP", "sluicectl", "file change"] {
        let applied = r
            .log
            .lines()
            .filter(|l| l.contains("reload applied") && l.contains(&format!("trigger=\"{how}\"")))
            .count();
        assert!(applied >= 3, "{how}: {applied} reloads\n{}", r.log);
    }
}

/// An inbound NAT rule (added to the lab config with [`UDP_9000`] and
/// [`EGRESS_AND_SSH_POOL`]).
const OPS_RULES: &str = r#"
[[nat_rule]]
name = "ssh-b1"
frontend = "web"
protocol = "tcp"
frontend_port = 50001
member = "b1"
backend_port = 22
"#;

fn rows<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} array in {v}"))
}

#[test]
fn metrics_and_sluicectl_show_what_the_traffic_did() {
    let lab = Lab::new(2);
    // b1 serves HTTP (probe up) and UDP; b2 only UDP: its probe fails.
    lab.server(&lab.backend(0), &["many", "b1", "80", "9000"]);
    lab.server(&lab.backend(1), &["udp", "9000", "b2"]);
    lab.server(&lab.internet(), &["http", "8000", "inet"]);
    assert!(lab.wait_until(&lab.backend(0), "ss -ltn | grep -q ':80 '", 10));
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q ':8000 '", 10));
    let (config, prefix) = lab.config(&format!("{UDP_9000}{OPS_RULES}\n{EGRESS_AND_SSH_POOL}"));
    let config =
        with_outbound(&config).replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "");
    assert!(!config.contains("10.0.0.13"));
    let d = lab.start_sluiced_with(&config, &prefix);
    let member = |h: &Value, addr: &str| -> Value {
        rows(h, "members")
            .iter()
            .find(|m| m["member"] == addr)
            .cloned()
            .unwrap_or_else(|| panic!("{addr} not in {h}"))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = lab.ctl_json(&["health"]);
        if member(&h, "10.0.0.12")["state"] == "down" && member(&h, "10.0.0.11")["state"] == "up" {
            break;
        }
        assert!(Instant::now() < deadline, "probes did not settle: {h}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Traffic with known counts: 40 datagrams of 200 bytes, 5 HTTP
    // connections (to b1, the one member up), 3 outbound from b1.
    let out = lab.run_script(&lab.client(), &["udp-burst", FRONTEND, "9000", "40", "200"]);
    let burst = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(field(&burst, "sent"), 40, "{burst}");
    let replies = field(&burst, "replies");
    assert_eq!(replies, 40, "{burst}");
    let curl = |ns: &str, url: &str| {
        let o = lab.sh(ns, &format!("curl -s --max-time 3 {url}"));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    for _ in 0..5 {
        assert!(curl(&lab.client(), &format!("http://{FRONTEND}/")).starts_with("b1 "));
    }
    for _ in 0..3 {
        assert!(curl(&lab.backend(0), &format!("http://{INTERNET}:8000/")).starts_with("inet "));
    }
    std::thread::sleep(Duration::from_millis(1500)); // metrics are copied once a second

    // /metrics, scraped with curl.
    let m = lab.metrics();
    let get = |name: &str, labels: &[(&str, &str)]| {
        metric(&m, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{m}"))
    };
    let dns_in = [("rule", "dns"), ("direction", "in")];
    let dns_out = [("rule", "dns"), ("direction", "out")];
    assert_eq!(get("sluice_frontend_packets_total", &dns_in), 40.0);
    assert_eq!(
        get("sluice_frontend_bytes_total", &dns_in),
        40.0 * (200.0 + 28.0)
    );
    assert_eq!(
        get("sluice_frontend_packets_total", &dns_out),
        replies as f64
    );
    let reply_bytes = field(&burst, "reply_bytes") as f64;
    assert_eq!(
        get("sluice_frontend_bytes_total", &dns_out),
        reply_bytes + 28.0 * replies as f64
    );
    // Control's counters reach the metrics too: the lab's neighbours were
    // resolved, and what control lost is a drop like a worker's.
    assert!(
        get(
            "sluice_control_events_total",
            &[("event", "neigh.resolved")]
        ) >= 1.0
    );
    let lost = [("worker", "control"), ("reason", "neigh_failed")];
    assert_eq!(get("sluice_drops_total", &lost), 0.0);
    let by_port = [("address", FRONTEND), ("port", "9000"), ("direction", "in")];
    assert_eq!(get("sluice_frontend_packets_total", &by_port), 40.0);
    let http_in = [("rule", "http"), ("direction", "in")];
    let http_out = [("rule", "http"), ("direction", "out")];
    assert_eq!(
        get("sluice_frontend_syns_total", &http_in),
        5.0,
        "one SYN per connection"
    );
    assert_eq!(
        get("sluice_frontend_syns_total", &http_out),
        5.0,
        "one SYN-ACK per connection"
    );
    assert!(get("sluice_frontend_packets_total", &http_in) >= 5.0 * 4.0);
    let snat_ok = [
        ("rule", "egress"),
        ("member", "10.0.0.11"),
        ("state", "successful"),
    ];
    assert_eq!(get("sluice_snat_connections_total", &snat_ok), 3.0);
    assert_eq!(
        get("sluice_snat_ports_allocated", &[("member", "10.0.0.11")]),
        1024.0
    );
    assert_eq!(get("sluice_probe_up", &[("member", "10.0.0.11")]), 1.0);
    assert_eq!(get("sluice_probe_up", &[("member", "10.0.0.12")]), 0.0);
    assert_eq!(
        get("sluice_pool_healthy_members", &[("pool", "web-pool")]),
        1.0
    );
    assert_eq!(get("sluice_pool_members", &[("pool", "web-pool")]), 2.0);
    assert_eq!(get("sluice_frontend_available", &[("rule", "http")]), 1.0);
    assert_eq!(get("sluice_flow_table_capacity", &[]), 65536.0);
    assert!(get("sluice_flow_table_flows", &[]) >= 1.0);
    // Every reason of every worker is a series, zeros included.
    let reasons = m
        .lines()
        .filter(|l| l.starts_with("sluice_drops_total{") && l.contains("worker=\"0\""))
        .count();
    assert_eq!(reasons, sluice_core::pipeline::DropReason::COUNT, "{m}");
    assert_eq!(get("sluice_reloads_total", &[("outcome", "applied")]), 0.0);
    assert!(
        m.contains("# TYPE sluice_frontend_packets_total counter"),
        "{m}"
    );

    // sluicectl, every command, as JSON and as tables.
    let s = lab.ctl_json(&["status"]);
    assert_eq!(rows(&s, "ports").len(), 2, "{s}");
    assert!(rows(&s, "rules").iter().any(|r| r["rule"] == "dns"), "{s}");
    assert_eq!(s["flow_capacity"], 65536);
    let table = String::from_utf8_lossy(&lab.ctl(&["status"]).stdout).to_string();
    assert!(
        table.contains("web-pool") && table.contains("ext"),
        "{table}"
    );

    let f = lab.ctl_json(&["flows", "--protocol", "udp", "--frontend", "web"]);
    assert!(f["matched"].as_u64().unwrap() >= 1, "{f}");
    assert!(
        rows(&f, "flows")
            .iter()
            .all(|fl| fl["rule"] == "dns" && fl["protocol"] == "udp"),
        "{f}"
    );
    let f = lab.ctl_json(&["flows", "--member", "b1", "--limit", "1"]);
    assert!(
        f["matched"].as_u64().unwrap() >= 2,
        "inbound and outbound flows of b1: {f}"
    );
    assert_eq!(f["shown"], 1);
    let f = lab.ctl_json(&["flows", "--protocol", "tcp", "--member", "10.0.0.11"]);
    assert!(
        rows(&f, "flows")
            .iter()
            .any(|fl| fl["direction"] == "outbound" && fl["rule"] == "egress"),
        "{f}"
    );
    let table = String::from_utf8_lossy(&lab.ctl(&["flows"]).stdout).to_string();
    assert!(
        table.contains("dns") && table.contains("matching flows shown"),
        "{table}"
    );
    let bad = lab.ctl(&["flows", "--protocol", "sctp"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sctp"));

    let sn = lab.ctl_json(&["snat"]);
    let b1 = rows(&sn, "members")
        .iter()
        .find(|m| m["member"] == "10.0.0.11")
        .cloned()
        .unwrap();
    assert_eq!(b1["successful"], 3, "{sn}");
    assert_eq!(b1["ports_allocated"], 1024, "{sn}");
    assert_eq!(b1["name"], "b1");
    assert!(String::from_utf8_lossy(&lab.ctl(&["snat"]).stdout).contains("10.0.0.11"));

    let h = lab.ctl_json(&["health"]);
    assert_eq!(member(&h, "10.0.0.12")["last"], "refused", "{h}");
    assert_eq!(member(&h, "10.0.0.11")["admin"], "up");
    assert!(String::from_utf8_lossy(&lab.ctl(&["health"]).stdout).contains("http-health"));

    let nm = lab.ctl_json(&["nat-map"]);
    let maps = rows(&nm, "mappings");
    assert!(
        maps.iter().any(|x| x["rule"] == "ssh-b1"
            && x["frontend"] == "203.0.113.10:50001"
            && x["member"] == "10.0.0.11:22"),
        "{nm}"
    );
    assert_eq!(
        maps.iter().filter(|x| x["rule"] == "ssh-pool").count(),
        2,
        "{nm}"
    );
    assert!(String::from_utf8_lossy(&lab.ctl(&["nat-map"]).stdout).contains("ssh-pool"));

    let c = lab.ctl_json(&["counters"]);
    assert_eq!(c["traffic.dns.203.0.113.10:9000.in.packets"], 40, "{c}");
    assert_eq!(c["snat.egress.10.0.0.11.ok"], 3);
    let drops = lab.ctl_json(&["counters", "drop."]);
    assert!(
        drops
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k.starts_with("drop.")),
        "{drops}"
    );
    assert!(String::from_utf8_lossy(&lab.ctl(&["counters"]).stdout).contains("flows.capacity"));

    // drain b1: with b2 down, no member takes new HTTP connections.
    let dr = lab.ctl_json(&["drain", "b1"]);
    assert_eq!(dr["drained"], true, "{dr}");
    assert_eq!(
        member(&lab.ctl_json(&["health"]), "10.0.0.11")["admin"],
        "drained"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        curl(&lab.client(), &format!("http://{FRONTEND}/")),
        "",
        "a drained member took a new connection"
    );
    let un = lab.ctl(&["undrain", "10.0.0.11"]);
    assert!(un.status.success());
    assert!(String::from_utf8_lossy(&un.stdout).contains("not drained"));
    std::thread::sleep(Duration::from_millis(100));
    assert!(curl(&lab.client(), &format!("http://{FRONTEND}/")).starts_with("b1 "));
    let unknown = lab.ctl(&["drain", "nobody"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));

    // A bad config: sluicectl reload lists the errors, the daemon keeps
    // forwarding on the running one.
    let broken = format!(
        "{config}\n[[lb_rule]]\nname = \"bad\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
         frontend_port = 81\nbackend_port = 81\npool = \"no-such-pool\"\nidle_timeout = \"1s\"\n"
    );
    std::fs::write(d.config_path(), &broken).unwrap();
    let rl = lab.ctl(&["reload"]);
    let err = String::from_utf8_lossy(&rl.stderr).to_string();
    assert_eq!(rl.status.code(), Some(1), "{err}");
    assert!(
        err.contains("lb_rule \"bad\"") && err.contains("pool") && err.contains("idle_timeout"),
        "{err}"
    );
    assert!(curl(&lab.client(), &format!("http://{FRONTEND}/")).starts_with("b1 "));
    let out = lab.run_script(&lab.client(), &["udp-burst", FRONTEND, "9000", "5", "50"]);
    assert_eq!(field(&String::from_utf8_lossy(&out.stdout), "replies"), 5);
    std::fs::write(d.config_path(), &config).unwrap();
    let ok = lab.ctl(&["--json", "reload"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["applied"], true);

    // No daemon: a clear message and exit status 2.
    let none = sluice_tests::sluicectl(&lab.dir.join("nothing.sock"), &["status"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("cannot reach sluiced"));

    // A reader that goes away (`sluicectl --json counters | true`): no
    // panic, success. The pipe's read end is closed before sluicectl has
    // its answer, so its write meets a pipe without a reader.
    let mut c = std::process::Command::new(sluice_tests::sluicectl_path())
        .args([
            "--socket",
            lab.socket().to_str().unwrap(),
            "--json",
            "counters",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sluicectl");
    drop(c.stdout.take());
    let out = c.wait_with_output().expect("sluicectl ran");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let r = d.stop();
    assert!(r.get("reload.rejected") >= 1, "{}", r.log);
    assert!(r.get("reload.ok") >= 1, "{}", r.log);
    assert!(
        !lab.socket().exists(),
        "sluiced left its control socket behind"
    );
}
