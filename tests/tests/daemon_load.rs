//! sluiced under a flood of frames from net_null: every frame is accounted
//! for, and no mbuf leaks (the pool is small, so a leak would starve RX
//! within milliseconds and show as rx_nombuf). Also covers a device given by
//! port id rather than name.

use sluice_tests::daemon::Daemon;

#[test]
fn a_flood_of_junk_is_counted_and_leaks_nothing() {
    let dir = std::env::temp_dir().join(format!("sluice-null-{}", std::process::id()));
    let prefix = format!("slnull{}", std::process::id());
    let config = format!(
        r#"
[dpdk]
eal_args = ["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix={prefix}", "--vdev=net_null0,size=64"]
workers = [1]
mbufs = 1023
[[port]]
name = "junk"
device = 0
role = "external"
addresses = ["203.0.113.1/24"]
{}
"#,
        sluice_tests::control_section(&dir).0
    );
    let d = Daemon::start(&dir.join("daemon"), &config, None, &prefix, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let r = d.stop();
    let rx = r.get("rx");
    assert!(
        rx > 100_000,
        "net_null should have delivered a flood, got {rx}: {:?}",
        r.counters
    );
    // net_null's frames are zero bytes: addressed to 00:00:00:00:00:00.
    assert_eq!(r.get("drop.not_our_mac"), rx, "{:?}", r.counters);
    assert_eq!(r.get("drop.worker"), rx);
    assert_eq!(r.get("drop.total"), rx, "control lost nothing");
    assert_eq!(
        r.get("port.junk.rx_nombuf"),
        0,
        "mbufs leaked: {:?}",
        r.counters
    );
    assert!(r.get("port.junk.ipackets") >= rx);
    // The worker's TSC count: a drop costs tens to hundreds of cycles, not
    // none and not a millisecond's worth.
    let cpp = r.get("cycles_per_packet");
    assert!(r.get("tsc_hz") > 100_000_000, "{:?}", r.counters);
    assert!(
        (5..100_000).contains(&cpp),
        "cycles per packet {cpp}: {:?}",
        r.counters
    );
    assert_eq!(cpp, r.get("busy_cycles") / rx);
    let _ = std::fs::remove_dir_all(&dir);
}
