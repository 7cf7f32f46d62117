//! sluiced on the wire: two net_memif ports, sluice-gen playing the clients
//! on the external one and the backend (answering ARP) on the internal one.
//! Inbound UDP through a load-balancing rule arrives, counted at both ends.
//! On memif the peer decides how many rings exist, so the TX queue control
//! would own has no ring behind it: control's frames (the ARP request for
//! the backend) must fall back to worker 0, or nothing would ever resolve.

use sluice_tests::daemon::Daemon;
use std::time::Duration;

#[test]
fn inbound_udp_through_sluiced_on_memif_arrives_whole() {
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("sluice-wire-{id}"));
    // conf/memif-bench.toml's socket paths, under this test's directory.
    let (ext, int) = (dir.join("ext.sock"), dir.join("int.sock"));
    let prefix = format!("slwire{id}");
    let metrics = format!("127.0.0.1:{}", sluice_tests::control_section(&dir).1);
    let config = std::fs::read_to_string(sluice_tests::workspace().join("conf/memif-bench.toml"))
        .unwrap()
        .replace("/tmp/sluice-bench", &dir.display().to_string())
        .replace(
            "--file-prefix=sluice-bench",
            &format!("--file-prefix={prefix}"),
        )
        .replace("127.0.0.1:9101", &metrics);
    assert!(
        config.contains(&prefix),
        "conf/memif-bench.toml changed shape"
    );
    let d = Daemon::start(&dir.join("daemon"), &config, None, &prefix, &[]);
    let g = sluice_tests::gen::run(
        &format!("slwiregen{id}"),
        &ext,
        &int,
        &[
            "--dst-mac",
            "02:00:00:00:00:01",
            "--src",
            "203.0.113.100",
            "--answer-arp",
            "10.0.0.11",
            "--flows",
            "1000",
            // A debug sluiced (as `make test` builds it) on a shared
            // core: a rate it keeps up with, after a warm-up that creates
            // the flows and resolves the backend.
            "--rate",
            "50000",
            "--seconds",
            "2",
            "--warmup",
            "0.5",
        ],
        1,
    );
    std::thread::sleep(Duration::from_millis(100));
    let r = d.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let (offered, received) = (g.get("offered"), g.get("received"));
    assert!(g.get("arp_answered") >= 1.0, "{}", g.json);
    // Without control's fallback to worker 0 the backend never resolves
    // and nearly nothing arrives.
    assert!(received >= 0.98 * offered, "{}\n{:?}", g.json, r.counters);
    assert_eq!(g.get("bad_sampled"), 0.0, "{}", g.json);
    assert_eq!(r.get("flows_created"), 1000, "{:?}", r.counters);
    // Every frame forwarded, but the backend's ARP reply (learned from).
    assert_eq!(
        r.get("forwarded") + r.get("consumed"),
        r.get("rx"),
        "{:?}",
        r.counters
    );
    assert!(
        r.get("control.tx_own_full") >= 1 && r.get("from_control") >= 1,
        "the ARP request went through worker 0: {:?}",
        r.counters
    );
}
