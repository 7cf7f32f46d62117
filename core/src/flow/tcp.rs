//! TCP connection tracking as a table: `NEXT[state][direction][flag class]`
//! gives the next state, and each state has its own idle timeout. The table
//! is all the logic there is; the fast path does at most one lookup per
//! segment (none for a plain ACK of an established connection, which
//! changes nothing).

use crate::wire::tcp::Flags;
use std::time::Duration;

/// A tracked flow's state. Non-TCP flows stay in [`State::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// A SYN from the client, nothing back yet.
    SynSent = 0,
    /// The server answered the SYN.
    SynRecv = 1,
    /// Both sides have talked.
    Established = 2,
    /// The client (original direction) sent FIN.
    FinOrig = 3,
    /// The server (reply direction) sent FIN.
    FinReply = 4,
    /// Both sides sent FIN.
    Closing = 5,
    /// A RST went by.
    Reset = 6,
    /// UDP or another protocol: no connection state.
    Other = 7,
    /// Picked up mid-stream (a segment that was not a SYN, of a flow this
    /// instance had no record of): short-lived, like a half-open flow,
    /// until the other direction confirms it.
    Unconfirmed = 8,
}

impl State {
    /// Every state, by value.
    pub const ALL: [State; 9] = [
        State::SynSent,
        State::SynRecv,
        State::Established,
        State::FinOrig,
        State::FinReply,
        State::Closing,
        State::Reset,
        State::Other,
        State::Unconfirmed,
    ];

    /// From the stored byte (masked, so any value maps to a state: the
    /// values no state has read as Reset, the shortest-lived).
    #[inline]
    pub fn from_bits(b: u32) -> State {
        State::ALL
            .get((b & STATE_MASK) as usize)
            .copied()
            .unwrap_or(State::Reset)
    }

    /// Both sides have synchronized sequence numbers and the connection
    /// is not closed: a SYN now is not a new connection (RFC 5961 4).
    #[inline]
    pub fn is_synchronized(self) -> bool {
        matches!(self, State::Established | State::FinOrig | State::FinReply)
    }

    /// Name for listings.
    pub fn name(self) -> &'static str {
        match self {
            State::SynSent => "syn_sent",
            State::SynRecv => "syn_recv",
            State::Established => "established",
            State::FinOrig => "fin_orig",
            State::FinReply => "fin_reply",
            State::Closing => "closing",
            State::Reset => "reset",
            State::Other => "other",
            State::Unconfirmed => "unconfirmed",
        }
    }
}

/// What a segment's flags say, for the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// SYN without ACK.
    Syn = 0,
    /// SYN with ACK.
    SynAck = 1,
    /// FIN (with or without ACK).
    Fin = 2,
    /// RST.
    Rst = 3,
    /// Anything else (ACK, data).
    Ack = 4,
}

/// The class of a segment's flags. RST wins over everything, then SYN, FIN.
#[inline]
pub fn classify(f: Flags) -> Class {
    if f.contains(Flags::RST) {
        Class::Rst
    } else if f.contains(Flags::SYN) {
        if f.contains(Flags::ACK) {
            Class::SynAck
        } else {
            Class::Syn
        }
    } else if f.contains(Flags::FIN) {
        Class::Fin
    } else {
        Class::Ack
    }
}

use State::*;

/// The bits of the entry's state word that hold the state.
pub const STATE_MASK: u32 = 15;

/// `NEXT[state][direction][class]`; direction 0 is the client's (original),
/// 1 the server's (reply). A SYN on a closed or closing flow reopens it (the
/// client reused its port); the flow keeps its member.
const NEXT: [[[State; 5]; 2]; 9] = [
    //        Syn       SynAck       Fin        Rst    Ack
    /* SynSent */
    [
        [SynSent, SynSent, SynSent, Reset, SynSent],
        [SynSent, SynRecv, SynSent, Reset, SynSent],
    ],
    /* SynRecv */
    [
        [SynRecv, SynRecv, FinOrig, Reset, Established],
        [SynRecv, SynRecv, FinReply, Reset, SynRecv],
    ],
    /* Established */
    [
        [Established, Established, FinOrig, Reset, Established],
        [Established, Established, FinReply, Reset, Established],
    ],
    /* FinOrig */
    [
        [FinOrig, FinOrig, FinOrig, Reset, FinOrig],
        [FinOrig, FinOrig, Closing, Reset, FinOrig],
    ],
    /* FinReply */
    [
        [FinReply, FinReply, Closing, Reset, FinReply],
        [FinReply, FinReply, FinReply, Reset, FinReply],
    ],
    /* Closing */
    [
        [SynSent, Closing, Closing, Reset, Closing],
        [Closing, Closing, Closing, Reset, Closing],
    ],
    /* Reset */
    [
        [SynSent, Reset, Reset, Reset, Reset],
        [Reset, Reset, Reset, Reset, Reset],
    ],
    /* Other */
    [
        [Other, Other, Other, Other, Other],
        [Other, Other, Other, Other, Other],
    ],
    /* Unconfirmed: only the other direction confirms it (a stray ACK or
    FIN flood stays short-lived); a SYN is a new connection. */
    [
        [SynSent, Unconfirmed, Unconfirmed, Reset, Unconfirmed],
        [Unconfirmed, Unconfirmed, FinReply, Reset, Established],
    ],
];

/// The state after a segment of `class` in direction `dir` (0 or 1).
#[inline]
pub fn next(state: State, dir: crate::family::Dir, class: Class) -> State {
    NEXT[state as usize][dir.index()][class as usize]
}

/// Handshake that never completed: short, so a SYN flood cannot fill the
/// table with half-open flows.
pub const SYN_TIMEOUT: Duration = Duration::from_secs(5);
/// Half-closed connections may legitimately last; capped at this.
pub const HALF_CLOSED_TIMEOUT: Duration = Duration::from_secs(120);
/// Both FINs seen: long enough for the last ACK and retransmitted FINs.
pub const CLOSING_TIMEOUT: Duration = Duration::from_secs(10);
/// After a RST: long enough for a retransmitted RST to find the flow.
pub const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// SNAT: a port is free again this long after a RST.
pub const SNAT_RESET_TIMEOUT: Duration = Duration::from_secs(15);
/// SNAT: a port is free again this long after both FINs.
pub const SNAT_CLOSING_TIMEOUT: Duration = Duration::from_secs(240);

/// SNAT with `timers = "rfc"`: every transitory state lasts this long
/// (RFC 5382 REQ-5, RFC 7857 on RST).
pub const RFC_TRANSITORY_TIMEOUT: Duration = Duration::from_secs(240);

/// [`timeout`] for outbound SNAT flows, whose end frees a public port: the
/// release timers of SPEC.md, or with `rfc` (the rule's `timers = "rfc"`)
/// 4 minutes for a handshake, a half-closed or closing connection and a
/// reset one.
pub fn snat_timeout(state: State, idle: Duration, rfc: bool) -> Duration {
    match state {
        SynSent | SynRecv | Unconfirmed | FinOrig | FinReply | Closing | Reset if rfc => {
            RFC_TRANSITORY_TIMEOUT
        }
        Closing => SNAT_CLOSING_TIMEOUT,
        Reset => SNAT_RESET_TIMEOUT,
        _ => timeout(state, idle),
    }
}

/// How long a flow in `state` may idle; `idle` is its rule's idle timeout.
pub fn timeout(state: State, idle: Duration) -> Duration {
    match state {
        SynSent | SynRecv | Unconfirmed => SYN_TIMEOUT.min(idle),
        Established | Other => idle,
        FinOrig | FinReply => HALF_CLOSED_TIMEOUT.min(idle),
        Closing => CLOSING_TIMEOUT.min(idle),
        Reset => RESET_TIMEOUT.min(idle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(steps: &[(usize, Flags)]) -> State {
        steps.iter().fold(SynSent, |s, &(d, f)| {
            next(s, crate::family::Dir::from_bit(d as u64), classify(f))
        })
    }

    #[test]
    fn handshake_data_and_close() {
        let a = Flags::ACK;
        assert_eq!(run(&[(1, Flags::SYN | a)]), SynRecv);
        assert_eq!(run(&[(1, Flags::SYN | a), (0, a)]), Established);
        let est = [(1, Flags::SYN | a), (0, a), (0, Flags::PSH | a), (1, a)];
        assert_eq!(run(&est), Established);
        let mut close = est.to_vec();
        close.push((0, Flags::FIN | a));
        assert_eq!(run(&close), FinOrig);
        close.push((1, Flags::FIN | a));
        assert_eq!(run(&close), Closing);
        close.push((0, a));
        assert_eq!(run(&close), Closing);
        // The client reuses its port: the flow starts over.
        close.push((0, Flags::SYN));
        assert_eq!(run(&close), SynSent);
    }

    #[test]
    fn rst_from_either_side_ends_it() {
        for d in 0..2 {
            assert_eq!(run(&[(1, Flags::SYN | Flags::ACK), (d, Flags::RST)]), Reset);
            assert_eq!(run(&[(d, Flags::RST | Flags::ACK)]), Reset);
        }
    }

    #[test]
    fn a_client_ack_before_the_syn_ack_does_not_establish() {
        assert_eq!(run(&[(0, Flags::ACK)]), SynSent);
        assert_eq!(run(&[(0, Flags::ACK), (0, Flags::ACK)]), SynSent);
    }

    #[test]
    fn half_open_flows_age_fast_and_established_use_the_rule() {
        let idle = Duration::from_secs(240);
        assert_eq!(timeout(SynSent, idle), SYN_TIMEOUT);
        assert_eq!(timeout(Established, idle), idle);
        assert!(timeout(Closing, idle) < timeout(Established, idle));
        assert!(timeout(Reset, idle) < timeout(Established, idle));
        assert_eq!(timeout(Other, idle), idle);
    }

    #[test]
    fn from_bits_maps_every_byte() {
        for b in 0..=255u32 {
            let _ = State::from_bits(b);
        }
        for s in State::ALL {
            assert_eq!(State::from_bits(s as u32), s);
        }
    }

    #[test]
    fn rfc_timers_hold_every_transitory_snat_state_four_minutes() {
        let idle = Duration::from_secs(124 * 60);
        for s in [SynSent, SynRecv, FinOrig, FinReply, Closing, Reset] {
            assert_eq!(snat_timeout(s, idle, true), RFC_TRANSITORY_TIMEOUT, "{s:?}");
        }
        assert_eq!(snat_timeout(Established, idle, true), idle);
        let azure = Duration::from_secs(240);
        assert_eq!(snat_timeout(Reset, azure, false), SNAT_RESET_TIMEOUT);
        assert_eq!(snat_timeout(Closing, azure, false), SNAT_CLOSING_TIMEOUT);
        assert_eq!(snat_timeout(SynSent, azure, false), SYN_TIMEOUT);
    }
}
