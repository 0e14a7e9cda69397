//! The edge cache's metrics (registered under the gateway's prefix as
//! `gateway_cache_*`): requests by outcome (the hit ratio is
//! `hit / (hit + miss + stale + revalidated)`), bytes served from the cache
//! (the origin bytes the notes' CDN saves), evictions and stored bytes per
//! tier, origin fetches, and objects purged.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use service::metrics::Registry;

/// Labels of cache outcomes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `hit`, `miss`, `stale`, `revalidated`, `bypass`.
    pub outcome: &'static str,
}

/// Labels of per-tier series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    /// `memory` or `disk`.
    pub tier: &'static str,
}

/// Every cache metric; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CacheMetrics {
    /// `gateway_cache_requests_total{outcome}`.
    pub requests: Family<OutcomeLabels, Counter>,
    /// `gateway_cache_served_bytes_total`: body bytes answered from the cache.
    pub served_bytes: Counter,
    /// `gateway_cache_evictions_total{tier}`.
    pub evictions: Family<TierLabels, Counter>,
    /// `gateway_cache_stored_bytes{tier}`.
    pub stored_bytes: Family<TierLabels, Gauge>,
    /// `gateway_cache_objects{tier}` (keys, each with its variants).
    pub objects: Family<TierLabels, Gauge>,
    /// `gateway_cache_origin_fetches_total`: requests the cache sent to origins.
    pub origin_fetches: Counter,
    /// `gateway_cache_purged_total`: keys removed by purges.
    pub purged: Counter,
}

impl CacheMetrics {
    /// Creates and registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let registry = registry.sub_registry_with_prefix("cache");
        registry.register(
            "requests",
            "Cacheable-route requests by outcome: hit, miss, stale, revalidated, bypass",
            metrics.requests.clone(),
        );
        registry.register(
            "served_bytes",
            "Body bytes answered from the cache instead of the origin",
            metrics.served_bytes.clone(),
        );
        registry.register(
            "evictions",
            "Keys evicted to make room, by tier",
            metrics.evictions.clone(),
        );
        registry.register(
            "stored_bytes",
            "Bytes held by the cache, by tier",
            metrics.stored_bytes.clone(),
        );
        registry.register(
            "objects",
            "Keys held by the cache, by tier",
            metrics.objects.clone(),
        );
        registry.register(
            "origin_fetches",
            "Requests the cache sent to an origin (fills and revalidations)",
            metrics.origin_fetches.clone(),
        );
        registry.register("purged", "Keys removed by purges", metrics.purged.clone());
        metrics
    }

    /// Counts one request's outcome.
    pub fn count(&self, outcome: &'static str) {
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Sets a tier's gauges.
    pub fn set_tier(&self, tier: &'static str, bytes: u64, objects: usize) {
        self.stored_bytes
            .get_or_create(&TierLabels { tier })
            .set(bytes as i64);
        self.objects
            .get_or_create(&TierLabels { tier })
            .set(objects as i64);
    }

    /// Counts evictions from a tier.
    pub fn evicted(&self, tier: &'static str, count: usize) {
        if count > 0 {
            self.evictions
                .get_or_create(&TierLabels { tier })
                .inc_by(count as u64);
        }
    }
}
