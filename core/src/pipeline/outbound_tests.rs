//! Outbound SNAT through the pipeline, on `Example::lb_snat`: b1
//! (10.0.0.11) has 8 ports on 203.0.113.10 from 1024 (TCP and UDP), b2 16
//! from 1032; b3 has no outbound rule.

use super::*;
use crate::family::Dir;
use crate::flow::{FlowKey, Reclaimer};
use std::sync::Arc;

const PUBLIC: &str = "203.0.113.10";
const REMOTE: &str = "198.51.100.7";

fn snat_example(workers: usize) -> Example {
    Example::lb_snat(4096, workers)
}

fn out_syn(member: &str, sport: u16, dst: (&str, u16)) -> Vec<u8> {
    let m = ip(member);
    craft::tcp_v4(
        member_mac(m),
        INT_MAC,
        (m, sport),
        (ip(dst.0), dst.1),
        tcp::Flags::SYN,
        1,
        0,
    )
}

fn out_udp(member: &str, sport: u16, dst: (&str, u16), data: &[u8]) -> Vec<u8> {
    let m = ip(member);
    craft::udp_v4(member_mac(m), INT_MAC, (m, sport), (ip(dst.0), dst.1), data)
}

fn in_udp(src: (&str, u16), dport: u16) -> Vec<u8> {
    craft::udp_v4(
        GW_MAC,
        EXT_MAC,
        (ip(src.0), src.1),
        (ip(PUBLIC), dport),
        b"r",
    )
}

#[test]
fn a_member_leaves_from_a_public_port_of_its_block_and_the_reply_returns() {
    let ex = snat_example(1);
    let o = send(&ex, INT, out_syn("10.0.0.11", 40000, (REMOTE, 443)));
    assert!(matches!(o.fate, Fate::Tx { port: EXT, .. }), "{:?}", o.fate);
    let (s, sp, d, dp, ttl) = parsed(&o.frame);
    assert_eq!((s, d, dp, ttl), (ip(PUBLIC), ip(REMOTE), 443, 63));
    assert!((1024..1032).contains(&sp), "{sp}");
    assert_eq!(&o.frame[0..6], &GW_MAC.0);
    assert_eq!(o.c.stat(Stat::SnatCreated), 1);
    let reply = craft::tcp_v4(
        GW_MAC,
        EXT_MAC,
        (ip(REMOTE), 443),
        (ip(PUBLIC), sp),
        tcp::Flags::SYN | tcp::Flags::ACK,
        7,
        2,
    );
    let o = send(&ex, EXT, reply);
    assert!(matches!(o.fate, Fate::Tx { port: INT, .. }), "{:?}", o.fate);
    assert_eq!(
        parsed(&o.frame),
        (ip(REMOTE), 443, ip("10.0.0.11"), 40000, 63)
    );
    assert_eq!(&o.frame[0..6], &member_mac(ip("10.0.0.11")).0);
    assert_eq!(ex.services.snat.members[0].totals(), (1, 0));
}

#[test]
fn tcp_ports_are_reused_per_destination_and_exhaustion_fails_only_the_new_flow() {
    let ex = snat_example(1);
    let mut ports = std::collections::HashSet::new();
    for i in 0..8 {
        let o = send(&ex, INT, out_syn("10.0.0.11", 40000 + i, (REMOTE, 443)));
        assert!(matches!(o.fate, Fate::Tx { .. }), "{i}: {:?}", o.fate);
        ports.insert(parsed(&o.frame).1);
    }
    assert_eq!(ports.len(), 8, "one destination: 8 distinct public ports");
    let u = crate::lb::snat::usage(&ex.flows, &ex.flows6, &ex.services.snat);
    assert_eq!((u.members[0].tcp_ports, u.members[0].pending), (8, 8));
    assert_eq!(u.members[1], Default::default());
    assert_eq!(
        u.addresses[&IpAddr::V4(ip(PUBLIC))].0,
        8 + 16,
        "allocated on the address"
    );
    assert_eq!(u.addresses[&IpAddr::V4(ip(PUBLIC))].1.tcp_ports, 8);
    let o = send(&ex, INT, out_syn("10.0.0.11", 40100, (REMOTE, 443)));
    assert_eq!(o.fate, Fate::Drop(DropReason::SnatExhausted));
    assert_eq!(ex.services.snat.members[0].totals(), (8, 1));
    // Another destination port, or another member: fine.
    let o = send(&ex, INT, out_syn("10.0.0.11", 40101, (REMOTE, 80)));
    assert!(matches!(o.fate, Fate::Tx { .. }), "{:?}", o.fate);
    assert!(ports.contains(&parsed(&o.frame).1), "a port is shared");
    let o = send(&ex, INT, out_syn("10.0.0.12", 40000, (REMOTE, 443)));
    assert!((1032..1048).contains(&parsed(&o.frame).1));
    // A released port serves again.
    let k = FlowKey {
        src: ip("10.0.0.11"),
        dst: ip(REMOTE),
        sport: 40000,
        dport: 443,
        proto: 6,
    };
    let (idx, _) = ex.flows.lookup(&k).unwrap();
    let mut r = Reclaimer::new();
    assert!(r.remove(&ex.flows, idx));
    let o = send(&ex, INT, out_syn("10.0.0.11", 40100, (REMOTE, 443)));
    assert!(matches!(o.fate, Fate::Tx { .. }), "{:?}", o.fate);
}

#[test]
fn udp_is_port_restricted_cone() {
    let ex = snat_example(1);
    let a = send(&ex, INT, out_udp("10.0.0.11", 5000, (REMOTE, 53), b"a"));
    let b = send(&ex, INT, out_udp("10.0.0.11", 5000, (REMOTE, 54), b"b"));
    let (pa, pb) = (parsed(&a.frame).1, parsed(&b.frame).1);
    assert_eq!(pa, pb, "one public port per (member, port, remote address)");
    // From a third port of that address: in, to the member's socket.
    let o = send(&ex, EXT, in_udp((REMOTE, 9999), pa));
    assert!(matches!(o.fate, Fate::Tx { port: INT, .. }), "{:?}", o.fate);
    assert_eq!(
        parsed(&o.frame),
        (ip(REMOTE), 9999, ip("10.0.0.11"), 5000, 63)
    );
    // From another address: dropped.
    let o = send(&ex, EXT, in_udp(("198.51.100.8", 53), pa));
    assert_eq!(o.fate, Fate::Drop(DropReason::SnatNoMapping));
    // Another remote address may get the same port (different public tuple).
    let c = send(
        &ex,
        INT,
        out_udp("10.0.0.11", 5001, ("198.51.100.9", 53), b"c"),
    );
    assert!(matches!(c.fate, Fate::Tx { .. }), "{:?}", c.fate);
}

#[test]
fn without_an_outbound_rule_or_for_other_protocols_nothing_leaves() {
    let ex = snat_example(1);
    let o = send(&ex, INT, out_syn("10.0.0.13", 40000, (REMOTE, 443)));
    assert_eq!(o.fate, Fate::Drop(DropReason::EgressDenied));
    let m = ip("10.0.0.11");
    let ping = craft::echo_request_v4(member_mac(m), INT_MAC, m, ip(REMOTE), 1, 1, b"x");
    let o = send(&ex, INT, ping);
    assert_eq!(o.fate, Fate::Drop(DropReason::SnatProtocol));
    // Inside the internal network: not SNAT's business.
    let o = send(
        &ex,
        INT,
        out_udp("10.0.0.11", 5000, ("10.0.0.12", 53), b"x"),
    );
    assert_eq!(o.fate, Fate::Drop(DropReason::NoRule));
    // To the public address with no mapping.
    let o = send(&ex, EXT, in_udp((REMOTE, 53), 1024));
    assert_eq!(o.fate, Fate::Drop(DropReason::SnatNoMapping));
    assert!(ex.flows.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random opens (TCP and UDP, two members, two workers, a few remote
    /// endpoints) and closes: no two live flows share a public 5-tuple,
    /// every public port is in its member's block (a worker takes ports of
    /// the other's slice once its own are used), and every translation
    /// reverses.
    #[test]
    fn snat_keeps_public_tuples_unique_and_in_their_slices(
        ops in prop::collection::vec((0u8..4, 0usize..2, 0u16..6, 0u8..3, 0u16..3, any::<bool>()), 1..120)
    ) {
        let ex = snat_example(2);
        let mut r = Reclaimer::new();
        let mut live: Vec<FlowKey> = Vec::new();
        for (op, member, sport, remote, dport, udp) in ops {
            let member = ["10.0.0.11", "10.0.0.12"][member];
            let remote = ["198.51.100.7", "198.51.100.8", "192.0.2.1"][remote as usize];
            if op == 0 && !live.is_empty() {
                let k = live.remove(usize::from(sport) % live.len());
                if let Some((idx, Dir::Original)) = ex.flows.lookup(&k) {
                    r.remove(&ex.flows, idx);
                }
                continue;
            }
            let worker = usize::from(sport % 2);
            let (sp, dp) = (30000 + sport, 1000 + dport);
            let f = if udp {
                out_udp(member, sp, (remote, dp), b"p")
            } else {
                out_syn(member, sp, (remote, dp))
            };
            let o = send_on(&ex, INT, f, worker);
            if let Fate::Tx { .. } = o.fate {
                let k = FlowKey { src: ip(member), dst: ip(remote), sport: sp, dport: dp, proto: if udp { 17 } else { 6 } };
                if !live.contains(&k) {
                    live.push(k);
                }
            } else {
                prop_assert!(matches!(o.fate, Fate::Drop(DropReason::SnatExhausted)), "{:?}", o.fate);
            }
        }
        let mut public = std::collections::HashSet::new();
        for k in &live {
            let (idx, dir) = ex.flows.lookup(k).expect("live flow");
            prop_assert_eq!(dir, Dir::Original);
            let e = ex.flows.entry(idx);
            let reply = e.key(Dir::Reply);
            prop_assert!(public.insert(reply), "public tuple {:?} twice", reply);
            let m = ex.services.snat.member(k.src, k.proto).unwrap().1;
            prop_assert!(m.holds(reply.dst.into(), reply.dport));
            // The translation reverses: the reply direction restores the key.
            let rw = e.rewrite(Dir::Reply);
            prop_assert_eq!(rw.to, k.reversed());
            prop_assert_eq!(e.rewrite(Dir::Original).to, reply.reversed());
        }
    }
}

#[test]
fn counters_carry_over_to_the_same_member_of_a_new_snapshot() {
    let ex = snat_example(1);
    send(&ex, INT, out_syn("10.0.0.11", 40000, (REMOTE, 443)));
    let mut new = match Arc::try_unwrap(snat_example(2).services.snat) {
        Ok(s) => s,
        Err(_) => unreachable!("a fresh snapshot is not shared"),
    };
    new.inherit_counters(&ex.services.snat);
    assert_eq!(new.members[0].totals(), (1, 0));
    assert_eq!(new.members[1].totals(), (0, 0));
}

/// Example::lb with one outbound rule whose member b1 (10.0.0.11) has
/// `ports` ports on each of 203.0.113.10 and 203.0.113.11, over `workers`.
fn two_addresses(ports: u16, workers: usize) -> Example {
    use crate::lb::snat::{Run, Snat};
    let mut ex = Example::lb(4096);
    let run = |a: &str| Run {
        address: IpAddr::V4(ip(a)),
        start: 1024,
        len: ports,
    };
    let rule = craft::egress_rule();
    let member = (
        0,
        IpAddr::V4(ip("10.0.0.11")),
        vec![run(PUBLIC), run("203.0.113.11")],
    );
    ex.services.snat = Arc::new(Snat::new(vec![rule], vec![member], workers));
    ex
}

#[test]
fn the_first_address_serves_until_its_ports_are_used_then_the_next() {
    let ex = two_addresses(8, 1);
    let mut from = Vec::new();
    for i in 0..17 {
        let o = send(&ex, INT, out_syn("10.0.0.11", 40000 + i, (REMOTE, 443)));
        match o.fate {
            Fate::Tx { .. } => from.push(parsed(&o.frame).0.to_string()),
            f => {
                assert_eq!(f, Fate::Drop(DropReason::SnatExhausted), "{i}");
                from.push("failed".into());
            }
        }
    }
    let expect: Vec<&str> = [[PUBLIC; 8], ["203.0.113.11"; 8]]
        .concat()
        .into_iter()
        .chain(["failed"])
        .collect();
    assert_eq!(from, expect);
}

#[test]
fn a_worker_takes_the_other_workers_ports_before_a_flow_fails() {
    // 16 ports, two workers: worker 0's slice is 8 of them.
    let ex = two_addresses(8, 2);
    let mut ports = std::collections::HashSet::new();
    for i in 0..16 {
        let o = send_on(&ex, INT, out_syn("10.0.0.11", 40000 + i, (REMOTE, 443)), 0);
        assert!(matches!(o.fate, Fate::Tx { .. }), "{i}: {:?}", o.fate);
        let (s, sp, ..) = parsed(&o.frame);
        ports.insert((s, sp));
        // The first address first, whichever worker's slice.
        assert_eq!(s == ip(PUBLIC), i < 8, "{i}: {s}");
    }
    assert_eq!(ports.len(), 16, "every port of the member, once");
    let o = send_on(&ex, INT, out_syn("10.0.0.11", 40100, (REMOTE, 443)), 1);
    assert_eq!(o.fate, Fate::Drop(DropReason::SnatExhausted));
}

#[test]
fn a_port_another_worker_holds_for_the_same_destination_is_given_back() {
    use crate::lb::snat::RuleRef;
    let ex = two_addresses(8, 2);
    // Worker 1 holds port 1024 for REMOTE:443 (as if it won a race), but
    // worker 0's claim of it was inserted too: it must see the other one.
    let key = FlowKey {
        src: ip("10.0.0.11"),
        dst: ip(REMOTE),
        sport: 1,
        dport: 443,
        proto: 6,
    };
    let reply = FlowKey {
        src: ip(REMOTE),
        dst: ip(PUBLIC),
        sport: 443,
        dport: 1024,
        proto: 6,
    };
    let flow = |k: FlowKey| crate::flow::NewFlow {
        key: [k, reply],
        egress: [EXT, INT],
        next_hop: [ip(REMOTE), k.src],
        state: crate::flow::tcp::State::SynSent,
        tcp_reset: false,
        idle_timeout: std::time::Duration::from_secs(60),
        rule: RuleRef::Snat(0),
        member: 0,
        now: 0,
        generation: false,
        snat: true,
        rfc_timers: false,
    };
    let a = ex.flows.insert(&flow(key)).unwrap();
    let b = ex.flows.insert(&flow(FlowKey { sport: 2, ..key })).unwrap();
    assert!(ex.flows.has_other(&reply, a) && ex.flows.has_other(&reply, b));
    ex.flows.withdraw(b);
    assert!(!ex.flows.has_other(&reply, a), "given back");
    assert_eq!(ex.flows.lookup(&reply), Some((a, Dir::Reply)));
    assert_eq!(ex.flows.len(), 1);
}
