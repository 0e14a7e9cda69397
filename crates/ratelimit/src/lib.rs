//! Rate limiting, as designed in chapter 4 of *System Design Interview*
//! ("처리율 제한 장치의 설계"): the five algorithms, rules on disk, counter
//! stores and an HTTP middleware.
//!
//! # The design
//!
//! The notes' detailed design, piece by piece:
//!
//! - **Algorithms** ([`algorithm`]): token bucket, leaking bucket, fixed
//!   window counter, sliding window log and sliding window counter, one
//!   module each. They are pure state machines — `check(quota, now_ns)` —
//!   with no clock and no I/O, so the chapter's claims about each (the token
//!   bucket's burst, the fixed window's 2× boundary burst, the log's
//!   exactness, the counter's bounded error) are property tests, and
//!   `hyperscale ratelimit simulate` replays one traffic pattern through all
//!   five side by side.
//! - **Rules on disk** ([`rules`]): a YAML file shaped like
//!   envoyproxy/ratelimit's (domain, nested descriptors, `unit` +
//!   `unit_multiplier`, `requests_per_unit`) plus `algorithm`, `burst`,
//!   hard/soft `mode` and `shadow_mode`. Validated at load with line numbers,
//!   cached in memory, re-read when the file changes; a bad edit never
//!   replaces good rules.
//! - **Counters** ([`store`]): in-process (sharded, memory-bounded, idle keys
//!   expire) or Redis (atomic Lua scripts, which is how the notes' race
//!   condition and synchronization problems are solved across processes),
//!   with a timeout, a circuit breaker and fail-open by default so the
//!   limiter never takes the API down.
//! - **Middleware** ([`layer`]): a `tower::Layer` that answers 429 with
//!   `X-Ratelimit-Limit`, `X-Ratelimit-Remaining`, `X-Ratelimit-Retry-After`,
//!   `Retry-After`, `RateLimit-Policy` and `RateLimit`, can hold requests in
//!   a bounded queue instead of rejecting, and counts every decision by rule
//!   and outcome ([`metrics`]).
//!
//! # Trade-offs and knobs
//!
//! - Default algorithm: sliding window counter (O(1) memory, no 2× boundary
//!   burst, error bounded and documented); pick `sliding_window_log` for
//!   exactness, `token_bucket` to allow bursts, `leaking_bucket` for a steady
//!   outflow, `fixed_window` for calendar quotas.
//! - Hard vs soft (경성/연성): `mode: soft` + `overshoot_percent` lets a limit be
//!   exceeded by that much; headers still report the nominal limit.
//! - Local vs shared counters: in-process is ~100 ns and needs no server but
//!   counts per process; Redis is one round trip but exact across gateways.
//! - Failure policy: `open` (default) admits when the store is down; `closed`
//!   rejects.
//!
//! # Example
//!
//! ```
//! use ratelimit::{algorithm::{Quota, TokenBucket}};
//! let quota = Quota::with_burst(10, 1_000_000_000, 3).unwrap(); // 10/s, burst 3
//! let mut bucket = TokenBucket::new(&quota, 0);
//! let admitted = (0..5).filter(|_| bucket.check(&quota, 0).allowed).count();
//! assert_eq!(admitted, 3);
//! ```
#![warn(missing_docs)]

pub mod algorithm;
pub mod config;
pub mod layer;
pub mod limiter;
pub mod metrics;
pub mod rules;
pub mod simulate;
pub mod store;

pub use config::{RateLimitConfig, Running};
pub use layer::{LayerConfig, RateLimitLayer};
pub use limiter::{FailurePolicy, RateLimiter, Verdict};
pub use rules::reload::{RulesHandle, RulesWatcher};
pub use rules::{Descriptors, Rules};
