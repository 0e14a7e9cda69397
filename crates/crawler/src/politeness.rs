//! Politeness (the chapter's "예절"): one host is never fetched by two
//! workers at once, and after each fetch it rests for its delay. The delay
//! starts at the crawl's setting and is raised by the host itself: its
//! robots.txt `Crawl-delay`, a 429 or 503 answer (doubled each time, up to a
//! cap), or a slow answer (ten times the response time, as Heritrix's
//! "delay factor" does). Good answers bring a raised delay back down slowly.
//!
//! [`next_delay_ms`] is the rule as a pure function; [`Schedule`] is the
//! heap of hosts by next-allowed time that the frontier's queue selector pops.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// The knobs of the per-host delay.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolitenessConfig {
    /// Minimum rest between two requests to one host.
    pub delay_ms: u64,
    /// Highest delay the rule raises a host to.
    pub delay_max_ms: u64,
    /// A response slower than this raises the delay to `slow_factor` times it.
    pub slow_response_ms: u64,
    /// Multiplier of a slow response time.
    pub slow_factor: u64,
}

impl Default for PolitenessConfig {
    fn default() -> Self {
        Self {
            delay_ms: 1000,
            delay_max_ms: 60_000,
            slow_response_ms: 2000,
            slow_factor: 10,
        }
    }
}

/// What the last exchange with a host looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An ordinary answer that took `elapsed_ms`.
    Answer {
        /// Response time.
        elapsed_ms: u64,
    },
    /// 429 Too Many Requests or 503 Service Unavailable (maybe with Retry-After).
    Overloaded {
        /// `Retry-After` in milliseconds, if the server sent one.
        retry_after_ms: Option<u64>,
    },
    /// No answer at all (timeout, refused).
    Failed,
}

/// The host's next delay from its current one, its robots `Crawl-delay` and
/// the last exchange. Never below the configured delay nor the crawl-delay;
/// never above `delay_max_ms` (except that a crawl-delay above it is obeyed).
pub fn next_delay_ms(
    current_ms: u64,
    crawl_delay_ms: Option<u64>,
    signal: Signal,
    cfg: &PolitenessConfig,
) -> u64 {
    let floor = cfg.delay_ms.max(crawl_delay_ms.unwrap_or(0));
    let cap = cfg.delay_max_ms.max(floor);
    let current = current_ms.max(floor);
    let next = match signal {
        Signal::Answer { elapsed_ms } if elapsed_ms >= cfg.slow_response_ms => {
            current.max(elapsed_ms.saturating_mul(cfg.slow_factor))
        }
        // Recover a quarter of the way back to the floor per good answer.
        Signal::Answer { .. } => current - (current - floor) / 4,
        Signal::Overloaded { retry_after_ms } => current
            .saturating_mul(2)
            .max(retry_after_ms.unwrap_or(0))
            .max(floor.max(1)),
        Signal::Failed => current.saturating_mul(2).max(1),
    };
    next.clamp(floor, cap)
}

/// Hosts that have work, by the time each may next be fetched. A host is
/// either waiting in the heap, leased to a worker, or idle (no work); the
/// schedule never hands one host to two workers.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(u64, u64, String)>>,
    /// host → (ready_at_ms, generation) of its live heap entry.
    waiting: HashMap<String, (u64, u64)>,
    leased: HashMap<String, u64>,
    generation: u64,
}

/// The answer of [`Schedule::pop`].
#[derive(Debug, PartialEq, Eq)]
pub enum Pop {
    /// This host is leased to the caller.
    Host(String),
    /// Nothing ready before this time (ms).
    WaitUntil(u64),
    /// No host waits (some may be leased).
    Empty,
}

impl Schedule {
    /// Makes `host` eligible at `ready_at_ms` unless it is already waiting
    /// (earlier time wins) or leased (its release decides).
    pub fn wake(&mut self, host: &str, ready_at_ms: u64) {
        if self.leased.contains_key(host) {
            return;
        }
        if let Some((at, _)) = self.waiting.get(host)
            && *at <= ready_at_ms
        {
            return;
        }
        self.generation += 1;
        self.waiting
            .insert(host.to_string(), (ready_at_ms, self.generation));
        self.heap
            .push(Reverse((ready_at_ms, self.generation, host.to_string())));
    }

    /// Leases the host with the earliest ready time if it is ≤ `now_ms`.
    pub fn pop(&mut self, now_ms: u64) -> Pop {
        while let Some(Reverse((at, generation, host))) = self.heap.peek().cloned() {
            if self.waiting.get(&host) != Some(&(at, generation)) {
                self.heap.pop();
                continue;
            }
            if at > now_ms {
                return Pop::WaitUntil(at);
            }
            self.heap.pop();
            self.waiting.remove(&host);
            self.leased.insert(host.clone(), now_ms);
            return Pop::Host(host);
        }
        Pop::Empty
    }

    /// Ends a lease; with `next_ready_ms` the host has more work.
    pub fn release(&mut self, host: &str, next_ready_ms: Option<u64>) {
        let was_leased = self.leased.remove(host).is_some();
        assert!(was_leased, "released host {host} was not leased");
        if let Some(at) = next_ready_ms {
            self.wake(host, at);
        }
    }

    /// Hosts currently leased.
    pub fn leased(&self) -> usize {
        self.leased.len()
    }

    /// Hosts waiting for their turn.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> PolitenessConfig {
        PolitenessConfig {
            delay_ms: 100,
            delay_max_ms: 10_000,
            slow_response_ms: 1000,
            slow_factor: 10,
        }
    }

    #[test]
    fn delay_rises_and_recovers() {
        let c = cfg();
        assert_eq!(
            next_delay_ms(0, None, Signal::Answer { elapsed_ms: 5 }, &c),
            100
        );
        assert_eq!(
            next_delay_ms(100, Some(2000), Signal::Answer { elapsed_ms: 5 }, &c),
            2000
        );
        let over = Signal::Overloaded {
            retry_after_ms: None,
        };
        assert_eq!(next_delay_ms(100, None, over, &c), 200);
        assert_eq!(next_delay_ms(8000, None, over, &c), 10_000);
        let later = Signal::Overloaded {
            retry_after_ms: Some(5000),
        };
        assert_eq!(next_delay_ms(100, None, later, &c), 5000);
        assert_eq!(
            next_delay_ms(100, None, Signal::Answer { elapsed_ms: 1500 }, &c),
            10_000
        );
        assert_eq!(
            next_delay_ms(500, None, Signal::Answer { elapsed_ms: 5 }, &c),
            400
        );
        // A crawl-delay above the cap is still obeyed.
        assert_eq!(next_delay_ms(0, Some(20_000), Signal::Failed, &c), 20_000);
    }

    proptest! {
        #[test]
        fn delay_stays_between_floor_and_cap(cur in 0u64..100_000, cd in proptest::option::of(0u64..30_000), ms in 0u64..5000, kind in 0u8..3) {
            let c = cfg();
            let signal = match kind {
                0 => Signal::Answer { elapsed_ms: ms },
                1 => Signal::Overloaded { retry_after_ms: Some(ms) },
                _ => Signal::Failed,
            };
            let next = next_delay_ms(cur, cd, signal, &c);
            let floor = c.delay_ms.max(cd.unwrap_or(0));
            prop_assert!(next >= floor);
            prop_assert!(next <= c.delay_max_ms.max(floor));
            if matches!(signal, Signal::Overloaded { .. } | Signal::Failed) {
                prop_assert!(next >= cur.min(c.delay_max_ms.max(floor)));
            }
        }

        /// The schedule against a model: a map of host → ready time and a
        /// set of leased hosts. Pop must return the earliest ready host (ties
        /// by insertion) only when its time has come, never a leased one.
        #[test]
        fn schedule_matches_model(ops in proptest::collection::vec((0u8..3, 0usize..5, 0u64..50), 1..200)) {
            let mut sched = Schedule::default();
            let mut waiting: HashMap<String, u64> = HashMap::new();
            let mut leased: Vec<String> = Vec::new();
            let mut now = 0u64;
            for (op, h, t) in ops {
                let host = format!("h{h}");
                match op {
                    0 => {
                        if !leased.contains(&host) {
                            let e = waiting.entry(host.clone()).or_insert(now + t);
                            *e = (*e).min(now + t);
                        }
                        sched.wake(&host, now + t);
                    }
                    1 => {
                        now += t / 5;
                        let min = waiting.values().min().copied();
                        match sched.pop(now) {
                            Pop::Host(got) => {
                                let at = waiting.remove(&got).expect("popped host was waiting");
                                prop_assert!(at <= now);
                                prop_assert_eq!(Some(at), min);
                                prop_assert!(!leased.contains(&got));
                                leased.push(got);
                            }
                            Pop::WaitUntil(at) => {
                                prop_assert_eq!(Some(at), min);
                                prop_assert!(at > now);
                            }
                            Pop::Empty => prop_assert!(waiting.is_empty()),
                        }
                    }
                    _ => {
                        if let Some(got) = leased.pop() {
                            let again = (t % 2 == 0).then_some(now + t);
                            sched.release(&got, again);
                            if let Some(at) = again {
                                waiting.insert(got, at);
                            }
                        }
                    }
                }
                prop_assert_eq!(sched.leased(), leased.len());
                prop_assert_eq!(sched.waiting(), waiting.len());
            }
        }
    }
}
