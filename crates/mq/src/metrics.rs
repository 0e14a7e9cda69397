//! Prometheus metrics of the broker (registered under `mq_` by the caller).
//!
//! Per-API handles (request count, latency) are resolved once per API key
//! at start, so the hot path never hashes a label.

use std::collections::HashMap;

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::versions::SUPPORTED;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabel {
    api: String,
}

/// Labels of a consumer group's lag in one partition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabel {
    /// The group id.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// Handles for one API.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    /// Requests handled.
    pub requests: Counter,
    /// Time from decoded request to encoded response, in seconds (includes
    /// long-poll and rebalance waits).
    pub latency: Histogram,
}

/// Every metric of one broker.
#[derive(Debug)]
pub struct Metrics {
    apis: HashMap<i16, ApiMetrics>,
    requests: Family<ApiLabel, Counter>,
    latency: Family<ApiLabel, Histogram>,
    /// Request bytes received (frames, with their length prefix).
    pub bytes_in: Counter,
    /// Response bytes sent.
    pub bytes_out: Counter,
    /// Record-batch bytes appended by producers.
    pub produce_bytes: Counter,
    /// Record-batch bytes returned to consumers.
    pub fetch_bytes: Counter,
    /// Connections open now.
    pub connections: Gauge,
    /// Connections refused at accept (connections_max).
    pub connections_rejected: Counter,
    /// Requests refused as malformed, unknown or of an unsupported version.
    pub requests_invalid: Counter,
    /// Consumer groups with members.
    pub groups: Gauge,
    /// Members over all groups.
    pub group_members: Gauge,
    /// End offset minus committed offset, per group and partition
    /// (refreshed by the broker every few seconds).
    pub consumer_lag: Family<LagLabel, Gauge>,
    /// ISR changes (shrinks and expands) asked by this broker's partition leaders.
    pub isr_changes: Counter,
    /// Partitions this broker leads whose ISR is smaller than their replica set.
    pub under_replicated_partitions: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics with a handle per served API.
    pub fn new() -> Self {
        let requests = Family::<ApiLabel, Counter>::default();
        let latency = Family::<ApiLabel, Histogram>::new_with_constructor(|| {
            // 50 µs .. ~50 s in 21 doubling buckets (a fetch may long-poll).
            Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
        });
        let apis = SUPPORTED
            .iter()
            .map(|&(key, _, _)| {
                let label = ApiLabel {
                    api: format!("{key:?}"),
                };
                let handles = ApiMetrics {
                    requests: requests.get_or_create(&label).clone(),
                    latency: latency.get_or_create(&label).clone(),
                };
                (key as i16, handles)
            })
            .collect();
        Metrics {
            apis,
            requests,
            latency,
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            produce_bytes: Counter::default(),
            fetch_bytes: Counter::default(),
            connections: Gauge::default(),
            connections_rejected: Counter::default(),
            requests_invalid: Counter::default(),
            groups: Gauge::default(),
            group_members: Gauge::default(),
            consumer_lag: Family::default(),
            isr_changes: Counter::default(),
            under_replicated_partitions: Gauge::default(),
        }
    }

    /// The handles of a served API.
    pub fn api(&self, key: ApiKey) -> Option<&ApiMetrics> {
        self.apis.get(&(key as i16))
    }

    /// Registers everything into `registry` (give it an `mq` sub-registry).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "requests",
            "Requests handled, by API",
            self.requests.clone(),
        );
        registry.register(
            "request_latency_seconds",
            "Request handling time, by API",
            self.latency.clone(),
        );
        registry.register("bytes_in", "Request bytes received", self.bytes_in.clone());
        registry.register("bytes_out", "Response bytes sent", self.bytes_out.clone());
        registry.register(
            "produce_bytes",
            "Record batch bytes appended",
            self.produce_bytes.clone(),
        );
        registry.register(
            "fetch_bytes",
            "Record batch bytes fetched",
            self.fetch_bytes.clone(),
        );
        registry.register(
            "connections",
            "Open client connections",
            self.connections.clone(),
        );
        registry.register(
            "connections_rejected",
            "Connections refused by connections_max",
            self.connections_rejected.clone(),
        );
        registry.register(
            "requests_invalid",
            "Malformed, unknown or unsupported requests",
            self.requests_invalid.clone(),
        );
        registry.register(
            "groups",
            "Consumer groups with members",
            self.groups.clone(),
        );
        registry.register(
            "group_members",
            "Members over all consumer groups",
            self.group_members.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records a consumer group has yet to commit, by group, topic and partition",
            self.consumer_lag.clone(),
        );
        registry.register(
            "isr_changes",
            "ISR shrinks and expands asked by this broker's partition leaders",
            self.isr_changes.clone(),
        );
        registry.register(
            "under_replicated_partitions",
            "Partitions led here whose ISR is smaller than their replica set",
            self.under_replicated_partitions.clone(),
        );
    }

    /// Replaces the consumer-lag series with `lags` (group, topic,
    /// partition, lag), so deleted groups and topics disappear.
    pub fn set_consumer_lags(&self, lags: Vec<(String, String, i32, i64)>) {
        self.consumer_lag.clear();
        for (group, topic, partition, lag) in lags {
            let label = LagLabel {
                group,
                topic,
                partition,
            };
            self.consumer_lag.get_or_create(&label).set(lag);
        }
    }
}
