//! Cache prefetch hints. This file builds with or without the DPDK runtime
//! (the pipeline uses it, and the pipeline builds without EAL), so `lib.rs`
//! includes it as its own module; it lives under `dpdk/` because it is
//! `unsafe` code, and `unsafe` lives only here and in `dpdk-sys`.

#![allow(unsafe_code)]

/// Asks the CPU to bring the cache line holding `*r` into every cache
/// level. A hint: it never faults and changes no value.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` only hints the cache; it does not read the value
    // architecturally and never faults. `r` is a live reference anyway, and
    // SSE is part of the x86_64 baseline, so the target feature is present.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}
