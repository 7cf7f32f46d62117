//! Flow keys, their hash, and checksum deltas between two keys.

use crate::wire::checksum;
use std::net::Ipv4Addr;

/// An IPv4 5-tuple as it appears in a packet. Protocols without ports use 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
}

/// Bits of the second key word that are the key (the rest carries data).
pub(crate) const KEY_MASK: u64 = (1 << 40) - 1;

impl FlowKey {
    /// The key of the packet going the other way.
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }

    /// Two words: addresses, then ports and protocol in the low 40 bits.
    #[inline]
    pub(crate) fn words(&self) -> (u64, u64) {
        (
            u64::from(u32::from(self.src)) << 32 | u64::from(u32::from(self.dst)),
            u64::from(self.sport) << 24 | u64::from(self.dport) << 8 | u64::from(self.proto),
        )
    }

    #[inline]
    pub(crate) fn from_words(a: u64, b: u64) -> FlowKey {
        FlowKey {
            src: Ipv4Addr::from((a >> 32) as u32),
            dst: Ipv4Addr::from(a as u32),
            sport: (b >> 24) as u16,
            dport: (b >> 8) as u16,
            proto: b as u8,
        }
    }

    /// A fixed, seedless hash: the table's bucket choice and signature.
    #[inline]
    pub fn hash(&self) -> u64 {
        let (a, b) = self.words();
        mix(a, b)
    }
}

#[inline]
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut h = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 32;
    h = h.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^= h >> 32;
    h
}

/// One's-complement amounts to add to the IP header and L4 checksums when a
/// packet with key `from` is rewritten to `to` (RFC 1624:
/// `HC' = ~(~HC + ~m + m')`, with the `~m + m'` parts summed ahead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delta {
    /// For the IPv4 header checksum (addresses, and the TTL decrement).
    pub ip: u16,
    /// For the TCP/UDP checksum (pseudo-header addresses and ports).
    pub l4: u16,
}

impl Delta {
    /// The deltas for rewriting `from` into `to`, decrementing TTL by one.
    pub fn between(from: &FlowKey, to: &FlowKey) -> Delta {
        let words = |k: &FlowKey| {
            let s = u32::from(k.src);
            let d = u32::from(k.dst);
            [(s >> 16) as u16, s as u16, (d >> 16) as u16, d as u16]
        };
        let mut addr = 0u32;
        for (o, n) in words(from).iter().zip(words(to).iter()) {
            addr += u32::from(!o) + u32::from(*n);
        }
        let ports = u32::from(!from.sport)
            + u32::from(to.sport)
            + u32::from(!from.dport)
            + u32::from(to.dport);
        // TTL is the high byte of the TTL/protocol word: minus 0x0100.
        let ttl = u32::from(0xfeffu16);
        Delta {
            ip: checksum::fold(addr + ttl),
            l4: checksum::fold(addr + ports),
        }
    }

    /// Applies a delta to a checksum field.
    #[inline]
    pub fn apply(csum: u16, delta: u16) -> u16 {
        !checksum::fold(u32::from(!csum) + u32::from(delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let k = FlowKey {
            src: Ipv4Addr::new(203, 0, 113, 100),
            dst: Ipv4Addr::new(203, 0, 113, 10),
            sport: 40000,
            dport: 80,
            proto: 6,
        };
        let (a, b) = k.words();
        assert_eq!(b & !KEY_MASK, 0);
        assert_eq!(FlowKey::from_words(a, b | 0xff << 40), k);
        assert_eq!(k.reversed().reversed(), k);
        assert_ne!(k.hash(), k.reversed().hash());
    }
}
