//! Bytes to fields. Zero-copy views over packet buffers, one file per
//! protocol, in the manner of smoltcp: `Packet<T: AsRef<[u8]>>` wraps a buffer,
//! a `field` table gives byte ranges, getters need `AsRef`, setters `AsMut`.
//!
//! Panic contract: `new_checked` (or `check_len` returning `Ok`) guarantees
//! that no accessor of that view panics. Untrusted input always goes through
//! `new_checked`; `new_unchecked` is for buffers this code built itself.
//! Fields are read at offsets, never by casting to `#[repr(C)]` structs.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

use core::fmt;
use core::ops::Range;

pub use ethernet::{EtherType, MacAddr};

/// Byte range of a fixed-size field.
pub(crate) type Field = Range<usize>;

/// Why a buffer is not a valid packet of the protocol asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header or than a length field says.
    #[error("truncated")]
    Truncated,
    /// A field holds a value the protocol forbids (version, header length...).
    #[error("malformed")]
    Malformed,
    /// A valid packet of a kind this code does not handle.
    #[error("unsupported")]
    Unsupported,
}

/// Result of parsing untrusted bytes.
pub type Result<T> = core::result::Result<T, Error>;

/// IP protocol numbers (IPv4 protocol, IPv6 next header). Open: an unknown
/// number never fails a parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// IPv6 hop-by-hop options (0).
    HopByHop,
    /// ICMP for IPv4 (1).
    Icmp,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// IPv6 routing header (43).
    Ipv6Route,
    /// IPv6 fragment header (44).
    Ipv6Frag,
    /// ICMPv6 (58).
    Icmpv6,
    /// IPv6 "no next header" (59).
    Ipv6NoNxt,
    /// IPv6 destination options (60).
    Ipv6Opts,
    /// Any other protocol number.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::HopByHop,
            1 => Self::Icmp,
            6 => Self::Tcp,
            17 => Self::Udp,
            43 => Self::Ipv6Route,
            44 => Self::Ipv6Frag,
            58 => Self::Icmpv6,
            59 => Self::Ipv6NoNxt,
            60 => Self::Ipv6Opts,
            other => Self::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::HopByHop => 0,
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6Route => 43,
            IpProtocol::Ipv6Frag => 44,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Ipv6NoNxt => 59,
            IpProtocol::Ipv6Opts => 60,
            IpProtocol::Unknown(v) => v,
        }
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Tcp => f.write_str("tcp"),
            IpProtocol::Udp => f.write_str("udp"),
            IpProtocol::Icmp => f.write_str("icmp"),
            IpProtocol::Icmpv6 => f.write_str("icmpv6"),
            other => write!(f, "ip-proto-{}", u8::from(*other)),
        }
    }
}

#[inline]
pub(crate) fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn write_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn write_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
