//! The remote counter store: real Redis over RESP, one atomic Lua script per
//! algorithm.
//!
//! Why scripts: the notes' race condition — read the counter, compare, write
//! it back — lets two gateways both read 9 of 10 and both admit. Locks would
//! fix it slowly; a Lua script runs atomically inside Redis, so the whole
//! read-check-update is one step, and one round trip. Scripts are sent by
//! SHA (`EVALSHA`); a server that does not know one yet (fresh start,
//! `SCRIPT FLUSH`, failover) answers `NOSCRIPT` and we fall back to `EVAL`,
//! which also caches it. Times come from Redis's own `TIME`, so every gateway
//! shares one clock and host clock skew cannot bend the windows.
//!
//! Fault tolerance (the notes: a limiter failure must not take the API
//! down): every call has a short timeout (`timeout_ms`, 50 ms default), a
//! [`Breaker`] stops calling a dead store, and the caller applies the
//! failure policy — fail open (admit) by default, fail closed if configured.

use super::breaker::{Breaker, Transition};
use crate::algorithm::{Algorithm, Decision, Nanos, Quota};
use crate::metrics::Metrics;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Knobs of the Redis store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Longest wait for one decision (connect included) before giving up.
    pub timeout_ms: u64,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before probing again.
    pub breaker_cooldown_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            timeout_ms: 50,
            breaker_failures: 5,
            breaker_cooldown_ms: 1_000,
        }
    }
}

/// Why the remote store gave no decision.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within the timeout.
    #[error("redis did not answer within {0} ms")]
    Timeout(u64),
    /// The breaker is open: the store failed recently.
    #[error("redis circuit breaker is open after repeated failures")]
    BreakerOpen,
    /// The script returned something unexpected.
    #[error("unexpected script reply: {0}")]
    Reply(String),
}

/// One algorithm's script: its source and SHA1.
#[derive(Debug)]
struct LuaScript {
    source: &'static str,
    sha: String,
}

/// Counters in Redis.
pub struct RedisStore {
    client: redis::Client,
    /// Connected on first use, so a gateway starts even while Redis is down.
    connection: OnceCell<ConnectionManager>,
    scripts: [LuaScript; 5],
    breaker: Breaker,
    /// Why an `Instant`: the breaker needs a monotonic clock.
    epoch: Instant,
    config: RedisConfig,
    metrics: Metrics,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr())
            .field("breaker_open", &self.breaker.is_open())
            .finish()
    }
}

const SOURCES: [&str; 5] = [
    include_str!("lua/token_bucket.lua"),
    include_str!("lua/leaking_bucket.lua"),
    include_str!("lua/fixed_window.lua"),
    include_str!("lua/sliding_window_log.lua"),
    include_str!("lua/sliding_window_counter.lua"),
];

impl RedisStore {
    /// A store for `config.url` (validated now; connected lazily).
    pub fn new(config: RedisConfig, metrics: Metrics) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(config.url.as_str())?;
        let scripts = SOURCES.map(|source| LuaScript {
            source,
            sha: redis::Script::new(source).get_hash().to_owned(),
        });
        let breaker = Breaker::new(
            config.breaker_failures,
            config.breaker_cooldown_ms.saturating_mul(1_000_000),
        );
        Ok(RedisStore {
            client,
            connection: OnceCell::new(),
            scripts,
            breaker,
            epoch: Instant::now(),
            config,
            metrics,
        })
    }

    /// The server address, without credentials (for logs).
    pub fn addr(&self) -> String {
        self.client.get_connection_info().addr.to_string()
    }

    /// Decides one request for `key`, atomically in Redis.
    pub async fn check(
        &self,
        key: &str,
        algorithm: Algorithm,
        quota: &Quota,
    ) -> Result<Decision, StoreError> {
        let now = self.epoch.elapsed().as_nanos() as Nanos;
        if !self.breaker.allow(now) {
            return Err(StoreError::BreakerOpen);
        }
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let result = match tokio::time::timeout(timeout, self.call(key, algorithm, quota)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(self.config.timeout_ms)),
        };
        match &result {
            Ok(_) => {
                if self.breaker.success() == Some(Transition::Closed) {
                    tracing::info!(addr = %self.addr(), "rate-limit store reachable again; breaker closed");
                    self.metrics.set_breaker_open(false);
                }
            }
            Err(error) => {
                self.metrics.store_error();
                tracing::debug!(%error, "rate-limit store call failed");
                if self
                    .breaker
                    .failure(self.epoch.elapsed().as_nanos() as Nanos)
                    == Some(Transition::Opened)
                {
                    tracing::warn!(addr = %self.addr(), %error, "rate-limit store failing; breaker open");
                    self.metrics.set_breaker_open(true);
                }
            }
        }
        result
    }

    async fn call(
        &self,
        key: &str,
        algorithm: Algorithm,
        quota: &Quota,
    ) -> Result<Decision, StoreError> {
        let mut connection = self
            .connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_connection_timeout(Duration::from_millis(self.config.timeout_ms))
                    .set_response_timeout(Duration::from_millis(self.config.timeout_ms));
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await?
            .clone();
        let script = &self.scripts[Algorithm::ALL
            .iter()
            .position(|a| *a == algorithm)
            .unwrap_or(0)];
        let window_us = (quota.window_ns / 1_000).max(1);
        let args = [quota.limit, window_us, quota.burst];
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha.arg(&script.sha).arg(1).arg(key).arg(&args[..]);
        let reply: Result<Vec<i64>, _> = evalsha.query_async(&mut connection).await;
        let values = match reply {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                let mut eval = redis::cmd("EVAL");
                eval.arg(script.source).arg(1).arg(key).arg(&args[..]);
                eval.query_async(&mut connection).await?
            }
            other => other?,
        };
        decode(&values, quota)
    }
}

/// `{allowed, remaining, retry_after_us, reset_after_us, delay_us}` → Decision.
fn decode(values: &[i64], quota: &Quota) -> Result<Decision, StoreError> {
    let [allowed, remaining, retry_us, reset_us, delay_us] = values else {
        return Err(StoreError::Reply(format!("{values:?}")));
    };
    let nanos = |us: &i64| u64::try_from(*us).unwrap_or(0).saturating_mul(1_000);
    Ok(Decision {
        allowed: *allowed == 1,
        limit: quota.limit,
        remaining: u64::try_from(*remaining).unwrap_or(0),
        retry_after_ns: nanos(retry_us),
        reset_after_ns: nanos(reset_us),
        delay_ns: nanos(delay_us),
    })
}
