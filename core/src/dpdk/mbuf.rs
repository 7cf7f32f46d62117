//! Owned mbufs and fixed-size bursts of them.

use super::sys;
use crate::pipeline::FrameBuf;
use crate::MAX_BURST;
use std::ptr::NonNull;

/// `RTE_MBUF_F_RX_IP_CKSUM_MASK` (rte_mbuf_core.h; checked against the C
/// macros by a test, as are the others).
pub(super) const RX_IP_CKSUM_MASK: u64 = 1 << 4 | 1 << 7;
/// `RTE_MBUF_F_RX_IP_CKSUM_GOOD`.
pub(super) const RX_IP_CKSUM_GOOD: u64 = 1 << 7;

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
    /// Inline field writes: the worker calls it once per frame sent.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        let m = self.m();
        if m.nb_segs != 1 || usize::from(m.data_off) + len > usize::from(m.buf_len) {
            return false;
        }
        let len = len as u16;
        // SAFETY: we own the mbuf exclusively (`&mut self`); a single
        // segment's data and packet lengths are the frame's, and the new
        // one fits the buffer (checked above).
        unsafe {
            let m = self.raw.as_mut();
            m.data_len = len;
            m.pkt_len = u32::from(len);
        }
        true
    }

    /// True when the NIC verified the frame's IPv4 header checksum
    /// (`RTE_MBUF_F_RX_IP_CKSUM_GOOD`, set only by ports with RX checksum
    /// offload enabled).
    #[inline]
    pub fn ip_checksum_good(&self) -> bool {
        self.m().ol_flags & RX_IP_CKSUM_MASK == RX_IP_CKSUM_GOOD
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
    #[inline]
    fn ip_checksum_verified(&self) -> bool {
        self.ip_checksum_good()
    }
}

/// Up to [`MAX_BURST`] mbufs, as rx/tx bursts exchange them: the raw
/// pointer array DPDK fills and reads, so nothing is copied or converted
/// per frame. A slot below `len` is an owned mbuf or null (a hole `take`
/// left). Whatever is left in it when dropped or cleared is freed in bulk.
#[derive(Debug)]
pub struct Burst {
    slots: [*mut sys::rte_mbuf; MAX_BURST],
    len: usize,
    /// Some slot below `len` is null.
    holes: bool,
}

// SAFETY: the burst owns the mbufs its slots point to, as a Vec<Mbuf>
// would; see `Mbuf`'s Send.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Burst {
            slots: [std::ptr::null_mut(); MAX_BURST],
            len: 0,
            holes: false,
        }
    }
}

impl Burst {
    /// Number of slots in use (mbufs held, and holes `take` left).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True when no more fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }
    /// Appends; gives the mbuf back when full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.is_full() {
            return Err(m);
        }
        self.slots[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }
    /// The mbuf in slot `i`, if any.
    pub fn get(&self, i: usize) -> Option<&Mbuf> {
        let p = self.slots[..self.len].get(i)?;
        // SAFETY: a non-null slot below `len` is an owned mbuf pointer, and
        // `Mbuf` is a transparent non-null pointer: the slot is a valid
        // `Mbuf` borrowed from `self`.
        (!p.is_null()).then(|| unsafe { &*(p as *const *mut sys::rte_mbuf as *const Mbuf) })
    }
    /// Takes slot `i` out (None if already taken).
    pub fn take(&mut self, i: usize) -> Option<Mbuf> {
        let p = self.slots[..self.len].get_mut(i)?;
        let m = NonNull::new(std::mem::replace(p, std::ptr::null_mut()))?;
        self.holes = true;
        Some(Mbuf::from_non_null(m))
    }
    /// The mbufs as a slice, for the pipeline to read and rewrite in place.
    #[inline]
    pub fn mbufs_mut(&mut self) -> &mut [Mbuf] {
        if self.holes {
            self.compact();
        }
        // SAFETY: without holes every slot below `len` is an owned,
        // non-null mbuf pointer, which is a valid `Mbuf` (a transparent
        // NonNull); the borrow is tied to `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr() as *mut Mbuf, self.len) }
    }
    /// Hands every mbuf held to `f` with its slot index, in order, and
    /// leaves the burst empty: the worker's one pass from fates to TX
    /// bursts, with no per-frame slot clearing.
    #[inline]
    pub fn drain(&mut self, mut f: impl FnMut(usize, Mbuf)) {
        let n = std::mem::take(&mut self.len);
        self.holes = false;
        for i in 0..n {
            if let Some(m) = NonNull::new(self.slots[i]) {
                f(i, Mbuf::from_non_null(m));
            }
        }
    }
    /// True when some mbuf held has more than one segment.
    #[inline]
    pub fn any_chained(&self) -> bool {
        let mut segs = 0u16;
        for m in self.slots[..self.len].iter().filter(|p| !p.is_null()) {
            // SAFETY: a non-null slot below `len` is an owned mbuf.
            segs |= unsafe { (**m).nb_segs } - 1;
        }
        segs != 0
    }
    /// Keeps the filled slots, in order, dropping the holes `take` left.
    pub fn compact(&mut self) {
        let mut w = 0;
        for r in 0..self.len {
            if !self.slots[r].is_null() {
                self.slots[w] = self.slots[r];
                w += 1;
            }
        }
        self.len = w;
        self.holes = false;
    }
    /// Frees everything held, in one bulk call (which skips the holes).
    #[inline]
    pub fn clear(&mut self) {
        let n = std::mem::take(&mut self.len);
        self.holes = false;
        if n > 0 {
            // SAFETY: each non-null slot below `n` is an owned mbuf, freed
            // once here (`len` is 0 now); rte_pktmbuf_free_bulk skips null
            // entries.
            unsafe { sys::shim_rte_pktmbuf_free_bulk(self.slots.as_mut_ptr(), n as u32) };
        }
    }
    /// Raw array for rx_burst to fill; the burst must be empty.
    pub(super) fn raw_for_rx(&mut self) -> *mut *mut sys::rte_mbuf {
        debug_assert!(self.is_empty());
        self.slots.as_mut_ptr()
    }
    /// After rx_burst wrote `n` (non-null) pointers.
    pub(super) fn set_received(&mut self, n: usize) {
        self.len = n;
        self.holes = false;
    }
    /// Raw pointers for tx_burst, compacted: the first `len` are mbufs.
    pub(super) fn raw_for_tx(&mut self) -> *mut *mut sys::rte_mbuf {
        if self.holes {
            self.compact();
        }
        self.slots.as_mut_ptr()
    }
    /// After tx_burst took `sent` mbufs from the front: the rest move to
    /// the front and stay in the burst.
    pub(super) fn forget_sent(&mut self, sent: usize) {
        self.slots.copy_within(sent..self.len, 0);
        self.len -= sent;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offload_flags_match_dpdk() {
        let mut f = [0u64; 3];
        // SAFETY: the shim writes three values into the array.
        unsafe { sys::shim_offload_flags(f.as_mut_ptr()) };
        assert_eq!(
            f,
            [
                RX_IP_CKSUM_MASK,
                RX_IP_CKSUM_GOOD,
                crate::dpdk::port::RX_OFFLOAD_IPV4_CKSUM
            ]
        );
    }
}
