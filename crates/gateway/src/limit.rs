//! Rate limiting in the gateway: where the notes put the limiter ("보통 API
//! 게이트웨이라 불리는 컴포넌트에 구현됨"), built from the `ratelimit` crate.
//!
//! The gateway loads the rules file at start (an invalid file fails the
//! start: a gateway must not silently run without its limits), counts in
//! the configured store, and re-reads the file every `reload_ms`; a changed
//! valid file takes effect at once, an invalid edit is logged and the last
//! good rules stay. Requests pass through `ratelimit`'s tower layer after
//! routing and before the body is read, so a rejected request costs neither
//! a body read nor an upstream round trip, and its 429 (with
//! `X-Ratelimit-Limit`, `-Remaining`, `-Retry-After`, `Retry-After`,
//! `RateLimit-Policy`, `RateLimit`) is counted and logged like any answer.
//! Decisions by rule and outcome are exported as
//! `hyperscale_gateway_ratelimit_decisions_total{rule,outcome}`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratelimit::store::Store;
use ratelimit::{RateLimitLayer, RateLimiter, RulesWatcher};
use service::Shutdown;
use service::metrics::Registry;

use crate::config::{ConfigError, RateLimit};

/// The gateway's limiter: the layer, and the watcher until serving starts it.
pub struct Limiting {
    /// Applied to every routed request.
    pub layer: RateLimitLayer,
    /// Taken by [`Limiting::start_reloading`] (once).
    watcher: Mutex<Option<RulesWatcher>>,
    reload: Duration,
}

impl Limiting {
    /// Builds the limiter from `config`; `None` when no rules file is set.
    /// Registers its metrics under `registry` (prefix `ratelimit`).
    pub fn build(config: &RateLimit, registry: &mut Registry) -> Result<Option<Self>, ConfigError> {
        let Some(path) = &config.rules else {
            return Ok(None);
        };
        let metrics = ratelimit::metrics::Metrics::new();
        metrics.register(registry.sub_registry_with_prefix("ratelimit"));
        let (rules, watcher) = RulesWatcher::open(path, Some(metrics.clone()))
            .map_err(|err| ConfigError(format!("ratelimit.rules: {err}")))?;
        let store = match config.store.as_str() {
            "redis" => {
                let store =
                    ratelimit::store::redis::RedisStore::new(config.redis.clone(), metrics.clone())
                        .map_err(|err| ConfigError(format!("ratelimit.redis: {err}")))?;
                Store::Redis(Arc::new(store))
            }
            _ => Store::Memory(Arc::new(ratelimit::store::memory::MemoryStore::new(
                &config.memory,
            ))),
        };
        let limiter = RateLimiter::new(rules, store, metrics, config.failure_policy);
        let layer_config = ratelimit::LayerConfig {
            trusted_proxies: config.trusted_proxies.clone(),
            api_key_header: config.api_key_header.clone(),
            queue: config.queue.clone(),
        };
        let layer = RateLimitLayer::new(Arc::new(limiter), &layer_config)
            .map_err(|err| ConfigError(format!("ratelimit: {err}")))?;
        Ok(Some(Self {
            layer,
            watcher: Mutex::new(Some(watcher)),
            reload: Duration::from_millis(config.reload_ms),
        }))
    }

    /// Starts re-reading the rules file until `shutdown` (only the first
    /// call starts anything).
    pub fn start_reloading(&self, shutdown: Shutdown) {
        let taken = self
            .watcher
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(watcher) = taken {
            tokio::spawn(reload_loop(watcher, self.reload, shutdown));
        }
    }
}

/// Polls the rules file every `interval`. The read is blocking file I/O, so
/// it runs on the blocking pool (which also works on a current-thread
/// runtime, unlike `block_in_place`).
async fn reload_loop(mut watcher: RulesWatcher, interval: Duration, shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let polled = tokio::task::spawn_blocking(move || {
            let _outcome = watcher.poll();
            watcher
        })
        .await;
        match polled {
            Ok(back) => watcher = back,
            Err(err) => {
                tracing::error!("rules reload task failed ({err}); rules are no longer reloaded");
                return;
            }
        }
    }
}
