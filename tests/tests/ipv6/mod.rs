//! What the IPv6 labs share: the IPv6 rules over conf/lab.toml's pool made
//! dual stack, iperf3 over IPv6, and the path-MTU check.
#![allow(dead_code)] // each lab uses its own part

use sluice_tests::lab::{backend_addr, backend_addr6, Lab};

/// `iperf3 -6 -c HOST -p 5201 -t SECS -J` in `ns`, its JSON report.
pub fn iperf6(lab: &Lab, ns: &str, host: &str, secs: u32) -> serde_json::Value {
    let secs = secs.to_string();
    let out = lab.exec(
        ns,
        &["iperf3", "-6", "-c", host, "-p", "5201", "-t", &secs, "-J"],
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The public IPv6 frontend these tests add.
pub const FRONTEND6: &str = "2001:db8:1::10";

/// IPv6 rules on a public IPv6 frontend over conf/lab.toml's pool: HTTP,
/// UDP 53, and iperf3's port (by source address, so its control and data
/// connections meet one server), each allowed by a security rule.
pub const RULES6: &str = r#"
[[frontend]]
name = "web6"
address = "2001:db8:1::10"
kind = "public"

[[lb_rule]]
name = "http6"
frontend = "web6"
protocol = "tcp"
frontend_port = 80
backend_port = 80
pool = "web-pool"
probe = "http-health"

[[lb_rule]]
name = "dns6"
frontend = "web6"
protocol = "udp"
frontend_port = 53
backend_port = 5353
pool = "web-pool"

[[lb_rule]]
name = "iperf6"
frontend = "web6"
protocol = "tcp"
frontend_port = 5201
backend_port = 5201
pool = "web-pool"
distribution = "source_ip"

[[security_rule]]
name = "allow-web6"
priority = 200
direction = "inbound"
action = "allow"
source = "*"
destination = "2001:db8:1::10/128"
protocol = "tcp"
destination_ports = "80"

[[security_rule]]
name = "allow-dns6"
priority = 210
direction = "inbound"
action = "allow"
source = "*"
destination = "2001:db8:1::10/128"
protocol = "udp"
destination_ports = "53"

[[security_rule]]
name = "allow-iperf6"
priority = 220
direction = "inbound"
action = "allow"
source = "2001:db8:1::/64"
destination = "2001:db8:1::10/128"
protocol = "tcp"
destination_ports = "5201"
"#;

/// Starts sluiced on conf/lab.toml with dual-stack members and [`RULES6`].
pub fn start(lab: &Lab) -> sluice_tests::daemon::Daemon {
    let (text, prefix) = config(lab, RULES6);
    lab.start_sluiced_with(&text, &prefix)
}

/// conf/lab.toml with dual-stack members and `extra`: (text, prefix).
pub fn config(lab: &Lab, extra: &str) -> (String, String) {
    let (mut text, prefix) = lab.config(extra);
    for i in 0..3 {
        let one = format!(
            "{{ address = \"{}\", name = \"b{}\" }}",
            backend_addr(i),
            i + 1
        );
        let both = format!(
            "{{ addresses = [\"{}\", \"{}\"], name = \"b{}\" }}",
            backend_addr(i),
            backend_addr6(i),
            i + 1
        );
        assert!(text.contains(&one), "conf/lab.toml's pool changed shape");
        text = text.replace(&one, &both);
    }
    (text, prefix)
}

/// Sends 2 s of bulk TCP from `ns` to `host` through `d` and checks that it
/// got through (no black hole), that `ns` learned a 1280-byte path MTU and
/// that sluiced translated the Packet Too Big that taught it. Stops `d`.
pub fn pmtu_learned(
    lab: &Lab,
    d: sluice_tests::daemon::Daemon,
    ns: &str,
    host: &str,
) -> sluice_tests::daemon::Report {
    let j = iperf6(lab, ns, host, 2);
    let route = lab.sh(ns, &format!("ip -6 route get {host}"));
    let route = String::from_utf8_lossy(&route.stdout).to_string();
    let rep = d.stop();
    assert!(j["error"].is_null(), "iperf3: {}\n{}", j["error"], rep.log);
    let received = j["end"]["sum_received"]["bytes"].as_f64().unwrap();
    assert!(
        received > 1e6,
        "only {received} bytes arrived: a black hole\n{}",
        rep.log
    );
    assert!(
        route.contains("mtu 1280"),
        "{ns} did not learn the path MTU: {route}"
    );
    assert!(rep.get("icmp_translated") >= 1, "{}", rep.log);
    rep
}

/// The internet host's IPv6 address (on the external segment).
pub const INTERNET6: &str = "2001:db8:1::200";
