//! A URL shortener: chapter 8 of *System Design Interview*.
//!
//! The chapter's requirements: given a long URL, return a short one; a short
//! URL redirects to the long one; 100 million new URLs a day (≈1,160 writes/s,
//! ≈11,600 reads/s at a 10:1 read ratio), kept for ten years (365 billion
//! records, ≈36.5 TB) — `hyperscale estimate --preset shortener` redoes that
//! arithmetic.
//!
//! **Design.** The API is the chapter's: `POST /api/v1/data/shorten` and
//! `GET /{code}`. Codes come from one of two strategies ([`code`]): base 62
//! of a snowflake ID (default: unique without coordination) or the first 7
//! base-62 characters of a hash with collision resolution behind a bloom
//! filter. Shortening looks the long URL up first, so one URL keeps one
//! permanent code; an expiring link never shares a code with a link of
//! another lifetime, and every reply states the real `expiresMs` ([`app`]).
//! Links live in a key-value store ([`store`]) reached through the
//! `kvclient` trait: the embedded LSM engine by default, or any RESP server
//! (our `kv`, real Redis) with `--store redis://...`, which is what lets
//! several stateless shortener servers share one store (chapter 1's
//! stateless web tier). A bounded LRU cache in front of the store serves hot
//! links.
//!
//! **301 or 302.** A 301 is permanent: browsers cache it and never ask again,
//! which takes load off the server but hides every later click. A 302 is
//! temporary: every click comes back to us, so clicks can be counted. The
//! default is 302 when analytics are on and 301 otherwise; `--redirect`
//! chooses explicitly.
//!
//! **Analytics** ([`analytics`]) are recorded off the redirect path through a
//! bounded queue; bots and link-preview fetchers are counted apart from
//! people.
//!
//! **Serving** ([`server`]): thread per core (one single-threaded runtime
//! and `SO_REUSEPORT` listener per worker, `workers`), and `GET /{code}`
//! answered before the router, since it is the request the chapter sizes
//! the system for.
//!
//! **Limits.** Only `http`/`https` URLs up to 2,048 bytes, never one pointing
//! back at the shortener under any spelling a browser would resolve to it
//! (`127.1`, `0x7f000001`, `[::ffff:127.0.0.1]`, `localhost.`, ...: a
//! redirect loop; [`host`] has the rule), never one with `user:pass@`
//! credentials (a phishing staple). URLs are stored and sent in `Location` as
//! the URL standard serializes them: ASCII only, internationalized hosts as
//! punycode (the stats page also shows the Unicode form). `expiresInSeconds`
//! is at most 100 years, so every timestamp we return is exact in a
//! JavaScript number. JSON bodies up to 16 KiB; unknown
//! JSON fields are rejected; a store outage is a 503, never a hang. Shorten
//! requests are rate limited per client address (`shorten_per_minute`,
//! default 60), the main abuse risk the chapter's wrap-up names.
#![warn(missing_docs)]

pub mod analytics;
pub mod app;
pub mod code;
pub mod config;
pub mod front;
pub mod host;
pub mod http;
pub mod page;
pub mod server;
pub mod store;
pub mod validate;

use std::sync::Arc;

use anyhow::Context;
use kvclient::KvClient;
use service::SystemContext;
use service::metrics::Registry;
use tokio::net::TcpListener;

pub use app::App;
pub use config::Config;

/// A shortener ready to serve: store opened, analytics running.
pub struct Shortener {
    app: Arc<App>,
    recorder: Option<analytics::Recorder>,
    /// Limits shorten requests per client address; `None` when disabled.
    limiter: Option<Arc<ratelimit::RateLimiter>>,
}

/// The limiter of the shorten routes: `per_minute` requests per client
/// address, sliding-window log (exact: no burst across a window boundary),
/// counted in process.
fn shorten_limiter(per_minute: u32) -> anyhow::Result<Option<Arc<ratelimit::RateLimiter>>> {
    if per_minute == 0 {
        return Ok(None);
    }
    let yaml = format!(
        "domain: shortener\ndescriptors:\n  - key: remote_address\n    rate_limit:\n      \
         unit: minute\n      requests_per_unit: {per_minute}\n      algorithm: sliding_window_log\n"
    );
    let rules = ratelimit::Rules::parse(&yaml, "shorten_per_minute")
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let store =
        ratelimit::store::Store::Memory(Arc::new(ratelimit::store::memory::MemoryStore::new(
            &ratelimit::store::memory::MemoryConfig::default(),
        )));
    let limiter = ratelimit::RateLimiter::new(
        ratelimit::RulesHandle::new(rules),
        store,
        ratelimit::metrics::Metrics::new(),
        ratelimit::FailurePolicy::Open,
    );
    Ok(Some(Arc::new(limiter)))
}

/// Opens the configured store: the embedded engine under `data_dir`, or a
/// remote RESP server.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn KvClient>> {
    if config.store == "embedded" {
        let store = kvclient::embedded::Embedded::open(&config.data_dir).with_context(|| {
            format!(
                "cannot open the link store in {}",
                config.data_dir.display()
            )
        })?;
        return Ok(Arc::new(store));
    }
    if config.store.starts_with("redis://") || config.store.starts_with("rediss://") {
        let options = kvclient::remote::RemoteOptions {
            timeout_ms: config.store_timeout_ms,
            ..Default::default()
        };
        let remote = kvclient::remote::Remote::connect(&config.store, options).await?;
        return Ok(Arc::new(remote));
    }
    anyhow::bail!(
        "store must be `embedded` or a redis:// URL, not `{}`",
        config.store
    )
}

impl Shortener {
    /// Opens the store and starts analytics. Must run inside a tokio runtime.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let kv = open_store(&config).await?;
        Self::with_store(config, kv)
    }

    /// A shortener on a store the caller opened (a replicated or cached one:
    /// the stages of chapter 1 under `hyperscale up`); `config.store` is
    /// not read. Must run inside a tokio runtime.
    pub fn with_store(config: Config, kv: Arc<dyn KvClient>) -> anyhow::Result<Self> {
        let recorder = config.analytics.then(|| analytics::start(kv.clone()).0);
        let limiter = shorten_limiter(config.shorten_per_minute)?;
        let app = App::new(config, store::LinkStore::new(kv)).map_err(anyhow::Error::msg)?;
        Ok(Self {
            app: Arc::new(app),
            recorder,
            limiter,
        })
    }

    /// The shortener core (for tests and embedding).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Registers the shortener's counters under `registry` (give it a
    /// `shortener` sub-registry).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let metrics = &self.app.metrics;
        registry.register("links_created", "Links created", metrics.created.clone());
        registry.register(
            "shorten_deduplicated",
            "Shorten requests answered with an existing code",
            metrics.deduplicated.clone(),
        );
        registry.register(
            "cache_hits",
            "Code lookups served by the in-process cache",
            metrics.cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Code lookups that went to the store",
            metrics.cache_misses.clone(),
        );
        registry.register(
            "code_collisions",
            "Hash-code collisions resolved",
            metrics.collisions.clone(),
        );
        if let Some(limiter) = &self.limiter {
            limiter
                .metrics()
                .register(registry.sub_registry_with_prefix("shorten"));
        }
        if let Some(recorder) = &self.recorder {
            registry.register(
                "analytics_dropped",
                "Clicks dropped because the queue was full",
                recorder.dropped.clone(),
            );
        }
    }

    /// The HTTP routes.
    pub fn router(&self) -> anyhow::Result<axum::Router> {
        let state = http::HttpState {
            app: self.app.clone(),
            recorder: self.recorder.clone(),
        };
        let layer = match &self.limiter {
            Some(limiter) => {
                let layer_config = ratelimit::LayerConfig {
                    trusted_proxies: self.app.config().trusted_proxies.clone(),
                    ..Default::default()
                };
                Some(ratelimit::RateLimitLayer::new(
                    limiter.clone(),
                    &layer_config,
                )?)
            }
            None => None,
        };
        Ok(http::router(state, layer))
    }

    /// Serves on `listener` until the context's shutdown.
    pub async fn serve(self, listener: TcpListener, ctx: SystemContext) -> anyhow::Result<()> {
        self.serve_workers(listener, 1, ctx).await
    }

    /// Serves on `workers` single-threaded runtimes, thread per core (see
    /// [`server`]): the calling one on `listener` and `workers - 1` threads
    /// of their own on the same address. With `workers > 1`, bind
    /// `listener` with `service::net::bind_reuseport` and call this on a
    /// current-thread runtime.
    pub async fn serve_workers(
        self,
        listener: TcpListener,
        workers: usize,
        ctx: SystemContext,
    ) -> anyhow::Result<()> {
        let router = self.router()?;
        let state = http::HttpState {
            app: self.app.clone(),
            recorder: self.recorder.clone(),
        };
        server::serve_workers(listener, workers, router, state, ctx)
            .await
            .context("shortener server failed")
    }
}
