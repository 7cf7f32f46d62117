//! Where frames for Sluice's own addresses go: what is for a port's own
//! interface addresses and not the data plane's goes to the port's kernel
//! interface (the exception path, `Fate::Punt`), ARP and ND it acts on are
//! copied there, replies to health probes go to the prober, and everything
//! the data plane answers itself (echo, frontends) stays.

use super::test_net::{neigh, EXT, EXT_MAC, GW_MAC, INT, INT_MAC};
use super::*;
use crate::craft::{self, Example};
use crate::wire::tcp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Keeps the copies the pipeline hands the kernel.
#[derive(Default)]
struct Copies(Vec<(PortIndex, Vec<u8>)>);
impl Slowpath for Copies {
    fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
    fn copy_to_kernel(&mut self, port: PortIndex, frame: &[u8]) -> bool {
        self.0.push((port, frame.to_vec()));
        true
    }
}

/// The LB example with kernel interfaces on both ports, or on none.
fn example(kernel: bool) -> Example {
    let mut ex = Example::lb(1024);
    for p in &mut ex.dataplane.ports {
        p.kernel = kernel;
    }
    ex
}

fn send(ex: &Example, port: PortIndex, frame: Vec<u8>) -> (Fate, Copies) {
    let n = neigh();
    let len = frame.len();
    let mut room = frame;
    room.resize(2048, 0);
    let (mut copies, mut c) = (Copies::default(), Counters::default());
    let fate = process(ex.cx(&n, 7), port, &mut room, len, &mut copies, &mut c);
    (fate, copies)
}

fn bgp_syn(dst: Ipv4Addr) -> Vec<u8> {
    let gw = Ipv4Addr::new(203, 0, 113, 254);
    craft::tcp_v4(
        GW_MAC,
        EXT_MAC,
        (gw, 40000),
        (dst, 179),
        tcp::Flags::SYN,
        1,
        0,
    )
}

#[test]
fn bgp_to_a_port_address_goes_to_its_kernel_interface() {
    let own = Ipv4Addr::new(203, 0, 113, 1);
    assert_eq!(send(&example(true), EXT, bgp_syn(own)).0, Fate::Punt);
    // Without one it is dropped as before.
    assert_eq!(
        send(&example(false), EXT, bgp_syn(own)).0,
        Fate::Drop(DropReason::NoService)
    );
    // A frontend address is the data plane's alone: the kernel has no such
    // address.
    let frontend = Ipv4Addr::new(203, 0, 113, 10);
    assert_ne!(send(&example(true), EXT, bgp_syn(frontend)).0, Fate::Punt);
}

#[test]
fn bfd_and_ipv6_bgp_are_punted_too() {
    let ex = example(true);
    let gw = Ipv4Addr::new(203, 0, 113, 254);
    let own = Ipv4Addr::new(203, 0, 113, 1);
    let bfd = craft::udp_v4(GW_MAC, EXT_MAC, (gw, 49152), (own, 3784), &[0x20; 24]);
    assert_eq!(send(&ex, EXT, bfd).0, Fate::Punt);
    let (gw6, own6): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:1::fe".parse().unwrap(),
        "2001:db8:1::1".parse().unwrap(),
    );
    let syn6 = craft::tcp_ip(
        GW_MAC,
        EXT_MAC,
        (gw6.into(), 40000),
        (own6.into(), 179),
        tcp::Flags::SYN,
        (1, 0),
        &[],
    );
    assert_eq!(send(&ex, EXT, syn6).0, Fate::Punt);
}

#[test]
fn echo_and_probe_replies_stay_in_the_data_plane() {
    let ex = example(true);
    let gw = Ipv4Addr::new(203, 0, 113, 254);
    let own = Ipv4Addr::new(203, 0, 113, 1);
    let ping = craft::echo_request_v4(GW_MAC, EXT_MAC, gw, own, 1, 1, b"x");
    assert!(matches!(send(&ex, EXT, ping).0, Fate::Tx { port: EXT, .. }));
    // The kernel's own ping is answered by the router: that reply is its.
    let mut reply = craft::echo_request_v4(GW_MAC, EXT_MAC, gw, own, 1, 1, b"x");
    let icmp = crate::wire::ethernet::HEADER_LEN + 20;
    reply[icmp] = 0;
    reply[icmp + 2] = 0;
    reply[icmp + 3] = 0;
    let sum = crate::wire::checksum::checksum(&reply[icmp..]);
    reply[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(send(&ex, EXT, reply).0, Fate::Punt);
    // A member's answer to a health probe goes to the prober.
    let (member, int) = (Ipv4Addr::new(10, 0, 0, 11), Ipv4Addr::new(10, 0, 0, 1));
    let probe = craft::tcp_v4(
        super::test_net::member_mac(member.into()),
        INT_MAC,
        (member, 80),
        (int, *PROBE_PORTS.start()),
        tcp::Flags::SYN | tcp::Flags::ACK,
        1,
        1,
    );
    assert_eq!(send(&ex, INT, probe).0, Fate::Probe);
}

#[test]
fn arp_for_a_port_address_is_answered_and_copied_to_the_kernel() {
    let ex = example(true);
    let asker = Ipv4Addr::new(203, 0, 113, 254);
    let request = craft::arp_request(GW_MAC, asker, Ipv4Addr::new(203, 0, 113, 1));
    let (fate, copies) = send(&ex, EXT, request.clone());
    assert!(matches!(fate, Fate::Tx { port: EXT, .. }));
    assert_eq!(copies.0, vec![(EXT, request)], "the request as received");
    // For a frontend address the kernel has nothing to learn.
    let request = craft::arp_request(GW_MAC, asker, Ipv4Addr::new(203, 0, 113, 10));
    let (fate, copies) = send(&ex, EXT, request);
    assert!(matches!(fate, Fate::Tx { .. }));
    assert!(copies.0.is_empty());
    // Without a kernel interface nothing is copied.
    let request = craft::arp_request(GW_MAC, asker, Ipv4Addr::new(203, 0, 113, 1));
    assert!(send(&example(false), EXT, request).1 .0.is_empty());
}

#[test]
fn neighbour_solicitations_for_a_port_address_are_copied() {
    let ex = example(true);
    let asker: Ipv6Addr = "2001:db8:1::fe".parse().unwrap();
    let ns = craft::neighbor_solicit(GW_MAC, asker, "2001:db8:1::1".parse().unwrap());
    let (fate, copies) = send(&ex, EXT, ns.clone());
    assert!(matches!(fate, Fate::Tx { port: EXT, .. }));
    assert_eq!(copies.0, vec![(EXT, ns)]);
    // The kernel's link-local address is the kernel's: its solicitation
    // goes there whole.
    let ll: Ipv6Addr = "fe80::1".parse().unwrap();
    let ns = craft::neighbor_solicit(GW_MAC, asker, ll);
    assert_eq!(send(&ex, EXT, ns.clone()).0, Fate::Punt);
    assert_eq!(
        send(&example(false), EXT, ns).0,
        Fate::Drop(DropReason::NdNotOurs)
    );
}

#[test]
fn probe_replies_go_to_the_prober_and_nothing_else_does() {
    let reply = |dst: &str, dport: u16, mac: MacAddr| {
        craft::tcp_v4(
            MacAddr([2, 0, 0, 0, 0, 0x11]),
            mac,
            (Ipv4Addr::new(10, 0, 0, 11), 80),
            (dst.parse().unwrap(), dport),
            tcp::Flags::SYN | tcp::Flags::ACK,
            7,
            1,
        )
    };
    for port in [*PROBE_PORTS.start(), 61500, *PROBE_PORTS.end()] {
        let fate = send(&example(false), INT, reply("10.0.0.1", port, INT_MAC)).0;
        assert_eq!(fate, Fate::Probe, "port {port}");
    }
    // Outside the range, or to an address that is not an internal port's
    // own: not a probe reply.
    for (dst, port, rx, mac) in [
        ("10.0.0.1", PROBE_PORTS.start() - 1, INT, INT_MAC),
        ("10.0.0.1", PROBE_PORTS.end() + 1, INT, INT_MAC),
        ("203.0.113.1", 61000, EXT, EXT_MAC),
        ("203.0.113.10", 61000, EXT, EXT_MAC),
    ] {
        let fate = send(&example(true), rx, reply(dst, port, mac)).0;
        assert_ne!(fate, Fate::Probe, "{dst}:{port}");
    }
}
