//! sluiced on the wire: two net_memif ports, sluice-gen playing the clients
//! on the external one and the backend (answering ARP) on the internal one.
//! Inbound UDP through a load-balancing rule arrives, counted at both ends.
//! On memif the peer decides how many rings exist, so the TX queue control
//! would own has no ring behind it: control's frames (the ARP request for
//! the backend) must fall back to worker 0, or nothing would ever resolve.

use sluice_tests::daemon::Daemon;
use std::process::Command;
use std::time::Duration;

fn field(json: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    rest[..rest.find([',', '}']).unwrap()].parse().unwrap()
}

#[test]
fn inbound_udp_through_sluiced_on_memif_arrives_whole() {
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("sluice-wire-{id}"));
    // conf/memif-bench.toml's socket paths, under this test's directory.
    let (ext, int) = (dir.join("ext.sock"), dir.join("int.sock"));
    let prefix = format!("slwire{id}");
    let config = std::fs::read_to_string(sluice_tests::workspace().join("conf/memif-bench.toml"))
        .unwrap()
        .replace("/tmp/sluice-bench", &dir.display().to_string())
        .replace(
            "--file-prefix=sluice-bench",
            &format!("--file-prefix={prefix}"),
        );
    assert!(
        config.contains(&prefix),
        "conf/memif-bench.toml changed shape"
    );
    let d = Daemon::start(&dir.join("daemon"), &config, None, &prefix, &[]);
    let gen = sluice_tests::sluiced_path().with_file_name("sluice-gen");
    let out = Command::new(&gen)
        .arg(format!(
            "--eal=--lcores=0@0 --no-huge -m 256 --no-pci --file-prefix=slwiregen{id} \
             --vdev=net_memif0,role=client,socket={} --vdev=net_memif1,role=client,socket={}",
            ext.display(),
            int.display()
        ))
        .args(["--tx", "net_memif0", "--rx", "net_memif1"])
        .args(["--dst-mac", "02:00:00:00:00:01", "--src", "203.0.113.100"])
        .args(["--answer-arp", "10.0.0.11", "--flows", "1000"])
        .args(["--rate", "200000", "--seconds", "2"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let r = d.stop();
    let _ = std::fs::remove_dir_all(
        std::path::Path::new("/var/run/dpdk").join(format!("slwiregen{id}")),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout.lines().find(|l| l.starts_with('{')).expect("JSON");
    let (offered, received) = (field(json, "offered"), field(json, "received"));
    assert!(field(json, "arp_answered") >= 1.0, "{json}");
    // The first frames wait for the backend's ARP answer (16 per next hop).
    assert!(received >= 0.99 * offered, "{json}\n{:?}", r.counters);
    assert_eq!(field(json, "bad_sampled"), 0.0, "{json}");
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
