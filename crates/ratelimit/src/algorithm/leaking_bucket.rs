//! Leaking bucket (누출 버킷): a bounded FIFO drained at a fixed rate.
//!
//! **Rule.** Requests enter a FIFO queue of `burst` waiting slots; the queue
//! releases one request every `window_ns / limit` nanoseconds. An arrival that
//! finds the queue full is rejected; otherwise it is admitted with a *delay*:
//! it waits its turn (the HTTP layer holds it that long), so the outflow is
//! perfectly steady. An idle bucket releases the next arrival at once.
//!
//! **Memory.** O(1): the queue is fully described by the time its last
//! member leaves (`tail`), because members leave exactly one interval apart.
//! The test below replays random traffic through a literal `VecDeque` of
//! departure times and checks both agree on every decision and every delay.
//!
//! **Trade-off (the notes).** Memory-efficient (bounded queue) and ideal when a
//! stable outflow rate is needed; but a burst fills the queue with old requests
//! and, if they cannot be served in time, newer requests are dropped. Two knobs
//! (queue size, drain rate) are hard to tune.
//!
//! Time is scaled by `limit` internally so the drain interval `window_ns /
//! limit` is an exact integer (`window_ns` scaled units), even for 7 per minute.

use super::{Decision, Nanos, Quota, div_ceil_u128, to_nanos};

/// The state of one leaking bucket.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LeakingBucket {
    /// When the queue is next free to release someone, in ns × `limit`
    /// (so one drain interval is exactly `window_ns` units).
    tail_scaled: u128,
}

impl LeakingBucket {
    /// An empty queue.
    pub fn new() -> LeakingBucket {
        LeakingBucket::default()
    }

    /// Requests waiting (not yet released) at `now_ns`.
    pub fn waiting(&self, quota: &Quota, now_ns: Nanos) -> u64 {
        let now_scaled = u128::from(now_ns) * u128::from(quota.limit);
        if self.tail_scaled <= now_scaled {
            return 0;
        }
        to_nanos(div_ceil_u128(self.tail_scaled - now_scaled, u128::from(quota.window_ns)) - 1)
    }

    /// Decides one request at `now_ns`; an admitted request carries `delay_ns`.
    pub fn check(&mut self, quota: &Quota, now_ns: Nanos) -> Decision {
        let limit = u128::from(quota.limit);
        let interval = u128::from(quota.window_ns);
        let capacity = u128::from(quota.burst) * interval;
        let now_scaled = u128::from(now_ns) * limit;
        let backlog = self.tail_scaled.saturating_sub(now_scaled);
        // waiting < burst  <=>  backlog <= burst * interval (see module docs).
        let allowed = backlog <= capacity;
        let (delay_ns, retry_after_ns) = if allowed {
            let departure = self.tail_scaled.max(now_scaled);
            self.tail_scaled = departure + interval;
            (to_nanos(div_ceil_u128(departure - now_scaled, limit)), 0)
        } else {
            (0, to_nanos(div_ceil_u128(backlog - capacity, limit)))
        };
        let waiting = self.waiting(quota, now_ns);
        debug_assert!(waiting <= quota.burst);
        let backlog_after = self.tail_scaled.saturating_sub(now_scaled);
        Decision {
            allowed,
            limit: quota.burst,
            remaining: quota.burst - waiting,
            retry_after_ns,
            reset_after_ns: to_nanos(div_ceil_u128(backlog_after, limit)),
            delay_ns,
        }
    }

    /// When the queue has drained completely.
    pub fn idle_at(&self, quota: &Quota) -> Nanos {
        to_nanos(div_ceil_u128(self.tail_scaled, u128::from(quota.limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// The textbook queue, literally: departure times of admitted requests.
    struct FifoModel {
        queue: VecDeque<u128>,
        last_departure: Option<u128>,
    }

    impl FifoModel {
        /// Returns the delay (in scaled units) when admitted, None when full.
        fn offer(&mut self, now: u128, interval: u128, burst: usize) -> Option<u128> {
            while self.queue.front().is_some_and(|&d| d <= now) {
                self.queue.pop_front();
            }
            if self.queue.len() >= burst {
                return None;
            }
            let departure = match self.last_departure {
                Some(last) => (last + interval).max(now),
                None => now,
            };
            self.last_departure = Some(departure);
            if departure > now {
                self.queue.push_back(departure);
            }
            Some(departure - now)
        }
    }

    proptest! {
        /// The O(1) bucket makes exactly the decisions of a real FIFO.
        #[test]
        fn matches_a_literal_bounded_fifo(
            limit in 1u64..20,
            window_ns in 1u64..2_000,
            burst in 1u64..8,
            arrivals in proptest::collection::vec((0u64..300, 1usize..6), 1..60),
        ) {
            let quota = Quota::with_burst(limit, window_ns, burst).unwrap();
            let mut bucket = LeakingBucket::new();
            let mut model = FifoModel { queue: VecDeque::new(), last_departure: None };
            let mut now = 0u64;
            for (gap, count) in arrivals {
                now += gap;
                for _ in 0..count {
                    let decision = bucket.check(&quota, now);
                    let scaled_now = u128::from(now) * u128::from(limit);
                    let expected = model.offer(scaled_now, u128::from(window_ns), burst as usize);
                    prop_assert_eq!(decision.allowed, expected.is_some());
                    if let Some(delay_scaled) = expected {
                        prop_assert_eq!(decision.delay_ns, to_nanos(div_ceil_u128(delay_scaled, u128::from(limit))));
                    }
                    prop_assert_eq!(bucket.waiting(&quota, now), model.queue.len() as u64);
                }
            }
        }

        /// Outflow is steady: admitted requests leave at least one drain
        /// interval apart, whatever the arrival pattern.
        #[test]
        fn departures_are_spaced_by_the_drain_interval(
            arrivals in proptest::collection::vec((0u64..50, 1usize..10), 1..40),
        ) {
            let quota = Quota::with_burst(5, 1_000, 4).unwrap(); // one per 200 ns
            let mut bucket = LeakingBucket::new();
            let mut now = 0u64;
            let mut last_departure: Option<u64> = None;
            for (gap, count) in arrivals {
                now += gap;
                for _ in 0..count {
                    let decision = bucket.check(&quota, now);
                    if decision.allowed {
                        let departure = now + decision.delay_ns;
                        if let Some(last) = last_departure {
                            prop_assert!(departure >= last + 200);
                        }
                        last_departure = Some(departure);
                    }
                }
            }
        }
    }

    #[test]
    fn a_full_queue_rejects_with_the_time_until_a_slot_frees() {
        let quota = Quota::with_burst(1, 100, 2).unwrap(); // one per 100 ns, 2 waiting
        let mut bucket = LeakingBucket::new();
        let delays: Vec<_> = (0..3).map(|_| bucket.check(&quota, 0).delay_ns).collect();
        assert_eq!(delays, vec![0, 100, 200]);
        let rejected = bucket.check(&quota, 0);
        assert!(!rejected.allowed);
        assert_eq!(rejected.retry_after_ns, 100);
        assert!(bucket.check(&quota, 100).allowed);
    }
}
