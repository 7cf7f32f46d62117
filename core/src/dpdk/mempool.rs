//! Packet mempools.

use super::{errno, strerror, sys, DpdkError, Mbuf};
use std::ffi::CString;
use std::ptr::NonNull;

/// A pktmbuf pool. Thread-safe for allocation from any lcore.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer; the pointer is
// only used through DPDK's thread-safe API.
unsafe impl Send for Mempool {}
// SAFETY: as above; shared references only allocate.
unsafe impl Sync for Mempool {}

/// Per-lcore cache size, DPDK's usual value.
const CACHE: u32 = 256;

impl Mempool {
    /// Creates a pool of `n` mbufs with the default data room (2048 + headroom).
    pub fn new(name: &str, n: u32, socket: i32) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(name.into()))?;
        let room = sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;
        // SAFETY: the name is NUL-terminated and copied by DPDK; the result is
        // checked for null.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, CACHE.min(n / 2), 0, room, socket)
        };
        NonNull::new(raw)
            .map(|raw| Mempool { raw })
            .ok_or_else(|| DpdkError::Mempool {
                name: name.into(),
                reason: strerror(errno()),
            })
    }

    /// One mbuf, or None when the pool is empty.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for the pool's lifetime.
        let m = unsafe { sys::shim_rte_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(m).map(Mbuf::from_non_null)
    }

    /// Mbufs out of the pool now: in RX rings, queues, flight and the
    /// per-lcore caches. Steady under steady load; growth is a leak.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool pointer is valid for the pool's lifetime; the
        // count only reads the pool's rings and caches.
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Mbufs the pool holds in all.
    pub fn capacity(&self) -> u32 {
        // SAFETY: as above; `size` is set at creation and never changes.
        unsafe { self.raw.as_ref().size }
    }

    pub(super) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }
}
