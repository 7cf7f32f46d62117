//! Replay protection per sender stream: the sender's epoch (its process's
//! start), the highest sequence number seen, and a 64-bit window of the
//! ones below it, as IPsec keeps for ESP (RFC 4303, 3.4.3). One stream
//! comes from one source port, so RSS gives it to one worker: its state
//! has a single writer and is kept in plain relaxed atomics.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What a datagram's (epoch, seq) is to its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New: `gap` datagrams before it were skipped (lost, or late).
    Fresh {
        /// Sequence numbers skipped.
        gap: u64,
    },
    /// Within the window, not seen before: one counted lost arrived.
    Late,
    /// Seen already, older than the window, or of an older epoch.
    Replay,
}

/// One stream's state.
#[derive(Debug, Default)]
pub struct Stream {
    epoch: AtomicU64,
    top: AtomicU64,
    seen: AtomicU64,
}

impl Stream {
    /// Judges (and, unless a replay, records) a datagram.
    pub fn accept(&self, epoch: u64, seq: u64) -> Verdict {
        let cur = self.epoch.load(Relaxed);
        if epoch < cur || seq == 0 {
            return Verdict::Replay;
        }
        if epoch > cur {
            // A sender heard for the first time, or restarted: its
            // numbering starts over, and what it sent before is no gap.
            self.epoch.store(epoch, Relaxed);
            self.top.store(seq, Relaxed);
            self.seen.store(1, Relaxed);
            return Verdict::Fresh { gap: 0 };
        }
        let top = self.top.load(Relaxed);
        let seen = self.seen.load(Relaxed);
        if seq > top {
            let shift = seq - top;
            let window = if shift >= 64 { 0 } else { seen << shift };
            self.seen.store(window | 1, Relaxed);
            self.top.store(seq, Relaxed);
            return Verdict::Fresh { gap: shift - 1 };
        }
        let back = top - seq;
        if back >= 64 || seen >> back & 1 != 0 {
            return Verdict::Replay;
        }
        self.seen.store(seen | 1 << back, Relaxed);
        Verdict::Late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_late_and_replayed() {
        let s = Stream::default();
        assert_eq!(s.accept(5, 10), Verdict::Fresh { gap: 0 });
        assert_eq!(s.accept(5, 11), Verdict::Fresh { gap: 0 });
        assert_eq!(s.accept(5, 11), Verdict::Replay);
        assert_eq!(s.accept(5, 14), Verdict::Fresh { gap: 2 });
        assert_eq!(s.accept(5, 12), Verdict::Late);
        assert_eq!(s.accept(5, 12), Verdict::Replay);
        assert_eq!(s.accept(5, 200), Verdict::Fresh { gap: 185 });
        assert_eq!(s.accept(5, 13), Verdict::Replay, "older than the window");
        assert_eq!(s.accept(4, 500), Verdict::Replay, "an older epoch");
        assert_eq!(s.accept(6, 1), Verdict::Fresh { gap: 0 }, "a restart");
        assert_eq!(s.accept(6, 0), Verdict::Replay);
    }
}
