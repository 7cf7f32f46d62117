//! IPv6 ICMP errors about tracked flows and IPv6 fragments, through the
//! same data path (split from `v6_tests`, whose helpers they use).

use super::test_net::{neigh, send, EXT, EXT_MAC, GW_MAC, INT, INT_MAC};
use super::v6_tests::{ip, member_mac, parsed, syn, syn_ack, CLIENT_MAC};
use super::*;
use crate::craft::{self, Example};
use crate::wire::{checksum, ipv6, tcp, udp, MacAddr};
use std::net::Ipv6Addr;

/// An ICMPv6 error of `typ` from `from` to `to` quoting `quoted`.
fn icmp6_error(
    mac: MacAddr,
    from: Ipv6Addr,
    to: Ipv6Addr,
    typ: u8,
    mtu: u32,
    quoted: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![typ, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(quoted);
    let pseudo = checksum::pseudo_header_v6(from, to, 58, icmp.len() as u32);
    crate::wire::icmpv6::Packet::new_unchecked(&mut icmp[..]).fill_checksum(pseudo);
    let dst_mac = if mac == GW_MAC || mac == CLIENT_MAC {
        EXT_MAC
    } else {
        INT_MAC
    };
    craft::ip_frame(
        mac,
        dst_mac,
        from.into(),
        to.into(),
        crate::wire::IpProtocol::Icmpv6,
        &icmp,
    )
}

/// (outer source, outer destination, MTU field, quoted source, quoted
/// destination, quoted ports) of a translated ICMPv6 error, checking the
/// ICMPv6 checksum and the quoted TCP header's.
fn parsed_error(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u32, Ipv6Addr, Ipv6Addr, (u16, u16)) {
    let p = ipv6::Packet::new_checked(&f[14..]).unwrap();
    let (s, d) = (p.src_addr(), p.dst_addr());
    let icmp = &f[54..14 + p.total_len()];
    let pseudo = checksum::pseudo_header_v6(s, d, 58, icmp.len() as u32);
    assert!(
        crate::wire::icmpv6::Packet::new_checked(icmp)
            .unwrap()
            .verify_checksum(pseudo),
        "ICMPv6 checksum"
    );
    let mtu = u32::from_be_bytes(icmp[4..8].try_into().unwrap());
    let inner = &icmp[8..];
    let (is, id) = (
        Ipv6Addr::from(<[u8; 16]>::try_from(&inner[8..24]).unwrap()),
        Ipv6Addr::from(<[u8; 16]>::try_from(&inner[24..40]).unwrap()),
    );
    let t = &inner[40..];
    let tcp_pseudo = checksum::pseudo_header_v6(is, id, 6, t.len() as u32);
    assert!(
        tcp::Packet::new_checked(t)
            .unwrap()
            .verify_checksum(tcp_pseudo),
        "quoted TCP checksum"
    );
    (
        s,
        d,
        mtu,
        is,
        id,
        (
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        ),
    )
}

#[test]
fn packet_too_big_about_a_flow_is_translated_in_both_directions() {
    let ex = Example::lb6(64);
    let client = (ip("2001:db8:99::7"), 40005);
    let fe = ip("2001:db8:1::10");
    let (_, to_member, _) = send(&ex, EXT, syn(client));
    let member = parsed(&to_member).2;
    // A link behind Sluice is smaller: the member's side router (here the
    // member itself) quotes what it got (client -> member:8080).
    let err = icmp6_error(
        member_mac(member),
        member,
        client.0,
        2,
        1400,
        &to_member[14..],
    );
    let (fate, f, c) = send(&ex, INT, err);
    assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?} {c:?}");
    assert_eq!(c.stat(Stat::IcmpTranslated), 1);
    let (s, d, mtu, is, id, ports) = parsed_error(&f);
    assert_eq!(
        (s, d, mtu),
        (fe, client.0, 1400),
        "from the frontend to the client"
    );
    assert_eq!(
        (is, id, ports),
        (client.0, fe, (client.1, 80)),
        "the quote as the client sent it"
    );
    assert_eq!(&f[..6], &GW_MAC.0);

    // A router on the client's path about a reply (member -> client,
    // rewritten to frontend -> client): addressed to the frontend, it goes
    // to the member with the quote as the member sent it.
    let (_, reply, _) = send(&ex, INT, syn_ack(member, client));
    let router = ip("2001:db8:1::fe");
    let err = icmp6_error(GW_MAC, router, fe, 2, 1280, &reply[14..]);
    let (fate, f, _) = send(&ex, EXT, err);
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    let (s, d, mtu, is, id, ports) = parsed_error(&f);
    assert_eq!((s, d, mtu), (router, member, 1280));
    assert_eq!((is, id, ports), (member, client.0, (8080, client.1)));

    // About no flow: dropped and counted.
    let mut other = to_member[14..].to_vec();
    other[8 + 15] ^= 1; // another client
    let err = icmp6_error(member_mac(member), member, client.0, 2, 1400, &other);
    assert_eq!(send(&ex, INT, err).0, Fate::Drop(DropReason::IcmpNoFlow));
}

/// The fragments (each at most `mtu` bytes of IPv6 packet) of a UDP
/// datagram from `src` to `dst`, as a sender's kernel cuts them.
fn fragments6(
    src: (Ipv6Addr, u16),
    dst: (Ipv6Addr, u16),
    id: u32,
    data: &[u8],
    mtu: usize,
) -> Vec<Vec<u8>> {
    let dgram = craft::udp_segment((src.0.into(), src.1), (dst.0.into(), dst.1), data);
    let per = (mtu - 40 - 8) / 8 * 8;
    let chunks: Vec<&[u8]> = dgram.chunks(per).collect();
    let n = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let off = (i * per) as u16 | u16::from(i + 1 < n);
            let mut p = vec![17u8, 0];
            p.extend_from_slice(&off.to_be_bytes());
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(c);
            craft::ip_frame(
                CLIENT_MAC,
                EXT_MAC,
                src.0.into(),
                dst.0.into(),
                crate::wire::IpProtocol::Ipv6Frag,
                &p,
            )
        })
        .collect()
}

#[test]
fn fragments_of_one_datagram_follow_the_first_over_ipv6_ha_ports() {
    let ex = Example::lb6(64);
    let client = (ip("2001:db8:1::100"), 5000);
    let ilb = (ip("2001:db8:2::100"), 7000);
    let data: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    let frags = fragments6(client, ilb, 0xabcd_0001, &data, 1500);
    assert_eq!(frags.len(), 3);
    // A later fragment before its first: deferred to control.
    assert_eq!(send(&ex, EXT, frags[2].clone()).0, Fate::Defer);
    let mut out = Vec::new();
    for f in &frags[..2] {
        let (fate, o, _) = send(&ex, EXT, f.clone());
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
        out.push(o);
    }
    // Control's retry of the deferred one, once the first went through.
    let n = neigh();
    let mut room = frags[2].clone();
    let len = room.len();
    room.resize(2048, 0);
    let fate = retry_fragment(ex.cx(&n, 7), &mut room, len);
    assert!(matches!(fate, Some(Fate::Tx { port: INT, .. })), "{fate:?}");
    room.truncate(len);
    out.push(room);
    // All to one member, and the reassembled datagram's checksum holds
    // for the member's address.
    let dst = |f: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
    let member = dst(&out[0]);
    assert!(
        out.iter().all(|f| dst(f) == member && f[21] == 63),
        "one member, hop limit 63"
    );
    let mut dgram = Vec::new();
    for f in &out {
        let plen = usize::from(u16::from_be_bytes([f[18], f[19]]));
        dgram.extend_from_slice(&f[14 + 48..14 + 40 + plen]);
    }
    let pseudo = checksum::pseudo_header_v6(client.0, member, 17, dgram.len() as u32);
    let u = udp::Packet::new_checked(&dgram[..]).unwrap();
    assert!(u.verify_checksum(pseudo), "reassembled UDP checksum");
    assert_eq!(u.payload(), &data[..]);
    // The same datagram to the public frontend (not HA ports): dropped.
    let fe = (ip("2001:db8:1::10"), 53);
    let f = fragments6(client, fe, 9, &data, 1500);
    assert_eq!(
        send(&ex, EXT, f[0].clone()).0,
        Fate::Drop(DropReason::Fragment)
    );
}
