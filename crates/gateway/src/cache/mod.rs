//! The edge cache: one node of the notes' CDN ("콘텐츠 전송 네트워크"), an
//! HTTP cache in front of a route's origin pool as RFC 9111 defines a
//! *shared* cache.
//!
//! # The path of a cacheable request (`GET`/`HEAD` on a route with `[routes.cache]`)
//!
//! 1. [`key`]: the cache key (host, path, normalised query, selected headers
//!    and cookies). Requests with `Range` or `Authorization` bypass the cache.
//! 2. [`store`]: the variant ([`vary`]) of that key the request selects,
//!    from memory or disk.
//! 3. [`freshness`]: is it fresh for this request? Then `X-Cache: HIT`, with
//!    `Age`, answered from memory (a client's own `If-None-Match` gets a 304).
//! 4. Stale: within `stale-while-revalidate` it is served at once
//!    (`STALE`) and revalidated in the background ([`stale`]); otherwise it
//!    is revalidated now with a conditional request ([`revalidate`]): a 304
//!    renews it, a 200 replaces it, an origin failure serves it stale when
//!    `stale-if-error` (or the route's window) allows.
//! 5. Missing: one origin fetch per key however many clients miss at once
//!    ([`collapse`]); a storable response (and not larger than the route's
//!    `object_bytes_max`) is stored and answered `MISS`.
//!
//! Other methods on a cached route are proxied as usual (`BYPASS`) and a
//! successful one invalidates the URL's stored objects (RFC 9111 §4.4).
//! [`purge`] removes objects by URL, prefix or tag before they expire.
//!
//! # Why hand-written
//! The Rust HTTP-cache crates (`http-cache`, `http-cache-semantics`) are
//! private, client-side caches: none collapses requests, serves stale on
//! origin failure, purges by tag or bounds a shared store in bytes, which
//! is what the notes' CDN is about. The RFC rules are small pure functions
//! here ([`freshness`], [`stale`], [`revalidate`], [`vary`]), each tested.

pub mod collapse;
pub mod config;
pub mod entry;
mod flow;
pub mod freshness;
pub mod key;
pub mod metrics;
pub mod purge;
pub mod revalidate;
pub mod stale;
pub mod store;
pub mod vary;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::request::Parts;
use http::{HeaderMap, Response};
use service::metrics::Registry;

use collapse::Collapser;
use config::CacheConfig;
use metrics::CacheMetrics;
use store::Store;

pub use flow::{X_CACHE, with_x_cache};

/// Where a cache miss is fetched from: the route's pool, through the
/// gateway's forwarding (balancing, health, failover).
pub trait Origin: Clone + Send + Sync + 'static {
    /// Sends a body-less request (`GET`) upstream; failures come back as
    /// the gateway's 502/503/504 responses.
    fn fetch(&self, parts: Parts) -> impl Future<Output = Response<Body>> + Send;
}

/// The cache of one gateway: its store, flights and metrics.
pub struct EdgeCache {
    config: CacheConfig,
    store: Store,
    collapser: Arc<Collapser>,
    metrics: CacheMetrics,
    /// Bound on reading an origin's body into the cache.
    body_read: Duration,
}

impl EdgeCache {
    /// Opens the store (clearing the disk tier's directory) and registers
    /// the metrics; `body_read_ms` bounds reading an origin body.
    pub fn open(
        config: &CacheConfig,
        body_read_ms: u64,
        registry: &mut Registry,
    ) -> std::io::Result<Arc<Self>> {
        let metrics = CacheMetrics::register(registry);
        Ok(Arc::new(Self {
            config: config.clone(),
            store: Store::open(config, metrics.clone())?,
            collapser: Arc::default(),
            metrics,
            body_read: Duration::from_millis(body_read_ms),
        }))
    }

    /// The purge endpoint's path (empty: none).
    pub fn purge_path(&self) -> &str {
        &self.config.purge_path
    }

    /// The admin token purges require.
    pub fn admin_token(&self) -> Option<&str> {
        self.config.admin_token.as_deref()
    }

    /// Removes what `target` selects; returns how many keys.
    pub fn purge(&self, target: &purge::Target) -> usize {
        let removed = self.store.purge(|key, tags| target.matches(key, tags));
        self.metrics.purged.inc_by(removed as u64);
        tracing::info!(?target, removed, "cache purge");
        removed
    }

    /// After an unsafe request (`POST`, `PUT`, `DELETE`, ...) on a cached
    /// route answered `status`, removes the stored objects of its URL
    /// (RFC 9111 §4.4: only after a non-error answer).
    pub fn invalidate_after_unsafe(
        &self,
        route: &config::RouteCache,
        uri: &http::Uri,
        headers: &HeaderMap,
        status: http::StatusCode,
    ) {
        self.metrics.count("bypass");
        if !(status.is_success() || status.is_redirection()) {
            return;
        }
        let built = key::build(&route.key, uri.path(), uri.query(), headers);
        let target = purge::Target::Url {
            host: (!built.host.is_empty()).then(|| built.host.clone()),
            path: built.path,
            query: purge::sorted_query(&built.query),
        };
        self.store.purge(|key, tags| target.matches(key, tags));
    }
}
