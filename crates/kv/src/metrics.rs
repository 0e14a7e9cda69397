//! Prometheus metrics of the key-value server.
//!
//! The hot path only touches pre-resolved handles: one counter and one
//! latency histogram per command, looked up once by the command's index in
//! the table, never by hashing a label per request. Gauges that describe
//! the keyspace (keys, memory) and counters kept under the keyspace lock
//! (evictions, expirations, hits) are copied in by a refresh task, so
//! scraping never takes the keyspace lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::keyspace::Keyspace;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: String,
}

/// Per-command handles, indexed like [`crate::command::table`].
#[derive(Debug, Clone)]
pub struct CommandMetrics {
    /// Calls.
    pub calls: Counter,
    /// Calls that replied with an error.
    pub errors: Counter,
    /// Execution time in seconds (excluding network time).
    pub latency: Histogram,
    /// Total execution time in microseconds (`INFO commandstats` `usec`).
    pub usec: Counter,
    /// Calls refused before running (arity, `OOM`): `rejected_calls`.
    pub rejected: Counter,
}

/// Most distinct error codes `INFO errorstats` tracks (Redis's limit).
pub const ERROR_CODES_MAX: usize = 128;

/// Every metric of one server.
#[derive(Debug)]
pub struct Metrics {
    /// Per command, by table index.
    pub commands: Vec<CommandMetrics>,
    calls: Family<CommandLabel, Counter>,
    errors: Family<CommandLabel, Counter>,
    latency: Family<CommandLabel, Histogram>,
    /// Connected clients.
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_accepted: Counter,
    /// Connections refused (max clients) since start.
    pub connections_rejected: Counter,
    /// Keys in the keyspace.
    pub keys: Gauge,
    /// Keys with an expiry.
    pub expiring_keys: Gauge,
    /// Estimated memory used by data.
    pub memory_used_bytes: Gauge,
    /// The `maxmemory` limit (0 = none).
    pub memory_max_bytes: Gauge,
    /// Keys evicted.
    pub evicted_keys: Counter,
    /// Keys expired.
    pub expired_keys: Counter,
    /// Reads that found their key / did not.
    pub keyspace_hits: Counter,
    /// Reads that did not find their key.
    pub keyspace_misses: Counter,
    /// Last copied values of the keyspace's own counters (to add deltas).
    last_seen: [AtomicU64; 4],
    /// Error replies by code (the first word: `ERR`, `WRONGTYPE`...), for
    /// `INFO errorstats`; at most [`ERROR_CODES_MAX`] codes.
    error_codes: parking_lot::Mutex<BTreeMap<String, u64>>,
    /// Every error reply (`total_error_replies`).
    pub error_replies: Counter,
}

impl Metrics {
    /// Metrics for the commands named in `command_names` (table order).
    pub fn new(command_names: &[&str]) -> Metrics {
        let calls = Family::<CommandLabel, Counter>::default();
        let errors = Family::<CommandLabel, Counter>::default();
        let latency = Family::<CommandLabel, Histogram>::new_with_constructor(|| {
            // 10 µs .. ~5 s in 20 doubling buckets.
            Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
        });
        let commands = command_names
            .iter()
            .map(|name| {
                let label = CommandLabel {
                    command: name.to_string(),
                };
                CommandMetrics {
                    calls: calls.get_or_create(&label).clone(),
                    errors: errors.get_or_create(&label).clone(),
                    latency: latency.get_or_create(&label).clone(),
                    usec: Counter::default(),
                    rejected: Counter::default(),
                }
            })
            .collect();
        Metrics {
            commands,
            calls,
            errors,
            latency,
            connections: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_rejected: Counter::default(),
            keys: Gauge::default(),
            expiring_keys: Gauge::default(),
            memory_used_bytes: Gauge::default(),
            memory_max_bytes: Gauge::default(),
            evicted_keys: Counter::default(),
            expired_keys: Counter::default(),
            keyspace_hits: Counter::default(),
            keyspace_misses: Counter::default(),
            last_seen: Default::default(),
            error_codes: parking_lot::Mutex::new(BTreeMap::new()),
            error_replies: Counter::default(),
        }
    }

    /// Counts one error reply under its code (its first word), as Redis's
    /// `INFO errorstats` does.
    pub fn count_error(&self, text: &str) {
        self.error_replies.inc();
        let code = text.split(' ').next().unwrap_or_default();
        let mut codes = self.error_codes.lock();
        if let Some(count) = codes.get_mut(code) {
            *count += 1;
        } else if codes.len() < ERROR_CODES_MAX {
            codes.insert(code.to_string(), 1);
        }
    }

    /// The error counts by code, in code order.
    pub fn error_codes(&self) -> Vec<(String, u64)> {
        self.error_codes
            .lock()
            .iter()
            .map(|(code, count)| (code.clone(), *count))
            .collect()
    }

    /// Registers everything into `registry` (give it a `kv` sub-registry).
    pub fn register(&self, registry: &mut Registry) {
        registry.register("commands", "Commands executed", self.calls.clone());
        registry.register(
            "command_errors",
            "Commands that replied with an error",
            self.errors.clone(),
        );
        registry.register(
            "command_duration_seconds",
            "Command execution time",
            self.latency.clone(),
        );
        registry.register("connections", "Connected clients", self.connections.clone());
        registry.register(
            "connections_accepted",
            "Connections accepted",
            self.connections_accepted.clone(),
        );
        registry.register(
            "connections_rejected",
            "Connections refused at maxclients",
            self.connections_rejected.clone(),
        );
        registry.register("keys", "Keys in the keyspace", self.keys.clone());
        registry.register(
            "expiring_keys",
            "Keys with a TTL",
            self.expiring_keys.clone(),
        );
        registry.register(
            "memory_used_bytes",
            "Estimated bytes used by data",
            self.memory_used_bytes.clone(),
        );
        registry.register(
            "memory_max_bytes",
            "The maxmemory limit (0 = none)",
            self.memory_max_bytes.clone(),
        );
        registry.register(
            "evicted_keys",
            "Keys evicted under maxmemory",
            self.evicted_keys.clone(),
        );
        registry.register(
            "expired_keys",
            "Keys removed because their TTL passed",
            self.expired_keys.clone(),
        );
        registry.register(
            "keyspace_hits",
            "Reads that found their key",
            self.keyspace_hits.clone(),
        );
        registry.register(
            "keyspace_misses",
            "Reads that did not find their key",
            self.keyspace_misses.clone(),
        );
    }

    /// Copies the keyspace's figures in (called by a periodic task).
    pub fn refresh(&self, keyspace: &Keyspace) {
        let engine = keyspace.engine();
        let memory = engine.memory();
        self.keys.set(engine.len() as i64);
        self.expiring_keys.set(engine.volatile_len() as i64);
        self.memory_used_bytes.set(memory.used_bytes as i64);
        self.memory_max_bytes.set(memory.maxmemory as i64);
        let stats = keyspace.stats();
        let now = [
            stats.evicted_keys,
            stats.expired_keys,
            stats.keyspace_hits,
            stats.keyspace_misses,
        ];
        let counters = [
            &self.evicted_keys,
            &self.expired_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
        ];
        for ((value, last), counter) in now.iter().zip(&self.last_seen).zip(counters) {
            let before = last.swap(*value, Ordering::AcqRel);
            counter.inc_by(value.saturating_sub(before));
        }
    }
}
