//! Flow keys, their hash, and checksum deltas between two keys, written once
//! for both address families ([`Family`]).

use crate::family::Family;
use crate::wire::checksum;
use std::net::Ipv4Addr;

/// A 5-tuple as it appears in a packet, of either family (the address type
/// decides). Protocols without ports use 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey<A: Family = Ipv4Addr> {
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
}

/// Bits of the ports word that are the key (the rest carries data).
pub(crate) const KEY_MASK: u64 = (1 << 40) - 1;

/// The ports word of a key: `sport << 24 | dport << 8 | proto`.
#[inline]
pub(crate) fn ports_word(sport: u16, dport: u16, proto: u8) -> u64 {
    u64::from(sport) << 24 | u64::from(dport) << 8 | u64::from(proto)
}

impl<A: Family> FlowKey<A> {
    /// The key of the packet going the other way.
    #[inline]
    pub fn reversed(&self) -> FlowKey<A> {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }

    /// The key's words: address words, then ports and protocol in the low
    /// 40 bits of the last (see [`crate::family`]).
    #[inline]
    pub fn words(&self) -> A::Words {
        let mut w = A::Words::default();
        let s = w.as_mut();
        A::pack(self.src, self.dst, s);
        s[A::ADDR_WORDS] = ports_word(self.sport, self.dport, self.proto);
        w
    }

    /// The key of words (bits above the key in the ports word ignored).
    #[inline]
    pub fn from_words(w: &[u64]) -> FlowKey<A> {
        let (src, dst) = A::unpack(w);
        let b = w[A::ADDR_WORDS];
        FlowKey {
            src,
            dst,
            sport: (b >> 24) as u16,
            dport: (b >> 8) as u16,
            proto: b as u8,
        }
    }

    /// A fixed, seedless hash: the table's bucket choice and signature.
    #[inline]
    pub fn hash(&self) -> u64 {
        hash_words(self.words().as_ref())
    }
}

/// [`FlowKey::hash`] of a key given as its words. The one hash of flow
/// keys: the table, the burst's lookup pass and Maglev's 5-tuple all use
/// it. An IPv4 key's two words go straight into [`mix`]; longer keys fold
/// their address words into the first.
#[inline]
pub fn hash_words(w: &[u64]) -> u64 {
    let last = w.len() - 1;
    let mut a = w[0];
    for &x in &w[1..last] {
        a = a.rotate_left(23) ^ x.wrapping_mul(0x9FB2_1C65_1E98_DF25);
    }
    mix(a, w[last])
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
/// `HC' = ~(~HC + ~m + m')`, with the `~m + m'` parts summed ahead). Each
/// is a sum of 16-bit words not folded to 16 bits yet (below 2^19):
/// [`Delta::apply`] folds it with the checksum in one go. Two deltas of the
/// same rewrite may differ in their unfolded form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delta {
    /// For the IPv4 header checksum (addresses, and the TTL decrement).
    pub ip: u32,
    /// For the TCP/UDP checksum (pseudo-header addresses and ports).
    pub l4: u32,
}

impl Delta {
    /// The deltas for rewriting `from` into `to`, decrementing TTL by one.
    pub fn between<A: Family>(from: &FlowKey<A>, to: &FlowKey<A>) -> Delta {
        Delta::between_words::<A>(from.words().as_ref(), to.reversed().words().as_ref())
    }

    /// [`Delta::between`] from `from`'s words to the words of the key
    /// `to` is the reverse of (the form a flow entry holds both in).
    /// Reversing a key swaps its addresses and its ports, which leaves the
    /// sums of their 16-bit words as they were. The sum of `!old + new`
    /// over 16-bit words is taken 64 bits at a time: in one's complement
    /// a wider sum folds to the same 16-bit one (RFC 1071), and `!x` of a
    /// 64-bit word is the 16-bit `!x` of each of its pieces. `ip` is
    /// meaningful for IPv4 only (IPv6 has no header checksum).
    #[inline]
    pub(crate) fn between_words<A: Family>(from: &[u64], to_reversed: &[u64]) -> Delta {
        let n = A::ADDR_WORDS;
        let wide = from[..n]
            .iter()
            .zip(&to_reversed[..n])
            .fold(0u128, |s, (&f, &t)| s + u128::from(!f) + u128::from(t));
        // At most eight 64-bit words: two end-around folds bring it to 64
        // bits, two more to 32.
        let w = (wide as u64 as u128) + (wide >> 64);
        let w = (w as u64 as u128) + (w >> 64);
        let addr = u32::from(checksum::fold(checksum::fold64(w as u64)));
        // The ports are the two 16-bit words at bits 8..40 of the last word.
        let ports = |b: u64| (b >> 24 & 0xffff) as u32 + (b >> 8 & 0xffff) as u32;
        let ports = 2 * 0xffff - ports(from[n]) + ports(to_reversed[n]);
        // TTL is the high byte of the TTL/protocol word: minus 0x0100.
        let ttl = 0xfeff;
        Delta {
            ip: addr + ttl,
            l4: addr + ports,
        }
    }

    /// Applies a delta to a checksum field.
    #[inline]
    pub fn apply(csum: u16, delta: u32) -> u16 {
        !checksum::fold(u32::from(!csum) + delta)
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
        let [a, b] = k.words();
        assert_eq!(b & !KEY_MASK, 0);
        assert_eq!(FlowKey::from_words(&[a, b | 0xff << 40]), k);
        assert_eq!(k.reversed().reversed(), k);
        assert_ne!(k.hash(), k.reversed().hash());
    }
}
