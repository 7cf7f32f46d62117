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

/// [`FlowKey::hash`] of a key given as its two words (addresses, then
/// ports << 24 | ... as in a packet: src port, dst port, protocol).
#[inline]
pub fn hash_words(a: u64, b: u64) -> u64 {
    mix(a, b)
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
        Delta::between_words(from.words(), to.reversed().words())
    }

    /// [`Delta::between`] from `from`'s words to the words of the key
    /// `to` is the reverse of (the form a flow entry holds both in). Sums
    /// `!old + new` over the 16-bit address and port words; `!x` of a 16-bit
    /// word is `0xffff - x`, so each sum is taken in one go.
    #[inline]
    pub(crate) fn between_words(from: (u64, u64), to_reversed: (u64, u64)) -> Delta {
        // Reversing a key swaps its addresses and its ports: the sums of
        // their 16-bit words are unchanged.
        let sum4 = |a: u64| (a & 0xffff) + (a >> 16 & 0xffff) + (a >> 32 & 0xffff) + (a >> 48);
        let ports = |b: u64| (b >> 24 & 0xffff) + (b >> 8 & 0xffff);
        let addr = 4 * 0xffff - sum4(from.0) + sum4(to_reversed.0);
        let ports = 2 * 0xffff - ports(from.1) + ports(to_reversed.1);
        // TTL is the high byte of the TTL/protocol word: minus 0x0100.
        let ttl = 0xfeff;
        Delta {
            ip: checksum::fold((addr + ttl) as u32),
            l4: checksum::fold((addr + ports) as u32),
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
