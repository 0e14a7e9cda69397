//! Fixed window counter (고정 윈도 카운터): the Redis `INCR` + `EXPIRE` classic.
//!
//! **Rule.** The timeline is cut into windows of `window_ns` aligned on
//! multiples of `window_ns`; each window has a counter; a request increments it
//! and is rejected once the counter has reached `limit`, until the next window
//! opens and the counter starts again from zero.
//!
//! **Memory.** One counter and the window's index per key: O(1).
//!
//! **Trade-off (the notes).** Memory-efficient and easy to understand, and a
//! counter reset on window close suits quotas that really are per calendar
//! period. Its big flaw: a burst straddling a window boundary passes up to
//! `2 × limit` requests within one window's length (the last instant of one
//! window and the first of the next). The property test below demonstrates
//! exactly that burst; `hyperscale ratelimit simulate` shows it side by side.

use super::{Decision, Nanos, Quota};

/// The state of one fixed window counter.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FixedWindow {
    /// Index of the window `count` belongs to (`now_ns / window_ns`).
    window_index: u64,
    /// Requests admitted in that window.
    count: u64,
}

impl FixedWindow {
    /// A counter that has seen nothing.
    pub fn new() -> FixedWindow {
        FixedWindow::default()
    }

    /// Decides one request at `now_ns`.
    pub fn check(&mut self, quota: &Quota, now_ns: Nanos) -> Decision {
        let index = now_ns / quota.window_ns;
        // A clock that went backwards stays in the newest window seen.
        if index > self.window_index {
            self.window_index = index;
            self.count = 0;
        }
        let window_end = (self.window_index + 1).saturating_mul(quota.window_ns);
        let until_reset = window_end.saturating_sub(now_ns).max(1);
        let allowed = self.count < quota.limit;
        if allowed {
            self.count += 1;
        }
        Decision {
            allowed,
            limit: quota.limit,
            remaining: quota.limit.saturating_sub(self.count),
            retry_after_ns: if allowed { 0 } else { until_reset },
            reset_after_ns: if self.count == 0 { 0 } else { until_reset },
            delay_ns: 0,
        }
    }

    /// The end of the current window, after which the counter is void.
    pub fn idle_at(&self, quota: &Quota) -> Nanos {
        (self.window_index + 1).saturating_mul(quota.window_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Within one aligned window never more than `limit`.
        #[test]
        fn never_more_than_limit_per_aligned_window(
            limit in 1u64..20,
            window_ns in 1u64..1_000,
            arrivals in proptest::collection::vec(0u64..100, 1..200),
        ) {
            let quota = Quota::new(limit, window_ns).unwrap();
            let mut counter = FixedWindow::new();
            let mut now = 0;
            let mut per_window = std::collections::HashMap::<u64, u64>::new();
            for gap in arrivals {
                now += gap;
                if counter.check(&quota, now).allowed {
                    *per_window.entry(now / window_ns).or_default() += 1;
                }
            }
            prop_assert!(per_window.values().all(|&n| n <= limit));
        }

        /// The notes' flaw, demonstrated for any limit and window: `limit`
        /// requests at the last nanosecond of a window plus `limit` at the
        /// first of the next are all admitted — 2 × limit within 2 ns.
        #[test]
        fn boundary_burst_admits_twice_the_limit(
            limit in 1u64..100,
            window_ns in 2u64..1_000_000,
            windows_before in 0u64..10,
        ) {
            let quota = Quota::new(limit, window_ns).unwrap();
            let mut counter = FixedWindow::new();
            let boundary = (windows_before + 1) * window_ns;
            let late = (0..limit * 3).filter(|_| counter.check(&quota, boundary - 1).allowed).count();
            let early = (0..limit * 3).filter(|_| counter.check(&quota, boundary).allowed).count();
            prop_assert_eq!(late as u64 + early as u64, 2 * limit);
        }
    }
}
