//! Inbound lab tests: real Linux clients and servers in namespaces, sluiced
//! between them on net_af_packet (tests/src/lab.rs). Each test builds its own
//! lab and tears it down, also when it fails.

use sluice_tests::lab::{backend_addr, Lab, CLIENT, FRONTEND};
use std::collections::HashMap;
use std::time::Duration;

/// Adds `n` more client addresses (203.0.113.101..) and returns them.
fn client_addresses(lab: &Lab, n: usize) -> Vec<String> {
    let addrs: Vec<String> = (0..n).map(|i| format!("203.0.113.{}", 101 + i)).collect();
    let script: String = addrs
        .iter()
        .map(|a| format!("ip addr add {a}/24 dev eth0 && "))
        .collect::<String>()
        + "true";
    assert!(lab.sh(&lab.client(), &script).status.success());
    addrs
}

#[test]
fn connections_spread_over_the_pool_and_keep_the_client_address() {
    let lab = Lab::new(3);
    lab.http_backends(3, 80);
    let addrs = client_addresses(&lab, 30);
    let d = lab.start_sluiced("");
    let answers = lab.curls(&addrs, 10, &format!("http://{FRONTEND}/"));
    assert_eq!(answers.len(), 300);
    let mut per: HashMap<String, usize> = HashMap::new();
    for (from, backend, seen) in &answers {
        assert_ne!(backend, "FAIL", "a connection from {from} failed");
        assert_eq!(seen, from, "{backend} saw {seen}, not the client {from}");
        *per.entry(backend.clone()).or_default() += 1;
    }
    for b in ["b1", "b2", "b3"] {
        let n = per.get(b).copied().unwrap_or(0);
        assert!((60..=141).contains(&n), "{b} got {n} of 300: {per:?}");
    }
    let r = d.stop();
    assert_eq!(r.get("flows_created"), 300, "{}", r.log);
    assert_eq!(r.get("drop.tcp_no_flow"), 0);
}

#[test]
fn source_ip_distribution_keeps_a_client_on_one_backend() {
    let lab = Lab::new(3);
    lab.http_backends(3, 80);
    let addrs = client_addresses(&lab, 30);
    let (text, prefix) = lab.config("");
    let text = text.replace(
        "probe = \"http-health\"",
        "probe = \"http-health\"\ndistribution = \"source_ip\"",
    );
    let _d = lab.start_sluiced_with(&text, &prefix);
    let one = lab.curls(&[CLIENT.to_string()], 50, &format!("http://{FRONTEND}/"));
    let backends: std::collections::HashSet<_> = one.iter().map(|a| a.1.clone()).collect();
    assert_eq!(backends.len(), 1, "one client, one backend: {backends:?}");
    assert!(!backends.contains("FAIL"));
    let many = lab.curls(&addrs, 1, &format!("http://{FRONTEND}/"));
    let spread: std::collections::HashSet<_> = many.iter().map(|a| a.1.clone()).collect();
    assert_eq!(spread.len(), 3, "30 clients over 3 backends: {many:?}");
}

#[test]
fn public_ports_need_an_allow_rule() {
    let lab = Lab::new(3);
    lab.http_backends(3, 8080);
    let rule = "[[lb_rule]]\nname = \"alt\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
                frontend_port = 8080\nbackend_port = 8080\npool = \"web-pool\"\n";
    let d = lab.start_sluiced(rule);
    // No allow rule for 8080: no SYN-ACK, no RST (curl times out, it is not refused).
    let out = lab.sh(
        &lab.client(),
        &format!("curl -s --max-time 2 http://{FRONTEND}:8080/; echo rc=$?"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rc=28"), "expected a timeout, got {text}");
    let r = d.stop();
    assert!(r.get("drop.security_deny") >= 1, "{}", r.log);
    assert_eq!(r.get("flows_created"), 0);

    let allow = format!(
        "{rule}[[security_rule]]\nname = \"allow-alt\"\npriority = 200\ndirection = \"inbound\"\n\
         action = \"allow\"\nsource = \"{CLIENT}/32\"\ndestination = \"{FRONTEND}/32\"\n\
         protocol = \"tcp\"\ndestination_ports = \"8000-8100\"\n"
    );
    let _d = lab.start_sluiced(&allow);
    let out = lab.sh(
        &lab.client(),
        &format!("curl -s --max-time 3 http://{FRONTEND}:8080/"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with(&format!(" {CLIENT}\n")), "got {text:?}");
}

#[test]
fn floating_ip_delivers_to_the_frontend_address_on_the_backend() {
    let lab = Lab::new(3);
    for i in 0..3 {
        assert!(lab
            .sh(
                &lab.backend(i),
                &format!("ip addr add {FRONTEND}/32 dev lo")
            )
            .status
            .success());
    }
    lab.http_backends(3, 80);
    let (text, prefix) = lab.config("");
    let text = text.replace(
        "probe = \"http-health\"",
        "probe = \"http-health\"\nfloating_ip = true",
    );
    let _d = lab.start_sluiced_with(&text, &prefix);
    for i in 0..3 {
        lab.spawn(
            &lab.backend(i),
            &[
                "tcpdump",
                "-U",
                "-nni",
                "eth0",
                "-c",
                "1",
                "-w",
                &lab.dir.join(format!("b{i}.pcap")).display().to_string(),
                &format!("dst host {FRONTEND} and tcp port 80"),
            ],
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = lab.sh(
        &lab.client(),
        &format!("curl -s --max-time 3 http://{FRONTEND}/"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with('b') && text.ends_with(&format!(" {CLIENT}\n")),
        "got {text:?}"
    );
    // The backend that answered got packets addressed to the frontend itself.
    let b: usize = text[1..2].parse().unwrap();
    let pcap = lab.dir.join(format!("b{}.pcap", b - 1));
    // More than the 24-byte pcap file header: a packet was captured.
    assert!(
        lab.wait_until(
            &lab.lb(),
            &format!("[ $(stat -c %s {}) -gt 24 ]", pcap.display()),
            5
        ),
        "b{b} saw no packet addressed to {FRONTEND}"
    );
}

#[test]
fn nat_rules_forward_single_ports_and_pool_ports_survive_reloads_and_restarts() {
    let lab = Lab::new(4);
    for i in 0..4 {
        lab.server(&lab.backend(i), &["http", "22", &format!("b{}", i + 1)]);
    }
    for i in 0..4 {
        assert!(lab.wait_until(&lab.backend(i), "ss -ltn | grep -q ':22 '", 10));
    }
    let rules = "[[nat_rule]]\nname = \"ssh-b2\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
                 frontend_port = 50001\nmember = \"b2\"\nbackend_port = 22\n\
                 [[nat_pool_rule]]\nname = \"ssh-pool\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
                 frontend_port_start = 50010\nmax_members = 3\nbackend_port = 22\npool = \"web-pool\"\n\
                 [[security_rule]]\nname = \"allow-ssh\"\npriority = 150\ndirection = \"inbound\"\n\
                 action = \"allow\"\nsource = \"*\"\ndestination = \"203.0.113.10/32\"\n\
                 protocol = \"tcp\"\ndestination_ports = \"50000-50100\"\n";
    let get = |port: u16| {
        let out = lab.sh(
            &lab.client(),
            &format!("curl -s --max-time 3 http://{FRONTEND}:{port}/"),
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("FAIL")
            .to_string()
    };
    let map = || -> HashMap<u16, String> {
        (50010..50013u16)
            .map(|p| (p, get(p)))
            .filter(|(_, b)| b != "FAIL")
            .collect()
    };
    let (text, prefix) = lab.config(rules);
    let d = lab.start_sluiced_with(&text, &prefix);
    assert_eq!(get(50001), "b2", "nat_rule: 50001 goes to b2's port 22");
    let first = map();
    assert_eq!(first.len(), 3, "{first:?}");
    let mut members: Vec<_> = first.values().cloned().collect();
    members.sort();
    assert_eq!(members, ["b1", "b2", "b3"]);

    // An invalid config is rejected by reload; the running one stays.
    let broken = text.replace("backend_port = 22\npool", "backend_port = 0\npool");
    assert_ne!(broken, text);
    assert!(!d.reload(&broken), "an invalid config must be rejected");
    assert!(
        d.log().contains("nat_pool_rule \"ssh-pool\""),
        "the rejection names the object:\n{}",
        d.log()
    );
    assert_eq!(map(), first, "a rejected reload changes nothing");

    // b1 leaves the pool by reload: b2 and b3 keep their ports.
    let without_b1 = text.replace("  { address = \"10.0.0.11\", name = \"b1\" },\n", "");
    assert_ne!(without_b1, text);
    assert!(d.reload(&without_b1), "reload failed:\n{}", d.log());
    let second = map();
    for (p, b) in &first {
        if b != "b1" {
            assert_eq!(second.get(p), Some(b), "{b} moved: {first:?} -> {second:?}");
        }
    }
    assert_eq!(second.len(), 2);

    // b4 joins by reload: it takes the free port; a restart keeps every
    // mapping.
    let with_b4 = without_b1.replace(
        "  { address = \"10.0.0.13\", name = \"b3\" },\n",
        "  { address = \"10.0.0.13\", name = \"b3\" },\n  { address = \"10.0.0.14\", name = \"b4\" },\n",
    );
    assert_ne!(with_b4, without_b1);
    assert!(d.reload(&with_b4), "reload failed:\n{}", d.log());
    let third = map();
    let b1_port = first
        .iter()
        .find(|(_, b)| *b == "b1")
        .map(|(p, _)| *p)
        .unwrap();
    assert_eq!(
        third.get(&b1_port).map(String::as_str),
        Some("b4"),
        "{third:?}"
    );
    let r = d.stop();
    assert_eq!(r.get("reload.ok"), 2);
    assert_eq!(r.get("reload.rejected"), 1);
    let _d = lab.start_sluiced_with(&with_b4, &prefix);
    assert_eq!(map(), third, "a restart keeps every mapping");
}

#[test]
fn idle_connections_are_reset_at_both_ends() {
    let lab = Lab::new(1);
    let server_out = lab.dir.join("server.out");
    let client_out = lab.dir.join("client.out");
    lab.server(
        &lab.backend(0),
        &["hold", "80", server_out.to_str().unwrap()],
    );
    assert!(lab.wait_until(&lab.backend(0), "ss -ltn | grep -q ':80 '", 10));
    let (text, prefix) = lab.config("");
    let text = text
        .replace("  { address = \"10.0.0.12\", name = \"b2\" },\n", "")
        .replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "")
        // The one-connection server cannot answer health probes too.
        .replace(
            "probe = \"http-health\"",
            "idle_timeout = \"4m\"\ntcp_reset = true",
        );
    let d = lab.start_sluiced_args(&text, &prefix, &["--timer-scale", "100"]);
    // 4 minutes / 100 = 2.4 s of silence.
    let out = lab.run_script(
        &lab.client(),
        &["hold-client", FRONTEND, "80", client_out.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(lab.wait_until(&lab.lb(), &format!("test -s {}", server_out.display()), 10));
    assert_eq!(read(&client_out).trim(), "reset", "the client saw no reset");
    assert_eq!(
        read(&server_out).trim(),
        "reset",
        "the backend saw no reset"
    );
    std::thread::sleep(Duration::from_millis(100));
    let r = d.stop();
    assert_eq!(r.get("flows.reset"), 1, "{}", r.log);
    assert_eq!(r.get("flows.rst_sent"), 2);
}

#[test]
fn a_reload_keeps_flows_of_unchanged_rules_and_resets_flows_of_removed_members() {
    let lab = Lab::new(2);
    let outs: Vec<_> = (0..2)
        .map(|i| lab.dir.join(format!("server{i}.out")))
        .collect();
    for (i, out) in outs.iter().enumerate() {
        lab.server(&lab.backend(i), &["hold", "80", out.to_str().unwrap()]);
        assert!(lab.wait_until(&lab.backend(i), "ss -ltn | grep -q ':80 '", 10));
    }
    let (text, prefix) = lab.config("");
    let text = text
        .replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "")
        // The one-connection servers cannot answer health probes too.
        .replace("probe = \"http-health\"", "tcp_reset = true");
    let d = lab.start_sluiced_with(&text, &prefix);
    let client_out = lab.dir.join("client.out");
    let script = sluice_tests::workspace().join("tests/data/lab_server.py");
    lab.spawn(
        &lab.client(),
        &[
            "python3",
            script.to_str().unwrap(),
            "hold-client",
            FRONTEND,
            "80",
            client_out.to_str().unwrap(),
        ],
    );
    let established = "ss -tnH state established '( sport = :80 )' | grep -q .";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let b = loop {
        if let Some(b) = (0..2).find(|&i| lab.sh(&lab.backend(i), established).status.success()) {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no backend got the connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let member = ["10.0.0.11", "10.0.0.12"][b];

    // An unrelated change: the connection stays.
    let more = format!(
        "{text}\n[[lb_rule]]\nname = \"other\"\nfrontend = \"web\"\nprotocol = \"udp\"\n\
         frontend_port = 5000\nbackend_port = 5000\npool = \"web-pool\"\n"
    );
    assert!(d.reload(&more), "{}", d.log());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        lab.sh(&lab.backend(b), established).status.success(),
        "the connection to b{} ended on an unrelated reload",
        b + 1
    );
    assert_eq!(std::fs::read_to_string(&client_out).unwrap_or_default(), "");

    // Its member leaves the pool: both ends are reset.
    let line = format!("  {{ address = \"{member}\", name = \"b{}\" }},\n", b + 1);
    let without = more.replace(&line, "");
    assert_ne!(without, more);
    assert!(d.reload(&without), "{}", d.log());
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(lab.wait_until(&lab.lb(), &format!("test -s {}", client_out.display()), 10));
    assert!(lab.wait_until(&lab.lb(), &format!("test -s {}", outs[b].display()), 10));
    assert_eq!(read(&client_out).trim(), "reset", "the client saw no reset");
    assert_eq!(read(&outs[b]).trim(), "reset", "the backend saw no reset");
    let r = d.stop();
    assert_eq!(r.get("reload.ok"), 2);
    assert_eq!(r.get("flows.ended_by_reload"), 1, "{}", r.log);
    assert_eq!(r.get("flows.rst_sent"), 2);
}

const HA_RULES: &str =
    "[[frontend]]\nname = \"ilb\"\naddress = \"10.0.0.100\"\nkind = \"internal\"\n\
     [[lb_rule]]\nname = \"ha\"\nfrontend = \"ilb\"\nprotocol = \"all\"\nfrontend_port = 0\n\
     backend_port = 0\npool = \"web-pool\"\n";

#[test]
fn ha_ports_pass_tcp_and_udp_on_every_port() {
    let lab = Lab::new(3);
    // Ten ports picked at random for this run.
    let seed = std::process::id() as u64;
    let ports: Vec<u16> = (0..10u64)
        .map(|i| {
            1024 + ((seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i * 1442695040888963407))
                >> 33) as u16
                % 60000
        })
        .collect();
    let port_args: Vec<String> = ports.iter().map(u16::to_string).collect();
    for i in 0..3 {
        let mut args = vec!["many".to_string(), format!("b{}", i + 1)];
        args.extend(port_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.server(&lab.backend(i), &args);
    }
    for i in 0..3 {
        let last = ports[9];
        assert!(lab.wait_until(
            &lab.backend(i),
            &format!("ss -ltn | grep -q ':{last} '"),
            10
        ));
    }
    // The client reaches the internal frontend through Sluice.
    assert!(lab
        .sh(&lab.client(), "ip route add 10.0.0.100/32 via 203.0.113.1")
        .status
        .success());
    let d = lab.start_sluiced(HA_RULES);
    for &p in &ports {
        let out = lab.sh(
            &lab.client(),
            &format!("curl -s --max-time 3 http://10.0.0.100:{p}/"),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with('b') && text.ends_with(&format!(" {CLIENT}\n")),
            "TCP {p}: {text:?}"
        );
        let out = lab.sh(
            &lab.client(),
            &format!("echo hi | socat -T2 - UDP:10.0.0.100:{p}"),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with('b') && text.contains(CLIENT),
            "UDP {p}: {text:?}"
        );
    }
    let r = d.stop();
    assert_eq!(r.get("flows_created"), 20, "{}", r.log);
}

/// HA ports carry a fragmented datagram whole. net_af_packet cannot show
/// it: DPDK's af_packet PMD joins a PACKET_FANOUT group with
/// PACKET_FANOUT_FLAG_DEFRAG, so the kernel hands it the datagram already
/// reassembled (and cut at the ring's frame size, then dropped as
/// ipv4_malformed). Here the external port is net_tap instead, bridged to
/// the lab's ext0 inside Sluice's namespace, and fragments reach Sluice as
/// the client's kernel sent them. The kernel side of the tap gets its own
/// MAC: net_tap gives it the port's, and a bridge delivers frames for a
/// port's own MAC locally instead of forwarding them to that port.
#[test]
fn ha_ports_deliver_a_fragmented_datagram_whole() {
    let lab = Lab::new(3);
    for i in 0..3 {
        lab.server(&lab.backend(i), &["many", &format!("b{}", i + 1), "7000"]);
    }
    for i in 0..3 {
        assert!(lab.wait_until(&lab.backend(i), "ss -lun | grep -q ':7000 '", 10));
    }
    assert!(lab
        .sh(&lab.client(), "ip route add 10.0.0.100/32 via 203.0.113.1")
        .status
        .success());
    let (text, prefix) = lab.config(HA_RULES);
    let text = Lab::ext_on_tap(&text);
    let d = lab.start_sluiced_with(&text, &prefix);
    lab.bridge_tap();
    // 4,000 bytes: the client's kernel sends three fragments.
    let out = lab.sh(
        &lab.client(),
        "python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         s.settimeout(3); s.sendto(b'x' * 4000, ('10.0.0.100', 7000)); print(s.recv(100).decode())\"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let r = d.stop();
    assert!(
        text.trim_end().ends_with(" 4000"),
        "the datagram did not arrive whole: {text:?} {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        r.log
    );
    assert!(r.get("fragments_forwarded") >= 2, "{}", r.log);
}

#[test]
fn fragmentation_needed_from_a_backend_reaches_the_client_translated() {
    let lab = Lab::new(1);
    let rules = "[[lb_rule]]\nname = \"udp\"\nfrontend = \"web\"\nprotocol = \"udp\"\n\
                 frontend_port = 5000\nbackend_port = 5001\npool = \"web-pool\"\n\
                 [[security_rule]]\nname = \"allow-udp\"\npriority = 120\ndirection = \"inbound\"\n\
                 action = \"allow\"\nsource = \"*\"\ndestination = \"203.0.113.10/32\"\n\
                 protocol = \"udp\"\ndestination_ports = \"5000\"\n";
    let (text, prefix) = lab.config(rules);
    let text = text
        .replace("  { address = \"10.0.0.12\", name = \"b2\" },\n", "")
        .replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "");
    lab.server(
        &lab.backend(0),
        &["udp", "5001", "b1", "1200", &backend_addr(0)],
    );
    assert!(lab.wait_until(&lab.backend(0), "ss -lun | grep -q ':5001 '", 10));
    let d = lab.start_sluiced_with(&text, &prefix);
    let cap = lab.dir.join("icmp.txt");
    lab.spawn(
        &lab.client(),
        &[
            "sh",
            "-c",
            &format!(
                "tcpdump -lnni eth0 -c 1 icmp > {} 2>/dev/null",
                cap.display()
            ),
        ],
    );
    std::thread::sleep(Duration::from_millis(700));
    let out = lab.sh(
        &lab.client(),
        &format!("echo hi | socat -T2 - UDP:{FRONTEND}:5000"),
    );
    // The answer or, when the translated ICMP is there first, EMSGSIZE on
    // the client's connected socket: either shows the flow went through.
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.starts_with("b1 ") || said.contains("Message too long"),
        "{said}"
    );
    assert!(
        lab.wait_until(&lab.lb(), &format!("test -s {}", cap.display()), 5),
        "no ICMP reached the client"
    );
    let seen = std::fs::read_to_string(&cap).unwrap();
    // Outer source and the quoted destination are the frontend, not the backend.
    assert!(
        seen.contains(&format!(
            "{FRONTEND} > {CLIENT}: ICMP {FRONTEND} unreachable - need to frag (mtu 1200)"
        )),
        "{seen}"
    );
    let r = d.stop();
    assert_eq!(r.get("icmp_translated"), 1, "{}", r.log);
}
