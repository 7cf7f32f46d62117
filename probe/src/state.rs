//! A member's health as its probe results move it, and when each member is
//! probed next. Pure logic over an injected clock (milliseconds), so every
//! rule of SPEC.md "Health" is unit-tested without a network.
//!
//! - Up after `threshold` consecutive successes, down after `threshold`
//!   consecutive failures. A failure that the member itself reports (a RST,
//!   an HTTP status other than 200) marks it down at once, as a cloud load
//!   balancer does; a timeout counts towards the threshold.
//! - Members start up: a freshly started or reloaded Sluice keeps sending
//!   new flows to its members while the first probes run, instead of
//!   refusing every flow for `interval x threshold`.
//! - Probes of the members of one probe are spread evenly over its
//!   interval, so a thousand members do not fire at once.

/// What one probe attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handshake (and for HTTP(S), status 200) and a clean close.
    Success,
    /// No answer within the timeout.
    Timeout,
    /// The member answered no: a RST, or an HTTP status other than 200
    /// (carried here). Down at once.
    Refused(u16),
}

impl Outcome {
    /// A failure the member reported itself.
    pub fn is_immediate(self) -> bool {
        matches!(self, Outcome::Refused(_))
    }
}

/// One member's probe state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberHealth {
    /// Current verdict.
    pub up: bool,
    /// Results in a row that agree with `last`.
    pub consecutive: u32,
    /// The last result, if any probe has finished.
    pub last: Option<Outcome>,
    /// When `up` last changed (ms), if it has.
    pub last_change: Option<u64>,
}

impl Default for MemberHealth {
    fn default() -> MemberHealth {
        MemberHealth {
            up: true,
            consecutive: 0,
            last: None,
            last_change: None,
        }
    }
}

impl MemberHealth {
    /// Records a result at `now`; returns the new verdict when it changed.
    pub fn record(&mut self, outcome: Outcome, now: u64, threshold: u32) -> Option<bool> {
        let success = outcome == Outcome::Success;
        let same_kind = self
            .last
            .is_some_and(|l| (l == Outcome::Success) == success);
        self.consecutive = if same_kind { self.consecutive + 1 } else { 1 };
        self.last = Some(outcome);
        let flip = if success {
            !self.up && self.consecutive >= threshold.max(1)
        } else {
            self.up && (outcome.is_immediate() || self.consecutive >= threshold.max(1))
        };
        if flip {
            self.up = success;
            self.last_change = Some(now);
            Some(self.up)
        } else {
            None
        }
    }
}

/// When each of `n` members of one probe is due: member `i` first at
/// `start + i x interval / n`, then every `interval`.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: u64,
    next: Vec<u64>,
}

impl Schedule {
    /// `n` members probed every `interval_ms`, spread from `start`.
    pub fn new(n: usize, interval_ms: u64, start: u64) -> Schedule {
        let interval = interval_ms.max(1);
        Schedule {
            interval,
            next: (0..n as u64)
                .map(|i| start + i * interval / (n as u64).max(1))
                .collect(),
        }
    }

    /// Members due at `now`, each moved to its next slot (one interval
    /// later; a member that fell behind by several intervals is probed once
    /// and rejoins its slot).
    pub fn due(&mut self, now: u64) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, t) in self.next.iter_mut().enumerate() {
            if *t <= now {
                out.push(i);
                let behind = (now - *t) / self.interval + 1;
                *t += behind * self.interval;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_after_threshold_successes_down_after_threshold_timeouts() {
        let mut h = MemberHealth::default();
        assert!(h.up, "members start up");
        assert_eq!(h.record(Outcome::Timeout, 1, 2), None);
        assert_eq!(h.record(Outcome::Success, 2, 2), None, "the run restarts");
        assert_eq!(h.record(Outcome::Timeout, 3, 2), None);
        assert_eq!(h.record(Outcome::Timeout, 4, 2), Some(false));
        assert_eq!((h.up, h.consecutive, h.last_change), (false, 2, Some(4)));
        assert_eq!(h.record(Outcome::Timeout, 5, 2), None, "already down");
        assert_eq!(h.record(Outcome::Success, 6, 2), None);
        assert_eq!(h.record(Outcome::Success, 7, 2), Some(true));
        assert_eq!((h.consecutive, h.last), (2, Some(Outcome::Success)));
    }

    #[test]
    fn a_refusal_marks_down_at_once() {
        for refusal in [Outcome::Refused(0), Outcome::Refused(503)] {
            let mut h = MemberHealth::default();
            assert_eq!(h.record(refusal, 10, 3), Some(false), "{refusal:?}");
        }
        // Coming back still takes the threshold.
        let mut h = MemberHealth::default();
        h.record(Outcome::Refused(503), 1, 3);
        assert_eq!(h.record(Outcome::Success, 2, 3), None);
        assert_eq!(h.record(Outcome::Success, 3, 3), None);
        assert_eq!(h.record(Outcome::Success, 4, 3), Some(true));
    }

    #[test]
    fn a_threshold_of_one_flips_on_every_change() {
        let mut h = MemberHealth::default();
        assert_eq!(h.record(Outcome::Timeout, 1, 1), Some(false));
        assert_eq!(h.record(Outcome::Success, 2, 1), Some(true));
        assert_eq!(h.record(Outcome::Timeout, 3, 0), Some(false), "0 acts as 1");
    }

    #[test]
    fn a_thousand_members_are_spread_over_the_interval() {
        let mut s = Schedule::new(1000, 1000, 0);
        // In every 10 ms window of the first second, about 10 are due.
        let mut seen = vec![0u32; 1000];
        for t in (9..1000).step_by(10) {
            let due = s.due(t);
            assert!((9..=11).contains(&due.len()), "{} due at {t}", due.len());
            for i in due {
                seen[i] += 1;
            }
        }
        assert!(
            seen.iter().all(|&n| n == 1),
            "each member once per interval"
        );
        // The next second probes each again, at the same offsets.
        assert_eq!(s.due(1000).len(), 1, "member 0 again at 1000");
        assert_eq!(s.due(1999).len(), 999);
    }

    #[test]
    fn a_member_that_fell_behind_is_probed_once_and_rejoins_its_slot() {
        let mut s = Schedule::new(2, 100, 0);
        assert_eq!(s.due(0), [0]);
        // Control was busy for 5 intervals.
        assert_eq!(s.due(520), [0, 1]);
        assert!(s.due(549).is_empty());
        assert_eq!(s.due(550), [1], "member 1's slot is 50 past the interval");
        assert_eq!(s.due(600), [0]);
    }
}
