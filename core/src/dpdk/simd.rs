//! The flow table's bucket compare: which of a bucket's eight slots carry
//! a key signature, in a few vector instructions instead of eight loads,
//! shifts and compares. Like `prefetch`, it builds without the DPDK runtime
//! and lives under `dpdk/` because it is `unsafe` code.
//!
//! SSE2 is part of x86-64, so that version is always there and inlined into
//! the lookup. An AVX2 version (two 32-byte compares instead of four
//! 16-byte ones, both buckets in one call) exists for CPUs that have it,
//! but a function with a target feature cannot be inlined into code built
//! without it, and the call costs more than it saves: 742 instructions per
//! established packet against 682 with SSE2 (BENCHMARKS.md). So the table
//! starts with SSE2, and takes AVX2 only when `SLUICE_BUCKET_COMPARE=avx2`
//! asks for it on a CPU that has it ([`Compare::at_start`]).

#![allow(unsafe_code)]

use std::sync::atomic::AtomicU64;

/// Slots per bucket: one 64-byte cache line of 8-byte slots.
pub const SLOTS: usize = 8;

/// The signature of slot `j` sits in bits 48..64; a match sets bit
/// `2 * j + 1` of the mask the compares return.
pub const MATCH_BIT: u32 = 1;

/// Which compare the table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Four 16-byte compares, inlined.
    Sse2,
    /// Two 32-byte compares, one call.
    Avx2,
}

impl Compare {
    /// The compare a table starts with: SSE2, or AVX2 when
    /// `SLUICE_BUCKET_COMPARE=avx2` and the CPU has it.
    pub fn at_start() -> Compare {
        #[cfg(target_arch = "x86_64")]
        if std::env::var("SLUICE_BUCKET_COMPARE").is_ok_and(|v| v == "avx2")
            && std::arch::is_x86_feature_detected!("avx2")
        {
            return Compare::Avx2;
        }
        Compare::Sse2
    }

    /// True when this CPU runs the AVX2 compare.
    pub fn avx2_available() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
}

/// Bit `2 * j + 1` set for every slot `j` of `b` whose top 16 bits are
/// `sig`. A hint only: a slot may change under the compare (a concurrent
/// insert or removal), so the caller loads each match atomically and checks
/// it again before using it.
///
/// Eleven instructions: four 16-bit-lane compares of the bucket's four
/// 16-byte quarters (loads folded in), then two rounds of saturating packs
/// that keep, for each slot, a byte whose top bit is its signature lane's
/// result, and one byte mask.
#[inline(always)]
pub fn match_sig(b: &[AtomicU64; SLOTS], sig: u16) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let p = b.as_ptr().cast::<__m128i>();
        // SAFETY: SSE2 is in the x86-64 baseline. `b` is a live, 64-byte
        // aligned array of eight AtomicU64 (a bucket is `align(64)`), so
        // the four 16-byte loads are in bounds and aligned. They read
        // memory other threads may write with atomic compare-and-swaps:
        // on x86-64 each aligned 8-byte half is read whole, and the result
        // only nominates slots, each of which the caller then loads with
        // an atomic acquire and checks again; the read goes through the
        // atomics' UnsafeCell, so no shared-reference immutability is
        // assumed.
        unsafe {
            let s = _mm_set1_epi16(sig as i16);
            let e = |k: usize| _mm_cmpeq_epi16(_mm_load_si128(p.add(k)), s);
            // 16-bit lanes of 0 or -1 pack to bytes of 0 or -1: slot j's
            // four lanes are bytes 4j..4j+4 (j < 4 in the first, the rest
            // in the second).
            let (q0, q1) = (_mm_packs_epi16(e(0), e(1)), _mm_packs_epi16(e(2), e(3)));
            // Byte pairs as 16-bit values saturate to a byte whose top bit
            // is the pair's high byte's: the signature lane's, for the
            // second pair of each slot (byte 2j + 1).
            _mm_movemask_epi8(_mm_packs_epi16(q0, q1)) as u32 & ODD_BITS
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    scalar(b, sig)
}

/// [`match_sig`] of two buckets at once with AVX2, where the CPU has it
/// ([`Compare::avx2_available`]).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
pub fn match_sig2_avx2(b: [&[AtomicU64; SLOTS]; 2], sig: u16) -> [u32; 2] {
    assert!(
        Compare::avx2_available(),
        "AVX2 compare on a CPU without AVX2"
    );
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { avx2(b, sig) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2(b: [&[AtomicU64; SLOTS]; 2], sig: u16) -> [u32; 2] {
    use std::arch::x86_64::*;
    let s = _mm256_set1_epi16(sig as i16);
    b.map(|b| {
        let p = b.as_ptr().cast::<__m256i>();
        // SAFETY: as in `match_sig`, with two 32-byte aligned loads of the
        // 64-byte aligned bucket; AVX2 is present (the caller's check).
        unsafe {
            let e = |k: usize| _mm256_cmpeq_epi16(_mm256_load_si256(p.add(k)), s);
            // Packs work per 128-bit half: bytes come out as slots 0-1,
            // 4-5, 2-3, 6-7; the permute puts them back in order.
            let q = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi16(e(0), e(1)));
            let q = _mm256_packs_epi16(q, q);
            let m = _mm256_movemask_epi8(q) as u32;
            // Each half now holds slots 0-3 then 4-7 (twice): take the low
            // half's eight bytes from each.
            (m & 0xff | (m >> 8) & 0xff00) & ODD_BITS
        }
    })
}

/// The mask bit of each slot's signature lane.
const ODD_BITS: u32 = 0xAAAA;

/// [`match_sig`] one slot at a time: the reference the vector versions
/// are tested against, and the version off x86-64.
pub fn scalar(b: &[AtomicU64; SLOTS], sig: u16) -> u32 {
    let mut m = 0;
    for (j, s) in b.iter().enumerate() {
        if (s.load(std::sync::atomic::Ordering::Acquire) >> 48) as u16 == sig {
            m |= 1 << (2 * j as u32 + MATCH_BIT);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(64))]
    struct Line([AtomicU64; SLOTS]);

    #[test]
    fn vector_compares_agree_with_the_scalar_one() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..2000 {
            let line = Line(std::array::from_fn(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Few distinct signatures, so matches are common; some
                // slots empty.
                if x.is_multiple_of(5) {
                    AtomicU64::new(0)
                } else {
                    AtomicU64::new((x % 3) << 48 | x & 0xffff_ffff_ffff)
                }
            }));
            for sig in 0..4u16 {
                let want = scalar(&line.0, sig);
                assert_eq!(match_sig(&line.0, sig), want, "round {round} sig {sig}");
                #[cfg(target_arch = "x86_64")]
                if Compare::avx2_available() {
                    assert_eq!(match_sig2_avx2([&line.0, &line.0], sig), [want; 2]);
                }
            }
        }
    }

    #[test]
    fn only_the_signature_lane_counts() {
        // The sought value in every lane but the signature's.
        let line = Line(std::array::from_fn(|_| {
            AtomicU64::new(0x0000_0007_0007_0007)
        }));
        assert_eq!(match_sig(&line.0, 7), 0);
        assert_eq!(scalar(&line.0, 7), 0);
        #[cfg(target_arch = "x86_64")]
        if Compare::avx2_available() {
            assert_eq!(match_sig2_avx2([&line.0, &line.0], 7), [0; 2]);
        }
    }

    #[test]
    fn a_match_names_its_slot() {
        let line = Line(std::array::from_fn(|j| {
            AtomicU64::new((j as u64 + 1) << 48)
        }));
        for j in 0..SLOTS {
            let m = match_sig(&line.0, j as u16 + 1);
            assert_eq!(m.trailing_zeros() / 2, j as u32);
            assert_eq!(m.count_ones(), 1);
        }
    }
}
