//! The crawl's counters: one set of `prometheus-client` metrics read both by
//! `/metrics` and by the progress line and `status --json` (so the numbers a
//! person sees and the ones Prometheus scrapes cannot disagree).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// A `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// The kind.
    pub kind: String,
}

/// The counters.
#[derive(Clone, Default)]
pub struct Stats {
    /// Pages fetched with an HTTP answer.
    pub pages: Counter,
    /// Decoded body bytes.
    pub bytes: Counter,
    /// Fetches without an answer, by kind.
    pub errors: Family<Kind, Counter>,
    /// Answers by status class (`2xx`...).
    pub statuses: Family<Kind, Counter>,
    /// Duplicates by kind (`exact`, `near`).
    pub duplicates: Family<Kind, Counter>,
    /// URLs dropped by a trap limit, by limit.
    pub traps: Family<Kind, Counter>,
    /// URLs skipped, by reason (`robots`, `nofollow`, `scope`, `type`, `redirect_limit`, `bad_url`).
    pub skipped: Family<Kind, Counter>,
    /// Revisits by what they found (`not_modified`, `same`, `changed`).
    pub revisits: Family<Kind, Counter>,
    /// Links queued (new URLs).
    pub queued: Counter,
    /// New URLs handed to the node that owns their host.
    pub forwarded: Counter,
    /// robots.txt files fetched.
    pub robots_fetched: Counter,
    /// Redirects followed.
    pub redirects: Counter,
    /// URLs waiting in the frontier.
    pub frontier: Gauge,
    /// Hosts being fetched now.
    pub hosts_active: Gauge,
    /// Hosts with queued URLs.
    pub hosts_queued: Gauge,
    /// A bounded sample of fetch latencies (for percentiles).
    pub fetch_latency: LatencySamples,
}

/// Samples kept by [`LatencySamples`] (256 KiB at most).
const LATENCY_SAMPLES_MAX: usize = 65_536;

/// A uniform sample of fetch latencies in µs, bounded by reservoir sampling
/// (algorithm R): memory stays fixed however long the crawl runs, and every
/// fetch had the same chance to be kept, so percentiles of the sample
/// estimate those of the whole crawl.
#[derive(Clone, Default)]
pub struct LatencySamples(std::sync::Arc<parking_lot::Mutex<Reservoir>>);

#[derive(Default)]
struct Reservoir {
    seen: u64,
    samples: Vec<u32>,
}

impl LatencySamples {
    /// Records one fetch's latency.
    pub fn record(&self, elapsed: std::time::Duration) {
        let us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        let mut r = self.0.lock();
        r.seen += 1;
        if r.samples.len() < LATENCY_SAMPLES_MAX {
            r.samples.push(us);
        } else {
            let slot = fastrand::u64(..r.seen);
            if let Ok(slot) = usize::try_from(slot)
                && slot < LATENCY_SAMPLES_MAX
            {
                r.samples[slot] = us;
            }
        }
        debug_assert!(r.samples.len() <= LATENCY_SAMPLES_MAX);
    }

    /// The `p` quantile (0..=1) of the sampled latencies, in ms.
    pub fn quantile_ms(&self, p: f64) -> Option<f64> {
        let mut sorted = self.0.lock().samples.clone();
        sorted.sort_unstable();
        clock::latency::percentile(&sorted, p).map(|us| f64::from(us) / 1000.0)
    }
}

fn get(family: &Family<Kind, Counter>, kind: &str) -> u64 {
    family
        .get_or_create(&Kind {
            kind: kind.to_string(),
        })
        .get()
}

impl Stats {
    /// Counts one under `family[kind]`.
    pub fn inc(family: &Family<Kind, Counter>, kind: &str) {
        family
            .get_or_create(&Kind {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Registers every metric under `crawler_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("crawler");
        r.register(
            "pages",
            "Pages fetched with an HTTP answer",
            self.pages.clone(),
        );
        r.register(
            "body_bytes",
            "Decoded body bytes fetched",
            self.bytes.clone(),
        );
        r.register(
            "errors",
            "Fetches without an answer by kind",
            self.errors.clone(),
        );
        r.register(
            "responses",
            "Answers by status class",
            self.statuses.clone(),
        );
        r.register(
            "duplicates",
            "Duplicate contents by kind",
            self.duplicates.clone(),
        );
        r.register("traps", "URLs dropped by trap limits", self.traps.clone());
        r.register("skipped", "URLs skipped by reason", self.skipped.clone());
        r.register("queued_urls", "New URLs queued", self.queued.clone());
        r.register(
            "forwarded_urls",
            "New URLs forwarded to the node that owns their host",
            self.forwarded.clone(),
        );
        r.register(
            "revisits",
            "Revisits of fetched pages by what they found",
            self.revisits.clone(),
        );
        r.register(
            "robots_fetched",
            "robots.txt files fetched",
            self.robots_fetched.clone(),
        );
        r.register("redirects", "Redirects followed", self.redirects.clone());
        r.register(
            "frontier_urls",
            "URLs waiting in the frontier",
            self.frontier.clone(),
        );
        r.register(
            "hosts_active",
            "Hosts being fetched now",
            self.hosts_active.clone(),
        );
        r.register(
            "hosts_queued",
            "Hosts with queued URLs",
            self.hosts_queued.clone(),
        );
    }

    /// A serializable snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let kinds = |family: &Family<Kind, Counter>, names: &[&str]| {
            names
                .iter()
                .map(|n| ((*n).to_string(), get(family, n)))
                .filter(|(_, v)| *v > 0)
                .collect()
        };
        Snapshot {
            pages: self.pages.get(),
            bytes: self.bytes.get(),
            queued: self.queued.get(),
            forwarded: self.forwarded.get(),
            frontier: self.frontier.get().max(0) as u64,
            hosts_active: self.hosts_active.get().max(0) as u64,
            hosts_queued: self.hosts_queued.get().max(0) as u64,
            robots_fetched: self.robots_fetched.get(),
            redirects: self.redirects.get(),
            errors: kinds(
                &self.errors,
                &["dns", "connect", "timeout", "body", "other", "http"],
            ),
            statuses: kinds(&self.statuses, &["2xx", "3xx", "4xx", "5xx", "1xx"]),
            duplicates: kinds(&self.duplicates, &["exact", "near"]),
            revisits: kinds(&self.revisits, &["not_modified", "same", "changed"]),
            traps: kinds(
                &self.traps,
                &[
                    "url_length",
                    "depth",
                    "repeated_segment",
                    "path_segments",
                    "calendar",
                    "pages_per_host",
                ],
            ),
            skipped: kinds(
                &self.skipped,
                &[
                    "robots",
                    "nofollow",
                    "scope",
                    "type",
                    "redirect_limit",
                    "bad_url",
                ],
            ),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
pub struct Snapshot {
    /// Pages fetched.
    pub pages: u64,
    /// Body bytes.
    pub bytes: u64,
    /// New URLs queued.
    pub queued: u64,
    /// New URLs forwarded to other nodes.
    #[serde(default)]
    pub forwarded: u64,
    /// URLs in the frontier.
    pub frontier: u64,
    /// Hosts being fetched.
    pub hosts_active: u64,
    /// Hosts with work.
    pub hosts_queued: u64,
    /// robots.txt fetched.
    pub robots_fetched: u64,
    /// Redirects followed.
    pub redirects: u64,
    /// Errors by kind.
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Answers by class.
    pub statuses: std::collections::BTreeMap<String, u64>,
    /// Duplicates by kind.
    pub duplicates: std::collections::BTreeMap<String, u64>,
    /// Revisits by what they found.
    #[serde(default)]
    pub revisits: std::collections::BTreeMap<String, u64>,
    /// Trap drops by limit.
    pub traps: std::collections::BTreeMap<String, u64>,
    /// Skips by reason.
    pub skipped: std::collections::BTreeMap<String, u64>,
}
