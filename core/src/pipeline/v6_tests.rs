//! IPv6 through the same data path: frames built by `craft`, sent through
//! `process` / `process_burst` with the IPv6 example rules, checked field
//! by field with full checksum recomputation.

use super::test_net::{self, neigh, send, Nop, EXT, EXT_MAC, GW_MAC, INT, INT_MAC};
use super::*;
use crate::craft::{self, Example};
use crate::wire::{checksum, ipv6, tcp, udp, MacAddr};
use std::net::{IpAddr, Ipv6Addr};

const CLIENT_MAC: MacAddr = test_net::CLIENT6_MAC;

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
fn member_mac(a: Ipv6Addr) -> MacAddr {
    test_net::member_mac(a.into())
}
fn frontend() -> (IpAddr, u16) {
    (IpAddr::V6(ip("2001:db8:1::10")), 80)
}

/// (source, source port, destination, destination port, hop limit) of an
/// IPv6 TCP/UDP frame without extension headers, asserting its checksum.
fn parsed(f: &[u8]) -> (Ipv6Addr, u16, Ipv6Addr, u16, u8) {
    let p = ipv6::Packet::new_checked(&f[14..]).unwrap();
    let (s, d) = (p.src_addr(), p.dst_addr());
    let ul = p.upper_layer().unwrap();
    let l4 = &f[14 + ul.offset..14 + p.total_len()];
    let proto = u8::from(ul.protocol);
    let pseudo = checksum::pseudo_header_v6(s, d, proto, l4.len() as u32);
    match proto {
        6 => {
            let t = tcp::Packet::new_checked(l4).unwrap();
            assert!(t.verify_checksum(pseudo), "TCP checksum");
            (s, t.src_port(), d, t.dst_port(), p.hop_limit())
        }
        17 => {
            let u = udp::Packet::new_checked(l4).unwrap();
            assert!(u.verify_checksum(pseudo), "UDP checksum");
            (s, u.src_port(), d, u.dst_port(), p.hop_limit())
        }
        _ => panic!("not TCP or UDP"),
    }
}

fn syn(client: (Ipv6Addr, u16)) -> Vec<u8> {
    let mac = if client.0.segments()[2] == 1 {
        CLIENT_MAC
    } else {
        GW_MAC
    };
    craft::tcp_ip(
        mac,
        EXT_MAC,
        (client.0.into(), client.1),
        frontend(),
        tcp::Flags::SYN,
        (1000, 0),
        &[],
    )
}

fn syn_ack(member: Ipv6Addr, client: (Ipv6Addr, u16)) -> Vec<u8> {
    craft::tcp_ip(
        member_mac(member),
        INT_MAC,
        (member.into(), 8080),
        (client.0.into(), client.1),
        tcp::Flags::SYN | tcp::Flags::ACK,
        (9000, 1001),
        &[],
    )
}

#[test]
fn a_syn_to_an_ipv6_frontend_reaches_an_ipv6_member_and_the_reply_returns_from_the_frontend() {
    let ex = Example::lb6(64);
    let client = (ip("2001:db8:1::100"), 40000);
    let (fate, f, c) = send(&ex, EXT, syn(client));
    let Fate::Tx { port: INT, .. } = fate else {
        panic!("{fate:?} {c:?}")
    };
    assert_eq!(c.stat(Stat::FlowsCreated), 1);
    let (s, sp, d, dp, hl) = parsed(&f);
    assert_eq!((s, sp), client, "client address and port preserved");
    assert!(
        [ip("2001:db8:2::21"), ip("2001:db8:2::22")].contains(&d),
        "{d}"
    );
    assert_eq!((dp, hl), (8080, 63));
    assert_eq!(&f[..6], &member_mac(d).0, "to the member's MAC");
    assert_eq!(&f[6..12], &INT_MAC.0);
    assert_eq!(ex.flows6.len(), 1, "the flow is in the IPv6 table");
    assert_eq!(ex.flows.len(), 0);

    let (fate, f, _) = send(&ex, INT, syn_ack(d, client));
    assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?}");
    let (s, sp, dd, dp, _) = parsed(&f);
    assert_eq!((s, sp), (ip("2001:db8:1::10"), 80), "from the frontend");
    assert_eq!((dd, dp), client);
    assert_eq!(
        &f[..6],
        &CLIENT_MAC.0,
        "an on-link client is its own next hop"
    );
}

#[test]
fn replies_to_an_off_link_client_go_to_the_ipv6_gateway() {
    let ex = Example::lb6(64);
    let client = (ip("2001:db8:99::7"), 40001);
    let (fate, f, _) = send(&ex, EXT, syn(client));
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    let (_, _, d, _, _) = parsed(&f);
    let (fate, f, _) = send(&ex, INT, syn_ack(d, client));
    assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?}");
    assert_eq!(&f[..6], &GW_MAC.0, "via the gateway");
}

#[test]
fn the_rule_uses_its_frontends_family_of_each_member() {
    let ex = Example::lb6(4096);
    let mut seen = std::collections::BTreeMap::new();
    for p in 0..600u16 {
        let (fate, f, c) = send(&ex, EXT, syn((ip("2001:db8:99::7"), 1024 + p)));
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?} {c:?}");
        *seen.entry(parsed(&f).2).or_insert(0) += 1;
    }
    // d1 (dual stack) by its IPv6 address, d2; never d3 (IPv4 only).
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.values().all(|&n| n > 200), "{seen:?}");
}

#[test]
fn udp_over_ipv6_is_balanced_with_a_valid_checksum() {
    let ex = Example::lb6(64);
    let client = (IpAddr::V6(ip("2001:db8:1::100")), 5353);
    let fe = (IpAddr::V6(ip("2001:db8:1::10")), 53);
    let f = craft::udp_ip(CLIENT_MAC, EXT_MAC, client, fe, b"query");
    let (fate, f, _) = send(&ex, EXT, f);
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    let (s, sp, _, dp, _) = parsed(&f);
    assert_eq!((IpAddr::V6(s), sp, dp), (client.0, client.1, 53));
}

#[test]
fn default_deny_holds_on_a_public_ipv6_frontend() {
    let ex = Example::lb6(64);
    // Port 22 has no rule: Sluice's own address, no service.
    let f = craft::tcp_ip(
        CLIENT_MAC,
        EXT_MAC,
        (ip("2001:db8:1::100").into(), 40000),
        (ip("2001:db8:1::10").into(), 22),
        tcp::Flags::SYN,
        (1, 0),
        &[],
    );
    assert_eq!(send(&ex, EXT, f).0, Fate::Drop(DropReason::NoService));
    // An IPv4 allow rule does not open the IPv6 frontend: the IPv4 rules
    // allow 203.0.113.10 only, so a v6 prefix rule is what lets TCP 80 in.
    let mut cfg = craft::lb6_config();
    cfg.security_rules.retain(|r| r.name != "allow-web6");
    let ex = Example::from_config(&cfg, 64);
    let (fate, _, _) = send(&ex, EXT, syn((ip("2001:db8:1::100"), 40000)));
    assert_eq!(fate, Fate::Drop(DropReason::SecurityDeny));
}

/// An IPv6 TCP SYN to the frontend whose fixed header is followed by
/// `ext` (a chain of extension headers, each `(next header, bytes)`).
fn syn_with_ext(ext: &[(u8, Vec<u8>)]) -> Vec<u8> {
    craft::with_ext_headers(&syn((ip("2001:db8:1::100"), 40002)), ext)
}

#[test]
fn extension_headers_are_walked_to_the_transport_header() {
    let ex = Example::lb6(64);
    let opts = vec![0u8, 0, 1, 4, 0, 0, 0, 0]; // next, len 0, PadN of 4
    let f = syn_with_ext(&[(0, opts.clone()), (60, opts.clone())]);
    let (fate, out, c) = send(&ex, EXT, f);
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?} {c:?}");
    let p = ipv6::Packet::new_checked(&out[14..]).unwrap();
    let ul = p.upper_layer().unwrap();
    assert_eq!((ul.offset, p.hop_limit()), (56, 63));
    let l4 = &out[14 + ul.offset..14 + p.total_len()];
    let pseudo = checksum::pseudo_header_v6(p.src_addr(), p.dst_addr(), 6, l4.len() as u32);
    assert!(tcp::Packet::new_checked(l4)
        .unwrap()
        .verify_checksum(pseudo));

    let long: Vec<(u8, Vec<u8>)> = (0..9).map(|_| (60, opts.clone())).collect();
    let (fate, _, _) = send(&ex, EXT, syn_with_ext(&long));
    assert_eq!(fate, Fate::Drop(DropReason::Ipv6ExtHeaders));
    let mut cut = syn_with_ext(&[(60, opts.clone())]);
    cut[14 + 40 + 1] = 200; // a header longer than the packet
    assert_eq!(send(&ex, EXT, cut).0, Fate::Drop(DropReason::Ipv6Malformed));
}

#[test]
fn fragments_and_expiring_hop_limits_are_dropped_with_their_reason() {
    let ex = Example::lb6(64);
    let frag = vec![0u8, 0, 0, 1, 0, 0, 0, 7]; // offset 0, more fragments
    let (fate, _, _) = send(&ex, EXT, syn_with_ext(&[(44, frag)]));
    assert_eq!(fate, Fate::Drop(DropReason::Fragment));
    let mut f = syn((ip("2001:db8:1::100"), 40003));
    f[14 + 7] = 1;
    let total = 40 + usize::from(u16::from_be_bytes([f[18], f[19]]));
    let original = f[14..14 + total].to_vec();
    let (fate, out, c) = send(&ex, EXT, f);
    let Fate::Tx { port: EXT, len } = fate else {
        panic!("{fate:?}")
    };
    assert_eq!(c.stat(Stat::TimeExceededSent), 1);
    let out = &out[..usize::from(len)];
    let p = ipv6::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(
        p.src_addr(),
        ip("2001:db8:1::1"),
        "from the port's own address"
    );
    assert_eq!(p.dst_addr(), ip("2001:db8:1::100"));
    let msg = &out[14 + 40..];
    assert_eq!((msg[0], msg[1]), (3, 0), "ICMPv6 time exceeded, hop limit");
    let pseudo = checksum::pseudo_header_v6(p.src_addr(), p.dst_addr(), 58, msg.len() as u32);
    assert_eq!(
        checksum::fold(checksum::combine(pseudo, checksum::sum(msg))),
        0xffff
    );
    assert_eq!(&msg[8..], &original[..], "the whole packet fits 1280 bytes");
    assert_eq!(&out[..6], &CLIENT_MAC.0);
}

#[test]
fn a_burst_mixing_both_families_takes_the_fast_path_for_each() {
    let ex = Example::lb6(256);
    let n = neigh();
    let cx = ex.cx(&n, 7);
    let v4 = |i: u16| {
        craft::tcp_v4(
            GW_MAC,
            EXT_MAC,
            ("198.51.100.7".parse().unwrap(), 2000 + i),
            ("203.0.113.10".parse().unwrap(), 80),
            tcp::Flags::SYN,
            1,
            0,
        )
    };
    let v6 = |i: u16| syn((ip("2001:db8:99::7"), 2000 + i));
    let mut burst: Vec<(Vec<u8>, usize)> = (0..16)
        .flat_map(|i| [v4(i), v6(i)])
        .map(|f| {
            let len = f.len();
            let mut room = f;
            room.resize(2048, 0);
            (room, len)
        })
        .collect();
    let mut again = burst.clone();
    let mut fates = [Fate::Consumed; 32];
    let mut c = Counters::default();
    process_burst(cx, EXT, &mut burst, &mut fates, &mut Nop, &mut c);
    assert!(
        fates
            .iter()
            .all(|f| matches!(f, Fate::Tx { port: INT, .. })),
        "{fates:?}"
    );
    assert_eq!((ex.flows.len(), ex.flows6.len()), (16, 16));
    // The same SYNs again: every one found in the lookup pass and sent by
    // the fast path to the same member.
    let mut c2 = Counters::default();
    process_burst(cx, EXT, &mut again, &mut fates, &mut Nop, &mut c2);
    assert_eq!(c2.stat(Stat::FlowsCreated), 0);
    assert_eq!(c2.stat(Stat::Forwarded), 32);
    for (a, b) in burst.iter().zip(&again) {
        assert_eq!(a.0[..a.1], b.0[..b.1], "same rewrite both times");
    }
}

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

/// A frame from IPv6 member `m` on the internal port.
fn from_member(m: Ipv6Addr, sport: u16, dst: (Ipv6Addr, u16), udp: bool) -> Vec<u8> {
    let (s, d) = ((m.into(), sport), (dst.0.into(), dst.1));
    if udp {
        craft::udp_ip(member_mac(m), INT_MAC, s, d, b"ping")
    } else {
        craft::tcp_ip(member_mac(m), INT_MAC, s, d, tcp::Flags::SYN, (1, 0), &[])
    }
}

#[test]
fn ipv6_members_leave_masqueraded_as_the_public_ipv6_address() {
    let ex = Example::lb6_snat(256, 1);
    let d1 = ip("2001:db8:2::21");
    let public = ip("2001:db8:1::10");
    let remote = (ip("2001:db8:99::5"), 443);
    let (fate, f, c) = send(&ex, INT, from_member(d1, 40000, remote, false));
    assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?} {c:?}");
    assert_eq!(c.stat(Stat::SnatCreated), 1);
    let (s, sp, d, dp, _) = parsed(&f);
    assert_eq!((s, d, dp), (public, remote.0, 443));
    assert!((1024..1032).contains(&sp), "from d1's block: {sp}");
    assert_eq!(&f[..6], &GW_MAC.0, "off-link: via the IPv6 gateway");
    // The reply comes back to the member.
    let reply = craft::tcp_ip(
        GW_MAC,
        EXT_MAC,
        (remote.0.into(), 443),
        (public.into(), sp),
        tcp::Flags::SYN | tcp::Flags::ACK,
        (7, 2),
        &[],
    );
    let (fate, f, _) = send(&ex, EXT, reply);
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    assert_eq!(parsed(&f).2..=parsed(&f).2, d1..=d1);
    assert_eq!(parsed(&f).3, 40000);
    // Eight ports: the ninth connection to the same destination fails, the
    // others stand.
    for p in 1..8u16 {
        let (fate, _, _) = send(&ex, INT, from_member(d1, 40000 + p, remote, false));
        assert!(matches!(fate, Fate::Tx { .. }), "{p}: {fate:?}");
    }
    let (fate, _, _) = send(&ex, INT, from_member(d1, 40100, remote, false));
    assert_eq!(fate, Fate::Drop(DropReason::SnatExhausted));
    // Another destination port: the ports are free again for it.
    let (fate, _, _) = send(&ex, INT, from_member(d1, 40100, (remote.0, 80), false));
    assert!(matches!(fate, Fate::Tx { .. }), "{fate:?}");
}

#[test]
fn ipv6_udp_is_port_restricted_cone() {
    let ex = Example::lb6_snat(256, 1);
    let d2 = ip("2001:db8:2::22");
    let public = ip("2001:db8:1::10");
    let remote = ip("2001:db8:99::5");
    let mut ports = Vec::new();
    for dport in [53, 54] {
        let (fate, f, _) = send(&ex, INT, from_member(d2, 5000, (remote, dport), true));
        assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?}");
        let (s, sp, _, _, _) = parsed(&f);
        assert_eq!(s, public);
        ports.push(sp);
    }
    assert_eq!(ports[0], ports[1], "one public port for one member socket");
    // Two SNAT flows and the one cone mapping that holds their port.
    let kinds: Vec<crate::flow::FlowKind> = (0..ex.flows6.high_water())
        .filter_map(|i| ex.flows6.info(i))
        .map(|f| f.kind())
        .collect();
    use crate::flow::FlowKind::{Cone, Snat};
    assert_eq!(kinds.iter().filter(|k| **k == Snat).count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == Cone).count(), 1, "{kinds:?}");
    let to_public = |from: Ipv6Addr, sport: u16| {
        craft::udp_ip(
            GW_MAC,
            EXT_MAC,
            (from.into(), sport),
            (public.into(), ports[0]),
            b"pong",
        )
    };
    // A third port of the same remote address gets in.
    let (fate, f, _) = send(&ex, EXT, to_public(remote, 55));
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    assert_eq!((parsed(&f).2, parsed(&f).3), (d2, 5000));
    // Another address does not.
    let (fate, _, _) = send(&ex, EXT, to_public(ip("2001:db8:98::9"), 53));
    assert_eq!(fate, Fate::Drop(DropReason::SnatNoMapping));
}

#[test]
fn an_inbound_nat_rule_forwards_one_ipv6_port_to_one_member() {
    let ex = Example::lb6(64);
    let client = (ip("2001:db8:99::7"), 40100);
    let f = craft::tcp_ip(
        GW_MAC,
        EXT_MAC,
        (client.0.into(), client.1),
        (ip("2001:db8:1::10").into(), 50006),
        tcp::Flags::SYN,
        (1, 0),
        &[],
    );
    let (fate, out, _) = send(&ex, EXT, f);
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    let (s, sp, d, dp, _) = parsed(&out);
    assert_eq!(
        (s, sp, d, dp),
        (client.0, client.1, ip("2001:db8:2::22"), 22)
    );
}

#[test]
fn an_ipv6_reset_carries_valid_checksums() {
    let key = crate::flow::FlowKey {
        src: ip("2001:db8:1::10"),
        dst: ip("2001:db8:99::7"),
        sport: 80,
        dport: 40000,
        proto: 6,
    };
    let mut buf = [0u8; 128];
    let n = crate::flow::age::build_rst(&mut buf, EXT_MAC, &key, 7, 9);
    assert_eq!(n, crate::flow::age::RST_LEN_V6);
    let (s, sp, d, dp, hl) = parsed(&buf[..n]);
    assert_eq!((s, sp, d, dp, hl), (key.src, 80, key.dst, 40000, 64));
    let t = tcp::Packet::new_checked(&buf[54..n]).unwrap();
    assert_eq!((t.seq(), t.ack()), (7, 9));
}
