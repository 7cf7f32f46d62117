//! Sync records through the wire format and through the pipeline of a
//! second instance: the flow one instance made is the other's, in the same
//! burst as its first reply; datagrams with a wrong MAC, a replayed number,
//! other rules or from a non-peer change nothing and are counted.

use super::wire::{self, Header, Kind, Op, Record, Refusal, Writer, MAX_PAYLOAD};
use super::{Outbox, Sync, SyncStat};
use crate::config::{Cluster, SyncKey};
use crate::craft as frames;
use crate::craft::{self, Example, NoLearn};
use crate::family::{Dir, Family};
use crate::lb::Identities;
use crate::neigh::PortIndex;
use crate::pipeline::{process, process_burst, Counters, Fate};
use crate::wire::{tcp, MacAddr};
use std::net::{IpAddr, Ipv4Addr};

const EXT: PortIndex = PortIndex::new(0);
const INT: PortIndex = PortIndex::new(1);
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x64]);
const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x22]);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT: (Ipv4Addr, u16) = (Ipv4Addr::new(198, 51, 100, 7), 40000);
const VIP: (Ipv4Addr, u16) = (Ipv4Addr::new(203, 0, 113, 10), 80);

fn key() -> SyncKey {
    SyncKey::derive(b"sixteen bytes or more of secret")
}

fn sync_of(ex: &Example, instance: u8, peer: Ipv4Addr) -> Sync {
    let c = Cluster {
        instance,
        instances: 2,
        peers: vec![IpAddr::V4(peer)],
        sync_port: 7400,
        secret_file: "/dev/null".into(),
        key: key(),
    };
    Sync::new(&c, &Identities::of(&ex.services))
}

/// `frame` through `ex`'s pipeline on `port` (with `s`'s sync): its fate
/// and the frame as it leaves.
fn through(ex: &Example, s: Option<&Sync>, port: PortIndex, frame: &[u8]) -> (Fate, Vec<u8>) {
    let n = craft::example_neigh();
    let mut room = frame.to_vec();
    room.resize(2048, 0);
    let cx = crate::pipeline::Context {
        sync: s,
        ..ex.cx(&n, 20)
    };
    let fate = process(
        cx,
        port,
        &mut room,
        frame.len(),
        &mut NoLearn,
        &mut Counters::default(),
    );
    (fate, room)
}

/// Instance A takes a client's SYN: its table then holds the flow.
fn syn_on(a: &Example) -> u32 {
    let f = frames::tcp_v4(
        CLIENT_MAC,
        craft::EXAMPLE_EXT_MAC,
        CLIENT,
        VIP,
        tcp::Flags::SYN,
        1000,
        0,
    );
    let (fate, _) = through(a, None, EXT, &f);
    assert!(matches!(fate, Fate::Tx { .. }), "{fate:?}");
    let (idx, _) = a
        .flows
        .lookup(&crate::flow::FlowKey {
            src: CLIENT.0,
            dst: VIP.0,
            sport: CLIENT.1,
            dport: VIP.1,
            proto: 6,
        })
        .expect("A made the flow");
    idx
}

/// A's sync datagram with the record of entry `idx`, as a frame to B
/// (10.0.0.1) from `from`.
fn datagram(a: &Example, s: &Sync, out: &mut Outbox, idx: u32, from: Ipv4Addr, op: Op) -> Vec<u8> {
    let mut buf = [0u8; MAX_PAYLOAD];
    let h = out.next(s, Kind::Records);
    let mut w = Writer::new(&mut buf, &h);
    assert!(w.push(op, &a.flows.export(idx, 10).expect("live")));
    let len = w.finish(s.mac());
    frames::udp_v4(
        PEER_MAC,
        craft::EXAMPLE_INT_MAC,
        (from, 7400),
        (Ipv4Addr::new(10, 0, 0, 1), 7400),
        &buf[..len],
    )
}

fn on_b(b: &Example, s: &Sync, frame: &[u8]) -> Fate {
    through(b, Some(s), INT, frame).0
}

#[test]
fn datagram_round_trips_and_any_change_breaks_its_mac() {
    let a = Example::lb(1024);
    let idx = syn_on(&a);
    let r = a.flows.export(idx, 9).unwrap();
    let r6 = crate::flow::FlowRecord::<crate::family::V6> {
        words: [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]],
        next_hop: 11,
        far: 12 << 64 | 13,
        state: 14,
        meta: 15,
        next_seq: [16, 17],
        age: 18,
    };
    let h = Header {
        kind: Kind::Records,
        instance: 1,
        stream: 3,
        fingerprint: 0xfeed,
        epoch: 77,
        seq: 5,
    };
    let mut buf = [0u8; MAX_PAYLOAD];
    let mut w = Writer::new(&mut buf, &h);
    assert!(w.push(Op::Upsert, &r) && w.push(Op::Remove, &r6));
    let len = w.finish(&wire::Mac::of(&key(), h.instance, h.epoch));
    let p = &buf[..len];
    assert_eq!(wire::open(p, &key()), Ok(h));
    let got: Vec<_> = wire::records(p).collect();
    assert_eq!(
        got,
        vec![
            Ok(Record::V4(Op::Upsert, r)),
            Ok(Record::V6(Op::Remove, r6))
        ]
    );
    for i in [0, 7, 30, 40, len - 1] {
        let mut bad = p.to_vec();
        bad[i] ^= 1;
        assert!(wire::open(&bad, &key()).is_err(), "byte {i} changed");
    }
    assert_eq!(
        wire::open(p, &SyncKey::derive(b"another secret, as long")),
        Err(Refusal::BadMac)
    );
    assert_eq!(wire::open(&p[..40], &key()), Err(Refusal::Malformed));
    // A full datagram takes as many records as fit, and no more.
    let mut w = Writer::new(&mut buf, &h);
    let mut n = 0;
    while w.push(Op::Upsert, &r) {
        n += 1;
    }
    assert_eq!(
        n,
        (MAX_PAYLOAD - wire::HEADER - wire::TAG) / wire::RECORD_V4
    );
}

#[test]
fn a_record_makes_the_same_flow_in_another_table() {
    let (a, b) = (Example::lb(1024), Example::lb(1024));
    let idx = syn_on(&a);
    let r = a.flows.export(idx, 120).unwrap();
    assert_eq!(r.age, 100);
    let got = b.flows.import(&r, 1000, b.services.generation).unwrap();
    let crate::flow::Imported::New(bi, _) = got else {
        panic!("{got:?}")
    };
    let (fa, fb) = (a.flows.info(idx).unwrap(), b.flows.info(bi).unwrap());
    assert_eq!(fb.last_seen, 900);
    assert_eq!(
        (fa.key, fa.state, fa.rule, fa.member),
        (fb.key, fb.state, fb.rule, fb.member)
    );
    assert_eq!(fa.rewrite, fb.rewrite);
    // Again: the same flow, brought up to date (a later state), not a copy.
    a.flows
        .entry(idx)
        .set_tcp_state(fa.state, crate::flow::tcp::State::Established);
    let r = a.flows.export(idx, 2000).unwrap();
    assert_eq!(
        b.flows.import(&r, 3000, false),
        Ok(crate::flow::Imported::Updated(bi))
    );
    assert_eq!(b.flows.len(), 1);
    assert_eq!(
        b.flows.info(bi).unwrap().state,
        crate::flow::tcp::State::Established
    );
    // An older state (a refresh that crossed a newer change) does not
    // take it back.
    let mut stale = r;
    stale.state = stale.state & !7 | crate::flow::tcp::State::SynRecv as u32;
    b.flows.import(&stale, 3100, false).unwrap();
    assert_eq!(
        b.flows.info(bi).unwrap().state,
        crate::flow::tcp::State::Established
    );
    // Another flow under one of its keys (two instances made a flow for
    // one tuple): the flow here stays.
    let mut other = r;
    other.words[1].as_mut()[<crate::family::V4 as Family>::ADDR_WORDS] ^= 1 << 8;
    assert_eq!(
        b.flows.import(&other, 3000, false),
        Ok(crate::flow::Imported::Conflict)
    );
    assert_eq!(b.flows.len(), 1);
    assert_eq!(b.flows.info(bi).unwrap().key, fa.key);
}

#[test]
fn a_peer_record_lets_the_first_reply_of_the_same_burst_through() {
    let (a, b) = (Example::lb(1024), Example::lb(1024));
    let (sa, sb) = (
        sync_of(&a, 1, Ipv4Addr::new(10, 0, 0, 1)),
        sync_of(&b, 0, PEER),
    );
    let idx = syn_on(&a);
    let member = a.flows.info(idx).unwrap().rewrite[0].to.dst;
    let sync = datagram(&a, &sa, &mut Outbox::new(0), idx, PEER, Op::Upsert);
    let synack = frames::tcp_v4(
        MacAddr([2, 0, 0, 0, 1, member.octets()[3]]),
        craft::EXAMPLE_INT_MAC,
        (member, 8080),
        CLIENT,
        tcp::Flags::SYN | tcp::Flags::ACK,
        5000,
        1001,
    );
    let n = craft::example_neigh();
    let cx = crate::pipeline::Context {
        sync: Some(&sb),
        ..b.cx(&n, 20)
    };
    let mut burst: Vec<(Vec<u8>, usize)> = [sync, synack]
        .into_iter()
        .map(|f| {
            let len = f.len();
            let mut room = f;
            room.resize(2048, 0);
            (room, len)
        })
        .collect();
    let mut fates = [Fate::Consumed; 2];
    process_burst(
        cx,
        INT,
        &mut burst,
        &mut fates,
        &mut NoLearn,
        &mut Counters::default(),
    );
    assert_eq!(fates[0], Fate::Consumed);
    assert!(
        matches!(fates[1], Fate::Tx { port, .. } if port == EXT),
        "{:?}",
        fates[1]
    );
    assert_eq!(sb.stat(SyncStat::Created), 1);
    let (bi, dir) = b.flows.lookup(&a.flows.info(idx).unwrap().key[1]).unwrap();
    assert_eq!(dir, Dir::Reply);
    assert_eq!(
        b.flows.info(bi).unwrap().state,
        crate::flow::tcp::State::SynRecv
    );
}

#[test]
fn untrusted_datagrams_change_nothing_and_are_counted() {
    let (a, b) = (Example::lb(1024), Example::lb(1024));
    let (sa, sb) = (
        sync_of(&a, 1, Ipv4Addr::new(10, 0, 0, 1)),
        sync_of(&b, 0, PEER),
    );
    let idx = syn_on(&a);
    let mut out = Outbox::new(0);
    // From an address that is not a peer.
    let stranger = datagram(
        &a,
        &sa,
        &mut out,
        idx,
        Ipv4Addr::new(10, 0, 0, 9),
        Op::Upsert,
    );
    assert_eq!(on_b(&b, &sb, &stranger), Fate::Consumed);
    assert_eq!(sb.stat(SyncStat::RefusedNotPeer), 1);
    // A wrong MAC: one bit of the payload flipped.
    let mut forged = datagram(&a, &sa, &mut out, idx, PEER, Op::Upsert);
    let at = forged.len() - 40;
    forged[at] ^= 0x10;
    crate::wire::udp::Packet::new_unchecked(&mut forged[34..]).set_checksum(0);
    on_b(&b, &sb, &forged);
    assert_eq!(sb.stat(SyncStat::RefusedMac), 1);
    // Other rules at the sender.
    let other = Sync::new(
        &Cluster {
            instance: 1,
            instances: 2,
            peers: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))],
            sync_port: 7400,
            secret_file: "/dev/null".into(),
            key: key(),
        },
        &Identities::default(),
    );
    on_b(
        &b,
        &sb,
        &datagram(&a, &other, &mut out, idx, PEER, Op::Upsert),
    );
    assert_eq!(sb.stat(SyncStat::RefusedConfig), 1);
    assert_eq!(b.flows.len(), 0, "nothing refused made a flow");
    // The real one, then the same again (a replay).
    let good = datagram(&a, &sa, &mut out, idx, PEER, Op::Upsert);
    on_b(&b, &sb, &good);
    assert_eq!((sb.stat(SyncStat::Created), b.flows.len()), (1, 1));
    on_b(&b, &sb, &good);
    assert_eq!(sb.stat(SyncStat::RefusedReplay), 1);
    // A number skipped counts as lost, until it comes late.
    let lost = || sb.peers[0].lost.load(std::sync::atomic::Ordering::Relaxed);
    let skipped = datagram(&a, &sa, &mut out, idx, PEER, Op::Upsert);
    on_b(&b, &sb, &datagram(&a, &sa, &mut out, idx, PEER, Op::Upsert));
    assert_eq!(lost(), 1);
    on_b(&b, &sb, &skipped);
    assert_eq!((lost(), sb.stat(SyncStat::Updated)), (0, 2));
    assert_eq!(
        sb.peers[0]
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    // A removal goes to control.
    on_b(&b, &sb, &datagram(&a, &sa, &mut out, idx, PEER, Op::Remove));
    assert_eq!(sb.removals.len(), 1);
}

#[test]
fn two_instances_never_hand_out_the_same_snat_port() {
    // b1 has 8 ports on 203.0.113.10 from 1024; one worker each.
    let mut seen = Vec::new();
    for instance in 0..2u8 {
        let ex = Example::lb_snat(4096, 1);
        let s = sync_of(
            &ex,
            instance,
            if instance == 0 {
                PEER
            } else {
                Ipv4Addr::new(10, 0, 0, 1)
            },
        );
        let mut ports = Vec::new();
        for sport in 40000..40006u16 {
            let f = frames::tcp_v4(
                MacAddr([2, 0, 0, 0, 1, 11]),
                craft::EXAMPLE_INT_MAC,
                (Ipv4Addr::new(10, 0, 0, 11), sport),
                (Ipv4Addr::new(198, 51, 100, 7), 443),
                tcp::Flags::SYN,
                1,
                0,
            );
            let (fate, room) = through(&ex, Some(&s), INT, &f);
            match fate {
                Fate::Tx { .. } => ports.push(u16::from_be_bytes([room[34], room[35]])),
                Fate::Drop(r) => assert_eq!(r, crate::pipeline::DropReason::SnatExhausted),
                f => panic!("{f:?}"),
            }
        }
        // Port index i is instance i % 2's: half of the 8 each, no more.
        ports.sort();
        let want: Vec<u16> = (0..8)
            .filter(|i| i % 2 == u16::from(instance))
            .map(|i| 1024 + i)
            .collect();
        assert_eq!(ports, want, "instance {instance}");
        seen.extend(ports);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8);
}

#[test]
fn a_reply_that_beats_its_record_is_put_right_when_the_record_comes() {
    let (a, b) = (Example::lb_snat(4096, 1), Example::lb_snat(4096, 1));
    let (sa, sb) = (
        sync_of(&a, 1, Ipv4Addr::new(10, 0, 0, 1)),
        sync_of(&b, 0, PEER),
    );
    let run = |ex: &Example, s: &Sync, port, f: Vec<u8>| {
        let (fate, room) = through(ex, Some(s), port, &f);
        assert!(matches!(fate, Fate::Tx { .. }), "{fate:?}");
        let src = Ipv4Addr::new(room[26], room[27], room[28], room[29]);
        (src, u16::from_be_bytes([room[34], room[35]]))
    };
    // A takes a client's datagram to the frontend's UDP port 53.
    let q = frames::udp_v4(
        CLIENT_MAC,
        craft::EXAMPLE_EXT_MAC,
        CLIENT,
        (VIP.0, 53),
        b"q",
    );
    run(&a, &sa, EXT, q);
    let key = crate::flow::FlowKey {
        src: CLIENT.0,
        dst: VIP.0,
        sport: CLIENT.1,
        dport: 53,
        proto: 17,
    };
    let (idx, _) = a.flows.lookup(&key).unwrap();
    let member = a.flows.info(idx).unwrap().rewrite[0].to.dst;
    // The member's reply reaches B before the record: it looks like a new
    // outbound flow of the member, and leaves from an SNAT port.
    let reply = || {
        frames::udp_v4(
            MacAddr([2, 0, 0, 0, 1, member.octets()[3]]),
            craft::EXAMPLE_INT_MAC,
            (member, 53),
            CLIENT,
            b"r",
        )
    };
    let (src, sport) = run(&b, &sb, INT, reply());
    assert_eq!(src, VIP.0);
    assert!((1024..1048).contains(&sport), "an SNAT port: {sport}");
    // The record comes: the inbound flow takes the reply key back.
    on_b(
        &b,
        &sb,
        &datagram(&a, &sa, &mut Outbox::new(0), idx, PEER, Op::Upsert),
    );
    assert_eq!(
        (sb.stat(SyncStat::Created), sb.stat(SyncStat::Displaced)),
        (1, 1)
    );
    assert_eq!(
        run(&b, &sb, INT, reply()),
        (VIP.0, 53),
        "the next reply is the flow's"
    );
}

#[test]
fn an_ipv6_record_makes_the_same_flow_through_the_wire() {
    let (a, b) = (Example::lb6(1024), Example::lb6(1024));
    let (sa, sb) = (
        sync_of(&a, 1, Ipv4Addr::new(10, 0, 0, 1)),
        sync_of(&b, 0, PEER),
    );
    let (f, len) = craft::bench_frame6(3, tcp::Flags::SYN);
    let (fate, _) = through(&a, None, EXT, &f[..len]);
    assert!(
        matches!(fate, Fate::Tx { .. } | Fate::Hold { .. }),
        "{fate:?}"
    );
    let ia = (0..a.flows6.high_water())
        .find(|&i| a.flows6.info(i).is_some())
        .expect("A's IPv6 flow");
    let mut buf = [0u8; MAX_PAYLOAD];
    let h = Outbox::new(0).next(&sa, Kind::Records);
    let mut w = Writer::new(&mut buf, &h);
    assert!(w.push(Op::Upsert, &a.flows6.export(ia, 10).unwrap()));
    let len = w.finish(sa.mac());
    let frame = frames::udp_v4(
        PEER_MAC,
        craft::EXAMPLE_INT_MAC,
        (PEER, 7400),
        (Ipv4Addr::new(10, 0, 0, 1), 7400),
        &buf[..len],
    );
    assert_eq!(on_b(&b, &sb, &frame), Fate::Consumed);
    assert_eq!(sb.stat(SyncStat::Created), 1);
    let ib = (0..b.flows6.high_water())
        .find(|&i| b.flows6.info(i).is_some())
        .expect("B's copy");
    let (fa, fb) = (a.flows6.info(ia).unwrap(), b.flows6.info(ib).unwrap());
    assert_eq!(
        (fa.key, fa.rewrite, fa.rule, fa.member),
        (fb.key, fb.rewrite, fb.rule, fb.member)
    );
}
