//! Writes the fuzzers' seed corpus: one file per frame a client, a member or
//! a router sends to the fuzz targets' example (`craft::Example::lb6_snat`),
//! so that the fuzzers start from frames that reach every part of the
//! pipeline: both families, TCP, UDP, ICMP and ICMPv6 errors about flows,
//! echo, ARP and neighbour discovery, IPv6 extension-header chains,
//! fragments of both families on HA ports, and a datagram too big for its egress.
//!
//! `cargo run -p sluice-core --example fuzz_seeds -- DIR`; the first byte of
//! each file is the fuzz target's port byte (bit 0: the internal port).
//! Used by `scripts/fuzz.sh`. It also prints the fate each seed gets, in
//! order, through the fuzz target's example.

use sluice_core::craft::{self, EXAMPLE_EXT_MAC, EXAMPLE_INT_MAC};
use sluice_core::neigh::PortIndex;
use sluice_core::pipeline::{process_burst, Counters, Fate, Slowpath};
use sluice_core::wire::{checksum, tcp, IpProtocol, MacAddr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
const EXT: u8 = 0;
const INT: u8 = 1;

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().expect("address"))
}

/// IPv4 `frame` with flags/offset word `ff`, checksum fixed.
fn with_frag_v4(mut frame: Vec<u8>, ff: u16) -> Vec<u8> {
    frame[14 + 6..14 + 8].copy_from_slice(&ff.to_be_bytes());
    frame[14 + 10..14 + 12].fill(0);
    let cs = checksum::checksum(&frame[14..34]);
    frame[14 + 10..14 + 12].copy_from_slice(&cs.to_be_bytes());
    frame
}

/// An ICMP error (`kind`, `code`, 4 bytes `rest`) from `router` to `to`,
/// quoting `quoted` (an IP packet), checksummed for its family.
fn icmp_error(router: IpAddr, to: IpAddr, kind: u8, rest: [u8; 4], quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![
        kind,
        if router.is_ipv4() && kind == 3 { 4 } else { 0 },
        0,
        0,
    ];
    m.extend_from_slice(&rest);
    m.extend_from_slice(quoted);
    let (proto, sum) = if router.is_ipv4() {
        (IpProtocol::Icmp, checksum::checksum(&m))
    } else {
        let pseudo = craft::pseudo_header(router, to, 58, m.len() as u32);
        let s = checksum::combine(pseudo, checksum::sum(&m));
        (IpProtocol::Icmpv6, !checksum::fold(s))
    };
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    craft::ip_frame(PEER, EXAMPLE_EXT_MAC, router, to, proto, &m)
}

fn seeds() -> Vec<(&'static str, u8, Vec<u8>)> {
    let client = v4([198, 51, 100, 7]);
    let web = v4([203, 0, 113, 10]);
    let client6 = v6("2001:db8:9::7");
    let web6 = v6("2001:db8:1::10");
    let member = v4([10, 0, 0, 11]);
    let ilb = v4([10, 0, 0, 100]);
    let syn = tcp::Flags::SYN;
    let ack = tcp::Flags::ACK;
    let tcp_in = |c, f, flags| {
        craft::tcp_ip(
            PEER,
            EXAMPLE_EXT_MAC,
            (c, 40000),
            (f, 80),
            flags,
            (1000, 0),
            b"",
        )
    };
    let reply = |f, c| {
        craft::tcp_ip(
            PEER,
            EXAMPLE_INT_MAC,
            (f, 80),
            (c, 40000),
            ack,
            (1, 1001),
            b"x",
        )
    };
    let big_udp = craft::udp_ip(PEER, EXAMPLE_EXT_MAC, (client, 5353), (web, 53), &[9; 1600]);
    let ha_udp = craft::udp_ip(PEER, EXAMPLE_INT_MAC, (member, 7000), (ilb, 7000), &[1; 64]);
    let frag6 = |off_m: u16| {
        let (m6, ilb6) = (v6("2001:db8:2::22"), v6("2001:db8:2::100"));
        let f = craft::udp_ip(PEER, EXAMPLE_INT_MAC, (m6, 7000), (ilb6, 7000), &[3; 48]);
        let mut h = vec![0, 0];
        h.extend_from_slice(&off_m.to_be_bytes());
        h.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        craft::with_ext_headers(&f, &[(44, h)])
    };
    let quoted_v4 = reply(web, client)[14..14 + 28].to_vec();
    let quoted_v6 = reply(web6, client6)[14..14 + 48].to_vec();
    let router = v4([198, 51, 100, 1]);
    let router6 = v6("2001:db8:9::1");
    let own = Ipv4Addr::new(203, 0, 113, 1);
    let own6: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    vec![
        ("tcp4-syn", EXT, tcp_in(client, web, syn)),
        ("tcp4-ack", EXT, tcp_in(client, web, ack)),
        ("tcp4-reply", INT, reply(member, client)),
        (
            "udp4",
            EXT,
            craft::udp_ip(PEER, EXAMPLE_EXT_MAC, (client, 5353), (web, 53), b"q"),
        ),
        ("udp4-no-df-too-big", EXT, big_udp),
        (
            "snat4-syn",
            INT,
            craft::tcp_ip(
                PEER,
                EXAMPLE_INT_MAC,
                (member, 40000),
                (v4([192, 0, 2, 9]), 443),
                syn,
                (1, 0),
                b"",
            ),
        ),
        (
            "ha4-first-fragment",
            INT,
            with_frag_v4(ha_udp.clone(), 0x2000),
        ),
        ("ha4-later-fragment", INT, with_frag_v4(ha_udp, 8)),
        (
            "icmp4-echo",
            EXT,
            craft::echo_request_v4(
                PEER,
                EXAMPLE_EXT_MAC,
                Ipv4Addr::new(198, 51, 100, 7),
                own,
                1,
                1,
                b"ping",
            ),
        ),
        (
            "icmp4-frag-needed",
            EXT,
            icmp_error(router, web, 3, [0, 0, 5, 0xdc], &quoted_v4),
        ),
        (
            "icmp4-time-exceeded",
            EXT,
            icmp_error(router, web, 11, [0; 4], &quoted_v4),
        ),
        (
            "arp-request",
            EXT,
            craft::arp_request(PEER, Ipv4Addr::new(203, 0, 113, 254), own),
        ),
        ("tcp6-syn", EXT, tcp_in(client6, web6, syn)),
        (
            "tcp6-ext-headers",
            EXT,
            craft::with_ext_headers(
                &tcp_in(client6, web6, syn),
                &[
                    (0, vec![0, 0, 1, 4, 0, 0, 0, 0]),
                    (60, vec![0, 0, 1, 4, 0, 0, 0, 0]),
                ],
            ),
        ),
        (
            "udp6",
            EXT,
            craft::udp_ip(PEER, EXAMPLE_EXT_MAC, (client6, 5353), (web6, 53), b"q"),
        ),
        ("ha6-first-fragment", INT, frag6(1)),
        ("ha6-later-fragment", INT, frag6(8 << 3)),
        (
            "icmp6-echo",
            EXT,
            craft::echo_request_v6(
                PEER,
                EXAMPLE_EXT_MAC,
                "2001:db8:9::7".parse().unwrap(),
                own6,
                1,
                1,
                b"ping",
            ),
        ),
        (
            "icmp6-packet-too-big",
            EXT,
            icmp_error(router6, web6, 2, 1280u32.to_be_bytes(), &quoted_v6),
        ),
        (
            "icmp6-unreachable",
            EXT,
            icmp_error(router6, web6, 1, [0; 4], &quoted_v6),
        ),
        (
            "nd-solicit",
            EXT,
            craft::neighbor_solicit(PEER, "fe80::fe".parse().unwrap(), own6),
        ),
    ]
}

struct Sink;
impl Slowpath for Sink {
    fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: fuzz_seeds DIR");
    std::fs::create_dir_all(&dir).expect("creating the seed directory");
    let ex = craft::Example::lb6_snat(1 << 16, 1);
    let neigh = craft::example_neigh();
    for (name, port, frame) in seeds() {
        let mut bytes = vec![port];
        bytes.extend_from_slice(&frame);
        std::fs::write(format!("{dir}/{name}"), bytes).expect("writing a seed");
        let len = frame.len();
        let mut room = frame;
        room.resize(2048, 0);
        let mut fates = [Fate::Consumed];
        let mut c = Counters::default();
        let p = PortIndex::from(port);
        process_burst(
            ex.cx(&neigh, 0),
            p,
            &mut [(room, len)],
            &mut fates,
            &mut Sink,
            &mut c,
        );
        println!("{name:24} {:?}", fates[0]);
    }
}
