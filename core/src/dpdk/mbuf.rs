//! Owned mbufs and fixed-size bursts of them.

use super::sys;
use crate::pipeline::FrameBuf;
use crate::MAX_BURST;
use std::ptr::NonNull;

/// An owned packet buffer; freed on drop. Single-segment use only: the
/// worker drops chained mbufs before anything reads them.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf {
    raw: NonNull<sys::rte_mbuf>,
}

// SAFETY: an mbuf has one owner at a time; handing it to another thread
// (worker -> control ring) moves that ownership. DPDK frees from any lcore.
unsafe impl Send for Mbuf {}

impl Mbuf {
    pub(super) fn from_non_null(raw: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    fn m(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for our whole lifetime.
        unsafe { self.raw.as_ref() }
    }

    /// Segments in the chain.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.m().nb_segs
    }

    /// Frame length (first segment).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.m().data_len)
    }

    /// True when the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame bytes.
    pub fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the buffer DPDK
        // gave us, and we own it; the borrow ties it to `self`.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The data room from the frame's start to the end of the buffer, and
    /// the frame length: the frame may be rewritten and grow into tailroom.
    #[inline]
    pub fn room_and_len_mut(&mut self) -> (&mut [u8], usize) {
        let m = self.m();
        let (off, len, cap) = (
            usize::from(m.data_off),
            usize::from(m.data_len),
            usize::from(m.buf_len),
        );
        let base = m.buf_addr as *mut u8;
        // SAFETY: [data_off, buf_len) is inside the buffer; we own the mbuf
        // and hand out one mutable borrow tied to `&mut self`.
        let room =
            unsafe { std::slice::from_raw_parts_mut(base.add(off), cap.saturating_sub(off)) };
        (room, len)
    }

    /// Sets the frame length (single segment); false if it does not fit.
    pub fn set_len(&mut self, len: usize) -> bool {
        let Ok(len) = u16::try_from(len) else {
            return false;
        };
        // SAFETY: the shim checks the length against the buffer.
        unsafe { sys::shim_mbuf_set_len(self.raw.as_ptr(), len) == 0 }
    }

    /// Gives up ownership (the caller must free or transmit it).
    fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed once, here.
        unsafe { sys::shim_rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl FrameBuf for Mbuf {
    #[inline]
    fn room_and_len(&mut self) -> (&mut [u8], usize) {
        self.room_and_len_mut()
    }
}

/// Up to [`MAX_BURST`] mbufs, as rx/tx bursts exchange them. Whatever is
/// left in it when dropped or cleared is freed in bulk.
#[derive(Debug)]
pub struct Burst {
    // `Option<Mbuf>` has the layout of `*mut rte_mbuf` (None = null): Mbuf
    // is a transparent NonNull. So DPDK can fill this array directly.
    slots: [Option<Mbuf>; MAX_BURST],
    len: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Burst {
            slots: std::array::from_fn(|_| None),
            len: 0,
        }
    }
}

impl Burst {
    /// Number of mbufs held.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True when no more fit.
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }
    /// Appends; gives the mbuf back when full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.is_full() {
            return Err(m);
        }
        self.slots[self.len] = Some(m);
        self.len += 1;
        Ok(())
    }
    /// The mbuf in slot `i`, if any.
    pub fn get(&self, i: usize) -> Option<&Mbuf> {
        self.slots[..self.len].get(i).and_then(Option::as_ref)
    }
    /// Takes slot `i` out (None if already taken).
    pub fn take(&mut self, i: usize) -> Option<Mbuf> {
        self.slots[..self.len].get_mut(i).and_then(Option::take)
    }
    /// The mbufs as a slice (every slot below `len` is filled after rx).
    pub fn mbufs_mut(&mut self) -> &mut [Mbuf] {
        assert!(self.slots[..self.len].iter().all(Option::is_some));
        // SAFETY: every slot below `len` is Some (checked above), and
        // Option<Mbuf> has Mbuf's layout for Some values (null-pointer
        // optimisation of a transparent NonNull wrapper).
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr() as *mut Mbuf, self.len) }
    }
    /// Keeps the filled slots, in order, dropping the holes `take` left.
    pub fn compact(&mut self) {
        let mut w = 0;
        for r in 0..self.len {
            if self.slots[r].is_some() {
                self.slots.swap(w, r);
                w += 1;
            }
        }
        self.len = w;
    }
    /// Frees everything held, in one bulk call.
    pub fn clear(&mut self) {
        let mut raw: [*mut sys::rte_mbuf; MAX_BURST] = [std::ptr::null_mut(); MAX_BURST];
        let mut n = 0;
        for s in &mut self.slots[..self.len] {
            if let Some(m) = s.take() {
                raw[n] = m.into_raw();
                n += 1;
            }
        }
        self.len = 0;
        if n > 0 {
            // SAFETY: each pointer was an owned mbuf released by into_raw.
            unsafe { sys::shim_rte_pktmbuf_free_bulk(raw.as_mut_ptr(), n as u32) };
        }
    }
    /// Raw array for rx_burst to fill; the burst must be empty.
    pub(super) fn raw_for_rx(&mut self) -> *mut *mut sys::rte_mbuf {
        debug_assert!(self.is_empty());
        self.slots.as_mut_ptr() as *mut *mut sys::rte_mbuf
    }
    /// After rx_burst wrote `n` pointers.
    pub(super) fn set_received(&mut self, n: usize) {
        self.len = n;
    }
    /// Raw pointers for tx_burst; the first `sent` are then forgotten (the
    /// driver owns them) and the rest stay in the burst.
    pub(super) fn raw_for_tx(&mut self) -> *mut *mut sys::rte_mbuf {
        self.compact();
        self.slots.as_mut_ptr() as *mut *mut sys::rte_mbuf
    }
    /// After tx_burst took `sent` mbufs from the front.
    pub(super) fn forget_sent(&mut self, sent: usize) {
        for s in &mut self.slots[..sent] {
            if let Some(m) = s.take() {
                std::mem::forget(m);
            }
        }
        self.slots[..self.len].rotate_left(sent);
        self.len -= sent;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}
