//! What the table hands out and takes in: a flow to insert, a decoded copy
//! of an entry, its kind, each direction's rewrite (as words for the fast
//! path, decoded for control), and why an insert failed.

use super::{Delta, FlowKey, State};
use crate::family::Family;
use crate::lb::snat::RuleRef;
use crate::neigh::PortIndex;
use std::time::Duration;

/// [`Rewrite`] as packet words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRewrite<A: Family = crate::family::V4> {
    /// New source and destination addresses, as the packet's words (the
    /// last word is not an address).
    pub addrs: A::Words,
    /// New source port << 16 | new destination port.
    pub ports: u32,
    /// IP protocol.
    pub proto: u8,
    /// Checksum deltas.
    pub delta: Delta,
    /// Egress port.
    pub egress: PortIndex,
    /// Next hop on that port, as [`Family::hop_code`].
    pub hop: u32,
    /// The entry's far next hop ([`Family::FarHop`]), when `hop` names it.
    pub far: A,
}

impl<A: Family> RawRewrite<A> {
    /// The next hop; `gateway` gives the family's gateway.
    #[inline]
    pub fn next_hop(&self, gateway: impl FnOnce() -> Option<A>) -> A {
        A::hop(
            self.hop,
            A::unpack(self.addrs.as_ref()).1,
            self.far,
            gateway,
        )
    }
}

/// What a direction's packets become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite<A: Family = crate::family::V4> {
    /// New key (addresses and ports) of the packet.
    pub to: FlowKey<A>,
    /// Checksum deltas.
    pub delta: Delta,
    /// Egress port.
    pub egress: PortIndex,
    /// Next hop on that port, as [`Family::hop_code`].
    pub hop: u32,
    /// The entry's far next hop ([`Family::FarHop`]), when `hop` names it.
    pub far: A,
}

impl<A: Family> Rewrite<A> {
    /// The next hop; `gateway` gives the family's gateway.
    #[inline]
    pub fn next_hop(&self, gateway: impl FnOnce() -> Option<A>) -> A {
        A::hop(self.hop, self.to.dst, self.far, gateway)
    }
}

/// A flow to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewFlow<A: Family = crate::family::V4> {
    /// `[original, reply]` keys. The original direction is rewritten into
    /// `key[1].reversed()` and the reply direction into `key[0].reversed()`.
    pub key: [FlowKey<A>; 2],
    /// Egress port per direction.
    pub egress: [PortIndex; 2],
    /// Next hop per direction.
    pub next_hop: [A; 2],
    /// Initial state.
    pub state: State,
    /// RST both ends when an established flow idles out.
    pub tcp_reset: bool,
    /// The rule's idle timeout (whole seconds are kept, at most 18 h).
    pub idle_timeout: Duration,
    /// Rule and member, for listings and for removal when a member goes.
    pub rule: RuleRef,
    /// Member index in the rule's pool.
    pub member: u16,
    /// Tick of the first packet.
    pub now: u32,
    /// Generation parity of the rules snapshot `rule` and `member` are of.
    pub generation: bool,
    /// An outbound SNAT flow or cone mapping.
    pub snat: bool,
    /// An SNAT flow of a rule with `timers = "rfc"`: 4-minute transitory
    /// states ([`crate::flow::tcp::snat_timeout`]).
    pub rfc_timers: bool,
}

/// A decoded copy of an entry, for the control thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowInfo<A: Family = crate::family::V4> {
    /// Entry index.
    pub index: u32,
    /// `[original, reply]` keys.
    pub key: [FlowKey<A>; 2],
    /// TCP state.
    pub state: State,
    /// RST on idle.
    pub tcp_reset: bool,
    /// Generation parity of the rules snapshot of `rule` and `member`.
    pub generation: bool,
    /// An outbound SNAT flow or cone mapping.
    pub snat: bool,
    /// Its rule keeps RFC timers.
    pub rfc_timers: bool,
    /// The rule's idle timeout.
    pub idle_timeout: Duration,
    /// Tick of the last packet.
    pub last_seen: u32,
    /// Rule.
    pub rule: RuleRef,
    /// Member.
    pub member: u16,
    /// Sequence number after the last segment, per direction.
    pub next_seq: [u32; 2],
    /// Packets, both directions (approximate: see [`Entry`]).
    pub packets: u32,
    /// Per-direction rewrite.
    pub rewrite: [Rewrite<A>; 2],
}

/// What an entry is, as listings, the ager and the SNAT accounting see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// A flow to a frontend (balanced or forwarded).
    Inbound,
    /// An outbound SNAT flow.
    Snat,
    /// An outbound UDP flow's port-restricted cone mapping: not a flow
    /// (its keys carry protocol [`crate::lb::snat::CONE`] and port 0, so
    /// no packet matches them), the record of which public port a member
    /// socket holds towards a remote address.
    Cone,
}

impl<A: Family> FlowInfo<A> {
    /// What the entry is.
    pub fn kind(&self) -> FlowKind {
        if self.key[0].proto == crate::lb::snat::CONE {
            FlowKind::Cone
        } else if self.snat {
            FlowKind::Snat
        } else {
            FlowKind::Inbound
        }
    }
}

/// Why an insert failed. The flow is not created; nothing else changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// Every entry is in use.
    Full,
    /// Both candidate buckets of a key are full.
    NoSlot,
}
