//! Mid-stream pickup, both families: a TCP segment that is not a SYN, of a
//! flow the table does not have, to a rule with `pickup`, starts the flow
//! on the member a SYN would have got, unconfirmed until the member
//! answers; without `pickup`, or for a RST, it is dropped as before.

use super::test_net::{member_mac, EXT, EXT_MAC, GW_MAC, INT, INT_MAC};
use super::*;
use crate::craft::{self, Example};
use crate::flow::tcp::{self as tcpstate, State};
use crate::wire::tcp::Flags;
use std::net::IpAddr;

fn example(v6: bool, pickup: bool) -> Example {
    let mut ex = if v6 {
        Example::lb6(64)
    } else {
        Example::lb(64)
    };
    for s in &mut ex.services.services {
        s.pickup = pickup;
    }
    ex
}

fn ends(v6: bool) -> ((IpAddr, u16), (IpAddr, u16)) {
    if v6 {
        (
            ("2001:db8:9::7".parse().unwrap(), 40000),
            ("2001:db8:1::10".parse().unwrap(), 80),
        )
    } else {
        (
            ("198.51.100.7".parse().unwrap(), 40000),
            ("203.0.113.10".parse().unwrap(), 80),
        )
    }
}

fn send(ex: &Example, port: PortIndex, frame: Vec<u8>) -> (Fate, Counters) {
    let (fate, _, c) = super::test_net::send(ex, port, frame);
    (fate, c)
}

fn by_client(ex: &Example, v6: bool, flags: Flags) -> (Fate, Counters) {
    let (client, frontend) = ends(v6);
    let f = craft::tcp_ip(GW_MAC, EXT_MAC, client, frontend, flags, (1000, 5000), &[]);
    send(ex, EXT, f)
}

/// (state, member address) of the one flow.
fn flow(ex: &Example, v6: bool) -> (State, IpAddr) {
    if v6 {
        let f = ex.flows6.info(0).unwrap();
        (f.state, f.key[1].src.into())
    } else {
        let f = ex.flows.info(0).unwrap();
        (f.state, f.key[1].src.into())
    }
}

#[test]
fn an_ack_without_a_flow_is_picked_up_on_the_synced_member() {
    for v6 in [false, true] {
        let ex = example(v6, true);
        let (fate, c) = by_client(&ex, v6, Flags::ACK);
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
        assert_eq!(c.stat(Stat::PickedUp), 1);
        let (state, member) = flow(&ex, v6);
        assert_eq!(state, State::Unconfirmed);
        // The member a SYN of the same tuple gets, on any instance.
        let syn = example(v6, false);
        by_client(&syn, v6, Flags::SYN);
        assert_eq!(flow(&syn, v6).1, member, "v6={v6}");
        // The client's next segments leave it unconfirmed; the member's
        // answer confirms it.
        by_client(&ex, v6, Flags::ACK | Flags::PSH);
        assert_eq!(flow(&ex, v6).0, State::Unconfirmed);
        let (client, _) = ends(v6);
        let reply = craft::tcp_ip(
            member_mac(member),
            INT_MAC,
            (member, 8080),
            client,
            Flags::ACK,
            (5000, 1000),
            &[],
        );
        let (fate, _) = send(&ex, INT, reply);
        assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?}");
        assert_eq!(flow(&ex, v6).0, State::Established);
    }
}

#[test]
fn without_pickup_or_for_a_reset_nothing_is_created() {
    for v6 in [false, true] {
        let ex = example(v6, false);
        assert_eq!(
            by_client(&ex, v6, Flags::ACK).0,
            Fate::Drop(DropReason::TcpNoFlow)
        );
        let ex = example(v6, true);
        for flags in [Flags::RST, Flags::RST | Flags::ACK, Flags::SYN | Flags::ACK] {
            assert_eq!(
                by_client(&ex, v6, flags).0,
                Fate::Drop(DropReason::TcpNoFlow),
                "{flags:?}"
            );
        }
        assert_eq!(ex.flows.len() + ex.flows6.len(), 0);
    }
}

#[test]
fn stray_acks_get_no_more_time_than_half_open_syns() {
    let idle = std::time::Duration::from_secs(240);
    assert_eq!(
        tcpstate::timeout(State::Unconfirmed, idle),
        tcpstate::timeout(State::SynSent, idle)
    );
    // A FIN or more ACKs from the same side never confirm it.
    let d = crate::family::Dir::Original;
    for class in [tcpstate::Class::Ack, tcpstate::Class::Fin] {
        assert_eq!(
            tcpstate::next(State::Unconfirmed, d, class),
            State::Unconfirmed
        );
    }
}
