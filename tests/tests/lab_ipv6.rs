//! IPv6 lab tests: real Linux clients and servers (curl -6, socat, iperf3,
//! nmap) in namespaces, sluiced between them on net_af_packet. The pool's
//! members are dual stack: one member, an IPv4 and an IPv6 address.

use sluice_tests::lab::{backend_addr, backend_addr6, Lab, CLIENT6, FRONTEND};
use std::collections::HashMap;

/// `iperf3 -6 -c HOST -p 5201 -t SECS -J` in `ns`, its JSON report.
fn iperf6(lab: &Lab, ns: &str, host: &str, secs: u32) -> serde_json::Value {
    let secs = secs.to_string();
    let out = lab.exec(
        ns,
        &["iperf3", "-6", "-c", host, "-p", "5201", "-t", &secs, "-J"],
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The public IPv6 frontend these tests add.
const FRONTEND6: &str = "2001:db8:1::10";

/// IPv6 rules on a public IPv6 frontend over conf/lab.toml's pool: HTTP,
/// UDP 53, and iperf3's port (by source address, so its control and data
/// connections meet one server), each allowed by a security rule.
const RULES6: &str = r#"
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
fn start(lab: &Lab) -> sluice_tests::daemon::Daemon {
    let (text, prefix) = config(lab, RULES6);
    lab.start_sluiced_with(&text, &prefix)
}

/// conf/lab.toml with dual-stack members and `extra`: (text, prefix).
fn config(lab: &Lab, extra: &str) -> (String, String) {
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

/// Adds `n` IPv6 client addresses (2001:db8:1::101..) and returns them.
fn client_addresses6(lab: &Lab, n: usize) -> Vec<String> {
    let addrs: Vec<String> = (0..n)
        .map(|i| format!("2001:db8:1::{:x}", 0x101 + i))
        .collect();
    let script: String = addrs
        .iter()
        .map(|a| format!("ip -6 addr add {a}/64 dev eth0 nodad && "))
        .collect::<String>()
        + "true";
    assert!(lab.sh(&lab.client(), &script).status.success());
    addrs
}

#[test]
fn ipv6_clients_spread_over_dual_stack_members_which_drain_as_one() {
    let lab = Lab::new(3);
    lab.http_backends(3, 80);
    let addrs = client_addresses6(&lab, 30);
    let d = start(&lab);
    let url6 = format!("http://[{FRONTEND6}]/");
    let answers = lab.curls(&addrs, 10, &url6);
    assert_eq!(answers.len(), 300);
    let mut per: HashMap<String, usize> = HashMap::new();
    for (from, backend, seen) in &answers {
        assert_ne!(
            backend,
            "FAIL",
            "a connection from {from} failed\n{}",
            d.log()
        );
        assert_eq!(seen, from, "{backend} saw {seen}, not the client {from}");
        *per.entry(backend.clone()).or_default() += 1;
    }
    for b in ["b1", "b2", "b3"] {
        let n = per.get(b).copied().unwrap_or(0);
        assert!((60..=141).contains(&n), "{b} got {n} of 300: {per:?}");
    }
    // sluicectl lists the IPv6 flows like the IPv4 ones.
    let flows = lab.ctl_json(&["flows", "--frontend", "web6", "--limit", "1000"]);
    let rows = flows["flows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{flows}");
    assert!(
        rows.iter().all(
            |r| r["client"].as_str().unwrap().starts_with("[2001:db8:1::")
                && r["frontend"] == format!("[{FRONTEND6}]:80")
                && r["rule"] == "http6"
        ),
        "{flows}"
    );

    // The metrics carry the IPv6 rule's traffic and the IPv6 table.
    let m = lab.metrics();
    let series = |name: &str, label: &str| {
        m.lines()
            .filter(|l| l.starts_with(name) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert!(
        series("sluice_frontend_syns_total", "rule=\"http6\"") >= 300.0,
        "{m}"
    );
    assert!(series("sluice_flow_table_ipv6_flows", "") >= 1.0, "{m}");
    assert!(
        m.contains("2001:db8:1::10"),
        "the frontend address as a label"
    );

    // The same pool serves IPv4 from the same members.
    let v4 = lab.curls(
        &["203.0.113.100".into()],
        12,
        &format!("http://{FRONTEND}/"),
    );
    assert!(v4.iter().all(|(_, b, _)| b != "FAIL"), "{v4:?}");

    // Drained: b1 takes no new flow of either family. From client
    // addresses not used yet: a reused source port would be the tuple of a
    // flow still in its closing state, which keeps its member.
    let dr = lab.ctl_json(&["drain", "b1"]);
    assert_eq!(dr["drained"], true, "{dr}");
    let fresh6: Vec<String> = (0..10).map(|i| format!("2001:db8:1::3{i:02}")).collect();
    let fresh4: Vec<String> = (0..5).map(|i| format!("203.0.113.{}", 150 + i)).collect();
    let script: String = fresh6
        .iter()
        .map(|a| format!("ip -6 addr add {a}/64 dev eth0 nodad && "))
        .chain(
            fresh4
                .iter()
                .map(|a| format!("ip addr add {a}/24 dev eth0 && ")),
        )
        .collect::<String>()
        + "true";
    assert!(lab.sh(&lab.client(), &script).status.success());
    let after6 = lab.curls(&fresh6, 3, &url6);
    let after4 = lab.curls(&fresh4, 4, &format!("http://{FRONTEND}/"));
    assert_eq!((after6.len(), after4.len()), (30, 20));
    for (from, backend, _) in after6.iter().chain(&after4) {
        assert!(
            backend == "b2" || backend == "b3",
            "{from} reached {backend} after drain"
        );
    }
    let r = d.stop();
    assert_eq!(r.get("drop.tcp_no_flow"), 0, "{}", r.log);
}

#[test]
fn udp_and_bulk_tcp_over_ipv6_cross_an_lb_rule_intact() {
    let lab = Lab::new(3);
    for i in 0..3 {
        lab.server(&lab.backend(i), &["udp", "5353", &format!("b{}", i + 1)]);
        lab.spawn(
            &lab.backend(i),
            &["iperf3", "-s", "-p", "5201", "--logfile", "/dev/null"],
        );
    }
    for i in 0..3 {
        assert!(lab.wait_until(&lab.backend(i), "ss -lun | grep -q '\\[::\\]:5353 '", 10));
        assert!(lab.wait_until(&lab.backend(i), "ss -ltn | grep -q ':5201 '", 10));
    }
    let d = start(&lab);
    // UDP: socat from the client, answered by a backend that saw the client.
    let out = lab.sh(
        &lab.client(),
        &format!("echo query | socat -t 2 - 'UDP6:[{FRONTEND6}]:53'"),
    );
    let reply = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = reply.split_whitespace().collect();
    assert_eq!(v.len(), 3, "reply {reply:?}\n{}", d.log());
    assert!(v[0].starts_with('b'), "{reply}");
    assert_eq!(v[1], CLIENT6, "the backend saw the client's address");
    assert_eq!(v[2], "6");

    // Bulk TCP: iperf3 -6 for 3 s; every byte arrives, retransmits < 1%.
    let j = iperf6(&lab, &lab.client(), FRONTEND6, 3);
    assert!(j["error"].is_null(), "iperf3: {}\n{}", j["error"], d.log());
    let sent = j["end"]["sum_sent"]["bytes"].as_f64().unwrap();
    let received = j["end"]["sum_received"]["bytes"].as_f64().unwrap();
    let retransmits = j["end"]["sum_sent"]["retransmits"].as_f64().unwrap();
    let segments = sent / 1428.0;
    assert!(sent > 1e6, "only {sent} bytes in 3 s");
    // What the sender wrote but the receiver had not read when iperf3
    // stopped is still in flight (up to a window of several MB on a fast
    // run), not lost: TCP's own retransmits below are the loss measure.
    assert!(
        received >= sent * 0.99 || sent - received < 8e6,
        "sent {sent}, received {received}"
    );
    assert!(
        retransmits < segments * 0.01,
        "{retransmits} retransmits of about {segments} segments"
    );
    // No checksum error at the backend that served it.
    for i in 0..3 {
        let out = lab.sh(
            &lab.backend(i),
            "nstat -az TcpInCsumErrors Udp6InCsumErrors",
        );
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let n: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            assert_eq!(n, 0, "backend {i}: {line}");
        }
    }
    let r = d.stop();
    assert_eq!(r.get("drop.ipv6_malformed"), 0, "{}", r.log);
}

#[test]
fn an_nmap_scan_of_the_ipv6_frontend_finds_only_the_allowed_ports() {
    let lab = Lab::new(3);
    lab.http_backends(3, 80);
    for i in 0..3 {
        // Listening, but no rule and no security rule lets anyone reach it.
        lab.spawn(
            &lab.backend(i),
            &["socat", "TCP6-LISTEN:22,fork,reuseaddr", "EXEC:true"],
        );
    }
    let d = start(&lab);
    let out = lab.exec(
        &lab.client(),
        &[
            "nmap",
            "-6",
            "-Pn",
            "-n",
            "-sS",
            "-T4",
            "--max-retries",
            "1",
            "-p",
            "20-25,53,79-81,443,5200",
            FRONTEND6,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let open: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("/tcp") && l.split_whitespace().nth(1) == Some("open"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(open, ["80/tcp"], "{text}\n{}", d.log());
    let r = d.stop();
    assert!(r.get("drop.no_service") > 0, "{}", r.log);
}

#[test]
fn a_fragmented_udp_datagram_crosses_ipv6_ha_ports_whole() {
    let lab = Lab::new(3);
    for i in 0..3 {
        lab.server(&lab.backend(i), &["many", &format!("b{}", i + 1), "7000"]);
    }
    for i in 0..3 {
        assert!(lab.wait_until(&lab.backend(i), "ss -lun | grep -q '\\[::\\]:7000 '", 10));
    }
    assert!(lab
        .sh(
            &lab.client(),
            "ip -6 route add 2001:db8:2::100/128 via 2001:db8:1::1"
        )
        .status
        .success());
    let ha6 = "[[frontend]]\nname = \"ilb6\"\naddress = \"2001:db8:2::100\"\nkind = \"internal\"\n\
               [[lb_rule]]\nname = \"ha6\"\nfrontend = \"ilb6\"\nprotocol = \"all\"\n\
               frontend_port = 0\nbackend_port = 0\npool = \"web-pool\"\n";
    let (text, prefix) = config(&lab, ha6);
    // net_tap on the external side: net_af_packet's socket reassembles
    // fragments behind the PMD's back (see lab_inbound's IPv4 test).
    let text = Lab::ext_on_tap(&text);
    let d = lab.start_sluiced_with(&text, &prefix);
    lab.bridge_tap();
    // 4,000 bytes over a 1,500-byte link: the client's kernel sends three
    // fragments (a fragment header each).
    let out = lab.sh(
        &lab.client(),
        "python3 -c \"import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); \
         s.settimeout(3); s.sendto(b'x' * 4000, ('2001:db8:2::100', 7000)); print(s.recv(100).decode())\"",
    );
    let said = String::from_utf8_lossy(&out.stdout);
    let r = d.stop();
    assert!(
        said.trim_end().ends_with(&format!("{CLIENT6} 4000")),
        "the datagram did not arrive whole: {said:?} {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        r.log
    );
    assert!(r.get("fragments_forwarded") >= 2, "{}", r.log);
}

#[test]
fn a_smaller_link_behind_sluice_is_learned_from_a_translated_packet_too_big() {
    // b-far sits behind a router whose link to it has an MTU of 1280. The
    // router answers neighbour discovery for b-far on the internal network
    // (proxy NDP), so for Sluice b-far is one more on-link member.
    let mut lab = Lab::new(0);
    let r = lab.extra_ns("r");
    let far = lab.extra_ns("far");
    lab.wire_internal(&r, "eth0");
    lab.veth(&r, "eth1", &far, "eth0");
    for (ns, cmds) in [
        (
            &r,
            vec![
                "addr add 2001:db8:2::50/64 dev eth0 nodad",
                "link set eth0 up",
                "addr add 2001:db8:2:1::1/64 dev eth1 nodad",
                "link set eth1 mtu 1280",
                "-6 route add default via 2001:db8:2::1",
                "-6 neigh add proxy 2001:db8:2:1::10 dev eth0",
            ],
        ),
        (
            &far,
            vec![
                "addr add 2001:db8:2:1::10/64 dev eth0 nodad",
                "-6 route add default via 2001:db8:2:1::1",
            ],
        ),
    ] {
        for c in cmds {
            lab.ip_in(ns, c);
        }
    }
    for k in [
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv6.conf.all.proxy_ndp=1",
    ] {
        assert!(lab.exec(&r, &["sysctl", "-qw", k]).status.success());
    }
    lab.spawn(
        &far,
        &["iperf3", "-s", "-p", "5201", "--logfile", "/dev/null"],
    );
    assert!(lab.wait_until(&far, "ss -ltn | grep -q ':5201 '", 10));
    let rules = "[[frontend]]\nname = \"web6\"\naddress = \"2001:db8:1::10\"\nkind = \"public\"\n\
                 [[pool]]\nname = \"far\"\nmembers = [{ address = \"2001:db8:2:1::10\", name = \"far\" }]\n\
                 [[lb_rule]]\nname = \"bulk6\"\nfrontend = \"web6\"\nprotocol = \"tcp\"\n\
                 frontend_port = 5201\nbackend_port = 5201\npool = \"far\"\n\
                 [[security_rule]]\nname = \"allow-bulk6\"\npriority = 300\ndirection = \"inbound\"\n\
                 action = \"allow\"\nsource = \"*\"\ndestination = \"2001:db8:1::10/128\"\n\
                 protocol = \"tcp\"\ndestination_ports = \"5201\"\n";
    let (text, prefix) = lab.config(rules);
    let text = text.replace("\"2001:db8:2::1/64\"", "\"2001:db8:2::1/48\"");
    let d = lab.start_sluiced_with(&text, &prefix);
    let client = lab.client();
    pmtu_learned(&lab, d, &client, FRONTEND6);
}

/// Sends 2 s of bulk TCP from `ns` to `host` through `d` and checks that it
/// got through (no black hole), that `ns` learned a 1280-byte path MTU and
/// that sluiced translated the Packet Too Big that taught it. Stops `d`.
fn pmtu_learned(
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
const INTERNET6: &str = "2001:db8:1::200";

/// `tests/data/snat_lab.py ARGS` in `ns`, in the background.
fn snat_script(lab: &Lab, ns: &str, args: &[&str]) {
    let script = sluice_tests::workspace().join("tests/data/snat_lab.py");
    let mut v = vec!["python3", script.to_str().unwrap()];
    v.extend_from_slice(args);
    lab.spawn(ns, &v);
}

/// An outbound rule over both families' frontends (HTTP stays inbound on
/// the IPv4 one, so its rule leaves outbound to this one).
const EGRESS6: &str = r#"
[[frontend]]
name = "web6"
address = "2001:db8:1::10"
kind = "public"

[[outbound_rule]]
name = "egress"
frontends = ["web", "web6"]
pool = "web-pool"
protocol = "all"
ports_per_member = 64
"#;

#[test]
fn ipv6_members_reach_the_internet_as_the_public_ipv6_address() {
    let lab = Lab::new(2);
    lab.server(&lab.internet(), &["http", "8000", "inet"]);
    lab.spawn(
        &lab.internet(),
        &["iperf3", "-s", "-p", "5201", "--logfile", "/dev/null"],
    );
    let seen = lab.dir.join("internet.out");
    let got = lab.dir.join("backend.out");
    snat_script(
        &lab,
        &lab.internet(),
        &[
            "udp-two",
            "5001",
            "5002",
            "5003",
            seen.to_str().unwrap(),
            "6",
        ],
    );
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q '\\[::\\]:8000 '", 10));
    assert!(lab.wait_until(&lab.internet(), "ss -lun | grep -q ':5002 '", 10));
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q ':5201 '", 10));
    let (text, prefix) = config(&lab, EGRESS6);
    let text = text.replace(
        "probe = \"http-health\"",
        "probe = \"http-health\"\ndisable_outbound_snat = true",
    );
    let d = lab.start_sluiced_with(&text, &prefix);
    // Both backends, over IPv6, seen as the public IPv6 address.
    for b in 0..2 {
        let out = lab.sh(
            &lab.backend(b),
            &format!("curl -g -s --max-time 3 'http://[{INTERNET6}]:8000/'"),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("inet {FRONTEND6}"),
            "backend {b}\n{}",
            d.log()
        );
    }
    // UDP: one socket to two ports of one address leaves from one public
    // port; the third port gets in, a stranger does not.
    snat_script(
        &lab,
        &lab.backend(0),
        &[
            "udp-client",
            "40000",
            INTERNET6,
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
        "the internet host did not get both datagrams"
    );
    let lines: Vec<Vec<String>> = std::fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(
        (lines[0][1].as_str(), lines[1][1].as_str()),
        (FRONTEND6, FRONTEND6)
    );
    assert_eq!(lines[0][2], lines[1][2], "one public port");
    // The client, another address, sends to that public port.
    let script = sluice_tests::workspace().join("tests/data/snat_lab.py");
    let out = lab.exec(
        &lab.client(),
        &[
            "python3",
            script.to_str().unwrap(),
            "udp-send",
            FRONTEND6,
            &lines[0][2],
            "stranger",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lab.wait_until(&lab.lb(), &format!("grep -q third {}", got.display()), 10),
        "the reply from a third port did not get in"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let got = std::fs::read_to_string(&got).unwrap();
    assert!(got.contains(&format!("{INTERNET6} 5003 third")), "{got}");
    assert!(!got.contains("stranger"), "{got}");
    // Bulk TCP through SNAT.
    let j = iperf6(&lab, &lab.backend(1), INTERNET6, 2);
    assert!(j["error"].is_null(), "iperf3: {}\n{}", j["error"], d.log());
    let sent = j["end"]["sum_sent"]["bytes"].as_f64().unwrap();
    let retransmits = j["end"]["sum_sent"]["retransmits"].as_f64().unwrap();
    assert!(sent > 1e6, "only {sent} bytes");
    assert!(
        retransmits < sent / 1428.0 * 0.01,
        "{retransmits} retransmits"
    );
    let r = d.stop();
    assert!(r.get("drop.snat_no_mapping") >= 1, "{}", r.log);
    assert!(r.get("snat.egress.2001:db8:2::11.ok") >= 1, "{}", r.log);
    assert_eq!(r.get("snat.egress.2001:db8:2::11.ports_allocated"), 64);
}

#[test]
fn ipv6_only_members_are_probed_over_ipv6() {
    let lab = Lab::new(3);
    lab.http_backends(3, 80);
    let rules = format!(
        "{RULES6}\n[[pool]]\nname = \"six\"\nmembers = [\
         {{ address = \"{}\", name = \"s1\" }}, {{ address = \"{}\", name = \"s2\" }}]\n",
        backend_addr6(0),
        backend_addr6(1)
    )
    .replace(
        "frontend_port = 80\nbackend_port = 80\npool = \"web-pool\"",
        "frontend_port = 80\nbackend_port = 80\npool = \"six\"",
    );
    let (text, prefix) = config(&lab, &rules);
    let d = lab.start_sluiced_with(&text, &prefix);
    let state = |name: &str| {
        let h = lab.ctl_json(&["health"]);
        h["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name && m["probe"] == "http-health")
            .map(|m| {
                (
                    m["state"].as_str().unwrap_or("").to_string(),
                    m["probes"].as_u64().unwrap_or(0),
                )
            })
    };
    let wait = |name: &str, want: &str| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < end {
            if state(name).is_some_and(|(s, n)| s == want && n >= 2) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        false
    };
    assert!(
        wait("s1", "up") && wait("s2", "up"),
        "{:?} {:?}\n{}",
        state("s1"),
        state("s2"),
        d.log()
    );
    // b2's server goes away: its IPv6 probe fails and it takes no new flow.
    lab.kill_all(&lab.backend(1));
    assert!(wait("s2", "down"), "{:?}\n{}", state("s2"), d.log());
    let answers = lab.curls(
        &[CLIENT6.to_string()],
        12,
        &format!("http://[{FRONTEND6}]/"),
    );
    assert!(answers.iter().all(|(_, b, _)| b == "b1"), "{answers:?}");
    let r = d.stop();
    assert!(r.log.contains("member 2001:db8:2::12 down"), "{}", r.log);
}

#[test]
fn a_smaller_link_beyond_sluice_is_learned_through_snat_from_a_translated_packet_too_big() {
    // The internet host sits behind a router (Sluice's IPv6 gateway) whose
    // link to it has an MTU of 1280: the router's Packet Too Big goes to
    // the public SNAT address, and Sluice hands it to the member.
    let mut lab = Lab::new(1);
    let r = lab.extra_ns("r6");
    let far = lab.extra_ns("far6");
    lab.wire_external(&r, "eth0");
    lab.veth(&r, "eth1", &far, "eth0");
    for c in [
        "addr add 2001:db8:1::50/64 dev eth0 nodad",
        "link set eth0 up",
        "addr add 2001:db8:5::1/64 dev eth1 nodad",
        "link set eth1 mtu 1280",
    ] {
        lab.ip_in(&r, c);
    }
    for c in [
        "addr add 2001:db8:5::10/64 dev eth0 nodad",
        "-6 route add default via 2001:db8:5::1",
    ] {
        lab.ip_in(&far, c);
    }
    assert!(lab
        .exec(&r, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        .status
        .success());
    lab.spawn(
        &far,
        &["iperf3", "-s", "-p", "5201", "--logfile", "/dev/null"],
    );
    assert!(lab.wait_until(&far, "ss -ltn | grep -q ':5201 '", 10));
    let (text, prefix) = config(&lab, EGRESS6);
    let text = text
        .replace(
            "probe = \"http-health\"",
            "probe = \"http-health\"\ndisable_outbound_snat = true",
        )
        .replace(
            "addresses = [\"203.0.113.1/24\", \"2001:db8:1::1/64\"]",
            "addresses = [\"203.0.113.1/24\", \"2001:db8:1::1/64\"]\ngateway = \"2001:db8:1::50\"",
        );
    assert!(
        text.contains("gateway = \"2001:db8:1::50\""),
        "conf/lab.toml's ext port changed"
    );
    let d = lab.start_sluiced_with(&text, &prefix);
    let member = lab.backend(0);
    let rep = pmtu_learned(&lab, d, &member, "2001:db8:5::10");
    assert!(rep.get("snat_created") >= 1, "{}", rep.log);
}
