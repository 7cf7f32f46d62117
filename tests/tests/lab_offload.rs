//! RX checksum offload on a port that has it (net_tap verifies IPv4 header
//! checksums for the PMD): sluiced enables it and says so, a tracked
//! flow's datagram with a broken IPv4 header checksum is still dropped
//! (`ipv4_bad_checksum`: the fast path trusts only a frame the port
//! flagged good), and the same flow's good datagrams are forwarded.

use sluice_tests::lab::{Lab, CLIENT, FRONTEND, UDP_9000};

#[test]
fn a_port_with_rx_checksum_offload_still_drops_a_bad_header() {
    let lab = Lab::new(1);
    lab.server(&lab.backend(0), &["udp", "9000", "b1"]);
    assert!(lab.wait_until(&lab.backend(0), "ss -lun | grep -q ':9000 '", 10));
    let (text, prefix) = lab.config(UDP_9000);
    let d = lab.start_sluiced_with(&Lab::ext_on_tap(&text), &prefix);
    lab.bridge_tap();
    let script = sluice_tests::workspace().join("tests/data/raw_udp.py");
    let out = lab.exec(
        &lab.client(),
        &[
            "python3",
            script.to_str().unwrap(),
            FRONTEND,
            "9000",
            CLIENT,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let r = d.stop();
    let line = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or("missing")
            .to_string()
    };
    assert!(
        line("first").starts_with("b1 "),
        "no flow: {text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        r.log
    );
    assert_eq!(line("bad"), "none", "a broken header was forwarded: {text}");
    assert!(line("good").starts_with("b1 "), "{text}\n{}", r.log);
    assert!(r.get("drop.ipv4_bad_checksum") >= 1, "{}", r.log);
    assert!(
        r.log.contains("RX IPv4 checksum offload on") && r.log.contains("net_tap0"),
        "the tap port's offload was not enabled:\n{}",
        r.log
    );
}
