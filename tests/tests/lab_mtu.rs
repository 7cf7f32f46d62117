//! Sluice as a router hop (issue #15), with real Linux endpoints in the
//! namespace lab: Time Exceeded for traceroute, "fragmentation needed"
//! that a sender's kernel acts on, and IPv4 without DF fragmented to fit
//! the egress MTU. Each test builds its own lab and tears it down.

use sluice_tests::lab::{Lab, CLIENT, EGRESS_AND_SSH_POOL, FRONTEND, INTERNET};

/// An lb_rule `name` on the public frontend, `protocol` on `port`, to b1
/// alone, and the security rule that lets clients reach it.
fn rule(name: &str, protocol: &str, port: u16) -> String {
    format!(
        r#"
[[pool]]
name = "{name}-pool"
members = [{{ address = "10.0.0.11", name = "e1" }}]

[[lb_rule]]
name = "{name}"
frontend = "web"
protocol = "{protocol}"
frontend_port = {port}
backend_port = {port}
pool = "{name}-pool"
disable_outbound_snat = true

[[security_rule]]
name = "allow-{name}"
priority = 101
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "{protocol}"
destination_ports = "{port}"
"#
    )
}

#[test]
fn tracepath_shows_sluices_hop() {
    let lab = Lab::new(1);
    let b1 = lab.backend(0);
    // b1 leaves through an outbound rule (UDP included) to the internet
    // host: hop 1 is Sluice, whose internal address sends the Time
    // Exceeded; hop 2 is the host itself.
    let (text, prefix) = lab.config(EGRESS_AND_SSH_POOL);
    let text = sluice_tests::lab::with_outbound(&text);
    let d = lab.start_sluiced_with(&text, &prefix);
    let out = lab.exec(&b1, &["tracepath", "-n", "-m", "4", INTERNET]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let hop1 = text.lines().find(|l| l.trim_start().starts_with("1:"));
    assert!(
        hop1.is_some_and(|l| l.contains("10.0.0.1 ")),
        "hop 1 is Sluice's internal address:\n{text}"
    );
    assert!(
        text.contains("reached"),
        "the host answers hop 2 (through SNAT):\n{text}"
    );
    let r = d.stop();
    assert!(r.get("time_exceeded_sent") >= 1, "{}", r.log);
}

#[test]
fn a_packet_too_big_for_the_egress_makes_the_sender_learn_the_path_mtu() {
    let lab = Lab::new(1);
    let b1 = lab.backend(0);
    lab.spawn(&b1, &["iperf3", "-s", "-p", "5201"]);
    assert!(lab.wait_until(&b1, "ss -ltn | grep -q ':5201 '", 10));
    let (text, prefix) = lab.config(&rule("bulk", "tcp", 5201));
    // The client side's port carries at most 1280 bytes; b1's link 1500.
    let text = text.replace("role = \"external\"\n", "role = \"external\"\nmtu = 1280\n");
    assert!(text.contains("mtu = 1280"), "conf/lab.toml changed shape");
    let d = lab.start_sluiced_with(&text, &prefix);
    // b1 sends (-R): its full-size segments are too big for the client's
    // side, with DF set; the "fragmentation needed" makes it resend
    // smaller.
    let out = lab.exec(
        &lab.client(),
        &[
            "iperf3", "-c", FRONTEND, "-p", "5201", "-R", "-t", "2", "-J",
        ],
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    let route = lab.sh(&b1, &format!("ip route get {CLIENT}"));
    let route = String::from_utf8_lossy(&route.stdout).to_string();
    let r = d.stop();
    assert!(j["error"].is_null(), "iperf3: {}\n{}", j["error"], r.log);
    let received = j["end"]["sum_received"]["bytes"].as_f64().unwrap_or(0.0);
    assert!(received > 1e6, "only {received} bytes arrived\n{}", r.log);
    assert!(
        route.contains("mtu 1280"),
        "b1 did not learn the path MTU: {route}"
    );
    assert!(r.get("too_big_sent") >= 1, "{}", r.log);
}

/// `key=value` from a line of `lab_server.py` output.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
}

#[test]
fn a_datagram_without_df_is_fragmented_one_with_df_gets_fragmentation_needed() {
    let lab = Lab::new(1);
    let b1 = lab.backend(0);
    lab.server(&b1, &["udp", "9000", "e1"]);
    assert!(lab.wait_until(&b1, "ss -lun | grep -q ':9000 '", 10));
    let (text, prefix) = lab.config(&rule("dgram", "udp", 9000));
    // The members' side carries at most 1280 bytes (Sluice's config; the
    // veth itself would take 1500).
    let text = text.replace("role = \"internal\"\n", "role = \"internal\"\nmtu = 1280\n");
    assert!(text.contains("mtu = 1280"), "conf/lab.toml changed shape");
    let d = lab.start_sluiced_with(&text, &prefix);
    let burst = |df: &str| {
        let out = lab.run_script(
            &lab.client(),
            &["udp-burst", FRONTEND, "9000", "3", "1472", df],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // DF clear: each 1500-byte datagram leaves Sluice in two fragments,
    // which b1's kernel reassembles: it answers with the whole length.
    let dont = burst("dont");
    assert_eq!(field(&dont, "replies"), "3", "{dont}\n{}", d.log());
    assert!(field(&dont, "last").ends_with("_1472"), "{dont}");
    // DF set: the first gets "fragmentation needed" (MTU 1280) from
    // Sluice; the client's kernel learns the path MTU and refuses to send
    // the next two.
    let df = burst("do");
    let route = lab.sh(&lab.client(), &format!("ip route get {FRONTEND}"));
    let route = String::from_utf8_lossy(&route.stdout).to_string();
    let r = d.stop();
    assert_eq!(field(&df, "replies"), "0", "{df}");
    assert_eq!(field(&df, "refused"), "2", "{df}\n{route}");
    assert!(route.contains("mtu 1280"), "the client learned: {route}");
    assert_eq!(r.get("fragmented"), 3, "{}", r.log);
    assert_eq!(r.get("fragments_made"), 6, "{}", r.log);
    assert_eq!(r.get("too_big_sent"), 1, "{}", r.log);
}
