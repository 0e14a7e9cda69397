//! The workspace's one wall clock: Unix time in milliseconds (and
//! microseconds), read the same way everywhere.
//!
//! # Why a crate for four lines
//! Before it, four crates each had their own `now_ms` (the kv server, the
//! LSM's TTLs, the URL shortener, the ID generator), with small differences
//! in what a clock before 1970 returned. Expiry deadlines cross crate
//! boundaries (a kv key's TTL is stored as an LSM TTL, and both sides compare
//! it with "now"), so they must read one clock, the same way. This crate is
//! that clock, and the place to change if the workspace ever needs a cached
//! or coarse clock.
//!
//! # Semantics
//! - Wall clock (`SystemTime`): deadlines are absolute Unix times, as Redis
//!   stores them, so they survive restarts. It can jump (NTP, an operator);
//!   code that measures *durations* must use [`std::time::Instant`] instead.
//! - A clock before the Unix epoch reads as `0` rather than panicking.
//!
//! [`latency::percentile`] is here too: durations measured by every
//! benchmark are summarised by one rule.
//!
//! Randomness is not here: the workspace's one small RNG is the `fastrand`
//! crate (`fastrand::Rng::with_seed` where a test needs a fixed sequence).
#![warn(missing_docs)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

pub mod latency;

/// Milliseconds since 1970-01-01T00:00:00Z (`0` if the clock is before it).
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Microseconds since 1970-01-01T00:00:00Z (`0` if the clock is before it).
pub fn now_us() -> u64 {
    since_epoch().as_micros() as u64
}

/// Seconds since the epoch and the microseconds within that second (Redis's
/// `TIME` reply).
pub fn now_secs_and_micros() -> (u64, u32) {
    let since = since_epoch();
    (since.as_secs(), since.subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_agree_with_each_other() {
        let ms = now_ms();
        let us = now_us();
        let (secs, micros) = now_secs_and_micros();
        // After 2020-01-01 on any sane host, and the three readings are
        // taken in order, so each is at least the previous one (same clock).
        assert!(ms > 1_577_836_800_000, "clock reads {ms}");
        assert!(us / 1000 >= ms);
        assert!(secs * 1_000_000 + u64::from(micros) >= us);
        assert!(micros < 1_000_000);
    }
}
