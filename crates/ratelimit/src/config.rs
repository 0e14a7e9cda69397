//! One config block that wires the whole limiter, for the gateway and servers.
//!
//! Why: a user of the layer should write a `[ratelimit]` table (TOML, via the
//! `service` config loader) and get rules loaded and watched, a store, and a
//! layer — not assemble six types. [`RateLimitConfig::start`] does that and
//! returns the running pieces; dropping [`Running`] stops its background tasks.

use crate::layer::{LayerConfig, LayerConfigError, RateLimitLayer};
use crate::limiter::{FailurePolicy, RateLimiter};
use crate::metrics::Metrics;
use crate::rules::reload::RulesWatcher;
use crate::rules::{Rules, RulesError};
use crate::store::Store;
use crate::store::memory::{MemoryConfig, MemoryStore};
use crate::store::redis::{RedisConfig, RedisStore, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which store counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In this process (default).
    #[default]
    Memory,
    /// In Redis, shared by every process.
    Redis,
}

/// Everything the limiter needs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// The rules file (YAML). `None`: no limits.
    pub rules: Option<PathBuf>,
    /// How often the rules file is checked for changes.
    pub reload_interval_ms: u64,
    /// Where counters live.
    pub store: StoreKind,
    /// In-process store knobs.
    pub memory: MemoryConfig,
    /// Redis store knobs.
    pub redis: RedisConfig,
    /// What to do when the store fails.
    pub failure_policy: FailurePolicy,
    /// HTTP layer knobs.
    pub layer: LayerConfig,
}

impl Default for RateLimitConfig {
    fn default() -> RateLimitConfig {
        RateLimitConfig {
            rules: None,
            reload_interval_ms: 1_000,
            store: StoreKind::Memory,
            memory: MemoryConfig::default(),
            redis: RedisConfig::default(),
            failure_policy: FailurePolicy::Open,
            layer: LayerConfig::default(),
        }
    }
}

/// Why the limiter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The rules file is missing or invalid.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The Redis URL is invalid.
    #[error("ratelimit redis store: {0}")]
    Store(#[from] StoreError),
    /// The layer config is invalid.
    #[error("ratelimit layer: {0}")]
    Layer(#[from] LayerConfigError),
}

/// A started limiter; its background tasks stop when it is dropped.
#[derive(Debug)]
pub struct Running {
    /// The limiter (for direct checks and the rules handle).
    pub limiter: Arc<RateLimiter>,
    /// The layer to wrap services with.
    pub layer: RateLimitLayer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RateLimitConfig {
    /// Loads the rules, builds the store and layer, and starts the rules
    /// watcher and the idle-key sweeper on the current tokio runtime.
    pub fn start(&self, metrics: Metrics) -> Result<Running, StartError> {
        let interval = Duration::from_millis(self.reload_interval_ms.max(100));
        let mut tasks = Vec::new();
        let rules = match &self.rules {
            Some(path) => {
                let (handle, watcher) = RulesWatcher::open(path, Some(metrics.clone()))?;
                tasks.push(watcher.spawn(interval));
                handle
            }
            None => crate::RulesHandle::new(Rules::parse("domain: none\n", "<no rules>")?),
        };
        let store = match self.store {
            StoreKind::Memory => Store::Memory(Arc::new(MemoryStore::new(&self.memory))),
            StoreKind::Redis => Store::Redis(Arc::new(RedisStore::new(
                self.redis.clone(),
                metrics.clone(),
            )?)),
        };
        let limiter = Arc::new(RateLimiter::new(rules, store, metrics, self.failure_policy));
        let layer = RateLimitLayer::new(limiter.clone(), &self.layer)?;
        let sweeper = limiter.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(10));
            loop {
                ticker.tick().await;
                sweeper.sweep_idle();
            }
        }));
        Ok(Running {
            limiter,
            layer,
            tasks,
        })
    }
}
