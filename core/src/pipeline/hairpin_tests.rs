//! Hairpin: a member (or any host on an internal subnet) connecting to a
//! frontend of its own pool leaves from the frontend address, so the
//! landing member's reply comes back through Sluice.

use super::test_net::{self, member_mac, Nop, INT, INT_MAC};
use super::*;
use crate::craft::{self, Example};
use crate::wire::{ipv4, tcp, MacAddr};
use std::net::{IpAddr, Ipv4Addr};

fn mac(a: Ipv4Addr) -> MacAddr {
    member_mac(IpAddr::V4(a))
}

fn send(ex: &Example, frame: Vec<u8>) -> (Fate, Vec<u8>, Counters) {
    test_net::send(ex, INT, frame)
}

/// (source, source port, destination, destination port) of an IPv4 TCP frame.
fn tuple(f: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let p = ipv4::Packet::new_checked(&f[14..]).unwrap();
    let t = tcp::Packet::new_checked(p.payload()).unwrap();
    (p.src_addr(), t.src_port(), p.dst_addr(), t.dst_port())
}

#[test]
fn a_member_reaches_its_own_frontend_and_the_reply_comes_back_through_sluice() {
    let ex = Example::lb(64);
    let fe = Ipv4Addr::new(203, 0, 113, 10);
    for (from, sport) in [(12u8, 40000u16), (11, 40001)] {
        let b = Ipv4Addr::new(10, 0, 0, from);
        let syn = craft::tcp_v4(mac(b), INT_MAC, (b, sport), (fe, 80), tcp::Flags::SYN, 1, 0);
        let (fate, f, c) = send(&ex, syn);
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
        assert_eq!(c.stat(Stat::HairpinCreated), 1);
        let (s, hp, m, mp) = tuple(&f);
        assert_eq!(s, fe, "the landing member sees the frontend");
        assert!(hp >= 1024);
        assert_eq!(mp, 8080);
        assert_eq!(&f[..6], &mac(m).0);
        // The member answers the frontend address: back to the client
        // member, from the frontend it called.
        let ack = craft::tcp_v4(
            mac(m),
            INT_MAC,
            (m, 8080),
            (fe, hp),
            tcp::Flags::SYN | tcp::Flags::ACK,
            9,
            2,
        );
        let (fate, f, _) = send(&ex, ack);
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
        assert_eq!(tuple(&f), (fe, 80, b, sport));
        assert_eq!(&f[..6], &mac(b).0);
    }
}

#[test]
fn an_external_client_is_not_hairpinned() {
    let ex = Example::lb(64);
    let client = Ipv4Addr::new(198, 51, 100, 7);
    let syn = craft::tcp_v4(
        MacAddr([2, 0, 0, 0, 0, 0xfe]),
        craft::EXAMPLE_EXT_MAC,
        (client, 40000),
        (Ipv4Addr::new(203, 0, 113, 10), 80),
        tcp::Flags::SYN,
        1,
        0,
    );
    let n = test_net::neigh();
    let len = syn.len();
    let mut room = syn;
    room.resize(2048, 0);
    let mut c = Counters::default();
    let fate = process(
        ex.cx(&n, 7),
        PortIndex::new(0),
        &mut room,
        len,
        &mut Nop,
        &mut c,
    );
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    assert_eq!(c.stat(Stat::HairpinCreated), 0);
    assert_eq!(
        tuple(&room[..len]).0,
        client,
        "the client's address is kept"
    );
}

#[test]
fn nat_rules_and_ha_ports_hairpin_too() {
    // The example plus a security rule that lets anyone reach ssh-b2
    // (50001 on the public frontend, to b2's port 22).
    let text = format!(
        "{}{}\n[[security_rule]]\nname = \"allow-ssh\"\npriority = 120\n\
         direction = \"inbound\"\naction = \"allow\"\nsource = \"0.0.0.0/0\"\n\
         destination = \"203.0.113.10/32\"\nprotocol = \"tcp\"\ndestination_ports = \"50001\"\n",
        craft::EXAMPLE_CONFIG,
        craft::LB_CONFIG
    );
    let cfg = crate::config::Config::from_toml_str(&text).expect("valid");
    let ex = Example::from_config(&cfg, 64);
    let fe = Ipv4Addr::new(203, 0, 113, 10);
    let ilb = Ipv4Addr::new(10, 0, 0, 100);
    let (b1, b2) = (Ipv4Addr::new(10, 0, 0, 11), Ipv4Addr::new(10, 0, 0, 12));
    // b1 and b2 itself through the NAT rule: both land on b2:22, from the
    // frontend address.
    for (from, sport) in [(b1, 40000u16), (b2, 40001)] {
        let syn = craft::tcp_v4(
            mac(from),
            INT_MAC,
            (from, sport),
            (fe, 50001),
            tcp::Flags::SYN,
            1,
            0,
        );
        let (fate, f, c) = send(&ex, syn);
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
        assert_eq!(c.stat(Stat::HairpinCreated), 1);
        let (s, hp, m, mp) = tuple(&f);
        assert_eq!((s, m, mp), (fe, b2, 22), "from {from}");
        assert_eq!(&f[..6], &mac(b2).0);
        let ack = craft::tcp_v4(
            mac(b2),
            INT_MAC,
            (b2, 22),
            (fe, hp),
            tcp::Flags::SYN | tcp::Flags::ACK,
            9,
            2,
        );
        let (fate, f, _) = send(&ex, ack);
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
        assert_eq!(tuple(&f), (fe, 50001, from, sport));
    }
    // HA ports on the internal frontend: any port, from the frontend
    // address, and back.
    let syn = craft::tcp_v4(
        mac(b1),
        INT_MAC,
        (b1, 40002),
        (ilb, 7000),
        tcp::Flags::SYN,
        1,
        0,
    );
    let (fate, f, c) = send(&ex, syn);
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    assert_eq!(c.stat(Stat::HairpinCreated), 1);
    let (s, hp, m, mp) = tuple(&f);
    assert_eq!((s, mp), (ilb, 7000));
    let ack = craft::tcp_v4(
        mac(m),
        INT_MAC,
        (m, 7000),
        (ilb, hp),
        tcp::Flags::SYN | tcp::Flags::ACK,
        9,
        2,
    );
    let (fate, f, _) = send(&ex, ack);
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    assert_eq!(tuple(&f), (ilb, 7000, b1, 40002));
}
