//! Golden test on net_pcap (ARP reply, ICMP echo reply, neighbour
//! advertisement, and the gratuitous ARP and unsolicited advertisement of
//! the start): an input capture built here goes through a real
//! sluiced, and the output capture is compared byte by byte with replies
//! written out literally (checksums computed independently, not by Sluice).

use sluice_core::craft;
use sluice_core::wire::MacAddr;
use sluice_tests::daemon::Daemon;
use sluice_tests::pcap;
use std::net::Ipv4Addr;

/// net_pcap gives port 0 this MAC ("pcap" in ASCII, then the port id).
const SLUICE_MAC: MacAddr = MacAddr([0x02, 0x70, 0x63, 0x61, 0x70, 0x00]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x64]);

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[rustfmt::skip]
const ARP_REPLY: [u8; 60] = [
    // Ethernet: to the client, from Sluice, ARP
    0x02, 0x00, 0x00, 0x00, 0x00, 0x64,  0x02, 0x70, 0x63, 0x61, 0x70, 0x00,  0x08, 0x06,
    // ARP: Ethernet/IPv4, reply
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
    // sender: Sluice's MAC, 203.0.113.1
    0x02, 0x70, 0x63, 0x61, 0x70, 0x00,  203, 0, 113, 1,
    // target: the client
    0x02, 0x00, 0x00, 0x00, 0x00, 0x64,  203, 0, 113, 100,
    // padding, as received
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[rustfmt::skip]
const ECHO_REPLY: [u8; 60] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x64,  0x02, 0x70, 0x63, 0x61, 0x70, 0x00,  0x08, 0x00,
    // IPv4: 44 bytes, TTL 64, ICMP, checksum 0x026b, 203.0.113.1 -> 203.0.113.100
    0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0x02, 0x6b,
    203, 0, 113, 1,  203, 0, 113, 100,
    // ICMP echo reply, checksum 0xb8b6, id 0x1234, seq 1, data
    0x00, 0x00, 0xb8, 0xb6, 0x12, 0x34, 0x00, 0x01,
    b's', b'l', b'u', b'i', b'c', b'e', b'-', b'p', b'c', b'a', b'p', b'-', b't', b'e', b's', b't',
    // padding
    0, 0,
];

#[rustfmt::skip]
const NEIGHBOR_ADVERT: [u8; 86] = [
    // Ethernet: to the client, from Sluice, IPv6
    0x02, 0x00, 0x00, 0x00, 0x00, 0x64,  0x02, 0x70, 0x63, 0x61, 0x70, 0x00,  0x86, 0xdd,
    // IPv6: payload 32, ICMPv6, hop limit 255, 2001:db8:1::1 -> 2001:db8:1::100
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
    // NA, checksum 0xb5a1, flags solicited + override, target 2001:db8:1::1
    0x88, 0x00, 0xb5, 0xa1, 0x60, 0x00, 0x00, 0x00,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01,
    // target link-layer address option: Sluice's MAC
    0x02, 0x01, 0x02, 0x70, 0x63, 0x61, 0x70, 0x00,
];

/// What sluiced announces at start: a gratuitous ARP for 203.0.113.1.
#[rustfmt::skip]
const GRATUITOUS_ARP: [u8; 60] = [
    // Ethernet: broadcast, from Sluice, ARP
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  0x02, 0x70, 0x63, 0x61, 0x70, 0x00,  0x08, 0x06,
    // ARP: Ethernet/IPv4, request
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
    // sender: Sluice's MAC, 203.0.113.1
    0x02, 0x70, 0x63, 0x61, 0x70, 0x00,  203, 0, 113, 1,
    // target: no MAC, the same address
    0, 0, 0, 0, 0, 0,  203, 0, 113, 1,
    // padding
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// ... and an unsolicited neighbour advertisement for 2001:db8:1::1.
#[rustfmt::skip]
const UNSOLICITED_ADVERT: [u8; 86] = [
    // Ethernet: all-nodes multicast, from Sluice, IPv6
    0x33, 0x33, 0x00, 0x00, 0x00, 0x01,  0x02, 0x70, 0x63, 0x61, 0x70, 0x00,  0x86, 0xdd,
    // IPv6: payload 32, ICMPv6, hop limit 255
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01,
    0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01,
    // NA, checksum 0x2558 (computed with Python over the pseudo-header),
    // override only, target 2001:db8:1::1
    0x88, 0x00, 0x25, 0x58, 0x20, 0x00, 0x00, 0x00,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01,
    // target link-layer address option: Sluice's MAC
    0x02, 0x01, 0x02, 0x70, 0x63, 0x61, 0x70, 0x00,
];

#[test]
fn arp_and_echo_replies_are_exact() {
    let dir = std::env::temp_dir().join(format!("sluice-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.pcap"), dir.join("out.pcap"));
    let client = v4("203.0.113.100");
    let frames = vec![
        craft::arp_request(CLIENT_MAC, client, v4("203.0.113.1")),
        craft::arp_request(CLIENT_MAC, client, v4("203.0.113.77")),
        craft::echo_request_v4(
            CLIENT_MAC,
            SLUICE_MAC,
            client,
            v4("203.0.113.1"),
            0x1234,
            1,
            b"sluice-pcap-test",
        ),
        craft::echo_request_v4(
            CLIENT_MAC,
            SLUICE_MAC,
            client,
            v4("203.0.113.77"),
            0x1234,
            2,
            b"not-ours",
        ),
        vec![0xde, 0xad, 0xbe, 0xef],
        craft::neighbor_solicit(
            CLIENT_MAC,
            "2001:db8:1::100".parse().unwrap(),
            "2001:db8:1::1".parse().unwrap(),
        ),
    ];
    pcap::write(&input, &frames).unwrap();
    let prefix = format!("slpcap{}", std::process::id());
    let config = format!(
        r#"
[dpdk]
eal_args = ["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix={prefix}",
            "--vdev=net_pcap0,rx_pcap={},tx_pcap={}"]
workers = [1]
mbufs = 2047
[[port]]
name = "ext"
device = "net_pcap0"
role = "external"
addresses = ["203.0.113.1/24", "2001:db8:1::1/64"]
{}
"#,
        input.display(),
        output.display(),
        sluice_tests::control_section(&dir).0
    );
    let d = Daemon::start(&dir.join("daemon"), &config, None, &prefix, &[]);
    assert!(
        d.log().contains("mac=02:70:63:61:70:00"),
        "net_pcap's MAC changed:\n{}",
        d.log()
    );
    // Give the worker and control a moment to drain the five frames.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let r = d.stop();
    let out = pcap::read(&output).unwrap();
    assert_eq!(
        out.len(),
        5,
        "expected exactly the two announcements and the ARP, echo and NA replies, got {out:02x?}"
    );
    // The announcements, to everyone, come first.
    let to_all = |f: &&Vec<u8>| f[0] == 0xff || f[0] == 0x33;
    let announced: Vec<&Vec<u8>> = out.iter().filter(to_all).collect();
    assert_eq!(announced.len(), 2, "{out:02x?}");
    assert!(
        announced.contains(&&GRATUITOUS_ARP.to_vec()),
        "{announced:02x?}"
    );
    assert!(
        announced.contains(&&UNSOLICITED_ADVERT.to_vec()),
        "{announced:02x?}"
    );
    let out: Vec<&Vec<u8>> = out.iter().filter(|f| !to_all(f)).collect();
    let arp = out
        .iter()
        .find(|f| f[12..14] == [0x08, 0x06])
        .expect("an ARP reply");
    let echo = out
        .iter()
        .find(|f| f[12..14] == [0x08, 0x00])
        .expect("an echo reply");
    assert_eq!(arp.as_slice(), &ARP_REPLY[..]);
    assert_eq!(echo.as_slice(), &ECHO_REPLY[..]);
    let na = out
        .iter()
        .find(|f| f[12..14] == [0x86, 0xdd])
        .expect("a neighbour advertisement");
    assert_eq!(na.as_slice(), &NEIGHBOR_ADVERT[..]);
    assert_eq!(r.get("rx"), 6);
    assert_eq!(r.get("drop.arp_not_ours"), 1);
    assert_eq!(r.get("drop.no_rule"), 1);
    assert_eq!(r.get("drop.runt"), 1);
    assert_eq!(r.get("control.announced"), 2);
    // The workers sent the three replies; control the announcements, on
    // its own TX queue or through worker 0.
    assert_eq!(r.get("tx") + r.get("control.tx_own"), 5, "{:?}", r.counters);
    // The device's own counters agree, per port and per queue.
    assert_eq!(r.get("port.ext.ipackets"), 6, "{:?}", r.counters);
    assert_eq!(r.get("port.ext.opackets"), 5);
    assert_eq!(r.get("port.ext.rxq0.packets"), 6);
    assert_eq!(
        r.get("port.ext.txq0.packets") + r.get("port.ext.txq1.packets"),
        5
    );
    let _ = std::fs::remove_dir_all(&dir);
}
