//! Egress MTU, both families: a packet larger than its egress port's MTU
//! gets "fragmentation needed" (IPv4 with DF) or Packet Too Big (IPv6)
//! from the port it came in on, quoting what the sender sent; IPv4 without
//! DF leaves in fragments ([`Fate::Split`]).

use super::test_net::{self, EXT, EXT_MAC, GW_MAC};
use super::*;
use crate::config::Config;
use crate::craft::{self, Example};
use crate::wire::{checksum, tcp};
use std::net::{IpAddr, Ipv4Addr};

/// The IPv6 example with the internal port's MTU at 1280.
fn example() -> Example {
    let text = format!(
        "{}{}{}",
        craft::EXAMPLE_CONFIG,
        craft::LB_CONFIG,
        craft::LB6_CONFIG
    )
    .replace("role = \"internal\"\n", "role = \"internal\"\nmtu = 1280\n");
    Example::from_config(&Config::from_toml_str(&text).expect("valid"), 64)
}

fn send(ex: &Example, frame: Vec<u8>) -> (Fate, Vec<u8>, Counters) {
    test_net::send(ex, EXT, frame)
}

fn segment(client: IpAddr, frontend: IpAddr, flags: tcp::Flags, data: &[u8]) -> Vec<u8> {
    craft::tcp_ip(
        GW_MAC,
        EXT_MAC,
        (client, 40000),
        (frontend, 80),
        flags,
        (1000, 0),
        data,
    )
}

fn too_big(client: IpAddr, frontend: IpAddr) {
    let ex = example();
    let (fate, _, _) = send(&ex, segment(client, frontend, tcp::Flags::SYN, &[]));
    assert!(matches!(fate, Fate::Tx { .. }), "{fate:?}");
    let mut big = segment(client, frontend, tcp::Flags::ACK, &[7; 1400]);
    if client.is_ipv4() {
        big[14 + 6] |= 0x40; // DF
        let mut p = crate::wire::ipv4::Packet::new_unchecked(&mut big[14..]);
        p.fill_checksum();
    }
    let ip_len = big.len() - 14;
    let quoted = big[14..].to_vec();
    let (fate, room, c) = send(&ex, big);
    let Fate::Tx { port: EXT, len } = fate else {
        panic!("{fate:?}")
    };
    assert_eq!(c.stat(Stat::TooBigSent), 1);
    let f = &room[..usize::from(len)];
    assert_eq!(&f[..6], &GW_MAC.0, "back to the sender");
    if client.is_ipv4() {
        let ip4 = crate::wire::ipv4::Packet::new_checked(&f[14..]).unwrap();
        assert!(ip4.verify_checksum());
        assert_eq!(IpAddr::V4(ip4.dst_addr()), client);
        let icmp = ip4.payload();
        assert_eq!((icmp[0], icmp[1]), (3, 4), "fragmentation needed");
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1280);
        assert_eq!(checksum::checksum(icmp), 0);
        assert_eq!(&icmp[8..], &quoted[..28], "what the sender sent");
    } else {
        let msg = &f[14 + 40..];
        assert_eq!((msg[0], msg[1]), (2, 0), "packet too big");
        assert_eq!(u32::from_be_bytes(msg[4..8].try_into().unwrap()), 1280);
        assert_eq!(&msg[8..], &quoted[..1280 - 48], "as much as fits 1280");
        let _ = ip_len;
    }
}

#[test]
fn a_packet_too_big_for_the_egress_gets_fragmentation_needed_v4() {
    too_big(
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
    );
}

#[test]
fn a_packet_too_big_for_the_egress_gets_packet_too_big_v6() {
    too_big(
        "2001:db8:9::7".parse().unwrap(),
        "2001:db8:1::10".parse().unwrap(),
    );
}

#[test]
fn ipv4_without_df_leaves_in_fragments_that_reassemble_to_the_rewritten_datagram() {
    let ex = example();
    let client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let fe = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
    send(&ex, segment(client, fe, tcp::Flags::SYN, &[]));
    let data: Vec<u8> = (0..1400u32).map(|i| (i * 7) as u8).collect();
    let (fate, room, c) = send(&ex, segment(client, fe, tcp::Flags::ACK, &data));
    let Fate::Split { port, len, mtu } = fate else {
        panic!("{fate:?}")
    };
    assert_eq!((port, mtu), (test_net::INT, 1280));
    assert_eq!(c.stat(Stat::TooBigSent), 0);
    // The whole datagram is rewritten (to the member) before it is cut.
    let whole = room[..usize::from(len)].to_vec();
    let ip = crate::wire::ipv4::Packet::new_checked(&whole[14..]).unwrap();
    let member = ip.dst_addr();
    assert_eq!(member.octets()[..3], [10, 0, 0], "{member}");
    let plan = Split::plan(&whole, mtu).expect("no DF");
    assert_eq!(plan.count(), 2);
    let mut second = vec![0u8; 2048];
    let n = plan.write_later(&whole, 1, &mut second).unwrap();
    second.truncate(n);
    let mut first = whole.clone();
    let n = plan.cut_first(&mut first);
    first.truncate(n);
    let mut payload = Vec::new();
    for f in [&first, &second] {
        let p = crate::wire::ipv4::Packet::new_checked(&f[14..]).unwrap();
        assert!(p.verify_checksum() && p.total_len() <= 1280);
        assert_eq!(p.dst_addr(), member);
        payload.extend_from_slice(p.payload());
    }
    // The TCP checksum, rewritten over the whole datagram, holds for the
    // reassembled one.
    let seg = crate::wire::tcp::Packet::new_checked(&payload[..]).unwrap();
    let pseudo = checksum::pseudo_header_v4(ip.src_addr(), ip.dst_addr(), 6, payload.len() as u32);
    assert!(seg.verify_checksum(pseudo));
    assert_eq!(&payload[20..], &data[..]);
    // A packet that fits goes through whole.
    let (fate, _, _) = send(&ex, segment(client, fe, tcp::Flags::ACK, &[7; 1200]));
    assert!(matches!(fate, Fate::Tx { .. }), "{fate:?}");
}
