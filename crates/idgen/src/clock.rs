//! Where the generator's time comes from, as a trait so tests can lie.
//!
//! A snowflake generator has exactly two time-related failure modes: the
//! sequence runs out inside one millisecond (wait for the next), and the wall
//! clock steps backwards (NTP correcting a fast clock, a VM migration). Both
//! are nearly impossible to trigger on demand with the real clock, so the
//! generator never calls `SystemTime` directly: it reads a [`Clock`]. The
//! [`ManualClock`] lets tests set time to any value, jump it backwards, and
//! observe how long the generator waited, all without sleeping.
//!
//! Waiting goes through the trait too ([`Clock::wait_until`]): the real clock
//! spins then sleeps; the manual clock simply *advances* to the target, as if
//! the world had waited. That keeps tests deterministic and instant.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source of wall-clock milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Milliseconds since 1970-01-01T00:00:00Z. May go backwards.
    fn now_ms(&self) -> u64;

    /// Blocks until `now_ms() >= target_ms` and returns that reading.
    fn wait_until(&self, target_ms: u64) -> u64;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    fn wait_until(&self, target_ms: u64) -> u64 {
        (**self).wait_until(target_ms)
    }
}

/// Shows the current reading: trait objects of clocks appear in `Debug` output.
impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(now_ms={})", self.now_ms())
    }
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Gaps shorter than this are busy-waited rather than slept: `thread::sleep`
/// overshoots by tens of microseconds to a millisecond, and even
/// `thread::yield_now` hands the core to whatever else is runnable for a whole
/// time slice (measured here: it cut a loaded machine from 4 to 1.6 M IDs/s).
/// Snowflake's original `tilNextMillis` spins for the same reason.
const SPIN_MS_MAX: u64 = 2;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // Before 1970 only on a badly broken host; 0 then makes the generator
        // refuse with "clock is before the epoch" instead of panicking here.
        ::clock::now_ms()
    }

    fn wait_until(&self, target_ms: u64) -> u64 {
        loop {
            let now = self.now_ms();
            if now >= target_ms {
                return now;
            }
            let gap_ms = target_ms - now;
            if gap_ms > SPIN_MS_MAX {
                std::thread::sleep(Duration::from_millis(gap_ms - SPIN_MS_MAX));
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// A clock that moves only when told to (or when someone waits on it).
///
/// Cheap to share: wrap it in an `Arc` and hand clones to the generator and
/// the test.
#[derive(Debug, Default)]
pub struct ManualClock {
    /// The current reading, ms since the Unix epoch.
    now_ms: AtomicU64,
    /// Total ms the clock was advanced by `wait_until`: lets tests prove that
    /// the generator waited (sequence exhausted, small backward step) instead
    /// of issuing an ID early.
    waited_ms: AtomicU64,
    /// Number of `wait_until` calls that had to advance time.
    waits: AtomicU64,
}

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        ManualClock {
            now_ms: AtomicU64::new(now_ms),
            waited_ms: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        }
    }

    /// Sets the reading, forwards or backwards.
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the reading forwards by `delta_ms`.
    pub fn advance_ms(&self, delta_ms: u64) {
        self.now_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }

    /// Moves the reading backwards by `delta_ms` (saturating at 0).
    pub fn rewind_ms(&self, delta_ms: u64) {
        let _ = self
            .now_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(delta_ms))
            });
    }

    /// Total ms that waiting moved the clock forwards.
    pub fn waited_ms(&self) -> u64 {
        self.waited_ms.load(Ordering::SeqCst)
    }

    /// How many waits had to move the clock.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn wait_until(&self, target_ms: u64) -> u64 {
        let before = self.now_ms.fetch_max(target_ms, Ordering::SeqCst);
        if before < target_ms {
            self.waited_ms
                .fetch_add(target_ms - before, Ordering::SeqCst);
            self.waits.fetch_add(1, Ordering::SeqCst);
            target_ms
        } else {
            before
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_waits_by_advancing() {
        let c = ManualClock::new(100);
        assert_eq!(c.wait_until(90), 100, "already past: no wait");
        assert_eq!(c.waited_ms(), 0);
        assert_eq!(c.wait_until(105), 105);
        assert_eq!((c.now_ms(), c.waited_ms(), c.waits()), (105, 5, 1));
        c.rewind_ms(10);
        assert_eq!(c.now_ms(), 95);
    }

    #[test]
    fn system_clock_waits_for_a_later_millisecond() {
        let c = SystemClock;
        let now = c.now_ms();
        assert!(now > 1_600_000_000_000, "system clock reads {now}");
        assert!(c.wait_until(now + 2) >= now + 2);
    }
}
