//! TCP tracking against blind attacks, for both families: a RST outside
//! the receiver's window and a SYN on an established connection are
//! forwarded (the endpoints decide) but change nothing in the flow; a RST
//! in the window still ends it.

use super::test_net::{member_mac, neigh, Nop, EXT, EXT_MAC, GW_MAC, INT, INT_MAC};
use super::*;
use crate::craft::{self, Example};
use crate::flow::tcp::State;
use crate::wire::tcp;
use std::net::{IpAddr, Ipv4Addr};

/// One family's example: its config, a client beyond the gateway, the
/// frontend, and a reader of the one flow's TCP state.
struct Case {
    ex: Example,
    client: (IpAddr, u16),
    frontend: (IpAddr, u16),
}

impl Case {
    fn v4() -> Case {
        Case {
            ex: Example::lb(64),
            client: (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 40000),
            frontend: (IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)), 80),
        }
    }
    fn v6() -> Case {
        Case {
            ex: Example::lb6(64),
            client: ("2001:db8:9::7".parse().unwrap(), 40000),
            frontend: ("2001:db8:1::10".parse().unwrap(), 80),
        }
    }
    fn state(&self) -> State {
        match self.client.0 {
            IpAddr::V4(_) => self.ex.flows.info(0).unwrap().state,
            IpAddr::V6(_) => self.ex.flows6.info(0).unwrap().state,
        }
    }
    /// Sends a frame; returns its fate, bytes and counters.
    fn send(&self, port: PortIndex, frame: Vec<u8>) -> (Fate, Vec<u8>, Counters) {
        let n = neigh();
        let len = frame.len();
        let mut room = frame;
        room.resize(2048, 0);
        let mut c = Counters::default();
        let fate = process(self.ex.cx(&n, 7), port, &mut room, len, &mut Nop, &mut c);
        room.truncate(len);
        (fate, room, c)
    }
    /// A segment from the client with `flags`, `seq` and `ack`.
    fn by_client(&self, flags: tcp::Flags, seq: u32, ack: u32) -> (Fate, Counters) {
        let f = craft::tcp_ip(
            GW_MAC,
            EXT_MAC,
            self.client,
            self.frontend,
            flags,
            (seq, ack),
            &[],
        );
        let (fate, _, c) = self.send(EXT, f);
        (fate, c)
    }
    /// A segment from `member` to the client.
    fn by_member(&self, member: IpAddr, flags: tcp::Flags, seq: u32, ack: u32) -> (Fate, Counters) {
        let f = craft::tcp_ip(
            member_mac(member),
            INT_MAC,
            (member, 8080),
            self.client,
            flags,
            (seq, ack),
            &[],
        );
        let (fate, _, c) = self.send(INT, f);
        (fate, c)
    }
    /// SYN (client ISN 1000), SYN-ACK (member ISN 9000), ACK: the member.
    fn handshake(&self) -> IpAddr {
        let syn = craft::tcp_ip(
            GW_MAC,
            EXT_MAC,
            self.client,
            self.frontend,
            tcp::Flags::SYN,
            (1000, 0),
            &[],
        );
        let (fate, f, _) = self.send(EXT, syn);
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
        let member = match self.client.0 {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(f[30], f[31], f[32], f[33])),
            IpAddr::V6(_) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&f[38..54]);
                IpAddr::V6(a.into())
            }
        };
        let (fate, _) = self.by_member(member, tcp::Flags::SYN | tcp::Flags::ACK, 9000, 1001);
        assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?}");
        let (fate, _) = self.by_client(tcp::Flags::ACK, 1001, 9001);
        assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
        assert_eq!(self.state(), State::Established);
        member
    }
}

fn blind_resets_do_not_end_the_flow(case: Case) {
    let member = case.handshake();
    let rst = tcp::Flags::RST | tcp::Flags::ACK;
    // Far from what each side sent (1001 and 9001), from both sides.
    for i in 0..100u32 {
        let seq = 1001u32.wrapping_add(0x0100_0000 + i.wrapping_mul(0x0200_0000));
        let (fate, c) = case.by_client(rst, seq, 9001);
        assert!(matches!(fate, Fate::Tx { .. }), "forwarded: {fate:?}");
        assert_eq!(c.stat(Stat::TcpRstOutOfWindow), 1, "seq {seq:#x}");
        let (fate, c) = case.by_member(member, rst, 9001u32.wrapping_add(seq), 1001);
        assert!(matches!(fate, Fate::Tx { .. }), "forwarded: {fate:?}");
        assert_eq!(c.stat(Stat::TcpRstOutOfWindow), 1);
    }
    assert_eq!(case.state(), State::Established, "100 blind RSTs each way");
    // A SYN on the established connection: forwarded, counted, no change.
    let (fate, c) = case.by_client(tcp::Flags::SYN, 0x7000_0000, 0);
    assert!(matches!(fate, Fate::Tx { .. }), "{fate:?}");
    assert_eq!(c.stat(Stat::TcpSynOnEstablished), 1);
    assert_eq!(case.state(), State::Established);
    // Data still flows and moves the sequence numbers on.
    let (_, c) = case.by_client(tcp::Flags::ACK | tcp::Flags::PSH, 1001, 9001);
    assert_eq!(c.stat(Stat::Forwarded), 1);
    // The member's RST at what it sent: in the window, the flow ends.
    let (fate, c) = case.by_member(member, rst, 9001, 1001);
    assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?}");
    assert_eq!(c.stat(Stat::TcpRstOutOfWindow), 0);
    assert_eq!(case.state(), State::Reset);
}

#[test]
fn blind_resets_do_not_end_an_ipv4_flow() {
    blind_resets_do_not_end_the_flow(Case::v4());
}

#[test]
fn blind_resets_do_not_end_an_ipv6_flow() {
    blind_resets_do_not_end_the_flow(Case::v6());
}

fn a_refusal_must_acknowledge_the_syn(case: Case) {
    let syn = craft::tcp_ip(
        GW_MAC,
        EXT_MAC,
        case.client,
        case.frontend,
        tcp::Flags::SYN,
        (1000, 0),
        &[],
    );
    let (_, f, _) = case.send(EXT, syn);
    let member = match case.client.0 {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(f[30], f[31], f[32], f[33])),
        IpAddr::V6(_) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&f[38..54]);
            IpAddr::V6(a.into())
        }
    };
    let rst = tcp::Flags::RST | tcp::Flags::ACK;
    let (_, c) = case.by_member(member, rst, 0, 77);
    assert_eq!(
        c.stat(Stat::TcpRstOutOfWindow),
        1,
        "does not acknowledge the SYN"
    );
    assert_eq!(case.state(), State::SynSent);
    let (_, c) = case.by_member(member, rst, 0, 1001);
    assert_eq!(c.stat(Stat::TcpRstOutOfWindow), 0);
    assert_eq!(
        case.state(),
        State::Reset,
        "the member refused the connection"
    );
}

#[test]
fn a_refusal_must_acknowledge_the_syn_v4() {
    a_refusal_must_acknowledge_the_syn(Case::v4());
}

#[test]
fn a_refusal_must_acknowledge_the_syn_v6() {
    a_refusal_must_acknowledge_the_syn(Case::v6());
}

#[test]
fn a_closed_flow_reopens_with_new_sequence_numbers() {
    let case = Case::v4();
    let member = case.handshake();
    let (_, _) = case.by_client(tcp::Flags::RST, 1001, 0);
    assert_eq!(case.state(), State::Reset);
    // The client reuses its port with a far away ISN: a new connection,
    // whose own RST is judged against its own numbers.
    let (_, _) = case.by_client(tcp::Flags::SYN, 0x8000_0000, 0);
    assert_eq!(case.state(), State::SynSent);
    let (_, _) = case.by_member(member, tcp::Flags::SYN | tcp::Flags::ACK, 5, 0x8000_0001);
    assert_eq!(case.state(), State::SynRecv);
    let (_, c) = case.by_client(tcp::Flags::RST, 0x8000_0001, 0);
    assert_eq!(c.stat(Stat::TcpRstOutOfWindow), 0);
    assert_eq!(case.state(), State::Reset);
}
