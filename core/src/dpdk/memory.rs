//! Large tables on transparent huge pages. Builds with or without the DPDK
//! runtime (the flow table uses it, and it builds without EAL), so `lib.rs`
//! includes it as its own module; it lives under `dpdk/` because it is
//! `unsafe` code, and `unsafe` lives only here and in `dpdk-sys`.
//!
//! A 1M-flow table spans about 100 MB touched at random: on 4 KB pages
//! nearly every lookup also misses the TLB. Advising the kernel before the
//! memory is first written lets it back the table with 2 MB pages where it
//! can (transparent huge pages in `madvise` or `always` mode); where it
//! cannot, nothing changes but speed.

#![allow(unsafe_code)]

const HUGE_PAGE: usize = 2 << 20;

/// `n` values made by `f`, in memory advised as huge-page backed before it
/// is first written.
pub fn huge_vec<T>(n: usize, f: impl FnMut(usize) -> T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise(v.as_ptr().cast::<u8>(), n * std::mem::size_of::<T>());
    v.extend((0..n).map(f));
    v
}

/// Advises the whole 2 MB pages inside `[p, p + len)`.
fn advise(p: *const u8, len: usize) {
    let start = (p as usize).next_multiple_of(HUGE_PAGE);
    let end = (p as usize).saturating_add(len) & !(HUGE_PAGE - 1);
    if end <= start {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: `[start, end)` lies inside an allocation the caller owns and
    // has not handed out. MADV_HUGEPAGE only changes how the kernel backs the
    // range (page size); it never changes its contents, protection or
    // validity. A failure (huge pages off) leaves small pages, which work the
    // same, so the result is ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn huge_vec_holds_what_it_was_given() {
        let v = super::huge_vec(1 << 20, |i| i as u32 * 3);
        assert_eq!(v.len(), 1 << 20);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 * 3));
    }
}
