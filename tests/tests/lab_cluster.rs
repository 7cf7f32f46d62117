//! Flow sync between two instances (issue #16): sluiced A and B on the
//! same external and internal segments, a router namespace in front
//! (kernel routing, static routes) that sends the clients' traffic for
//! the frontend to one of them, and backends whose default route names
//! one of them. Real programs in the namespace lab (tests/src/lab.rs);
//! each test tears its lab down. Two instances, their busy-polling
//! workers and a few hundred connections are more than a debug build
//! carries on this 2-core machine: these labs run the release binaries
//! (`make test` builds them).
//!
//! ```text
//!  cl 192.0.2.100 ─┐                ┌─ A ext 203.0.113.1 ── int 10.0.0.1 ─┐
//!                  r 203.0.113.254 ─┤                                      ├─ b1 10.0.0.11
//! inet 192.0.3.200 ┘   (xs switch)  └─ B ext 203.0.113.2 ── int 10.0.0.2 ─┘  b2 10.0.0.12
//!   frontend and SNAT address 198.51.100.10, routed by r via A or B
//! ```

mod cluster;

use cluster::*;
use std::time::{Duration, Instant};

#[test]
fn connections_fail_over_to_the_other_instance_when_one_is_killed() {
    let p = Pair::new();
    p.servers();
    let a = p.start(0);
    let b = p.start(1);
    let blog = b.log();
    assert!(
        blog.contains("bulk copy from every peer received"),
        "{blog}"
    );
    let (secs, every) = ("20", "0.05");
    let inbound = p.run(
        &p.client,
        &["tcp-many", VIP, "7000", "100", secs, every],
        "inbound",
    );
    let out1 = p.run(
        &p.lab.backend(0),
        &["tcp-many", INET, "7000", "50", secs, every],
        "out-b1",
    );
    let out2 = p.run(
        &p.lab.backend(1),
        &["tcp-many", INET, "7000", "50", secs, every],
        "out-b2",
    );
    let udp = p.run(&p.client, &["udp-stream", VIP, "7000", secs, every], "udp");
    std::thread::sleep(Duration::from_secs(5));
    let before = snat_publics(&p, 0);
    assert_eq!(before.len(), 100, "A's outbound flows: {before:?}");
    let sb = p.status(1);
    assert!(
        sb["flows"].as_u64().unwrap() >= 201,
        "B holds A's flows: {sb}"
    );
    let t = Instant::now();
    p.route_inbound_to(1);
    p.route_backends_to(1);
    let alog = a.kill9();
    eprintln!(
        "failover: routes moved to B and A killed in {} ms",
        t.elapsed().as_millis()
    );
    wait_all(&[&inbound, &out1, &out2, &udp], 90);
    let flows = tcp_flows(&p, 1);
    let after = snat_publics(&p, 1);
    let sb = p.status(1);
    let r = b.stop();
    for (name, path, n) in [
        ("inbound", &inbound, 100),
        ("outbound b1", &out1, 50),
        ("outbound b2", &out2, 50),
    ] {
        let t = read(path);
        assert_eq!(field(&t, "conns"), n, "{name}: {t}");
        assert_eq!(
            field(&t, "ok"),
            n,
            "{name}: connections broke: {t}\nA:\n{alog}\nB:\n{}",
            r.log
        );
    }
    // Each connection carried data through B after the switch (B's own
    // packet counts: a synced entry starts at 0; the close alone is 4).
    for dir in ["inbound", "outbound"] {
        let through_b = flows.iter().filter(|f| f.0 == dir && f.2 > 8).count();
        assert!(
            through_b >= 100,
            "{dir}: {through_b} flows carried data through B: {flows:?}"
        );
    }
    // The outbound connections kept their public address and port: B
    // lists exactly the mappings A made.
    assert_eq!(after, before, "B's outbound mappings are A's");
    let u = read(&udp);
    let lost = field(&u, "sent") - field(&u, "echoed");
    eprintln!("failover: the UDP stream (a datagram every 50 ms) lost {lost}: {u}");
    assert!(lost <= 20, "more than a second of the UDP stream lost: {u}");
    let c = &sb["cluster"];
    eprintln!("failover: B's cluster view: {c}");
    assert!(c["received"].as_u64().unwrap() >= 201, "{c}");
    assert_eq!(c["counters"]["refused_mac"], 0, "{c}");
}

#[test]
fn connections_open_and_carry_data_over_asymmetric_paths() {
    let p = Pair::new();
    p.servers();
    // Clients' traffic through A, the backends' replies through B.
    p.route_backends_to(1);
    let a = p.start(0);
    let b = p.start(1);
    let inbound = p.run(
        &p.client,
        &["tcp-many", VIP, "7000", "20", "6", "0.05"],
        "asym",
    );
    let udp = p.run(
        &p.client,
        &["udp-stream", VIP, "7000", "6", "0.05"],
        "asym-udp",
    );
    wait_all(&[&inbound, &udp], 40);
    let (sa, sb) = (p.status(0), p.status(1));
    let (ra, rb) = (a.stop(), b.stop());
    assert!(rb.get("sync.created") >= 21, "B's exit report: {}", rb.log);
    let t = read(&inbound);
    assert_eq!(field(&t, "ok"), 20, "{t}\nA:\n{}\nB:\n{}", ra.log, rb.log);
    assert!(field(&t, "sent") > 20 * 20, "{t}");
    // A member's reply that reaches B before the record of its flow is
    // lost (it looks like a new outbound flow until the record displaces
    // it); records go first, so that is rare: a slow (debug) build under
    // this lab's load sees a few.
    let u = read(&udp);
    let lost = field(&u, "sent") - field(&u, "echoed");
    assert!(lost <= 5, "{u}\nA: {}\nB: {}", counts(&ra), counts(&rb));
    // Each saw one direction: A the clients', B the replies; both synced.
    for (name, s) in [("A", &sa), ("B", &sb)] {
        let c = &s["cluster"];
        assert!(c["sent"].as_u64().unwrap() >= 21, "{name}: {c}");
        assert!(c["received"].as_u64().unwrap() >= 21, "{name}: {c}");
    }
}

#[test]
fn an_instance_without_the_records_picks_connections_up_mid_stream() {
    let p = Pair::new();
    p.servers();
    p.route_inbound_to(0);
    p.route_backends_to(0);
    let a = p.start(0);
    // B has another secret: it refuses every record of A's, so it knows
    // none of A's flows (as after a lost record, or before a new instance
    // caught up).
    let other = p.lab.dir.join("other.key");
    std::fs::write(&other, "another secret, not the cluster's\n").unwrap();
    let (text, prefix) = p.config(1);
    let text = text.replace(&p.key.display().to_string(), &other.display().to_string());
    let b = p.start_with(1, (text, prefix), &[]);
    let inbound = p.run(
        &p.client,
        &["tcp-many", VIP, "7000", "20", "8", "0.05"],
        "pickup",
    );
    std::thread::sleep(Duration::from_secs(3));
    p.route_inbound_to(1);
    p.route_backends_to(1);
    wait_all(&[&inbound], 40);
    let sb = p.status(1);
    let (ra, rb) = (a.stop(), b.stop());
    let t = read(&inbound);
    assert_eq!(
        field(&t, "ok"),
        20,
        "{t}\nA: {}\nB: {}",
        counts(&ra),
        counts(&rb)
    );
    assert_eq!(field(&t, "broken"), 0, "{t}");
    // B picked each connection up on the member A had given it.
    assert!(rb.get("picked_up") >= 20, "B: {}", counts(&rb));
    assert_eq!(
        sb["cluster"]["counters"]["created"], 0,
        "B took no record: {sb}"
    );
    assert!(
        sb["cluster"]["counters"]["refused_mac"].as_u64().unwrap() > 0,
        "{sb}"
    );
}

#[test]
fn untrusted_sync_datagrams_change_nothing_and_are_counted() {
    let mut p = Pair::new();
    p.servers();
    let a = p.start(0);
    let b = p.start(1);
    // A host on the internal segment that is no instance.
    let x = p.lab.extra_ns("x");
    p.lab.wire_internal(&x, "eth0");
    sh(
        &p.lab,
        &x,
        "ip addr add 10.0.0.66/24 dev eth0 && ip link set eth0 up",
    );
    let pcap = p.lab.dir.join("sync.pcap");
    capture_one(&p, &pcap);
    // A connection that outlives the test: its record is what A sends.
    p.run(
        &p.client,
        &["tcp-many", VIP, "7000", "1", "60", "0.5"],
        "one",
    );
    assert!(
        p.lab.wait_until(
            &p.ns[0],
            &format!("test $(stat -c %s {}) -gt 100", pcap.display()),
            10
        ),
        "no sync datagram captured"
    );
    // A says nothing more: whatever B's counters do now is the forgeries'.
    let _ = a.stop();
    std::thread::sleep(Duration::from_millis(300));
    let before = p.status(1);
    let flows = before["flows"].as_u64().unwrap();
    let script = sluice_tests::workspace().join("tests/data/sync_attack.py");
    for mode in ["badmac", "replay", "nonpeer"] {
        let out = p.lab.exec(
            &x,
            &[
                "python3",
                script.to_str().unwrap(),
                "eth0",
                pcap.to_str().unwrap(),
                mode,
            ],
        );
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = p.status(1);
    let (c0, c) = (
        &before["cluster"]["counters"],
        &after["cluster"]["counters"],
    );
    let grew = |k: &str| c[k].as_u64().unwrap() - c0[k].as_u64().unwrap();
    assert_eq!(grew("refused_mac"), 1, "{c}");
    assert_eq!(grew("refused_replay"), 1, "{c}");
    assert_eq!(grew("refused_not_peer"), 1, "{c}");
    assert_eq!(
        grew("created") + grew("updated") + grew("removed"),
        0,
        "{c}"
    );
    assert_eq!(
        after["flows"].as_u64().unwrap(),
        flows,
        "B's table unchanged"
    );
    // The metrics are copied once a second.
    let scrape = || {
        let out = p.lab.exec(
            &p.ns[1],
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://127.0.0.1:9631/metrics",
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let seen = |m: &str, event: &str| {
        sluice_tests::metric(m, "sluice_sync_events_total", &[("event", event)]).unwrap_or(0.0)
            >= 1.0
    };
    let end = Instant::now() + Duration::from_secs(5);
    let mut m = scrape();
    while !["refused_mac", "refused_replay", "refused_not_peer"]
        .iter()
        .all(|e| seen(&m, e))
    {
        assert!(
            Instant::now() < end,
            "the refusals never reached the metrics:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(200));
        m = scrape();
    }
    let _ = b.stop();
}

#[test]
fn a_starting_instance_takes_a_million_flows_from_its_peer() {
    const N: u64 = 1_000_000;
    let p = Pair::new();
    // A adopts a table a tool filled with a million flows of its config.
    let file = p.lab.dir.join("flows");
    let a_cfg = p.config_with(
        0,
        &format!("capacity = 2097152\nfile = \"{}\"", file.display()),
    );
    let a_toml = p.lab.dir.join("a.toml");
    std::fs::write(&a_toml, &a_cfg.0).unwrap();
    let fill = sluice_tests::release_bin("sluice-fill");
    let out = sluice_tests::must(
        std::process::Command::new(&fill)
            .arg(&a_toml)
            .arg(N.to_string()),
    );
    let filled = String::from_utf8_lossy(&out.stdout).to_string();
    let made = field(&filled, "flows");
    assert!(made >= N * 999 / 1000, "{filled}");
    let a = p.start_with(0, a_cfg, &[]);
    let alog = a.log();
    assert_eq!(
        log_field(&alog, "adopted flows carried over", "adopted"),
        made,
        "{alog}"
    );
    let t = Instant::now();
    let b = p.start_with(1, p.config_with(1, "capacity = 2097152"), &[]);
    let ready = t.elapsed();
    let blog = b.log();
    let ms = log_field(&blog, "bulk copy from every peer received", "ms");
    let got = log_field(&blog, "bulk copy from every peer received", "flows");
    let s = p.status(1);
    eprintln!(
        "bulk copy: {got} of {made} flows from A to B in {ms} ms ({} ms from B's start to ready); B's view: {}",
        ready.as_millis(),
        s["cluster"]
    );
    assert!(got >= made * 999 / 1000, "B took {got} of {made}:\n{blog}");
    let _ = (a.stop(), b.stop());
}

#[test]
fn a_peer_keeps_the_flows_the_other_instance_carries() {
    let p = Pair::new();
    p.servers();
    // Timers / 60: a UDP flow idles out after 4 s, and B sees none of this
    // one's packets (routes on both sides name A); only refreshes keep it.
    let scale = ["--timer-scale", "60"];
    let a = p.start_with(0, p.config(0), &scale);
    let b = p.start_with(1, p.config(1), &scale);
    let udp = p.run(&p.client, &["udp-stream", VIP, "7000", "14", "0.1"], "kept");
    std::thread::sleep(Duration::from_secs(12));
    let f = p.json(1, &["flows", "--protocol", "udp"]);
    let kept: Vec<&serde_json::Value> = f["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["rule"] == "udp-stream")
        .collect();
    wait_all(&[&udp], 30);
    let sa = p.status(0);
    let (_, rb) = (a.stop(), b.stop());
    assert_eq!(
        kept.len(),
        1,
        "B still holds the stream's flow 12 s on: {f}\n{}",
        rb.log
    );
    let idle = kept[0]["idle_ms"].as_u64().unwrap();
    assert!(
        idle < 4000,
        "B's copy follows A's last packet: idle {idle} ms"
    );
    let refreshed = sa["cluster"]["counters"]["refreshed"].as_u64().unwrap();
    assert!(
        refreshed >= 8,
        "A refreshed it about once a second: {refreshed}"
    );
    // The stream went through A (what it lost, it lost on this 2-core
    // lab's veths while both busy-polling workers hold the cores: the
    // datagrams left A and never reached the router).
    let u = read(&udp);
    assert!(field(&u, "echoed") > 0, "{u}");
}
