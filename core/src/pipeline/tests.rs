//! Pipeline tests with frames built by `craft` and answers checked field by
//! field, plus a seeded run of random and mangled frames.

use super::*;
use crate::craft;
use crate::neigh::NeighView;
use crate::wire::{arp, checksum, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, MacAddr};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const EXT_MAC: MacAddr = craft::EXAMPLE_EXT_MAC;
const INT_MAC: MacAddr = craft::EXAMPLE_INT_MAC;
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x64]);
const GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
const EXT: PortIndex = PortIndex::new(0);
const INT: PortIndex = PortIndex::new(1);

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[derive(Default)]
struct Learned(Vec<(PortIndex, IpAddr, MacAddr)>);

impl Slowpath for Learned {
    fn learn(&mut self, port: PortIndex, ip: IpAddr, mac: MacAddr) -> bool {
        self.0.push((port, ip, mac));
        true
    }
}

struct Run {
    fate: Fate,
    frame: Vec<u8>,
    learned: Vec<(PortIndex, IpAddr, MacAddr)>,
    counters: Counters,
}

fn run_with(neigh: &NeighView, port: PortIndex, frame: Vec<u8>) -> Run {
    let ex = craft::Example::host();
    let len = frame.len();
    let mut room = frame;
    room.resize(2048, 0xee);
    let mut learned = Learned::default();
    let mut counters = Counters::default();
    let fate = process(
        ex.cx(neigh, 0),
        port,
        &mut room,
        len,
        &mut learned,
        &mut counters,
    );
    let out_len = match fate {
        Fate::Tx { len, .. } | Fate::Hold { len, .. } => usize::from(len),
        _ => len,
    };
    room.truncate(out_len);
    Run {
        fate,
        frame: room,
        learned: learned.0,
        counters,
    }
}

fn run(port: PortIndex, frame: Vec<u8>) -> Run {
    run_with(&NeighView::default(), port, frame)
}

fn resolved(port: PortIndex, ip: &str, mac: MacAddr) -> NeighView {
    let mut n = NeighView::default();
    n.insert(port, ip.parse().unwrap(), mac);
    n
}

#[test]
fn answers_arp_for_own_and_frontend_addresses() {
    for target in ["203.0.113.1", "203.0.113.10"] {
        let r = run(
            EXT,
            craft::arp_request(CLIENT_MAC, v4("203.0.113.100"), v4(target)),
        );
        assert_eq!(r.fate, Fate::Tx { port: EXT, len: 60 });
        let f = ethernet::Frame::new_checked(&r.frame[..]).unwrap();
        assert_eq!(f.dst_addr(), CLIENT_MAC);
        assert_eq!(f.src_addr(), EXT_MAC);
        let a = arp::Repr::parse(&arp::Packet::new_checked(f.payload()).unwrap());
        assert_eq!(a.operation, arp::Operation::Reply);
        assert_eq!((a.sender_hw, a.sender_ip), (EXT_MAC, v4(target)));
        assert_eq!(
            (a.target_hw, a.target_ip),
            (CLIENT_MAC, v4("203.0.113.100"))
        );
        assert_eq!(
            r.learned,
            vec![(EXT, "203.0.113.100".parse().unwrap(), CLIENT_MAC)]
        );
        assert_eq!(r.counters.stat(Stat::ArpReplies), 1);
    }
}

#[test]
fn arp_for_other_addresses_and_ports_is_not_answered() {
    let r = run(
        EXT,
        craft::arp_request(CLIENT_MAC, v4("203.0.113.100"), v4("203.0.113.77")),
    );
    assert_eq!(r.fate, Fate::Drop(DropReason::ArpNotOurs));
    // The internal address is not owned on the external port.
    let r = run(
        EXT,
        craft::arp_request(CLIENT_MAC, v4("203.0.113.100"), v4("10.0.0.1")),
    );
    assert_eq!(r.fate, Fate::Drop(DropReason::ArpNotOurs));
    assert!(r.learned.is_empty());
}

#[test]
fn external_arp_claiming_an_internal_address_is_ignored() {
    for claimed in ["10.0.0.11", "203.0.113.10"] {
        let r = run(
            EXT,
            craft::arp_request(CLIENT_MAC, v4(claimed), v4("203.0.113.1")),
        );
        assert_eq!(r.fate, Fate::Drop(DropReason::NeighSpoof), "{claimed}");
        assert!(r.learned.is_empty());
    }
    // From the internal side the same sender is a backend and is answered.
    let r = run(
        INT,
        craft::arp_request(CLIENT_MAC, v4("10.0.0.11"), v4("10.0.0.1")),
    );
    assert!(matches!(r.fate, Fate::Tx { port: INT, .. }));
}

#[test]
fn arp_reply_is_learned() {
    let r = run(
        INT,
        craft::arp_reply(CLIENT_MAC, v4("10.0.0.11"), INT_MAC, v4("10.0.0.1")),
    );
    assert_eq!(r.fate, Fate::Consumed);
    assert_eq!(
        r.learned,
        vec![(INT, "10.0.0.11".parse().unwrap(), CLIENT_MAC)]
    );
    // Already known: no event.
    let n = resolved(INT, "10.0.0.11", CLIENT_MAC);
    let r = run_with(
        &n,
        INT,
        craft::arp_reply(CLIENT_MAC, v4("10.0.0.11"), INT_MAC, v4("10.0.0.1")),
    );
    assert!(r.learned.is_empty());
}

fn check_echo_reply_v4(frame: &[u8], from: &str, to: &str, ident: u16, seq: u16, data: &[u8]) {
    let f = ethernet::Frame::new_checked(frame).unwrap();
    let ip = ipv4::Packet::new_checked(f.payload()).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    assert_eq!(ip.src_addr(), v4(from));
    assert_eq!(ip.dst_addr(), v4(to));
    assert_eq!(ip.ttl(), 64);
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(), "ICMP checksum");
    assert_eq!(icmp.msg_type(), icmpv4::Message::EchoReply);
    assert_eq!((icmp.echo_ident(), icmp.echo_seq()), (ident, seq));
    assert_eq!(icmp.data(), data);
}

#[test]
fn echo_to_owned_address_is_answered_to_the_resolved_neighbour() {
    let n = resolved(EXT, "203.0.113.100", CLIENT_MAC);
    let mut req = craft::echo_request_v4(
        CLIENT_MAC,
        EXT_MAC,
        v4("203.0.113.100"),
        v4("203.0.113.10"),
        7,
        1,
        b"hello",
    );
    {
        // A TTL other than ours, so the reply's TTL and checksum update show.
        let mut ip = ipv4::Packet::new_unchecked(&mut req[14..]);
        ip.set_ttl(57);
        ip.fill_checksum();
    }
    let r = run_with(&n, EXT, req);
    assert_eq!(r.fate, Fate::Tx { port: EXT, len: 60 });
    let f = ethernet::Frame::new_checked(&r.frame[..]).unwrap();
    assert_eq!((f.dst_addr(), f.src_addr()), (CLIENT_MAC, EXT_MAC));
    check_echo_reply_v4(&r.frame, "203.0.113.10", "203.0.113.100", 7, 1, b"hello");
    assert_eq!(r.counters.stat(Stat::EchoReplies), 1);
}

#[test]
fn echo_reply_waits_for_an_unresolved_neighbour() {
    let req = craft::echo_request_v4(
        CLIENT_MAC,
        INT_MAC,
        v4("10.0.0.11"),
        v4("10.0.0.1"),
        1,
        2,
        b"x",
    );
    let r = run(INT, req);
    assert_eq!(
        r.fate,
        Fate::Hold {
            port: INT,
            next_hop: "10.0.0.11".parse().unwrap(),
            len: 60
        }
    );
    check_echo_reply_v4(&r.frame, "10.0.0.1", "10.0.0.11", 1, 2, b"x");
}

#[test]
fn echo_from_off_link_goes_to_the_gateway() {
    let n = resolved(EXT, "203.0.113.254", GW_MAC);
    let req = craft::echo_request_v4(
        GW_MAC,
        EXT_MAC,
        v4("198.51.100.7"),
        v4("203.0.113.1"),
        1,
        1,
        b"",
    );
    let r = run_with(&n, EXT, req);
    assert_eq!(r.fate, Fate::Tx { port: EXT, len: 60 });
    assert_eq!(
        ethernet::Frame::new_checked(&r.frame[..])
            .unwrap()
            .dst_addr(),
        GW_MAC
    );
}

#[test]
fn ip_that_is_not_for_sluice_is_dropped_with_a_reason() {
    let ping_other = craft::echo_request_v4(
        CLIENT_MAC,
        EXT_MAC,
        v4("203.0.113.100"),
        v4("203.0.113.77"),
        1,
        1,
        b"",
    );
    assert_eq!(run(EXT, ping_other).fate, Fate::Drop(DropReason::NoRule));
    let syn = craft::tcp_v4(
        CLIENT_MAC,
        EXT_MAC,
        (v4("203.0.113.100"), 40000),
        (v4("203.0.113.10"), 80),
        tcp::Flags::SYN,
        1,
        0,
    );
    assert_eq!(run(EXT, syn).fate, Fate::Drop(DropReason::NoService));
    let udp = craft::udp_v4(
        CLIENT_MAC,
        EXT_MAC,
        (v4("203.0.113.100"), 5000),
        (v4("8.8.8.8"), 53),
        b"q",
    );
    assert_eq!(run(EXT, udp).fate, Fate::Drop(DropReason::NoRule));
    let mut frag = craft::echo_request_v4(
        CLIENT_MAC,
        EXT_MAC,
        v4("203.0.113.100"),
        v4("203.0.113.1"),
        1,
        1,
        b"",
    );
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut frag[14..]);
        ip.set_frag(false, true, 0);
        ip.fill_checksum();
    }
    assert_eq!(run(EXT, frag).fate, Fate::Drop(DropReason::Fragment));
}

#[test]
fn echo_from_a_source_no_reply_can_reach_is_dropped() {
    for src in [
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "127.0.0.1",
        "203.0.113.10",
        "10.0.0.1",
    ] {
        let req =
            craft::echo_request_v4(CLIENT_MAC, EXT_MAC, v4(src), v4("203.0.113.1"), 1, 1, b"");
        assert_eq!(
            run(EXT, req).fate,
            Fate::Drop(DropReason::MartianSource),
            "{src}"
        );
    }
    let own6 = craft::echo_request_v6(
        CLIENT_MAC,
        EXT_MAC,
        v6("2001:db8:1::1"),
        v6("2001:db8:1::1"),
        1,
        1,
        b"",
    );
    assert_eq!(run(EXT, own6).fate, Fate::Drop(DropReason::MartianSource));
}

#[test]
fn bad_checksums_are_dropped() {
    let mut bad_ip = craft::echo_request_v4(
        CLIENT_MAC,
        EXT_MAC,
        v4("203.0.113.100"),
        v4("203.0.113.1"),
        1,
        1,
        b"",
    );
    bad_ip[24] ^= 0xff;
    assert_eq!(
        run(EXT, bad_ip).fate,
        Fate::Drop(DropReason::Ipv4BadChecksum)
    );
    let mut bad_icmp = craft::echo_request_v4(
        CLIENT_MAC,
        EXT_MAC,
        v4("203.0.113.100"),
        v4("203.0.113.1"),
        1,
        1,
        b"ab",
    );
    bad_icmp[40] ^= 0xff;
    assert_eq!(
        run(EXT, bad_icmp).fate,
        Fate::Drop(DropReason::IcmpMalformed)
    );
}

#[test]
fn ethernet_level_drops() {
    let ok = craft::arp_request(CLIENT_MAC, v4("203.0.113.100"), v4("203.0.113.1"));
    assert_eq!(
        run(EXT, ok[..13].to_vec()).fate,
        Fate::Drop(DropReason::Runt)
    );
    let mut looped = ok.clone();
    looped[6..12].copy_from_slice(&EXT_MAC.0);
    assert_eq!(run(EXT, looped).fate, Fate::Drop(DropReason::Looped));
    let mut other = craft::echo_request_v4(
        CLIENT_MAC,
        MacAddr([2, 9, 9, 9, 9, 9]),
        v4("1.1.1.1"),
        v4("203.0.113.1"),
        1,
        1,
        b"",
    );
    assert_eq!(
        run(EXT, other.clone()).fate,
        Fate::Drop(DropReason::NotOurMac)
    );
    other[0..6].copy_from_slice(&EXT_MAC.0);
    other[12..14].copy_from_slice(&[0x88, 0xcc]); // LLDP
    assert_eq!(
        run(EXT, other).fate,
        Fate::Drop(DropReason::UnknownEthertype)
    );
    let mut tagged = ok[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    tagged.extend_from_slice(&ok[12..]);
    assert_eq!(run(EXT, tagged).fate, Fate::Drop(DropReason::VlanTagged));
}

#[test]
fn neighbor_solicitation_is_answered_with_an_advert() {
    let me = v6("2001:db8:1::1");
    let client = v6("2001:db8:1::100");
    let r = run(EXT, craft::neighbor_solicit(CLIENT_MAC, client, me));
    assert_eq!(r.fate, Fate::Tx { port: EXT, len: 86 });
    let f = ethernet::Frame::new_checked(&r.frame[..]).unwrap();
    assert_eq!((f.dst_addr(), f.src_addr()), (CLIENT_MAC, EXT_MAC));
    let ip = ipv6::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (me, client, 255)
    );
    let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(checksum::pseudo_header_v6(me, client, 58, 32)));
    assert_eq!(icmp.msg_type(), icmpv6::Message::NeighborAdvert);
    assert_eq!(icmp.na_flags(), icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE);
    assert_eq!(icmp.nd_target(), me);
    assert_eq!(
        icmp.nd_link_layer_option(icmpv6::OPT_TARGET_LL),
        Ok(Some(EXT_MAC))
    );
    assert_eq!(r.learned, vec![(EXT, IpAddr::V6(client), CLIENT_MAC)]);
}

#[test]
fn neighbor_solicitation_checks() {
    let me = v6("2001:db8:1::1");
    let client = v6("2001:db8:1::100");
    let r = run(
        EXT,
        craft::neighbor_solicit(CLIENT_MAC, client, v6("2001:db8:1::99")),
    );
    assert_eq!(r.fate, Fate::Drop(DropReason::NdNotOurs));
    let mut hops = craft::neighbor_solicit(CLIENT_MAC, client, me);
    hops[14 + 7] = 64; // hop limit must be 255 (RFC 4861 7.1.1)
    assert_eq!(run(EXT, hops).fate, Fate::Drop(DropReason::NdInvalid));
    // Duplicate address detection: unspecified source, no option; answer all-nodes.
    let mut dad = craft::neighbor_solicit(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, me);
    dad.truncate(14 + 40 + 24);
    {
        let mut ip = ipv6::Packet::new_unchecked(&mut dad[14..]);
        ip.set_payload_len(24);
        let dst = ip.dst_addr();
        let mut icmp = icmpv6::Packet::new_unchecked(ip.payload_mut());
        icmp.fill_checksum(checksum::pseudo_header_v6(
            Ipv6Addr::UNSPECIFIED,
            dst,
            58,
            24,
        ));
    }
    let r = run(EXT, dad);
    assert_eq!(r.fate, Fate::Tx { port: EXT, len: 86 });
    let ip = ipv6::Packet::new_checked(&r.frame[14..]).unwrap();
    assert_eq!(ip.dst_addr(), v6("ff02::1"));
    assert!(r.learned.is_empty());
}

#[test]
fn echo_v6_is_answered() {
    let n = resolved(EXT, "2001:db8:1::100", CLIENT_MAC);
    let (me, client) = (v6("2001:db8:1::1"), v6("2001:db8:1::100"));
    let r = run_with(
        &n,
        EXT,
        craft::echo_request_v6(CLIENT_MAC, EXT_MAC, client, me, 9, 3, b"ping6"),
    );
    assert!(matches!(r.fate, Fate::Tx { port: EXT, .. }));
    let ip = ipv6::Packet::new_checked(&r.frame[14..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (me, client));
    let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(icmp.msg_type(), icmpv6::Message::EchoReply);
    assert!(icmp.verify_checksum(checksum::pseudo_header_v6(
        me,
        client,
        58,
        ip.payload().len() as u32
    )));
    let r = run(
        EXT,
        craft::echo_request_v6(CLIENT_MAC, EXT_MAC, client, v6("2001:db8:1::5"), 9, 3, b""),
    );
    assert_eq!(r.fate, Fate::Drop(DropReason::NoRule));
}

/// Thousands of random, truncated and bit-flipped frames: no panic, and every
/// frame lands in exactly one counter.
#[test]
fn random_and_mangled_frames_are_all_accounted_for() {
    let ex = craft::Example::lb6(4096);
    let neigh = resolved(EXT, "203.0.113.100", CLIENT_MAC);
    let cx = ex.cx(&neigh, 0);
    let syn6 = craft::tcp_ip(
        CLIENT_MAC,
        EXT_MAC,
        (v6("2001:db8:1::100").into(), 1),
        (v6("2001:db8:1::10").into(), 80),
        tcp::Flags::SYN,
        (0, 0),
        &[],
    );
    let opts = vec![0u8, 0, 1, 4, 0, 0, 0, 0];
    let frag = vec![0u8, 0, 0, 8, 0, 0, 0, 7];
    let seeds = [
        craft::arp_request(CLIENT_MAC, v4("203.0.113.100"), v4("203.0.113.1")),
        craft::echo_request_v4(
            CLIENT_MAC,
            EXT_MAC,
            v4("203.0.113.100"),
            v4("203.0.113.1"),
            1,
            1,
            b"abcdef",
        ),
        craft::echo_request_v6(
            CLIENT_MAC,
            EXT_MAC,
            v6("2001:db8:1::100"),
            v6("2001:db8:1::1"),
            1,
            1,
            b"abc",
        ),
        craft::neighbor_solicit(CLIENT_MAC, v6("2001:db8:1::100"), v6("2001:db8:1::1")),
        craft::tcp_v4(
            CLIENT_MAC,
            EXT_MAC,
            (v4("203.0.113.100"), 1),
            (v4("203.0.113.10"), 80),
            tcp::Flags::SYN,
            0,
            0,
        ),
        syn6.clone(),
        craft::with_ext_headers(&syn6, &[(0, opts.clone()), (43, opts.clone())]),
        craft::with_ext_headers(&syn6, &[(60, opts.clone()), (44, frag.clone())]),
        craft::with_ext_headers(&syn6, &vec![(60, opts.clone()); 9]),
        craft::udp_ip(
            CLIENT_MAC,
            EXT_MAC,
            (v6("2001:db8:1::100").into(), 5353),
            (v6("2001:db8:1::10").into(), 53),
            b"q",
        ),
    ];
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut counters = Counters::default();
    let mut learned = Learned::default();
    let total = 20_000;
    for burst in 0..total / 32 {
        let mut frames: Vec<(Vec<u8>, usize)> = (0..32)
            .map(|i| {
                let mut f = if (burst + i) % 4 == 0 {
                    (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect()
                } else {
                    seeds[rng.gen_range(0..seeds.len())].clone()
                };
                for _ in 0..rng.gen_range(0..4) {
                    if !f.is_empty() {
                        let at = rng.gen_range(0..f.len());
                        f[at] = rng.gen();
                    }
                }
                if rng.gen_bool(0.3) {
                    f.truncate(rng.gen_range(0..=f.len()));
                }
                let len = f.len();
                let room = if rng.gen_bool(0.1) { len } else { 2048 };
                f.resize(room.max(len), 0);
                (f, len)
            })
            .collect();
        let mut fates = [Fate::Consumed; 32];
        process_burst(
            cx,
            PortIndex::new((burst % 2) as u8),
            &mut frames,
            &mut fates,
            &mut learned,
            &mut counters,
        );
    }
    let done = (total / 32) * 32;
    let c = &counters;
    assert_eq!(c.stat(Stat::Rx), done as u64);
    assert_eq!(
        c.stat(Stat::ToTx)
            + c.stat(Stat::Held)
            + c.stat(Stat::Consumed)
            + c.stat(Stat::Deferred)
            + c.stat(Stat::ToProber)
            + c.stat(Stat::ToKernel)
            + c.total_drops(),
        done as u64,
        "every frame accounted for exactly once: {c:?}"
    );
    assert!(
        c.stat(Stat::ToTx) > 0 && c.total_drops() > 0,
        "the mix exercises both outcomes"
    );
    assert!(!ex.flows6.is_empty(), "IPv6 frames made flows");
    for r in [DropReason::Ipv6ExtHeaders, DropReason::Fragment] {
        assert!(c.dropped(r) > 0, "{} counted", r.name());
    }
}
