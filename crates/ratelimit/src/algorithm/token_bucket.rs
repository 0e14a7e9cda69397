//! Token bucket (토큰 버킷): the algorithm most internet companies use.
//!
//! **Rule.** A bucket holds at most `burst` tokens and gains `limit` tokens per
//! `window_ns`, continuously. A request takes one token; with no whole token
//! left it is rejected. A new key starts with a full bucket.
//!
//! **Memory.** Two numbers per key (token level, last refill time): O(1).
//!
//! **Trade-off (the notes).** Simple, memory-efficient, and it lets a short
//! burst through as long as tokens remain — which is also its weakness: the two
//! knobs (bucket size and refill rate) are hard to tune together. Over any
//! interval of length `t` it admits at most `burst + limit * t / window_ns`
//! requests, and never more than `burst` at one instant.
//!
//! The level is kept in fixed point — one token is `window_ns` units and a
//! nanosecond adds `limit` units — so refill is exact integer maths with no
//! drift, however odd the rate (7 per minute refills 7 units per ns).

use super::{Decision, Nanos, Quota, div_ceil_u128, to_nanos};

/// The state of one token bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens in fixed point (`window_ns` units per token); why: exact refill.
    level: u128,
    /// When `level` was last brought up to date.
    last_ns: Nanos,
}

impl TokenBucket {
    /// A full bucket at `now_ns`: a new client may burst immediately.
    pub fn new(quota: &Quota, now_ns: Nanos) -> TokenBucket {
        TokenBucket {
            level: capacity(quota),
            last_ns: now_ns,
        }
    }

    /// Whole tokens left (after refilling up to `now_ns`).
    pub fn tokens(&self, quota: &Quota, now_ns: Nanos) -> u64 {
        let mut copy = self.clone();
        copy.refill(quota, now_ns);
        to_nanos(copy.level / u128::from(quota.window_ns))
    }

    /// Decides one request at `now_ns`.
    pub fn check(&mut self, quota: &Quota, now_ns: Nanos) -> Decision {
        self.refill(quota, now_ns);
        let token = u128::from(quota.window_ns);
        let rate = u128::from(quota.limit);
        let allowed = self.level >= token;
        let retry_after_ns = if allowed {
            self.level -= token;
            0
        } else {
            to_nanos(div_ceil_u128(token - self.level, rate))
        };
        debug_assert!(self.level <= capacity(quota));
        Decision {
            allowed,
            limit: quota.burst,
            remaining: to_nanos(self.level / token),
            retry_after_ns,
            reset_after_ns: to_nanos(div_ceil_u128(capacity(quota) - self.level, rate)),
            delay_ns: 0,
        }
    }

    /// When the bucket will be full again (and so equal to a fresh one).
    pub fn idle_at(&self, quota: &Quota) -> Nanos {
        let missing = capacity(quota).saturating_sub(self.level);
        let wait = to_nanos(div_ceil_u128(missing, u128::from(quota.limit)));
        self.last_ns.saturating_add(wait)
    }

    /// Adds the tokens earned since `last_ns`, capped at the capacity. A
    /// clock that went backwards earns nothing.
    fn refill(&mut self, quota: &Quota, now_ns: Nanos) {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        let earned = u128::from(elapsed) * u128::from(quota.limit);
        // Capacity may shrink on a rules reload: clamp, never exceed.
        self.level = (self.level + earned).min(capacity(quota));
        self.last_ns = self.last_ns.max(now_ns);
    }
}

/// The bucket's size in fixed-point units.
fn capacity(quota: &Quota) -> u128 {
    u128::from(quota.burst) * u128::from(quota.window_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_full_bucket_admits_burst_then_refills_one_token_per_interval() {
        let quota = Quota::with_burst(10, 1_000, 3).unwrap(); // 1 token per 100 ns
        let mut bucket = TokenBucket::new(&quota, 0);
        let admitted = (0..5).filter(|_| bucket.check(&quota, 0).allowed).count();
        assert_eq!(admitted, 3);
        let rejected = bucket.check(&quota, 50);
        assert!(!rejected.allowed);
        assert_eq!(rejected.retry_after_ns, 50);
        assert!(bucket.check(&quota, 100).allowed);
        assert!(!bucket.check(&quota, 100).allowed);
    }

    proptest! {
        /// Never more than `burst` at one instant, and over any run never more
        /// than `burst + limit * elapsed / window` (the refill rate long-run).
        #[test]
        fn never_exceeds_capacity_nor_refill_rate(
            limit in 1u64..50,
            window_ns in 1u64..10_000,
            burst in 1u64..50,
            gaps in proptest::collection::vec((0u64..500, 1usize..20), 1..60),
        ) {
            let quota = Quota::with_burst(limit, window_ns, burst).unwrap();
            let mut bucket = TokenBucket::new(&quota, 0);
            let mut now = 0u64;
            let mut admitted_total: u128 = 0;
            for (gap, count) in gaps {
                now += gap;
                let admitted_now = (0..count).filter(|_| bucket.check(&quota, now).allowed).count();
                prop_assert!(admitted_now as u64 <= burst);
                admitted_total += admitted_now as u128;
                let bound = u128::from(burst) + u128::from(limit) * u128::from(now) / u128::from(window_ns);
                prop_assert!(admitted_total <= bound, "admitted {} > bound {}", admitted_total, bound);
            }
        }

        /// A rejected request's retry-after is exact: one ns earlier still
        /// rejects, at retry-after it is admitted.
        #[test]
        fn retry_after_is_exact(limit in 1u64..20, window_ns in 1u64..5_000, burst in 1u64..5) {
            let quota = Quota::with_burst(limit, window_ns, burst).unwrap();
            let mut bucket = TokenBucket::new(&quota, 0);
            for _ in 0..burst { prop_assert!(bucket.check(&quota, 0).allowed); }
            let rejected = bucket.check(&quota, 0);
            prop_assert!(!rejected.allowed);
            let wait = rejected.retry_after_ns;
            if wait > 1 {
                prop_assert!(!bucket.clone().check(&quota, wait - 1).allowed);
            }
            prop_assert!(bucket.check(&quota, wait).allowed);
        }
    }
}
