//! Sliding window counter (이동 윈도 카운터): fixed windows, blended.
//!
//! **Rule.** Keep the fixed-window counts of the current window (`curr`) and
//! the previous one (`prev`). At a fraction `f` into the current window,
//! estimate the trailing-window count as `curr + prev × (1 − f)` (rounded
//! down, as in the notes' example: 3 + 5 × 0.7 = 6.5 → 6 < 7, admitted) and
//! admit while that estimate is below `limit`.
//!
//! **Memory.** Two counters and a window index per key: O(1).
//!
//! **Trade-off (the notes).** Smooths bursts like the log and costs as little
//! memory as a fixed window, but it is "somewhat loose": it assumes the
//! previous window's requests were spread evenly. The documented error: the
//! estimate differs from the exact trailing count by at most
//! `prev × max(f, 1 − f)`, and at any admission the exact count of admitted
//! requests in the trailing window is at most `limit + ⌈prev × f⌉` (< 2 ×
//! limit, vs exactly 2 × limit for the fixed window). For evenly spread
//! traffic the error is at most one request. Property tests check all three.

use super::{Decision, Nanos, Quota, div_ceil_u128, to_nanos};

/// The state of one sliding window counter.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SlidingWindowCounter {
    /// Index of the current window (`now_ns / window_ns`).
    window_index: u64,
    /// Admitted in the current window.
    curr: u64,
    /// Admitted in the window before it.
    prev: u64,
}

impl SlidingWindowCounter {
    /// A counter that has seen nothing.
    pub fn new() -> SlidingWindowCounter {
        SlidingWindowCounter::default()
    }

    /// `(prev, curr)` after rotating to `now_ns`'s window (for tests/tools).
    pub fn counts(&self, quota: &Quota, now_ns: Nanos) -> (u64, u64) {
        let mut copy = self.clone();
        copy.rotate(quota, now_ns);
        (copy.prev, copy.curr)
    }

    /// Decides one request at `now_ns`.
    pub fn check(&mut self, quota: &Quota, now_ns: Nanos) -> Decision {
        self.rotate(quota, now_ns);
        let window_start = self.window_index.saturating_mul(quota.window_ns);
        let now_ns = now_ns.max(window_start);
        let elapsed = now_ns - window_start;
        let allowed = estimate(self.prev, self.curr, elapsed, quota) < quota.limit;
        if allowed {
            self.curr += 1;
        }
        let retry_after_ns = if allowed {
            0
        } else {
            self.wait_for_admission(quota, elapsed)
        };
        let after = estimate(self.prev, self.curr, elapsed, quota);
        Decision {
            allowed,
            limit: quota.limit,
            remaining: quota.limit.saturating_sub(after),
            retry_after_ns,
            reset_after_ns: self.idle_at(quota).saturating_sub(now_ns),
            delay_ns: 0,
        }
    }

    /// When both windows have passed and the counts are void.
    pub fn idle_at(&self, quota: &Quota) -> Nanos {
        let windows = if self.curr > 0 {
            2
        } else if self.prev > 0 {
            1
        } else {
            0
        };
        (self.window_index + windows).saturating_mul(quota.window_ns)
    }

    /// Moves to `now_ns`'s window: the current count becomes the previous one
    /// (or both vanish if a whole window passed in silence).
    fn rotate(&mut self, quota: &Quota, now_ns: Nanos) {
        let index = now_ns / quota.window_ns;
        if index == self.window_index + 1 {
            self.prev = self.curr;
            self.curr = 0;
        } else if index > self.window_index + 1 {
            self.prev = 0;
            self.curr = 0;
        }
        self.window_index = self.window_index.max(index);
    }

    /// Nanoseconds from `elapsed` until the estimate drops below the limit:
    /// later in this window (as `prev`'s weight fades), or in the next one.
    fn wait_for_admission(&self, quota: &Quota, elapsed: Nanos) -> Nanos {
        let window = u128::from(quota.window_ns);
        let limit = u128::from(quota.limit);
        let (prev, curr) = (u128::from(self.prev), u128::from(self.curr));
        // Smallest e with curr + floor(p·(W−e)/W) < N  <=>  p·(W−e) < (N−curr)·W.
        let first_admitting = |p: u128, c: u128| -> Option<u128> {
            if c >= limit {
                return None;
            }
            if p == 0 {
                return Some(0);
            }
            let room = div_ceil_u128((limit - c) * window, p);
            Some((window + 1).saturating_sub(room))
        };
        match first_admitting(prev, curr) {
            Some(e) if e < window => to_nanos(e.saturating_sub(u128::from(elapsed)).max(1)),
            _ => {
                let to_next = window - u128::from(elapsed);
                let e = first_admitting(curr, 0).unwrap_or(0);
                to_nanos(to_next + e)
            }
        }
    }
}

/// `curr + floor(prev × (W − elapsed) / W)`: the notes' estimate, rounded down.
fn estimate(prev: u64, curr: u64, elapsed: Nanos, quota: &Quota) -> u64 {
    let window = u128::from(quota.window_ns);
    let weight = window - u128::from(elapsed.min(quota.window_ns));
    curr + to_nanos(u128::from(prev) * weight / window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_notes_worked_example() {
        // 7 per minute; 5 in the previous minute, 3 so far, 30% into this one.
        let quota = Quota::new(7, 60_000).unwrap();
        let mut counter = SlidingWindowCounter {
            window_index: 1,
            curr: 3,
            prev: 5,
        };
        assert!(counter.check(&quota, 60_000 + 18_000).allowed); // 3 + 3.5 → 6 < 7
        assert!(!counter.check(&quota, 60_000 + 18_000).allowed); // 4 + 3.5 → 7
    }

    /// Drives random traffic and, at every decision, compares against the
    /// exact trailing count computed from a log of admissions.
    fn check_error_bounds(
        limit: u64,
        window_ns: u64,
        arrivals: &[(u64, usize)],
    ) -> Result<(), TestCaseError> {
        let quota = Quota::new(limit, window_ns).unwrap();
        let mut counter = SlidingWindowCounter::new();
        let mut admitted: Vec<u64> = Vec::new();
        let mut now = 0;
        for &(gap, count) in arrivals {
            now += gap;
            for _ in 0..count {
                let decision = counter.check(&quota, now);
                if decision.allowed {
                    admitted.push(now);
                }
                let (prev, curr) = counter.counts(&quota, now);
                let elapsed = now % window_ns;
                let exact = admitted.iter().filter(|&&t| t + window_ns > now).count() as f64;
                let f = elapsed as f64 / window_ns as f64;
                let estimate = curr as f64 + prev as f64 * (1.0 - f);
                prop_assert!((estimate - exact).abs() <= prev as f64 * f.max(1.0 - f) + 1e-9);
                if decision.allowed {
                    let bound = limit + (prev * elapsed).div_ceil(window_ns);
                    prop_assert!(exact as u64 <= bound, "exact {} > bound {}", exact, bound);
                    prop_assert!(exact as u64 <= 2 * limit);
                }
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn within_documented_error_of_exact_count(
            limit in 1u64..20,
            window_ns in 1u64..1_000,
            arrivals in proptest::collection::vec((0u64..200, 1usize..6), 1..80),
        ) {
            check_error_bounds(limit, window_ns, &arrivals)?;
        }

        /// Evenly spaced traffic: the estimate is within one request of exact.
        #[test]
        fn evenly_spread_traffic_is_within_one(limit in 2u64..50, spacing in 1u64..50) {
            let window_ns = 1_000;
            let quota = Quota::new(limit, window_ns).unwrap();
            let mut counter = SlidingWindowCounter::new();
            let mut admitted: Vec<u64> = Vec::new();
            for step in 0..(5 * window_ns / spacing) {
                let now = step * spacing;
                if counter.check(&quota, now).allowed {
                    admitted.push(now);
                }
                let exact = admitted.iter().filter(|&&t| t + window_ns > now).count() as u64;
                prop_assert!(exact <= limit + 1, "exact {} limit {}", exact, limit);
            }
        }

        /// Retry-after is exact: one ns earlier rejects, at retry-after admits.
        #[test]
        fn retry_after_is_exact(
            limit in 1u64..10,
            window_ns in 2u64..500,
            arrivals in proptest::collection::vec((0u64..100, 1usize..10), 1..30),
        ) {
            let quota = Quota::new(limit, window_ns).unwrap();
            let mut counter = SlidingWindowCounter::new();
            let mut now = 0;
            for (gap, count) in arrivals {
                now += gap;
                for _ in 0..count {
                    let decision = counter.check(&quota, now);
                    if !decision.allowed {
                        let wait = decision.retry_after_ns;
                        prop_assert!(wait > 0);
                        if wait > 1 {
                            prop_assert!(!counter.clone().check(&quota, now + wait - 1).allowed);
                        }
                        prop_assert!(counter.clone().check(&quota, now + wait).allowed);
                    }
                }
            }
        }
    }
}
