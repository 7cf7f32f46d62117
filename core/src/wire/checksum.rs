//! The Internet checksum (RFC 1071), its pseudo-headers, and incremental
//! updates (RFC 1624) so a NAT rewrite costs a few additions instead of a pass
//! over the payload.

use core::net::{Ipv4Addr, Ipv6Addr};

/// One's-complement sum of `data` as big-endian 16-bit words (odd tail padded
/// with zero), partly folded (below 2^17). Summed four bytes at a time: 2^16 is 1 modulo
/// 2^16 - 1, so a sum of 32-bit words folds to the same 16-bit sum.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut quads = data.chunks_exact(4);
    for c in &mut quads {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let mut pairs = quads.remainder().chunks_exact(2);
    for c in &mut pairs {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    // Below 2^17, as a sum of 16-bit words used to be: callers add a few.
    let acc = fold64(acc);
    (acc & 0xffff) + (acc >> 16)
}

/// Two end-around-carry steps take any u64 below 2^32.
#[inline]
pub fn fold64(acc: u64) -> u32 {
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    ((acc & 0xffff_ffff) + (acc >> 32)) as u32
}

/// Folds a 32-bit accumulator into 16 bits with end-around carry (two
/// steps always suffice, so no loop).
#[inline]
pub fn fold(acc: u32) -> u16 {
    let acc = (acc & 0xffff) + (acc >> 16);
    ((acc & 0xffff) + (acc >> 16)) as u16
}

/// Adds two unfolded sums without overflow.
pub fn combine(a: u32, b: u32) -> u32 {
    fold64(u64::from(a) + u64::from(b))
}

/// The checksum field value for `data` (with its checksum field zeroed).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// True when the option-less IPv4 header `h` verifies (its checksum over
/// the header is zero): five 32-bit adds and a fold. The words are read in
/// the CPU's byte order: a one's-complement sum of byte-swapped words is
/// the byte-swapped sum, and the all-ones sum a valid header has is its
/// own swap.
#[inline]
pub fn ipv4_header_ok(h: &[u8; 20]) -> bool {
    let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    fold(fold64(w(0) + w(4) + w(8) + w(12) + w(16))) == 0xffff
}

/// Sum of the IPv4 pseudo-header for an upper-layer checksum.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u32) -> u32 {
    let mut acc = sum(&src.octets()) + sum(&dst.octets());
    acc += u32::from(protocol) + (len & 0xffff) + (len >> 16);
    acc
}

/// Sum of the IPv6 pseudo-header for an upper-layer checksum.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let acc = combine(sum(&src.octets()), sum(&dst.octets()));
    combine(acc, (len >> 16) + (len & 0xffff) + u32::from(next_header))
}

/// Checksum field after a 16-bit word of the covered data changes from `old`
/// to `new` (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!csum) + u32::from(!old) + u32::from(new);
    !fold(acc)
}

/// As [`update16`] for a 32-bit quantity (an IPv4 address, a TCP sequence).
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = update16(csum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// As [`update16`] for a run of bytes of even length (an IPv6 address).
pub fn update_bytes(mut csum: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        csum = update16(
            csum,
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([n[0], n[1]]),
        );
    }
    csum
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_fixed_header_check_agrees_with_the_checksum() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..10_000 {
            let mut h = [0u8; 20];
            for b in &mut h {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            h[0] = 0x45;
            // Half of them with their checksum set right.
            if x & 1 == 0 {
                h[10..12].fill(0);
                let c = checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            assert_eq!(ipv4_header_ok(&h), checksum(&h) == 0, "{h:02x?}");
        }
    }
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn ipv4_header_checksum_of_known_header() {
        // A captured IPv4 header with checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(fold(sum(&h)), 0xffff, "a valid header sums to all ones");
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
    }

    proptest! {
        #[test]
        fn incremental_matches_full(mut data in proptest::collection::vec(any::<u8>(), 4..64),
                                    at in 0usize..30, new in any::<u16>()) {
            let at = (at % (data.len() / 2)) * 2;
            data[0] = data[0].max(1); // all-zero data is the one-representation edge
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update16(before, old, new), checksum(&data));
        }

        #[test]
        fn incremental32_matches_full(mut data in proptest::collection::vec(any::<u8>(), 8..64),
                                      new in any::<u32>()) {
            data[7] = data[7].max(1);
            let before = checksum(&data);
            let old = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            data[0..4].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update32(before, old, new), checksum(&data));
        }
    }
}
