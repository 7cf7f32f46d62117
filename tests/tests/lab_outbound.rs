//! Outbound SNAT lab tests: backends reach a server in the internet
//! namespace through sluiced (tests/src/lab.rs), with real Linux programs
//! (curl, Python sockets). Each test builds its own lab and tears it down,
//! also when it fails.

use sluice_tests::lab::{Lab, FRONTEND, INTERNET};
use std::time::Duration;

/// `tests/data/snat_lab.py` with `args`, as a background program in `ns`.
fn spawn(lab: &Lab, ns: &str, args: &[&str]) {
    let script = sluice_tests::workspace().join("tests/data/snat_lab.py");
    let mut v = vec!["python3", script.to_str().unwrap()];
    v.extend_from_slice(args);
    lab.spawn(ns, &v);
}

/// `tests/data/snat_lab.py` with `args` in `ns`, to completion.
fn run(lab: &Lab, ns: &str, args: &[&str]) -> std::process::Output {
    let script = sluice_tests::workspace().join("tests/data/snat_lab.py");
    let mut v = vec!["python3", script.to_str().unwrap()];
    v.extend_from_slice(args);
    lab.exec(ns, &v)
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The lab config with its HTTP rule moved to an internal frontend (the
/// seed's egress-only setup: nothing inbound through "web"), plus `extra`.
fn egress_config(lab: &Lab, extra: &str) -> (String, String) {
    let (text, prefix) = lab.config(extra);
    let text = text.replace(
        "[[lb_rule]]\nname = \"http\"\nfrontend = \"web\"",
        "[[frontend]]\nname = \"ilb\"\naddress = \"10.0.0.100\"\nkind = \"internal\"\n\n\
         [[lb_rule]]\nname = \"http\"\nfrontend = \"ilb\"",
    );
    assert!(text.contains("frontend = \"ilb\""), "conf/lab.toml changed");
    (text, prefix)
}

fn outbound_rule(protocol: &str, ports: &str) -> String {
    format!(
        "[[outbound_rule]]\nname = \"egress\"\nfrontends = [\"web\"]\npool = \"web-pool\"\n\
         protocol = \"{protocol}\"\nports_per_member = {ports}\nidle_timeout = \"120m\"\n"
    )
}

#[test]
fn egress_only_backends_get_out_once_an_outbound_rule_is_added_by_reload() {
    let lab = Lab::new(2);
    lab.server(&lab.internet(), &["http", "8000", "inet"]);
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q ':8000 '", 10));
    let (text, prefix) = egress_config(&lab, "");
    let d = lab.start_sluiced_with(&text, &prefix);
    let curl = || {
        let out = lab.sh(
            &lab.backend(0),
            &format!("curl -s --max-time 2 http://{INTERNET}:8000/"),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(curl(), "", "no outbound rule: no way out");

    let (with_rule, _) = egress_config(&lab, &outbound_rule("all", "\"auto\""));
    assert!(d.reload(&with_rule), "{}", d.log());
    assert_eq!(
        curl(),
        format!("inet {FRONTEND}"),
        "the internet server sees the public frontend"
    );
    // The other backend too, from its own ports.
    let out = lab.sh(
        &lab.backend(1),
        &format!("curl -s --max-time 2 http://{INTERNET}:8000/"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("inet {FRONTEND}")
    );
    let r = d.stop();
    assert!(r.get("drop.egress_denied") >= 1, "{}", r.log);
    assert!(r.get("snat_created") >= 2);
    assert!(r.get("snat.egress.10.0.0.11.ok") >= 1);
    assert!(r.get("snat.egress.10.0.0.12.ok") >= 1);
    assert_eq!(r.get("snat.egress.10.0.0.11.ports_allocated"), 1024);
}

#[test]
fn udp_is_port_restricted_cone() {
    let lab = Lab::new(1);
    let seen = lab.dir.join("internet.out");
    let got = lab.dir.join("backend.out");
    spawn(
        &lab,
        &lab.internet(),
        &["udp-two", "5001", "5002", "5003", seen.to_str().unwrap()],
    );
    assert!(lab.wait_until(&lab.internet(), "ss -lun | grep -q ':5002 '", 10));
    let (text, prefix) = egress_config(&lab, &outbound_rule("udp", "64"));
    let d = lab.start_sluiced_with(&text, &prefix);
    spawn(
        &lab,
        &lab.backend(0),
        &[
            "udp-client",
            "40000",
            INTERNET,
            "5001",
            "5002",
            got.to_str().unwrap(),
        ],
    );
    assert!(
        lab.wait_until(
            &lab.lb(),
            &format!("[ $(wc -l < {}) -ge 2 ]", seen.display()),
            10
        ),
        "the internet server did not get both datagrams: {}",
        read(&seen)
    );
    let lines: Vec<Vec<String>> = read(&seen)
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(lines[0][1], FRONTEND, "{lines:?}");
    assert_eq!(lines[1][1], FRONTEND);
    assert_eq!(
        lines[0][2], lines[1][2],
        "one socket to two ports of one address leaves from one public port"
    );
    let public_port = lines[0][2].clone();
    // Another address sends to that public port: dropped.
    let out = run(
        &lab,
        &lab.client(),
        &["udp-send", FRONTEND, &public_port, "stranger"],
    );
    assert!(out.status.success());
    assert!(
        lab.wait_until(&lab.lb(), &format!("grep -q third {}", got.display()), 10),
        "the reply from a third port did not get in: {}",
        read(&got)
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = read(&got);
    assert!(got.contains(&format!("{INTERNET} 5003 third")), "{got}");
    assert!(!got.contains("stranger"), "{got}");
    let r = d.stop();
    assert!(r.get("drop.snat_no_mapping") >= 1, "{}", r.log);
    assert_eq!(r.get("snat.egress.10.0.0.11.ports_used_udp"), 1);
    assert_eq!(r.get(&format!("snat.address.{FRONTEND}.ports_used_udp")), 1);
    assert_eq!(
        r.get(&format!("snat.address.{FRONTEND}.ports_allocated")),
        64 * 3
    );
}

#[test]
fn tcp_reuses_ports_per_destination_and_fails_only_new_flows_when_exhausted() {
    let lab = Lab::new(1);
    spawn(&lab, &lab.internet(), &["tcp-echo", "9000"]);
    spawn(&lab, &lab.internet(), &["tcp-echo", "9001"]);
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q ':9001 '", 10));
    let (text, prefix) = egress_config(&lab, &outbound_rule("tcp", "8"));
    let d = lab.start_sluiced_args(&text, &prefix, &["--timer-scale", "100"]);
    let out = lab.dir.join("exhaust.out");
    let o = run(
        &lab,
        &lab.backend(0),
        &["exhaust", INTERNET, "9000", "9001", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let res = read(&out);
    for step in [
        "eight_open",
        "ninth_failed",
        "eight_echo",
        "other_port_shares",
        "after_rst",
        "seven_echo",
    ] {
        assert!(res.contains(&format!("{step} 1")), "{step}:\n{res}");
    }
    let r = d.stop();
    assert!(r.get("snat.egress.10.0.0.11.failed") >= 1, "{}", r.log);
    assert!(r.get("drop.snat_exhausted") >= 1);
    assert_eq!(r.get("snat.egress.10.0.0.11.ports_allocated"), 8);
}

#[test]
fn members_never_use_each_others_ports() {
    let lab = Lab::new(2);
    let log = lab.dir.join("ports.out");
    spawn(
        &lab,
        &lab.internet(),
        &["tcp-log", "9100", log.to_str().unwrap()],
    );
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q ':9100 '", 10));
    let (text, prefix) = egress_config(&lab, &outbound_rule("tcp", "1000"));
    let d = lab.start_sluiced_with(&text, &prefix);
    for (i, name) in ["b1", "b2"].iter().enumerate() {
        let o = run(
            &lab,
            &lab.backend(i),
            &["tcp-names", INTERNET, "9100", name, "40"],
        );
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(lab.wait_until(
        &lab.lb(),
        &format!("[ $(wc -l < {}) -ge 80 ]", log.display()),
        10
    ));
    // The blocks sluiced assigned, from its state file.
    let map = read(&lab.dir.join("state/snat-egress.map"));
    let block = |member: &str| -> (u16, u16) {
        let l = map
            .lines()
            .find(|l| l.starts_with(&format!("{member} ")))
            .unwrap_or_else(|| panic!("{member} not in\n{map}"));
        let w: Vec<&str> = l.split_whitespace().collect();
        let start: u16 = w[2].parse().unwrap();
        (start, start + w[3].parse::<u16>().unwrap())
    };
    let (b1, b2) = (block("10.0.0.11"), block("10.0.0.12"));
    assert!(
        b1.1 <= b2.0 || b2.1 <= b1.0,
        "blocks overlap: {b1:?} {b2:?}"
    );
    let mut seen = std::collections::HashSet::new();
    for l in read(&log).lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let port: u16 = w[1].parse().unwrap();
        let (lo, hi) = if w[0] == "b1" { b1 } else { b2 };
        assert!(
            (lo..hi).contains(&port),
            "{} used {port}, outside {lo}..{hi}",
            w[0]
        );
        assert!(
            seen.insert(port),
            "port {port} used twice towards one destination"
        );
    }
    drop(d);
}
