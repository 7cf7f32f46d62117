//! Three instances behind ECMP routes they announce through BIRD over
//! their kernel interfaces, FRR routers with BFD on both sides
//! (tests/tests/ecmp/mod.rs): connections spread over every instance;
//! maintenance withdraws one instance's routes with no connection broken;
//! `kill -9` of one takes its routes away at both routers within a second
//! and its connections continue through the others (flow sync); a
//! restarted instance takes traffic again only once ready, breaking none.

mod ecmp;

use ecmp::*;
use std::time::{Duration, Instant};

/// Flows instance `i` created itself (not synced in), by the counters.
fn created(e: &Ecmp, i: usize) -> (u64, u64) {
    let c = e.json(i, &["counters"]);
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    (n("flows_created") - n("snat_created"), n("snat_created"))
}

#[test]
fn a_cluster_behind_ecmp_keeps_every_connection() {
    let e = Ecmp::new();
    e.servers();
    let mut d: Vec<_> = (0..N).map(|i| Some(e.start(i))).collect();
    let t = e.wait_routes(&[0, 1, 2], 60);
    eprintln!("all three instances announced in {} ms", t.as_millis());
    for i in 0..N {
        let s = e.json(i, &["status"]);
        assert_eq!(s["availability"]["ready"], true, "{s}");
    }
    // What the operator sees: the status table and the metrics.
    let out = sluice_tests::sluicectl(&e.socket(0), &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ready: true  maintenance: off"), "{text}");
    assert!(
        text.contains(&format!("announced: {VIP}/32,0.0.0.0/0")),
        "{text}"
    );
    let m = e.metrics(0);
    let metric = |name: &str, labels: &[(&str, &str)]| sluice_tests::metric(&m, name, labels);
    assert_eq!(metric("sluice_ready", &[]), Some(1.0), "{m}");
    assert_eq!(metric("sluice_maintenance", &[]), Some(0.0), "{m}");
    assert_eq!(
        metric("sluice_announced_routes", &[("side", "ext")]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric("sluice_announced_routes", &[("side", "int")]),
        Some(1.0),
        "{m}"
    );
    assert!(
        metric("sluice_routing_configure_total", &[("result", "ok")]) >= Some(1.0),
        "{m}"
    );

    // 300 long-lived connections from the client and 90 outbound from the
    // backends, all held through what follows.
    let secs = "45";
    let inbound = e.run(
        &e.client,
        &["tcp-many", VIP, "7000", "300", secs, "0.2"],
        "in",
    );
    let out1 = e.run(
        &e.lab.backend(0),
        &["tcp-many", INET, "7000", "45", secs, "0.2"],
        "out1",
    );
    let out2 = e.run(
        &e.lab.backend(1),
        &["tcp-many", INET, "7000", "45", secs, "0.2"],
        "out2",
    );
    std::thread::sleep(Duration::from_secs(5));
    let spread: Vec<(u64, u64)> = (0..N).map(|i| created(&e, i)).collect();
    eprintln!("flows created per instance (inbound, outbound): {spread:?}");
    for (i, (inb, outb)) in spread.iter().enumerate() {
        assert!(
            *inb >= 45,
            "instance {i} took {inb} of 300 inbound: {spread:?}"
        );
        assert!(
            *outb >= 13,
            "instance {i} took {outb} of 90 outbound: {spread:?}"
        );
    }

    // Maintenance on instance 2: its routes go at both routers, new
    // connections go to the other two.
    let m = e.json(2, &["maintenance", "on"]);
    assert_eq!(m["maintenance"], true, "{m}");
    let t = e.wait_routes(&[0, 1], 10);
    eprintln!(
        "maintenance: instance 2 withdrawn at both routers in {} ms",
        t.as_millis()
    );
    let before = created(&e, 2).0;
    let fresh = e.run(
        &e.client,
        &["tcp-many", VIP, "7000", "30", "2", "0.2"],
        "fresh",
    );
    wait_all(&[&fresh], 30);
    assert_eq!(field(&read(&fresh), "ok"), 30, "{}", read(&fresh));
    assert_eq!(
        created(&e, 2).0,
        before,
        "instance 2 took new flows in maintenance"
    );
    let m = e.json(2, &["maintenance", "off"]);
    assert_eq!(m["maintenance"], false, "{m}");
    e.wait_routes(&[0, 1, 2], 10);

    // kill -9 of instance 1: BFD takes its routes away at both routers.
    let killed = Instant::now();
    let _ = d[1].take().unwrap().kill9();
    e.wait_routes(&[0, 2], 5);
    let gone = killed.elapsed();
    eprintln!(
        "kill -9: instance 1 gone at both routers {} ms after the kill",
        gone.as_millis()
    );
    assert!(
        gone < Duration::from_millis(1000),
        "routes went {} ms after the kill",
        gone.as_millis()
    );

    // Restarted: it announces only once ready (bulk copy taken, probes
    // run), and takes traffic again.
    std::thread::sleep(Duration::from_secs(3));
    d[1] = Some(e.start(1));
    let t = e.wait_routes(&[0, 1, 2], 30);
    eprintln!(
        "instance 1 back at both routers {} ms after its start",
        t.as_millis()
    );
    let s = e.json(1, &["status"]);
    assert_eq!(s["cluster"]["bulk"], "done", "{s}");
    let before = created(&e, 1).0;
    let fresh = e.run(
        &e.client,
        &["tcp-many", VIP, "7000", "30", "2", "0.2"],
        "rejoined",
    );
    wait_all(&[&fresh], 30);
    assert_eq!(field(&read(&fresh), "ok"), 30, "{}", read(&fresh));
    assert!(
        created(&e, 1).0 > before,
        "the restarted instance took no new flow"
    );

    // A pool change by reload on every instance, each listing the members
    // in another order: all three pick the same member for each of 1,000
    // new flows.
    let orders = [["s3", "s1", "s2"], ["s2", "s3", "s1"], ["s1", "s2", "s3"]];
    for (i, o) in orders.iter().enumerate() {
        e.reload(i, o);
    }
    let picks: Vec<serde_json::Value> = (0..N)
        .map(|i| {
            e.json(
                i,
                &[
                    "pick",
                    "vip",
                    "7000",
                    &format!("{CLIENT}:20000"),
                    "--count",
                    "1000",
                ],
            )["members"]
                .clone()
        })
        .collect();
    assert_eq!(picks[0].as_array().map(Vec::len), Some(1000));
    assert_eq!(picks[0], picks[1], "instances 0 and 1 pick differently");
    assert_eq!(picks[0], picks[2], "instances 0 and 2 pick differently");
    for m in ["10.0.0.11", "10.0.0.12", "10.0.0.13"] {
        let n = picks[0]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| *p == m)
            .count();
        assert!(n > 200, "{m} got {n} of 1000");
    }

    wait_all(&[&inbound, &out1, &out2], 90);
    for (name, path, n) in [
        ("inbound", &inbound, 300),
        ("outbound b1", &out1, 45),
        ("outbound b2", &out2, 45),
    ] {
        let t = read(path);
        assert_eq!(field(&t, "ok"), n, "{name}: {t}");
        assert_eq!(field(&t, "broken"), 0, "{name}: {t}");
    }
    // SIGTERM drains: the routes go while the process still runs (and
    // answers, in maintenance), then it stops within its drain time.
    let held = e.run(
        &e.client,
        &["tcp-many", VIP, "7000", "20", "8", "0.2"],
        "held",
    );
    std::thread::sleep(Duration::from_secs(2));
    let first = d[0].take().unwrap();
    let stopping = std::thread::spawn(move || first.stop());
    let t = e.wait_routes(&[1, 2], 5);
    eprintln!(
        "SIGTERM: instance 0 withdrawn at both routers in {} ms",
        t.as_millis()
    );
    let s = e.json(0, &["status"]);
    assert_eq!(s["availability"]["maintenance"], true, "{s}");
    let r = stopping.join().unwrap();
    assert!(
        r.log.contains("draining: announcements withdrawn"),
        "{}",
        r.log
    );
    // Its traffic went to the others, which hold its flows: it stops
    // without waiting out its drain time.
    assert!(r.log.contains("the peers carry the flows"), "{}", r.log);
    wait_all(&[&held], 30);
    let t = read(&held);
    assert_eq!(field(&t, "ok"), 20, "connections across the drain: {t}");
    for x in d.iter_mut() {
        if let Some(x) = x.take() {
            x.stop();
        }
    }
}
