//! A circuit breaker in front of the remote store.
//!
//! Why: the notes demand that a limiter failure never takes the API down.
//! A short timeout alone still makes every request wait that timeout while the
//! store is dead; the breaker notices `failures_max` consecutive failures,
//! then for `cooldown_ns` answers "store unavailable" instantly (the failure
//! policy decides: open by default), then lets a single probe through
//! (half-open): success closes it, failure re-opens it for another cooldown.
//! Time is a parameter so tests drive it exactly.

use crate::algorithm::Nanos;
use parking_lot::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Calls flow; counting consecutive failures.
    Closed { failures: u32 },
    /// Calls are refused until `until_ns`.
    Open { until_ns: Nanos },
    /// One probe is in flight since `since_ns`; other calls are refused. Why
    /// the time: a probe whose caller was cancelled never reports back, so
    /// after a cooldown another probe is allowed.
    HalfOpen { since_ns: Nanos },
}

/// A consecutive-failure circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    phase: Mutex<Phase>,
    failures_max: u32,
    cooldown_ns: Nanos,
}

/// A state change worth a log line and a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The breaker just opened.
    Opened,
    /// The breaker just closed again.
    Closed,
}

impl Breaker {
    /// Opens after `failures_max` (≥ 1) consecutive failures for `cooldown_ns`.
    pub fn new(failures_max: u32, cooldown_ns: Nanos) -> Breaker {
        Breaker {
            phase: Mutex::new(Phase::Closed { failures: 0 }),
            failures_max: failures_max.max(1),
            cooldown_ns,
        }
    }

    /// Whether a call may go to the store now.
    pub fn allow(&self, now_ns: Nanos) -> bool {
        let mut phase = self.phase.lock();
        match *phase {
            Phase::Closed { .. } => true,
            Phase::Open { until_ns } if now_ns >= until_ns => {
                *phase = Phase::HalfOpen { since_ns: now_ns };
                true
            }
            Phase::HalfOpen { since_ns } if now_ns >= since_ns.saturating_add(self.cooldown_ns) => {
                *phase = Phase::HalfOpen { since_ns: now_ns };
                true
            }
            Phase::Open { .. } | Phase::HalfOpen { .. } => false,
        }
    }

    /// Records a successful call.
    pub fn success(&self) -> Option<Transition> {
        let mut phase = self.phase.lock();
        let was_closed = matches!(*phase, Phase::Closed { .. });
        *phase = Phase::Closed { failures: 0 };
        (!was_closed).then_some(Transition::Closed)
    }

    /// Records a failed call at `now_ns`.
    pub fn failure(&self, now_ns: Nanos) -> Option<Transition> {
        let mut phase = self.phase.lock();
        let open = Phase::Open {
            until_ns: now_ns.saturating_add(self.cooldown_ns),
        };
        match *phase {
            Phase::Closed { failures } if failures + 1 >= self.failures_max => {
                *phase = open;
                Some(Transition::Opened)
            }
            Phase::Closed { failures } => {
                *phase = Phase::Closed {
                    failures: failures + 1,
                };
                None
            }
            Phase::HalfOpen { .. } => {
                *phase = open;
                None
            }
            Phase::Open { .. } => None,
        }
    }

    /// Whether calls are currently refused.
    pub fn is_open(&self) -> bool {
        !matches!(*self.phase.lock(), Phase::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_then_probes_once() {
        let breaker = Breaker::new(3, 100);
        assert!(breaker.allow(0));
        assert_eq!(breaker.failure(0), None);
        assert_eq!(breaker.success(), None);
        assert_eq!(breaker.failure(1), None);
        assert_eq!(breaker.failure(2), None);
        assert_eq!(breaker.failure(3), Some(Transition::Opened));
        assert!(!breaker.allow(50));
        assert!(breaker.allow(103), "cooldown over: one probe");
        assert!(!breaker.allow(104), "only one probe at a time");
        assert_eq!(breaker.failure(104), None);
        assert!(!breaker.allow(150));
        assert!(breaker.allow(204));
        assert_eq!(breaker.success(), Some(Transition::Closed));
        assert!(breaker.allow(205) && !breaker.is_open());
    }
}
