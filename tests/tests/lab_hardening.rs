//! Hardening lab tests (issue #15): attacks and faults a trusted load
//! balancer survives, with real Linux endpoints in namespaces around
//! sluiced (tests/src/lab.rs). Each test builds its own lab and tears it
//! down, also when it fails.

use sluice_tests::lab::{backend_addr, Lab, CLIENT, EGRESS_AND_SSH_POOL, FRONTEND, INTERNET};
use std::time::Duration;

/// An lb_rule "echo" on the public frontend, port 7000, to b1 alone.
const ECHO_RULE: &str = r#"
[[pool]]
name = "echo-pool"
members = [{ address = "10.0.0.11", name = "e1" }]

[[lb_rule]]
name = "echo"
frontend = "web"
protocol = "tcp"
frontend_port = 7000
backend_port = 7000
pool = "echo-pool"
disable_outbound_snat = true

[[security_rule]]
name = "allow-echo"
priority = 101
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "tcp"
destination_ports = "7000"
"#;

/// `tests/data/blind_rst.py` in `ns`: a connection from `src` to
/// `dst:port`, 100 blind RSTs, `wait` seconds idle, an echo, then one
/// RST in the window. Returns its output; asserts the connection lived.
fn blind_rst(lab: &Lab, ns: &str, src: &str, dst: &str, port: u16, wait: f64) -> String {
    let script = sluice_tests::workspace().join("tests/data/blind_rst.py");
    let out = lab.exec(
        ns,
        &[
            "python3",
            script.to_str().unwrap(),
            "eth0",
            src,
            dst,
            &port.to_string(),
            "100",
            &wait.to_string(),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("echo1 True"), "{text}");
    assert!(
        out.status.success() && text.contains("echo2 True"),
        "the connection died after blind RSTs: {text}"
    );
    text
}

/// The flows `sluicectl flows ARGS` lists.
fn flows(lab: &Lab, args: &[&str]) -> Vec<serde_json::Value> {
    let mut v = vec!["flows"];
    v.extend_from_slice(args);
    lab.ctl_json(&v)["flows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits up to `secs` for `f` to hold.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn blind_resets_do_not_end_inbound_or_snat_connections() {
    let lab = Lab::new(1);
    let b1 = lab.backend(0);
    let snat = "tests/data/snat_lab.py";
    let script = sluice_tests::workspace().join(snat);
    let py = script.to_str().unwrap();
    lab.spawn(&b1, &["python3", py, "tcp-echo", "7000"]);
    lab.spawn(&lab.internet(), &["python3", py, "tcp-echo", "7001"]);
    let (text, prefix) = lab.config(&format!("{ECHO_RULE}\n{EGRESS_AND_SSH_POOL}"));
    let text = sluice_tests::lab::with_outbound(&text);
    // Timers / 5: a reset flow lives 1 s (3 s through SNAT), an
    // established one 48 s; the test idles 4 s after the blind RSTs.
    let d = lab.start_sluiced_args(&text, &prefix, &["--timer-scale", "5"]);
    assert!(lab.wait_until(&b1, "ss -ltn | grep -q :7000", 10));
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q :7001", 10));

    // Inbound: client -> frontend -> b1.
    blind_rst(&lab, &lab.client(), CLIENT, FRONTEND, 7000, 4.0);
    // The in-window RST ends the flow: reset, then gone on schedule.
    assert!(
        eventually(5, || flows(
            &lab,
            &["--frontend", "web", "--protocol", "tcp"]
        )
        .iter()
        .all(|f| f["rule"] != "echo")),
        "the in-window RST did not end the inbound flow: {:?}",
        flows(&lab, &[])
    );

    // SNAT: b1 -> the internet host, as the public address.
    blind_rst(&lab, &b1, &backend_addr(0), INTERNET, 7001, 4.0);
    assert!(
        eventually(8, || flows(
            &lab,
            &["--member", "10.0.0.11", "--protocol", "tcp"]
        )
        .iter()
        .all(|f| f["direction"] != "outbound")),
        "the in-window RST did not end the SNAT flow: {:?}",
        flows(&lab, &[])
    );

    let r = d.stop();
    assert!(
        r.get("tcp_rst_out_of_window") >= 200,
        "100 blind RSTs at each connection: {}",
        r.log
    );
    assert_eq!(r.get("drop.tcp_no_flow"), 0, "{}", r.log);
}
