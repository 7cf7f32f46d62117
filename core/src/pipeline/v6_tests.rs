//! IPv6 through the same data path: frames built by `craft`, sent through
//! `process` / `process_burst` with the IPv6 example rules, checked field
//! by field with full checksum recomputation.

use super::test_net::{self, neigh, send, Nop, EXT, EXT_MAC, GW_MAC, INT, INT_MAC};
use super::*;
use crate::craft::{self, Example};
use crate::wire::{checksum, ipv6, tcp, udp, MacAddr};
use std::net::{IpAddr, Ipv6Addr};

pub(super) const CLIENT_MAC: MacAddr = test_net::CLIENT6_MAC;

pub(super) fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
pub(super) fn member_mac(a: Ipv6Addr) -> MacAddr {
    test_net::member_mac(a.into())
}
fn frontend() -> (IpAddr, u16) {
    (IpAddr::V6(ip("2001:db8:1::10")), 80)
}

/// (source, source port, destination, destination port, hop limit) of an
/// IPv6 TCP/UDP frame without extension headers, asserting its checksum.
pub(super) fn parsed(f: &[u8]) -> (Ipv6Addr, u16, Ipv6Addr, u16, u8) {
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

pub(super) fn syn(client: (Ipv6Addr, u16)) -> Vec<u8> {
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

pub(super) fn syn_ack(member: Ipv6Addr, client: (Ipv6Addr, u16)) -> Vec<u8> {
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
