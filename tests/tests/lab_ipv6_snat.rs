//! IPv6 lab tests, outbound: IPv6 members leave through outbound SNAT as the
//! public IPv6 address (TCP, the UDP cone, a translated Packet Too Big), and
//! IPv6-only members are probed over IPv6. Real Linux programs in
//! namespaces, sluiced between them on net_af_packet.

mod ipv6;

use ipv6::{config, iperf6, pmtu_learned, FRONTEND6, INTERNET6, RULES6};
use sluice_tests::lab::{backend_addr6, Lab, CLIENT6};

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
