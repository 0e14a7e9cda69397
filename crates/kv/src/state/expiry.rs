//! Expiry: keys with a TTL disappear on time, lazily and actively.
//!
//! The cache tier of chapter 1 says expired data must be removed. Two
//! mechanisms do it, as in Redis:
//! - **lazy**: every access checks the key's deadline first
//!   ([`crate::keyspace::Keyspace::lookup`]); a read never sees an expired key;
//! - **active**: `hz` times a second a background task samples
//!   [`KEYS_PER_PROBE`] keys that have a TTL and deletes the expired ones,
//!   repeating while more than [`STALE_PERCENT_MAX`]% of a sample was
//!   expired and the tick's time budget lasts. That bounds the memory held by
//!   expired keys nobody reads, at a bounded CPU cost. The lock is released
//!   between probes so clients are never stalled for a whole cycle.
//!
//! Deadlines are absolute Unix milliseconds, as Redis stores them, so they
//! survive restarts of the durable engine; a wall clock that jumps moves them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::State;
use crate::keyspace::Db;

/// Keys sampled per probe (Redis's `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub(crate) const KEYS_PER_PROBE: usize = 20;
/// Keep probing while more than this share of a sample had expired.
pub(crate) const STALE_PERCENT_MAX: usize = 10;
/// Share of each tick the cycle may spend (Redis's 25%).
const CYCLE_BUDGET_PERCENT: u32 = 25;

/// How long a background task waits for the keyspace lock before it skips
/// its turn: the lock may be held by a long script, and a background task
/// blocked on it would hold a runtime worker that the connections need to
/// answer `BUSY` and take `SCRIPT KILL`.
pub(crate) const BACKGROUND_LOCK_WAIT: Duration = Duration::from_millis(5);

/// Runs one active-expiry cycle within `budget`; returns keys expired (a
/// cycle that cannot get the lock soon skips its turn).
pub(crate) fn active_cycle(db: &Db, budget: Duration) -> usize {
    let started = Instant::now();
    let mut expired_total = 0;
    loop {
        let Some(mut ks) = db.try_lock_for(BACKGROUND_LOCK_WAIT) else {
            return expired_total;
        };
        let probe = ks.expire_sample(KEYS_PER_PROBE, clock::now_ms());
        drop(ks);
        let (sampled, expired) = match probe {
            Ok(counts) => counts,
            Err(err) => {
                tracing::warn!(error = %err, "active expiry probe failed");
                return expired_total;
            }
        };
        expired_total += expired;
        let stale_enough = sampled > 0 && expired * 100 > sampled * STALE_PERCENT_MAX;
        if !stale_enough || started.elapsed() >= budget {
            return expired_total;
        }
    }
}

/// Runs active expiry `hz` times a second until `shutdown` fires.
pub(crate) async fn run_active_expiry(state: Arc<State>, shutdown: CancellationToken) {
    let hz = state.config.read().hz;
    let period = Duration::from_millis(1000 / u64::from(hz.clamp(1, 500)));
    let budget = period * CYCLE_BUDGET_PERCENT / 100;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                active_cycle(&state.db, budget);
                let events = state
                    .db
                    .try_lock_for(BACKGROUND_LOCK_WAIT)
                    .map(|mut ks| ks.take_events())
                    .unwrap_or_default();
                if !events.is_empty() {
                    let flags = state.config.read().notify_keyspace_events;
                    super::notify::publish(&state, flags, events);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EvictionPolicy;
    use crate::engine::memory::MemoryEngine;
    use crate::keyspace::Keyspace;
    use crate::value::Entry;
    use bytes::Bytes;

    #[test]
    fn active_cycle_collects_expired_keys_nobody_reads() {
        let mut keyspace = Keyspace::new(Box::new(MemoryEngine::new(
            0,
            EvictionPolicy::NoEviction,
            5,
        )));
        let past = clock::now_ms() - 1;
        for i in 0..1000 {
            let mut entry = Entry::string(Bytes::from_static(b"v"));
            entry.expire_at_ms = Some(if i < 900 { past } else { u64::MAX / 2 });
            keyspace.put(Bytes::from(format!("k{i}")), entry).unwrap();
        }
        let db = parking_lot::Mutex::new(keyspace);
        let mut expired = 0;
        for _ in 0..100 {
            expired += active_cycle(&db, Duration::from_secs(1));
        }
        assert_eq!(expired, 900);
        let keyspace = db.lock();
        assert_eq!(keyspace.len(), 100);
        assert_eq!(keyspace.stats().expired_keys, 900);
    }
}
