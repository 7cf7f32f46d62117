//! What an entry tracks of each TCP direction beyond its state: the
//! sequence number after the last segment, and the window its receiver
//! advertised, so a RST (or a segment) far outside it changes nothing.
//! The window and its scale live in bits 48..64 of each direction's ports
//! word, which lookups mask off: the IPv4 entry stays 64 bytes.

use super::Entry;
use crate::family::{Dir, Family};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Bits 48..52 of a direction's ports word: the window scale its sender's
/// SYN offered, [`NO_WSCALE`] when it offered none or no SYN was seen.
pub(super) const WSCALE_SHIFT: u32 = 48;
pub(super) const NO_WSCALE: u64 = 15;
/// Bits 52..64: the largest window field its sender put in a segment
/// other than a SYN, in units of 16 bytes (rounded up; 65535 is kept as
/// 65520).
const WINDOW_SHIFT: u32 = 52;
/// The window a RST's sequence number is judged against while the
/// receiver has advertised none: the largest unscaled one.
const MIN_WINDOW: u32 = 65535;

impl<A: Family> Entry<A> {
    /// Records the sequence number following a segment, if it is later
    /// (modulo 2^32) than what is stored and no further ahead than the
    /// receiver's window allows (twice, plus 1 MiB of slack for segments
    /// Sluice did not see): a blind segment cannot move it anywhere.
    #[inline]
    pub fn track_seq(&self, dir: Dir, end: u32) {
        let s = &self.next_seq[dir.index()];
        let cur = s.load(Relaxed);
        let ahead = end.wrapping_sub(cur);
        // Most segments move it by less than a window; the bound is
        // computed only for the rest.
        let near = ahead > 0 && ahead <= MIN_WINDOW;
        if cur == 0 || near || ((ahead as i32) > 0 && ahead <= self.seq_bound(dir)) {
            s.store(end, Relaxed);
        }
    }

    #[inline(never)]
    fn seq_bound(&self, dir: Dir) -> u32 {
        self.window(dir.other())
            .max(MIN_WINDOW)
            .saturating_mul(2)
            .saturating_add(1 << 20)
    }

    #[inline(always)]
    fn ports_slot(&self, dir: Dir) -> &AtomicU64 {
        &self.key[dir.index()].as_ref()[A::ADDR_WORDS]
    }

    /// Notes the window scale option of a SYN or SYN-ACK of `dir` (`15`:
    /// none). Only that direction's worker writes its ports word.
    pub fn note_wscale(&self, dir: Dir, scale: u8) {
        let s = self.ports_slot(dir);
        let cur = s.load(Relaxed);
        let new = cur & !(0xf << WSCALE_SHIFT) | u64::from(scale.min(15)) << WSCALE_SHIFT;
        if new != cur {
            s.store(new, Relaxed);
        }
    }

    /// Notes the window field of a segment of `dir` that is not a SYN.
    #[inline]
    pub fn note_window(&self, dir: Dir, window: u16) {
        let s = self.ports_slot(dir);
        let cur = s.load(Relaxed);
        let units = ((u64::from(window) + 15) >> 4).min(0xfff);
        if units > cur >> WINDOW_SHIFT {
            s.store(
                cur & ((1 << WINDOW_SHIFT) - 1) | units << WINDOW_SHIFT,
                Relaxed,
            );
        }
    }

    /// The largest receive window (bytes) the TCP sender of `dir` has
    /// advertised, scaled if both SYNs offered scaling (RFC 7323); 0 while
    /// it has sent nothing but SYNs.
    pub fn window(&self, dir: Dir) -> u32 {
        let w = self.ports_slot(dir).load(Relaxed);
        let o = self.ports_slot(dir.other()).load(Relaxed);
        let (scale, other) = (w >> WSCALE_SHIFT & 0xf, o >> WSCALE_SHIFT & 0xf);
        let scale = if scale != NO_WSCALE && other != NO_WSCALE {
            scale.min(14)
        } else {
            0
        };
        (((w >> WINDOW_SHIFT) as u32) << 4) << scale
    }

    /// Whether a RST of `dir` carrying `seq` (and `ack`) is one its
    /// receiver would take (RFC 5961 in spirit, as conntrack judges it):
    /// its sequence number within the receiver's window of what the sender
    /// has sent, or, from a side that has sent nothing yet, acknowledging
    /// what the other side sent (the refusal of a SYN).
    pub fn rst_acceptable(&self, dir: Dir, seq: u32, ack: Option<u32>) -> bool {
        let sent = self.next_seq[dir.index()].load(Relaxed);
        if sent == 0 {
            let theirs = self.next_seq[dir.other().index()].load(Relaxed);
            return theirs == 0 || ack == Some(theirs);
        }
        let w = self.window(dir.other()).max(MIN_WINDOW);
        (seq.wrapping_sub(sent) as i32).unsigned_abs() <= w
    }

    /// A closed flow reopened by a new SYN: forgets the old connection's
    /// sequence numbers and windows.
    pub fn restart_tcp(&self) {
        for d in Dir::BOTH {
            self.next_seq[d.index()].store(0, Relaxed);
            let s = self.ports_slot(d);
            let keep = s.load(Relaxed) & ((1 << WSCALE_SHIFT) - 1);
            s.store(keep | NO_WSCALE << WSCALE_SHIFT, Relaxed);
        }
    }
}
