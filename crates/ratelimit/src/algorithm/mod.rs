//! The five algorithms of the chapter, each pure and deterministic.
//!
//! Why a module per algorithm: the chapter compares them on exactly three axes —
//! the rule that admits a request, the memory one key costs, and the trade-off
//! that follows — and each module's doc states those three things next to the
//! code that embodies them. None of them reads a clock: time arrives as
//! `now_ns`, a monotonic nanosecond count, so tests (and the `simulate` verb)
//! replay any traffic exactly. If `now_ns` ever goes backwards (two hosts'
//! clocks, a reloaded store) each algorithm treats it as "no time passed"
//! instead of panicking or minting tokens.
//!
//! All arithmetic is integer (u128 where products can exceed u64), so a rate
//! such as 7 per minute never drifts through floating-point rounding.

pub mod fixed_window;
pub mod leaking_bucket;
pub mod sliding_counter;
pub mod sliding_log;
pub mod token_bucket;

pub use fixed_window::FixedWindow;
pub use leaking_bucket::LeakingBucket;
pub use sliding_counter::SlidingWindowCounter;
pub use sliding_log::SlidingWindowLog;
pub use token_bucket::TokenBucket;

use serde::{Deserialize, Serialize};

/// A monotonic timestamp or duration in nanoseconds.
pub type Nanos = u64;

/// Nanoseconds per second, for unit conversions.
pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Largest `limit` or `burst` a quota accepts: keeps every product in u128
/// range and the sliding log's memory bounded by validation elsewhere.
pub const COUNT_MAX: u64 = 1_000_000_000;

/// Longest window a quota accepts (366 days): a "per year" rule is a billing
/// quota, not a rate limit, and belongs in a database.
pub const WINDOW_NS_MAX: Nanos = 366 * 24 * 3600 * NANOS_PER_SECOND;

/// Which of the chapter's five algorithms a rule uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Bucket of `burst` tokens refilled at `limit` per window.
    TokenBucket,
    /// Bounded FIFO of `burst` waiting requests drained at `limit` per window.
    #[serde(alias = "leaky_bucket")]
    LeakingBucket,
    /// At most `limit` per aligned window.
    FixedWindow,
    /// At most `limit` in any trailing window (exact, O(limit) memory).
    SlidingWindowLog,
    /// Weighted blend of the current and previous fixed windows.
    SlidingWindowCounter,
}

impl Algorithm {
    /// All five, in the chapter's order.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::TokenBucket,
        Algorithm::LeakingBucket,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowLog,
        Algorithm::SlidingWindowCounter,
    ];

    /// The snake_case name used in rules files, metrics and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::LeakingBucket => "leaking_bucket",
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::SlidingWindowLog => "sliding_window_log",
            Algorithm::SlidingWindowCounter => "sliding_window_counter",
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalized = s.trim().to_ascii_lowercase().replace('-', "_");
        Algorithm::ALL
            .into_iter()
            .find(|a| {
                a.name() == normalized
                    || (normalized == "leaky_bucket" && *a == Algorithm::LeakingBucket)
            })
            .ok_or_else(|| {
                let names: Vec<_> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown algorithm {s:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What one limit allows: `limit` requests per `window_ns`, with `burst`
/// as the token bucket's capacity or the leaking bucket's queue size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Requests admitted per window (the rate's numerator).
    pub limit: u64,
    /// The window (the rate's denominator), in nanoseconds.
    pub window_ns: Nanos,
    /// Token bucket capacity / leaking bucket queue length; the window
    /// algorithms ignore it. Defaults to `limit`.
    pub burst: u64,
}

/// Why a quota was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuotaError {
    /// A zero limit would reject everything: use a deny rule instead.
    #[error("requests_per_unit must be between 1 and {COUNT_MAX}, got {0}")]
    Limit(u64),
    /// A zero or huge window.
    #[error("the window must be between 1 ns and 366 days, got {0} ns")]
    Window(Nanos),
    /// A zero or huge burst.
    #[error("burst must be between 1 and {COUNT_MAX}, got {0}")]
    Burst(u64),
}

impl Quota {
    /// `limit` per `window_ns`, burst = limit.
    pub fn new(limit: u64, window_ns: Nanos) -> Result<Quota, QuotaError> {
        Quota::with_burst(limit, window_ns, limit)
    }

    /// `limit` per `window_ns` with an explicit burst.
    pub fn with_burst(limit: u64, window_ns: Nanos, burst: u64) -> Result<Quota, QuotaError> {
        if limit == 0 || limit > COUNT_MAX {
            return Err(QuotaError::Limit(limit));
        }
        if window_ns == 0 || window_ns > WINDOW_NS_MAX {
            return Err(QuotaError::Window(window_ns));
        }
        if burst == 0 || burst > COUNT_MAX {
            return Err(QuotaError::Burst(burst));
        }
        Ok(Quota {
            limit,
            window_ns,
            burst,
        })
    }
}

/// The outcome of one check, with everything the HTTP headers need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The limit reported to clients (`X-Ratelimit-Limit`).
    pub limit: u64,
    /// Requests still admissible right now after this one.
    pub remaining: u64,
    /// When rejected: how long until a retry can succeed. 0 when allowed.
    pub retry_after_ns: Nanos,
    /// How long until the state is back to "fresh" (the `RateLimit` header's `t`).
    pub reset_after_ns: Nanos,
    /// Leaking bucket only: how long the admitted request waits in the queue.
    pub delay_ns: Nanos,
}

/// The per-key state of whichever algorithm a rule uses (what a store keeps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// See [`TokenBucket`].
    TokenBucket(TokenBucket),
    /// See [`LeakingBucket`].
    LeakingBucket(LeakingBucket),
    /// See [`FixedWindow`].
    FixedWindow(FixedWindow),
    /// See [`SlidingWindowLog`].
    SlidingWindowLog(SlidingWindowLog),
    /// See [`SlidingWindowCounter`].
    SlidingWindowCounter(SlidingWindowCounter),
}

impl State {
    /// A fresh state, as if the key had never been seen at `now_ns`.
    pub fn new(algorithm: Algorithm, quota: &Quota, now_ns: Nanos) -> State {
        match algorithm {
            Algorithm::TokenBucket => State::TokenBucket(TokenBucket::new(quota, now_ns)),
            Algorithm::LeakingBucket => State::LeakingBucket(LeakingBucket::new()),
            Algorithm::FixedWindow => State::FixedWindow(FixedWindow::new()),
            Algorithm::SlidingWindowLog => State::SlidingWindowLog(SlidingWindowLog::new()),
            Algorithm::SlidingWindowCounter => {
                State::SlidingWindowCounter(SlidingWindowCounter::new())
            }
        }
    }

    /// Which algorithm this state belongs to.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            State::TokenBucket(_) => Algorithm::TokenBucket,
            State::LeakingBucket(_) => Algorithm::LeakingBucket,
            State::FixedWindow(_) => Algorithm::FixedWindow,
            State::SlidingWindowLog(_) => Algorithm::SlidingWindowLog,
            State::SlidingWindowCounter(_) => Algorithm::SlidingWindowCounter,
        }
    }

    /// Decides one request at `now_ns` and updates the state.
    pub fn check(&mut self, quota: &Quota, now_ns: Nanos) -> Decision {
        match self {
            State::TokenBucket(s) => s.check(quota, now_ns),
            State::LeakingBucket(s) => s.check(quota, now_ns),
            State::FixedWindow(s) => s.check(quota, now_ns),
            State::SlidingWindowLog(s) => s.check(quota, now_ns),
            State::SlidingWindowCounter(s) => s.check(quota, now_ns),
        }
    }

    /// The instant from which this state is indistinguishable from a fresh
    /// one, so a store may drop it (the notes' EXPIRE).
    pub fn idle_at(&self, quota: &Quota) -> Nanos {
        match self {
            State::TokenBucket(s) => s.idle_at(quota),
            State::LeakingBucket(s) => s.idle_at(quota),
            State::FixedWindow(s) => s.idle_at(quota),
            State::SlidingWindowLog(s) => s.idle_at(quota),
            State::SlidingWindowCounter(s) => s.idle_at(quota),
        }
    }

    /// Approximate heap + inline bytes this state holds (for memory bounds).
    pub fn size_bytes(&self) -> usize {
        let inline = std::mem::size_of::<State>();
        match self {
            State::SlidingWindowLog(s) => inline + s.len() * std::mem::size_of::<Nanos>(),
            _ => inline,
        }
    }
}

/// Rounds a u128 division up; shared by the algorithms' retry-after maths.
pub(crate) fn div_ceil_u128(numerator: u128, denominator: u128) -> u128 {
    debug_assert!(denominator > 0);
    numerator.div_ceil(denominator)
}

/// Saturates a u128 into a u64 duration.
pub(crate) fn to_nanos(value: u128) -> Nanos {
    u64::try_from(value).unwrap_or(u64::MAX)
}
