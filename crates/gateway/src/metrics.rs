//! The gateway's Prometheus metrics. The notes call for monitoring every tier
//! ("로그, 메트릭 그리고 자동화"); for a load balancer that means: what it
//! answered (by route and status), which upstreams are in rotation, how fast
//! they answer, and what it refused (limits). 429s by rule are the
//! `ratelimit` crate's `decisions_total{rule,outcome}`, registered beside
//! these by [`crate::limit`].
//!
//! Handles for per-upstream series are created once at start and kept in
//! each [`crate::upstream::Upstream`], so the hot path never looks a label
//! set up for them; per-route counters are looked up per request (one read
//! lock and a hash), which is cheap next to a proxied round trip.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use service::metrics::Registry;

/// Labels of request counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route's prefix, or `none`. Shared, so counting a request
    /// allocates nothing.
    pub route: Arc<String>,
    /// The status returned to the client.
    pub status: u16,
}

/// Labels of per-upstream series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The pool's name.
    pub pool: String,
    /// The upstream's `host:port`.
    pub upstream: String,
}

/// Labels of refusals the gateway makes itself.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `body_too_large`, `connections_max`, `body_timeout`, ...
    pub reason: String,
}

/// Labels of buffered request-body bytes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StorageLabels {
    /// `memory` or `disk` (current bytes); `memory` or `total` (peaks).
    pub storage: &'static str,
}

/// Labels of request-body counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlingLabels {
    /// `memory`, `disk` (buffered for replay), `streamed` (not replayable),
    /// `over_budget` (replayable, streamed because the buffers were full).
    pub handling: &'static str,
}

/// Every metric, cheap to clone (each is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `gateway_requests_total{route,status}`.
    pub requests: Family<RouteLabels, Counter>,
    /// `gateway_refused_total{reason}`.
    pub refused: Family<ReasonLabels, Counter>,
    /// `gateway_upstream_up{pool,upstream}`.
    pub upstream_up: Family<UpstreamLabels, Gauge>,
    /// `gateway_upstream_failures_total{pool,upstream}`.
    pub upstream_failures: Family<UpstreamLabels, Counter>,
    /// `gateway_upstream_latency_seconds{pool,upstream}`.
    pub upstream_latency: Family<UpstreamLabels, Histogram>,
    /// `gateway_retries_total`: requests replayed on a second upstream.
    pub retries: Counter,
    /// `gateway_connections_active`.
    pub connections: Gauge,
    /// `gateway_request_body_buffered_bytes{storage}`: bytes of request
    /// bodies held for replay now.
    pub body_buffered: Family<StorageLabels, Gauge>,
    /// `gateway_request_body_buffered_peak_bytes{storage}`: the most ever
    /// held at once, in memory and in total (memory + disk).
    pub body_buffered_peak: Family<StorageLabels, Gauge>,
    /// `gateway_request_bodies_total{handling}`.
    pub bodies: Family<HandlingLabels, Counter>,
    /// `gateway_datacenter_up{datacenter}`: 1 while traffic may go there.
    pub datacenter_up: Family<DataCenterLabels, Gauge>,
}

/// Labels of data-center series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DataCenterLabels {
    /// The data center's name.
    pub datacenter: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~13 s in 18 doublings: LAN round trips up to slow backends.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Metrics {
    /// Creates the metrics and registers them under `registry` (which the
    /// caller has usually prefixed with `gateway`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            refused: Family::default(),
            upstream_up: Family::default(),
            upstream_failures: Family::default(),
            upstream_latency: Family::new_with_constructor(latency_histogram),
            retries: Counter::default(),
            connections: Gauge::default(),
            body_buffered: Family::default(),
            body_buffered_peak: Family::default(),
            bodies: Family::default(),
            datacenter_up: Family::default(),
        };
        registry.register(
            "datacenter_up",
            "1 while a data center takes traffic, 0 while its clients fail over",
            metrics.datacenter_up.clone(),
        );
        registry.register(
            "requests",
            "Requests answered, by route prefix and status",
            metrics.requests.clone(),
        );
        registry.register(
            "refused",
            "Requests or connections refused by a gateway limit",
            metrics.refused.clone(),
        );
        registry.register(
            "upstream_up",
            "1 while an upstream is in rotation, 0 while ejected",
            metrics.upstream_up.clone(),
        );
        registry.register(
            "upstream_failures",
            "Failed attempts on an upstream (connect, reset, timeout, 502/503)",
            metrics.upstream_failures.clone(),
        );
        registry.register(
            "upstream_latency_seconds",
            "Time from sending a request upstream to its response head",
            metrics.upstream_latency.clone(),
        );
        registry.register(
            "retries",
            "Requests retried on another upstream",
            metrics.retries.clone(),
        );
        registry.register(
            "connections_active",
            "Client connections open",
            metrics.connections.clone(),
        );
        registry.register(
            "request_body_buffered_bytes",
            "Bytes of request bodies held for a possible retry, by storage",
            metrics.body_buffered.clone(),
        );
        registry.register(
            "request_body_buffered_peak_bytes",
            "Most request-body bytes ever held at once (memory, and total of memory and disk)",
            metrics.body_buffered_peak.clone(),
        );
        registry.register(
            "request_bodies",
            "Request bodies by handling: buffered in memory or on disk, or streamed",
            metrics.bodies.clone(),
        );
        metrics
    }

    /// The gauge of body bytes held in `storage` now.
    pub fn body_bytes(&self, storage: &'static str) -> Gauge {
        self.body_buffered
            .get_or_create(&StorageLabels { storage })
            .clone()
    }

    /// The high-water gauge of body bytes held in `storage`.
    pub fn body_peak_bytes(&self, storage: &'static str) -> Gauge {
        self.body_buffered_peak
            .get_or_create(&StorageLabels { storage })
            .clone()
    }

    /// Sets a data center's up gauge.
    pub fn datacenter_up(&self, name: &str, up: bool) {
        self.datacenter_up
            .get_or_create(&DataCenterLabels {
                datacenter: name.to_string(),
            })
            .set(i64::from(up));
    }

    /// Counts one request body by how it was handled.
    pub fn count_body(&self, handling: &'static str) {
        self.bodies
            .get_or_create(&HandlingLabels { handling })
            .inc();
    }

    /// Counts one answered request.
    pub fn count_request(&self, route: &Arc<String>, status: u16) {
        self.requests
            .get_or_create(&RouteLabels {
                route: route.clone(),
                status,
            })
            .inc();
    }

    /// Counts one refusal by the gateway itself.
    pub fn count_refusal(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }
}
