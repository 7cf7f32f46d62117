//! Restart adoption (issue #16): with `[flow_table] file`, a sluiced that
//! is killed (or stopped) and started again adopts the flow table it left,
//! so live TCP connections through an lb_rule, an inbound NAT rule and
//! outbound SNAT go on exchanging data and a UDP stream loses only what was
//! sent while no process ran. Real programs in the namespace lab
//! (tests/src/lab.rs); each test tears its lab down.

use sluice_tests::lab::{with_outbound, Lab, EGRESS_AND_SSH_POOL, FRONTEND, INTERNET};
use std::path::Path;
use std::time::{Duration, Instant};

/// TCP and UDP echo on 7000 over b1 and b2 (TCP with `tcp_reset`), and
/// the security rule for them and ssh-pool's ports.
const RULES: &str = r#"
[[pool]]
name = "stream-pool"
members = [{ address = "10.0.0.11", name = "s1" }, { address = "10.0.0.12", name = "s2" }]

[[lb_rule]]
name = "udp-stream"
frontend = "web"
protocol = "udp"
frontend_port = 7000
backend_port = 7000
pool = "stream-pool"
disable_outbound_snat = true

[[lb_rule]]
name = "tcp-stream"
frontend = "web"
protocol = "tcp"
frontend_port = 7000
backend_port = 7000
pool = "stream-pool"
tcp_reset = true
disable_outbound_snat = true

[[security_rule]]
name = "allow-streams"
priority = 120
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "any"
destination_ports = "7000"
"#;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn field(text: &str, key: &str) -> u64 {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
}

/// The lab config with the flow table in a file of the lab's.
fn config(lab: &Lab) -> (String, String) {
    let (text, prefix) = lab.config(&format!("{RULES}\n{EGRESS_AND_SSH_POOL}"));
    let file = lab.dir.join("flows");
    let text = with_outbound(&text).replace(
        "[flow_table]\n",
        &format!("[flow_table]\nfile = \"{}\"\n", file.display()),
    );
    assert!(
        text.contains("file = "),
        "conf/lab.toml has no [flow_table]"
    );
    (text, prefix)
}

/// Echo servers on b1, b2 (7000, and b1's port 22 for ssh-pool) and the
/// internet host (7000).
fn servers(lab: &Lab) {
    for (ns, port) in [
        (lab.backend(0), "7000"),
        (lab.backend(1), "7000"),
        (lab.backend(0), "22"),
        (lab.internet(), "7000"),
    ] {
        let out = lab.dir.join(format!("echo-{ns}-{port}.out"));
        lab.server(&ns, &["echo", port, out.to_str().unwrap()]);
        assert!(lab.wait_until(&ns, &format!("ss -ltn | grep -q ':{port} '"), 10));
    }
}

/// A generator of `tests/data/lab_server.py` in `ns` (`args`: kind,
/// host, port, seconds, interval), writing `name`.out.
fn stream(lab: &Lab, ns: &str, args: [&str; 5], name: &str) -> std::path::PathBuf {
    let out = lab.dir.join(format!("{name}.out"));
    let mut v = args.to_vec();
    v.push(out.to_str().unwrap());
    lab.server(ns, &v);
    out
}

fn wait_all(outs: &[&Path], secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while outs.iter().any(|p| read(p).is_empty()) {
        assert!(Instant::now() < end, "the generators did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three TCP connections (lb_rule, NAT pool rule, SNAT) and a UDP stream
/// through sluiced; `restart` stops it one way and starts it again; every
/// connection must go on, and the UDP stream may lose only the gap.
fn survives(
    restart: impl FnOnce(
        &Lab,
        sluice_tests::daemon::Daemon,
        &str,
        &str,
    ) -> (sluice_tests::daemon::Daemon, Duration),
) {
    let lab = Lab::new(2);
    servers(&lab);
    let (text, prefix) = config(&lab);
    let d = lab.start_sluiced_with(&text, &prefix);
    let (c, b1) = (lab.client(), lab.backend(0));
    let secs = "10";
    let lb = stream(
        &lab,
        &c,
        ["tcp-stream", FRONTEND, "7000", secs, "0.05"],
        "tcp-lb",
    );
    let nat = stream(
        &lab,
        &c,
        ["tcp-stream", FRONTEND, "50100", secs, "0.05"],
        "tcp-nat",
    );
    let snat = stream(
        &lab,
        &b1,
        ["tcp-stream", INTERNET, "7000", secs, "0.05"],
        "tcp-snat",
    );
    let udp = stream(
        &lab,
        &c,
        ["udp-stream", FRONTEND, "7000", secs, "0.01"],
        "udp-lb",
    );
    std::thread::sleep(Duration::from_secs(3));
    let (d, gap) = restart(&lab, d, &text, &prefix);
    wait_all(&[&lb, &nat, &snat, &udp], 40);
    let log = d.log();
    let r = d.stop();
    for (name, p) in [("lb_rule", &lb), ("NAT rule", &nat), ("SNAT", &snat)] {
        let t = read(p);
        assert!(
            t.contains("error=none"),
            "{name}: the connection broke: {t}\n{log}"
        );
        assert!(field(&t, "sent") > 50, "{name}: {t}");
        assert_eq!(field(&t, "echoed"), field(&t, "sent"), "{name}: {t}");
    }
    let u = read(&udp);
    let lost = field(&u, "sent") - field(&u, "echoed");
    eprintln!(
        "restart: sluiced was back {} ms after the old one went; the UDP stream \
         (a datagram every 10 ms) lost {lost}: a gap of about {} ms",
        gap.as_millis(),
        lost * 10
    );
    assert!(
        u128::from(lost) * 10 <= gap.as_millis() + 1000,
        "lost more than the gap and a second: {u}, gap {gap:?}"
    );
    assert!(r.get("flows.adopted") >= 4, "{}", r.log);
    assert_eq!(r.get("flows.remapped"), r.get("flows.adopted"), "{}", r.log);
    assert_eq!(r.get("flows.ended_by_restart"), 0, "{}", r.log);
    assert!(log.contains("flow table adopted"), "{log}");
}

#[test]
fn connections_survive_a_kill_9_and_a_start() {
    survives(|lab, d, text, prefix| {
        let t = Instant::now();
        let _ = d.kill9();
        let d = lab.start_sluiced_with(text, prefix);
        (d, t.elapsed())
    });
}

#[test]
fn connections_survive_a_stop_and_a_start() {
    survives(|lab, d, text, prefix| {
        let t = Instant::now();
        let _ = d.stop();
        let d = lab.start_sluiced_with(text, prefix);
        (d, t.elapsed())
    });
}

#[test]
fn a_restart_without_a_member_ends_exactly_its_flows() {
    let lab = Lab::new(2);
    servers(&lab);
    let (text, prefix) = config(&lab);
    let d = lab.start_sluiced_with(&text, &prefix);
    let c = lab.client();
    // Twelve connections spread over s1 and s2 by their random source
    // ports: all on one member one run in 2,048 (with six, one in 32 did,
    // and the assertion below failed).
    let outs: Vec<_> = (0..12)
        .map(|i| {
            stream(
                &lab,
                &c,
                ["tcp-stream", FRONTEND, "7000", "8", "0.05"],
                &format!("tcp-{i}"),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let flows = lab.ctl_json(&["flows"]);
    let on_s2: Vec<u64> = flows["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["member"].as_str() == Some("10.0.0.12:7000")
                && f["rule"].as_str() == Some("tcp-stream")
        })
        .filter_map(|f| f["client"].as_str()?.rsplit(':').next()?.parse().ok())
        .collect();
    assert!(
        !on_s2.is_empty() && on_s2.len() < outs.len(),
        "the hash spread them: {flows}"
    );
    let _ = d.kill9();
    let smaller = text.replace(
        "{ address = \"10.0.0.11\", name = \"s1\" }, { address = \"10.0.0.12\", name = \"s2\" }",
        "{ address = \"10.0.0.11\", name = \"s1\" }",
    );
    assert_ne!(smaller, text);
    let d = lab.start_sluiced_with(&smaller, &prefix);
    let paths: Vec<&Path> = outs.iter().map(|p| p.as_path()).collect();
    wait_all(&paths, 40);
    let r = d.stop();
    for p in &outs {
        let t = read(p);
        let port = field(&t, "port");
        if on_s2.contains(&port) {
            assert!(
                !t.contains("error=none"),
                "s2's connection {port} must end: {t}"
            );
        } else {
            assert!(
                t.contains("error=none"),
                "s1's connection {port} goes on: {t}\n{}",
                r.log
            );
            assert_eq!(field(&t, "echoed"), field(&t, "sent"), "{t}");
        }
    }
    assert_eq!(
        r.get("flows.ended_by_restart"),
        on_s2.len() as u64,
        "{}",
        r.log
    );
}
