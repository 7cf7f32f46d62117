//! IPv6 lab tests: real Linux clients and servers (curl -6, socat, iperf3,
//! nmap) in namespaces, sluiced between them on net_af_packet. The pool's
//! members are dual stack: one member, an IPv4 and an IPv6 address.
//! Outbound SNAT and probes over IPv6: `lab_ipv6_snat.rs`.

mod ipv6;

use ipv6::{config, iperf6, pmtu_learned, start, FRONTEND6};
use sluice_tests::lab::{Lab, CLIENT6, FRONTEND};
use std::collections::HashMap;

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
