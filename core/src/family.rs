//! The two address families behind one data path. Code above L3 (flow
//! keys, the flow table, the rewrite, TCP and UDP) is written once over
//! [`Family`]; what differs per family is here: the address type, the
//! EtherType and header shape, how a key's addresses pack into the words
//! the table stores, and how a next hop is remembered.
//!
//! A key's words are its addresses as they appear in the packet (source
//! then destination, big-endian, 8 bytes a word), then one word of ports
//! and protocol: `sport << 24 | dport << 8 | proto`, bits 40.. free for the
//! table. Writing the address words back at [`Family::SRC`] rewrites both
//! addresses; swapping their halves reverses the key.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

/// Which way a packet goes through a flow: the way its first packet went
/// (`Original`: client to member inbound, member to the internet through
/// SNAT) or back (`Reply`). Entries keep one key, rewrite and sequence
/// number per direction, indexed by [`Dir::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dir {
    /// As the flow's first packet.
    #[default]
    Original = 0,
    /// Back.
    Reply = 1,
}

impl Dir {
    /// Both, in index order.
    pub const BOTH: [Dir; 2] = [Dir::Original, Dir::Reply];
    /// The index of this direction's key, rewrite and counters.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
    /// The other direction.
    #[inline]
    pub fn other(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
    /// The direction a stored bit says (0: original).
    #[inline]
    pub fn from_bit(b: u64) -> Dir {
        if b & 1 == 0 {
            Dir::Original
        } else {
            Dir::Reply
        }
    }
}

/// IPv4, as a [`Family`].
pub type V4 = Ipv4Addr;
/// IPv6, as a [`Family`].
pub type V6 = Ipv6Addr;

/// The IPv6 hop code of a next hop kept in [`Family::FarHop`].
const FAR_HOP: u32 = 2;

/// A 64-byte alignment, for [`Family::EntryAlign`].
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct Align64;

/// A 128-byte alignment, for [`Family::EntryAlign`].
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct Align128;

/// An address family: implemented by its address type, so a key's type
/// follows from its addresses.
pub trait Family:
    Copy + Eq + Ord + Hash + Debug + std::fmt::Display + Send + Sync + Into<IpAddr> + 'static
{
    /// True for IPv6.
    const V6: bool;
    /// EtherType of its packets.
    const ETHERTYPE: u16;
    /// Length of the fixed IP header.
    const HEADER_LEN: usize;
    /// Offset of the source address in the IP header (the destination
    /// follows it).
    const SRC: usize;
    /// Offset of the TTL / hop limit in the IP header.
    const TTL: usize;
    /// Offset of the protocol / next header field in the IP header.
    const PROTOCOL: usize;
    /// The unspecified address.
    const UNSPECIFIED: Self;
    /// Words of a flow key: the address words, then the ports word.
    type Words: Copy + Default + PartialEq + Eq + Debug + AsRef<[u64]> + AsMut<[u64]> + Send + Sync;
    /// The same, as the atomics a table entry holds.
    type Slots: Default + Debug + AsRef<[AtomicU64]> + Send + Sync;
    /// Zero-sized; aligns a flow entry to its size (64 bytes for IPv4, 128
    /// for IPv6), so an IPv6 entry's two cache lines are one 128-byte pair,
    /// which the L2's adjacent-line prefetcher loads together.
    type EntryAlign: Default + Debug + Send + Sync;
    /// Where an entry keeps the next hop of its original direction when
    /// [`Family::hop_code`] cannot name it: zero-sized for IPv4, whose
    /// codes are addresses; for IPv6 a next hop that is neither the
    /// rewritten destination nor the gateway (floating IP: the member, while
    /// the destination stays the frontend).
    type FarHop: Default + Debug + Send + Sync;
    /// Words the two addresses take.
    const ADDR_WORDS: usize;

    /// Writes `src` then `dst` into the address words.
    fn pack(src: Self, dst: Self, w: &mut [u64]);
    /// The (source, destination) of address words.
    fn unpack(w: &[u64]) -> (Self, Self);
    /// Address words of the reversed key: source and destination swap.
    fn swap(w: &mut [u64]);
    /// The address, if it is of this family.
    fn from_ip(a: IpAddr) -> Option<Self>;
    /// The address as 128 bits (IPv4 in the low 32): for prefixes.
    fn bits(self) -> u128;
    /// The address of [`Family::bits`] (IPv4 takes the low 32).
    fn from_bits(b: u128) -> Self;
    /// The address from the first bytes of `b`.
    fn read(b: &[u8]) -> Self;

    /// What an entry remembers of the next hop `nh` of packets rewritten
    /// to destination `to`: IPv4 keeps the address; IPv6 (whose addresses
    /// do not fit an entry of 128 bytes twice more) keeps whether it is
    /// the family's gateway (1) or the destination itself, on link (0).
    fn hop_code(nh: Self, to: Self) -> u32;
    /// [`Family::hop_code`] for an entry's original direction, whose next
    /// hop may be neither: IPv6 then keeps it in `far` (code 2).
    fn hop_code_far(nh: Self, to: Self, far: &Self::FarHop) -> u32;
    /// The far next hop [`Family::hop_code_far`] stored.
    fn load_far(far: &Self::FarHop) -> Self;
    /// The next hop [`Family::hop_code`] encoded; `far` is the entry's far
    /// next hop, `gateway` gives the family's gateway when the code says so.
    fn hop(code: u32, to: Self, far: Self, gateway: impl FnOnce() -> Option<Self>) -> Self;
}

impl Family for Ipv4Addr {
    const V6: bool = false;
    const ETHERTYPE: u16 = 0x0800;
    const HEADER_LEN: usize = 20;
    const SRC: usize = crate::wire::ipv4::field::SRC.start;
    const TTL: usize = crate::wire::ipv4::field::TTL;
    const PROTOCOL: usize = crate::wire::ipv4::field::PROTOCOL;
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;
    type Words = [u64; 2];
    type Slots = [AtomicU64; 2];
    type EntryAlign = [Align64; 0];
    type FarHop = ();
    const ADDR_WORDS: usize = 1;

    #[inline]
    fn pack(src: Self, dst: Self, w: &mut [u64]) {
        w[0] = u64::from(u32::from(src)) << 32 | u64::from(u32::from(dst));
    }
    #[inline]
    fn unpack(w: &[u64]) -> (Self, Self) {
        (
            Ipv4Addr::from((w[0] >> 32) as u32),
            Ipv4Addr::from(w[0] as u32),
        )
    }
    #[inline]
    fn swap(w: &mut [u64]) {
        w[0] = w[0].rotate_left(32);
    }
    #[inline]
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
    #[inline]
    fn bits(self) -> u128 {
        u128::from(u32::from(self))
    }
    #[inline]
    fn from_bits(b: u128) -> Self {
        Ipv4Addr::from(b as u32)
    }
    #[inline]
    fn read(b: &[u8]) -> Self {
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    #[inline]
    fn hop_code(nh: Self, _to: Self) -> u32 {
        u32::from(nh)
    }
    #[inline]
    fn hop_code_far(nh: Self, to: Self, _far: &()) -> u32 {
        Self::hop_code(nh, to)
    }
    #[inline(always)]
    fn load_far(_far: &()) -> Self {
        Ipv4Addr::UNSPECIFIED
    }
    #[inline]
    fn hop(code: u32, _to: Self, _far: Self, _gateway: impl FnOnce() -> Option<Self>) -> Self {
        Ipv4Addr::from(code)
    }
}

impl Family for Ipv6Addr {
    const V6: bool = true;
    const ETHERTYPE: u16 = 0x86dd;
    const HEADER_LEN: usize = 40;
    const SRC: usize = crate::wire::ipv6::field::SRC.start;
    const TTL: usize = crate::wire::ipv6::field::HOP_LIMIT;
    const PROTOCOL: usize = crate::wire::ipv6::field::NEXT_HEADER;
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;
    type Words = [u64; 5];
    type Slots = [AtomicU64; 5];
    type EntryAlign = [Align128; 0];
    type FarHop = [AtomicU64; 2];
    const ADDR_WORDS: usize = 4;

    #[inline]
    fn pack(src: Self, dst: Self, w: &mut [u64]) {
        let (s, d) = (u128::from(src), u128::from(dst));
        w[0] = (s >> 64) as u64;
        w[1] = s as u64;
        w[2] = (d >> 64) as u64;
        w[3] = d as u64;
    }
    #[inline]
    fn unpack(w: &[u64]) -> (Self, Self) {
        let s = u128::from(w[0]) << 64 | u128::from(w[1]);
        let d = u128::from(w[2]) << 64 | u128::from(w[3]);
        (Ipv6Addr::from(s), Ipv6Addr::from(d))
    }
    #[inline]
    fn swap(w: &mut [u64]) {
        w.swap(0, 2);
        w.swap(1, 3);
    }
    #[inline]
    fn from_ip(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
    #[inline]
    fn bits(self) -> u128 {
        u128::from(self)
    }
    #[inline]
    fn from_bits(b: u128) -> Self {
        Ipv6Addr::from(b)
    }
    #[inline]
    fn read(b: &[u8]) -> Self {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        Ipv6Addr::from(a)
    }
    #[inline]
    fn hop_code(nh: Self, to: Self) -> u32 {
        u32::from(nh != to)
    }
    #[inline]
    fn hop_code_far(nh: Self, to: Self, far: &[AtomicU64; 2]) -> u32 {
        if nh == to {
            return 0;
        }
        let b = u128::from(nh);
        far[0].store((b >> 64) as u64, Ordering::Relaxed);
        far[1].store(b as u64, Ordering::Relaxed);
        FAR_HOP
    }
    #[inline]
    fn load_far(far: &[AtomicU64; 2]) -> Self {
        let hi = far[0].load(Ordering::Relaxed);
        Ipv6Addr::from(u128::from(hi) << 64 | u128::from(far[1].load(Ordering::Relaxed)))
    }
    #[inline]
    fn hop(code: u32, to: Self, far: Self, gateway: impl FnOnce() -> Option<Self>) -> Self {
        match code {
            0 => to,
            FAR_HOP => far,
            _ => gateway().unwrap_or(to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<A: Family>(s: A, d: A) {
        let mut w = A::Words::default();
        A::pack(s, d, w.as_mut());
        assert_eq!(A::unpack(w.as_ref()), (s, d));
        A::swap(w.as_mut());
        assert_eq!(A::unpack(w.as_ref()), (d, s));
    }

    #[test]
    fn addresses_pack_and_swap() {
        round_trip(Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(10, 0, 0, 11));
        round_trip(
            "2001:db8:1::100".parse::<Ipv6Addr>().unwrap(),
            "2001:db8:2::11".parse::<Ipv6Addr>().unwrap(),
        );
    }

    #[test]
    fn v6_next_hop_is_on_link_or_the_gateway() {
        let to: Ipv6Addr = "2001:db8:2::11".parse().unwrap();
        let gw: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let none = Ipv6Addr::UNSPECIFIED;
        assert_eq!(V6::hop(V6::hop_code(to, to), to, none, || Some(gw)), to);
        assert_eq!(V6::hop(V6::hop_code(gw, to), to, none, || Some(gw)), gw);
        let a = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(
            V4::hop(V4::hop_code(a, a), a, Ipv4Addr::UNSPECIFIED, || None),
            a
        );
        // Floating IP: the member, while the destination is the frontend.
        let far = Default::default();
        let member: Ipv6Addr = "2001:db8:2::21".parse().unwrap();
        let code = V6::hop_code_far(member, to, &far);
        assert_eq!(V6::hop(code, to, V6::load_far(&far), || Some(gw)), member);
    }
}
