//! Sliding window log (이동 윈도 로그): exact, at a memory price.
//!
//! **Rule.** Keep the timestamp of every admitted request; on arrival drop the
//! ones older than the trailing window `(now - window_ns, now]`; admit when
//! fewer than `limit` remain.
//!
//! **Memory.** One timestamp per admitted request still inside the window:
//! up to `limit` × 8 bytes per key — the cost the notes warn about. The book's
//! variant also logs *rejected* requests, which lets a persistent client's
//! rejected calls keep it locked out and makes memory unbounded under attack;
//! we log only admitted ones (what the Redis sorted-set implementations do),
//! which keeps the log bounded by `limit` and the guarantee intact.
//!
//! **Trade-off (the notes).** Very precise: in *any* window of length
//! `window_ns`, never more than `limit` admitted (proved by the property test
//! below), with no boundary burst. The price is memory proportional to the
//! limit, so rules validation caps `limit` for this algorithm.

use super::{Decision, Nanos, Quota};
use std::collections::VecDeque;

/// The state of one sliding window log.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SlidingWindowLog {
    /// Admission times inside the trailing window, oldest first.
    log: VecDeque<Nanos>,
}

impl SlidingWindowLog {
    /// An empty log.
    pub fn new() -> SlidingWindowLog {
        SlidingWindowLog::default()
    }

    /// Timestamps currently held.
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether the log holds nothing.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Decides one request at `now_ns`.
    pub fn check(&mut self, quota: &Quota, now_ns: Nanos) -> Decision {
        // A clock that went backwards is treated as the newest time seen.
        let now_ns = self.log.back().map_or(now_ns, |&last| now_ns.max(last));
        while self
            .log
            .front()
            .is_some_and(|&t| t.saturating_add(quota.window_ns) <= now_ns)
        {
            self.log.pop_front();
        }
        // `limit` may shrink on reload: trim the oldest beyond it.
        while self.log.len() as u64 > quota.limit {
            self.log.pop_front();
        }
        let allowed = (self.log.len() as u64) < quota.limit;
        if allowed {
            self.log.push_back(now_ns);
        }
        let expiry = |t: &Nanos| t.saturating_add(quota.window_ns) - now_ns;
        Decision {
            allowed,
            limit: quota.limit,
            remaining: quota.limit - self.log.len() as u64,
            retry_after_ns: if allowed {
                0
            } else {
                self.log.front().map_or(0, expiry)
            },
            reset_after_ns: self.log.back().map_or(0, expiry),
            delay_ns: 0,
        }
    }

    /// When the newest entry leaves the window.
    pub fn idle_at(&self, quota: &Quota) -> Nanos {
        self.log
            .back()
            .map_or(0, |t| t.saturating_add(quota.window_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Never more than `limit` admitted in ANY window of length
        /// `window_ns`: for every admitted request at `t`, count the admitted
        /// ones in `(t - window_ns, t]` (windows ending at an admission are the
        /// worst case, so this covers every window).
        #[test]
        fn never_more_than_limit_in_any_window(
            limit in 1u64..15,
            window_ns in 1u64..1_000,
            arrivals in proptest::collection::vec((0u64..150, 1usize..8), 1..80),
        ) {
            let quota = Quota::new(limit, window_ns).unwrap();
            let mut log = SlidingWindowLog::new();
            let mut now = 0;
            let mut admitted = Vec::new();
            for (gap, count) in arrivals {
                now += gap;
                for _ in 0..count {
                    if log.check(&quota, now).allowed {
                        admitted.push(now);
                    }
                }
            }
            for (i, &end) in admitted.iter().enumerate() {
                let in_window = admitted[..=i].iter().filter(|&&t| t + window_ns > end).count();
                prop_assert!(in_window as u64 <= limit, "{} admitted in window ending {}", in_window, end);
            }
        }
    }

    #[test]
    fn no_boundary_burst() {
        let quota = Quota::new(3, 100).unwrap();
        let mut log = SlidingWindowLog::new();
        let late = (0..5).filter(|_| log.check(&quota, 99).allowed).count();
        let early = (0..5).filter(|_| log.check(&quota, 100).allowed).count();
        assert_eq!((late, early), (3, 0));
        let rejected = log.check(&quota, 150);
        assert_eq!(rejected.retry_after_ns, 49);
        assert!(log.check(&quota, 199).allowed);
    }
}
