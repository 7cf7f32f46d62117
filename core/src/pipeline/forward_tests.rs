//! Forwarding tests: frames built by `craft`, sent through `process` with
//! the LB example config, checked field by field with full checksum
//! recomputation.

use super::*;
use crate::craft::{self, Example};
use crate::neigh::NeighView;
use crate::wire::{checksum, icmpv4, ipv4, tcp, udp, MacAddr};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

const EXT_MAC: MacAddr = craft::EXAMPLE_EXT_MAC;
const INT_MAC: MacAddr = craft::EXAMPLE_INT_MAC;
const GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
const EXT: PortIndex = PortIndex::new(0);
const INT: PortIndex = PortIndex::new(1);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn member_mac(a: Ipv4Addr) -> MacAddr {
    MacAddr([2, 0, 0, 0, 1, a.octets()[3]])
}

fn neigh() -> NeighView {
    let mut v = vec![(EXT, IpAddr::V4(ip("203.0.113.254")), GW_MAC)];
    for m in 11..=13 {
        let a = Ipv4Addr::new(10, 0, 0, m);
        v.push((INT, IpAddr::V4(a), member_mac(a)));
    }
    NeighView::with_entries(v)
}

struct Out {
    fate: Fate,
    frame: Vec<u8>,
    c: Counters,
}

fn send(ex: &Example, port: PortIndex, frame: Vec<u8>) -> Out {
    send_on(ex, port, frame, 0)
}

/// [`send`] as worker `worker` (its slice of SNAT ports).
fn send_on(ex: &Example, port: PortIndex, frame: Vec<u8>, worker: usize) -> Out {
    struct Nop;
    impl Slowpath for Nop {
        fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
            true
        }
    }
    let n = neigh();
    let len = frame.len();
    let mut room = frame;
    room.resize(2048, 0);
    let mut c = Counters::default();
    let cx = Context {
        worker,
        ..ex.cx(&n, 7)
    };
    let fate = process(cx, port, &mut room, len, &mut Nop, &mut c);
    // A reply Sluice built in place may be longer than what came in.
    let sent = match fate {
        Fate::Tx { len, .. } => usize::from(len),
        _ => 0,
    };
    room.truncate(len.max(sent));
    Out {
        fate,
        frame: room,
        c,
    }
}

/// Parses an IPv4 TCP/UDP frame, asserting every checksum.
fn parsed(f: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16, u8) {
    let ip4 = ipv4::Packet::new_checked(&f[14..]).unwrap();
    assert!(ip4.verify_checksum(), "IPv4 header checksum");
    let (s, d) = (ip4.src_addr(), ip4.dst_addr());
    let p = ip4.payload();
    let pseudo = checksum::pseudo_header_v4(s, d, u8::from(ip4.protocol()), p.len() as u32);
    match u8::from(ip4.protocol()) {
        6 => {
            let t = tcp::Packet::new_checked(p).unwrap();
            assert!(t.verify_checksum(pseudo), "TCP checksum");
            (s, t.src_port(), d, t.dst_port(), ip4.ttl())
        }
        17 => {
            let u = udp::Packet::new_checked(p).unwrap();
            assert!(u.verify_checksum(pseudo), "UDP checksum");
            (s, u.src_port(), d, u.dst_port(), ip4.ttl())
        }
        _ => (s, 0, d, 0, ip4.ttl()),
    }
}

fn syn(client: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<u8> {
    craft::tcp_v4(GW_MAC, EXT_MAC, client, dst, tcp::Flags::SYN, 1000, 0)
}

/// Member `d`'s SYN-ACK (port 8080) to `client`'s SYN of [`syn`].
fn syn_ack(d: Ipv4Addr, client: (Ipv4Addr, u16)) -> Vec<u8> {
    craft::tcp_v4(
        member_mac(d),
        INT_MAC,
        (d, 8080),
        client,
        tcp::Flags::SYN | tcp::Flags::ACK,
        9000,
        1001,
    )
}

#[test]
fn a_syn_creates_a_flow_to_a_member_and_the_reply_comes_back_from_the_frontend() {
    let ex = Example::lb(64);
    let client = (ip("198.51.100.7"), 40000);
    let fe = (ip("203.0.113.10"), 80);
    let o = send(&ex, EXT, syn(client, fe));
    let Fate::Tx { port: INT, .. } = o.fate else {
        panic!("{:?}", o.fate)
    };
    assert_eq!(o.c.stat(Stat::FlowsCreated), 1);
    let (s, sp, d, dp, ttl) = parsed(&o.frame);
    assert_eq!((s, sp), client, "client address and port preserved");
    assert!(d == ip("10.0.0.11") || d == ip("10.0.0.12"), "{d}");
    assert_eq!((dp, ttl), (8080, 63));
    assert_eq!(&o.frame[0..6], &member_mac(d).0);
    assert_eq!(&o.frame[6..12], &INT_MAC.0);

    let reply = syn_ack(d, client);
    let o = send(&ex, INT, reply);
    assert!(matches!(o.fate, Fate::Tx { port: EXT, .. }), "{:?}", o.fate);
    assert_eq!(parsed(&o.frame), (fe.0, fe.1, client.0, client.1, 63));
    assert_eq!(&o.frame[0..6], &GW_MAC.0, "to the client via the gateway");
    let (idx, _) = ex
        .flows
        .lookup(&crate::flow::FlowKey {
            src: client.0,
            dst: fe.0,
            sport: client.1,
            dport: fe.1,
            proto: 6,
        })
        .unwrap();
    assert_eq!(
        ex.flows.entry(idx).tcp_state(),
        crate::flow::tcp::State::SynRecv
    );
}

#[test]
fn forwarded_packets_count_per_rule_and_direction() {
    let ex = Example::lb(64);
    let client = (ip("198.51.100.7"), 40001);
    let fe = (ip("203.0.113.10"), 80);
    let first = syn(client, fe);
    // The IP length, not the frame's: the crafted frame is padded to 60 bytes.
    let ip_len = usize::from(u16::from_be_bytes([first[16], first[17]]));
    assert!(ip_len < first.len() - 14);
    let o = send(&ex, EXT, first);
    let (_, _, d, ..) = parsed(&o.frame);
    let reply = syn_ack(d, client);
    assert!(matches!(send(&ex, INT, reply).fate, Fate::Tx { .. }));
    let ack = craft::tcp_v4(GW_MAC, EXT_MAC, client, fe, tcp::Flags::ACK, 1001, 9001);
    assert!(matches!(send(&ex, EXT, ack).fate, Fate::Tx { .. }));
    let key = crate::flow::FlowKey {
        src: client.0,
        dst: fe.0,
        sport: client.1,
        dport: fe.1,
        proto: 6,
    };
    let (idx, _) = ex.flows.lookup(&key).unwrap();
    // The flow's member's slot of its rule, and no other.
    let (rule, member) = ex.flows.entry(idx).ids();
    let services = &ex.services;
    let slot = services.traffic_slot(rule, member);
    let t = ex.traffic.read(slot);
    assert_eq!(t.packets, [2, 1]);
    assert_eq!(t.bytes, [2 * ip_len as u64, ip_len as u64]);
    assert_eq!(t.syns, [1, 1], "the SYN in, the SYN-ACK back");
    assert_eq!(t.flows, 1);
    let members = services.services[usize::from(rule)].members.len() as u16;
    assert!(members > 1, "the example pool has members to tell apart");
    for m in (0..members).filter(|m| *m != member) {
        let other = ex.traffic.read(services.traffic_slot(rule, m));
        assert_eq!(other, Default::default(), "member {m}");
    }
}

#[test]
fn tcp_without_a_flow_and_denied_ports_are_dropped_silently() {
    let ex = Example::lb(64);
    let c = (ip("198.51.100.7"), 40000);
    let ack = craft::tcp_v4(
        GW_MAC,
        EXT_MAC,
        c,
        (ip("203.0.113.10"), 80),
        tcp::Flags::ACK,
        1,
        1,
    );
    assert_eq!(send(&ex, EXT, ack).fate, Fate::Drop(DropReason::TcpNoFlow));
    // ssh-b2 (50001) exists but no security rule allows it on a public frontend.
    let o = send(&ex, EXT, syn(c, (ip("203.0.113.10"), 50001)));
    assert_eq!(o.fate, Fate::Drop(DropReason::SecurityDeny));
    let o = send(&ex, EXT, syn(c, (ip("203.0.113.10"), 81)));
    assert_eq!(o.fate, Fate::Drop(DropReason::NoService));
    // A stray reply from a member: no flow.
    let stray = craft::udp_v4(
        member_mac(ip("10.0.0.11")),
        INT_MAC,
        (ip("10.0.0.11"), 53),
        c,
        b"x",
    );
    // Headed off the internal network, and no outbound rule covers b1.
    assert_eq!(
        send(&ex, INT, stray).fate,
        Fate::Drop(DropReason::EgressDenied)
    );
    assert!(ex.flows.is_empty());
}

#[test]
fn ttl_that_would_reach_zero_gets_time_exceeded_before_a_flow_exists() {
    let ex = Example::lb(64);
    let mut f = syn((ip("198.51.100.7"), 40000), (ip("203.0.113.10"), 80));
    let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
    p.set_ttl(1);
    p.fill_checksum();
    let original = f[14..14 + 28].to_vec();
    let o = send(&ex, EXT, f);
    assert!(ex.flows.is_empty());
    let Fate::Tx { port: EXT, len } = o.fate else {
        panic!("{:?}", o.fate)
    };
    assert_eq!(o.c.stat(Stat::TimeExceededSent), 1);
    let frame = &o.frame[..usize::from(len)];
    assert_eq!(&frame[..6], &GW_MAC.0, "back towards the sender");
    let ip4 = ipv4::Packet::new_checked(&frame[14..]).unwrap();
    assert!(ip4.verify_checksum());
    assert_eq!(
        ip4.src_addr(),
        ip("203.0.113.1"),
        "from the port's own address"
    );
    assert_eq!(ip4.dst_addr(), ip("198.51.100.7"));
    let icmp = icmpv4::Packet::new_checked(ip4.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.msg_type(), icmpv4::Message::TimeExceeded);
    assert_eq!(&ip4.payload()[8..], &original[..], "IP header and 8 bytes");
}

#[test]
fn time_exceeded_is_rate_limited_per_worker() {
    let ex = Example::lb(64);
    let mut c = Counters::default();
    let n = neigh();
    let (mut sent, mut dropped) = (0, 0);
    for i in 0..50 {
        let mut f = syn((ip("198.51.100.7"), 40000 + i), (ip("203.0.113.10"), 80));
        let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
        p.set_ttl(1);
        p.fill_checksum();
        let len = f.len();
        f.resize(2048, 0);
        struct Nop;
        impl Slowpath for Nop {
            fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
                true
            }
        }
        // One clock tick for all 50: one window.
        match process(ex.cx(&n, 7), EXT, &mut f, len, &mut Nop, &mut c) {
            Fate::Tx { .. } => sent += 1,
            Fate::Drop(DropReason::TtlExceeded) => dropped += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((sent, dropped), (10, 40));
    assert_eq!(c.stat(Stat::TimeExceededSent), 10);
}

#[test]
fn a_full_table_fails_only_the_new_flow() {
    let ex = Example::lb(1);
    let fe = (ip("203.0.113.10"), 53);
    let a = craft::udp_v4(GW_MAC, EXT_MAC, (ip("198.51.100.7"), 1), fe, b"a");
    let b = craft::udp_v4(GW_MAC, EXT_MAC, (ip("198.51.100.8"), 1), fe, b"b");
    assert!(matches!(send(&ex, EXT, a.clone()).fate, Fate::Tx { .. }));
    assert_eq!(
        send(&ex, EXT, b).fate,
        Fate::Drop(DropReason::FlowTableFull)
    );
    assert!(
        matches!(send(&ex, EXT, a).fate, Fate::Tx { .. }),
        "the old flow goes on"
    );
}

#[test]
fn ha_ports_take_every_port_and_protocol_keeping_the_port() {
    let ex = Example::lb(64);
    let client = ip("10.0.0.50");
    let cmac = MacAddr([2, 0, 0, 0, 0, 0x50]);
    let ilb = ip("10.0.0.100");
    for port in [1u16, 443, 65535] {
        let f = craft::tcp_v4(
            cmac,
            INT_MAC,
            (client, 5555),
            (ilb, port),
            tcp::Flags::SYN,
            1,
            0,
        );
        let o = send(&ex, INT, f);
        assert!(matches!(o.fate, Fate::Tx { port: INT, .. }), "{:?}", o.fate);
        let (_, _, d, dp, _) = parsed(&o.frame);
        assert_eq!(dp, port);
        assert_ne!(d, ilb);
    }
    let gre = craft::ipv4(
        cmac,
        INT_MAC,
        client,
        ilb,
        crate::wire::IpProtocol::Unknown(47),
        &[0u8; 8],
    );
    let o = send(&ex, INT, gre);
    assert!(matches!(o.fate, Fate::Tx { port: INT, .. }), "{:?}", o.fate);
    // Echo to the frontend is answered, not balanced.
    let echo = craft::echo_request_v4(cmac, INT_MAC, client, ilb, 1, 1, b"");
    assert_eq!(send(&ex, INT, echo).c.stat(Stat::EchoReplies), 1);
}

#[test]
fn fragmentation_needed_from_a_member_reaches_the_client_translated() {
    let ex = Example::lb(64);
    let client = (ip("198.51.100.7"), 40000);
    let fe = (ip("203.0.113.10"), 80);
    let o = send(&ex, EXT, syn(client, fe));
    let (_, _, member, _, _) = parsed(&o.frame);
    // The member quotes the packet it got (client -> member:8080).
    let quoted = &o.frame[14..14 + 28];
    let mut icmp = vec![3u8, 4, 0, 0, 0, 0, 0x05, 0xdc];
    icmp.extend_from_slice(quoted);
    icmpv4::Packet::new_unchecked(&mut icmp[..]).fill_checksum();
    let err = craft::ipv4(
        member_mac(member),
        INT_MAC,
        member,
        client.0,
        crate::wire::IpProtocol::Icmp,
        &icmp,
    );
    let o = send(&ex, INT, err);
    assert!(matches!(o.fate, Fate::Tx { port: EXT, .. }), "{:?}", o.fate);
    assert_eq!(o.c.stat(Stat::IcmpTranslated), 1);
    let outer = ipv4::Packet::new_checked(&o.frame[14..]).unwrap();
    assert!(outer.verify_checksum());
    assert_eq!((outer.src_addr(), outer.dst_addr()), (fe.0, client.0));
    let ic = icmpv4::Packet::new_checked(outer.payload()).unwrap();
    assert!(ic.verify_checksum());
    assert_eq!((ic.code(), ic.next_hop_mtu()), (4, 1500));
    // The quote is cut after 8 bytes of TCP: the header claims more.
    let inner = ipv4::Packet::new_unchecked(ic.data());
    assert_eq!(
        checksum::checksum(&ic.data()[..20]),
        0,
        "inner header checksum"
    );
    assert_eq!((inner.src_addr(), inner.dst_addr()), (client.0, fe.0));
    let l4 = &ic.data()[20..];
    assert_eq!(
        u16::from_be_bytes([l4[2], l4[3]]),
        80,
        "inner port restored"
    );
    // About no flow: dropped.
    let mut other = icmp.clone();
    other[8 + 12] = 1; // inner source changes
    icmpv4::Packet::new_unchecked(&mut other[..]).fill_checksum();
    let err = craft::ipv4(
        member_mac(member),
        INT_MAC,
        member,
        client.0,
        crate::wire::IpProtocol::Icmp,
        &other,
    );
    assert_eq!(send(&ex, INT, err).fate, Fate::Drop(DropReason::IcmpNoFlow));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Every translated packet comes back to the original through the
    /// reverse entry, with valid checksums both ways.
    #[test]
    fn translation_round_trips(a in any::<u32>(), sport in 1u16.., udp_proto in any::<bool>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let ex = Example::lb(16);
        let client = (Ipv4Addr::from(0xc633_6400 | (a & 0xff)), sport); // 198.51.100.x
        let (fe, first) = if udp_proto {
            ((ip("203.0.113.10"), 53), craft::udp_v4(GW_MAC, EXT_MAC, client, (ip("203.0.113.10"), 53), &data))
        } else {
            ((ip("203.0.113.10"), 80), syn(client, (ip("203.0.113.10"), 80)))
        };
        let o = send(&ex, EXT, first);
        prop_assert!(matches!(o.fate, Fate::Tx { port: INT, .. }), "{:?}", o.fate);
        let (s, sp, d, dp, _) = parsed(&o.frame);
        prop_assert_eq!((s, sp), client);
        // The member answers the tuple it saw.
        let back = if udp_proto {
            craft::udp_v4(member_mac(d), INT_MAC, (d, dp), (s, sp), &data)
        } else {
            craft::tcp_v4(member_mac(d), INT_MAC, (d, dp), (s, sp), tcp::Flags::SYN | tcp::Flags::ACK, 5, 1001)
        };
        let o = send(&ex, INT, back);
        prop_assert!(matches!(o.fate, Fate::Tx { port: EXT, .. }), "{:?}", o.fate);
        let (s2, sp2, d2, dp2, _) = parsed(&o.frame);
        prop_assert_eq!((s2, sp2, d2, dp2), (fe.0, fe.1, client.0, client.1));
    }
}

/// Fragments of `payload` (UDP header included) as IPv4 frames of at most
/// `chunk` payload bytes each (a multiple of 8).
fn fragments(src: Ipv4Addr, dst: Ipv4Addr, id: u16, payload: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let mut f = craft::ipv4(
                GW_MAC,
                EXT_MAC,
                src,
                dst,
                crate::wire::IpProtocol::Udp,
                part,
            );
            let more = (i + 1) * chunk < payload.len();
            let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
            p.set_ident(id);
            p.set_frag(false, more, (i * chunk) as u16);
            p.fill_checksum();
            f
        })
        .collect()
}

fn udp_datagram(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), data: &[u8]) -> Vec<u8> {
    let whole = craft::udp_v4(GW_MAC, EXT_MAC, src, dst, data);
    whole[14 + 20..].to_vec()
}

#[test]
fn ha_ports_fragments_follow_the_first_one_and_early_ones_wait() {
    let ex = Example::lb(64);
    let (client, ilb) = (ip("198.51.100.7"), ip("10.0.0.100"));
    let dgram = udp_datagram((client, 4000), (ilb, 9999), &[7u8; 3000]);
    let frags = fragments(client, ilb, 77, &dgram, 1480);
    assert_eq!(frags.len(), 3);
    // The last fragment comes first: it waits.
    assert_eq!(send(&ex, EXT, frags[2].clone()).fate, Fate::Defer);
    let o = send(&ex, EXT, frags[0].clone());
    assert!(matches!(o.fate, Fate::Tx { port: INT, .. }), "{:?}", o.fate);
    let member = ipv4::Packet::new_checked(&o.frame[14..])
        .unwrap()
        .dst_addr();
    let o = send(&ex, EXT, frags[1].clone());
    assert!(matches!(o.fate, Fate::Tx { port: INT, .. }), "{:?}", o.fate);
    let p = ipv4::Packet::new_checked(&o.frame[14..]).unwrap();
    assert!(p.verify_checksum());
    assert_eq!((p.dst_addr(), p.frag_offset()), (member, 1480));
    // The waiting one, retried the way control does.
    let (fate, frame) = retry(&ex, frags[2].clone());
    assert!(matches!(fate, Some(Fate::Tx { port: INT, .. })), "{fate:?}");
    assert_eq!(
        ipv4::Packet::new_checked(&frame[14..]).unwrap().dst_addr(),
        member
    );
    // An unknown datagram's later fragment stays unknown.
    let other = fragments(client, ilb, 78, &dgram, 1480);
    assert_eq!(retry(&ex, other[1].clone()).0, None);
}

/// Retries a deferred frame as control does: (fate, frame afterwards).
fn retry(ex: &Example, frame: Vec<u8>) -> (Option<Fate>, Vec<u8>) {
    let n = neigh();
    let len = frame.len();
    let mut room = frame;
    room.resize(2048, 0);
    let fate = retry_fragment(ex.cx(&n, 7), &mut room, len);
    room.truncate(len);
    (fate, room)
}

#[test]
fn fragments_to_other_rules_are_dropped() {
    let ex = Example::lb(64);
    let client = ip("198.51.100.7");
    let fe = ip("203.0.113.10");
    let dgram = udp_datagram((client, 4000), (fe, 53), &[7u8; 3000]);
    let frags = fragments(client, fe, 5, &dgram, 1480);
    assert_eq!(
        send(&ex, EXT, frags[0].clone()).fate,
        Fate::Drop(DropReason::Fragment)
    );
    assert!(ex.flows.is_empty());
}

#[test]
fn a_rule_with_fragments_on_forwards_them_to_one_member_with_valid_checksums() {
    let text = format!("{}{}", craft::EXAMPLE_CONFIG, craft::LB_CONFIG)
        .replace("name = \"dns\"\n", "name = \"dns\"\nfragments = true\n");
    assert!(text.contains("fragments = true"), "LB_CONFIG changed");
    let cfg = crate::config::Config::from_toml_str(&text).unwrap();
    let ex = Example::from_config(&cfg, 64);
    let client = ip("198.51.100.7");
    let fe = ip("203.0.113.10");
    let dgram = udp_datagram((client, 4000), (fe, 53), &[7u8; 3000]);
    let frags = fragments(client, fe, 9, &dgram, 1480);
    let mut payload = Vec::new();
    let mut to = None;
    for f in frags {
        let o = send(&ex, EXT, f);
        assert!(matches!(o.fate, Fate::Tx { port: INT, .. }), "{:?}", o.fate);
        let p = ipv4::Packet::new_checked(&o.frame[14..]).unwrap();
        assert!(p.verify_checksum());
        assert!(to.is_none_or(|m| m == p.dst_addr()), "one member");
        to = Some(p.dst_addr());
        payload.extend_from_slice(p.payload());
    }
    let member = to.unwrap();
    let pseudo = checksum::pseudo_header_v4(client, member, 17, payload.len() as u32);
    let u = udp::Packet::new_checked(&payload[..]).unwrap();
    assert!(
        u.verify_checksum(pseudo),
        "the reassembled datagram's checksum"
    );
    assert_eq!(u.src_port(), 4000);
}

#[path = "outbound_tests.rs"]
mod outbound;
