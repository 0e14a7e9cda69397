//! Prometheus metrics: what the limiter decided, and how its store is doing.
//!
//! Why these: the notes ask to monitor whether the algorithm and the rules are
//! effective (too many rejections means the rules are too strict; a flash sale
//! breaking through means the algorithm is wrong). `decisions` by rule and
//! outcome answers both; `store_errors` and `breaker_open` say when the
//! limiter is failing open. Label values are bounded: rule names come from
//! the rules file, outcomes from a fixed list — never from request data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of one decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The rule's name.
    pub rule: String,
    /// One of [`Outcome::label`].
    pub outcome: &'static str,
}

/// What happened to a request under one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Within the limit.
    Allowed,
    /// Over a soft limit's nominal threshold but within its overshoot.
    AllowedOverSoft,
    /// Over the limit: 429.
    Rejected,
    /// Over a shadow-mode limit: logged, let through.
    ShadowRejected,
    /// The store failed and the policy let it through.
    FailedOpen,
    /// The store failed and the policy rejected it.
    FailedClosed,
}

impl Outcome {
    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::AllowedOverSoft => "allowed_over_soft_limit",
            Outcome::Rejected => "rejected",
            Outcome::ShadowRejected => "shadow_rejected",
            Outcome::FailedOpen => "store_failed_open",
            Outcome::FailedClosed => "store_failed_closed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// Every metric of the crate; cheap to clone (all handles are `Arc`s).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    decisions: Family<DecisionLabels, Counter>,
    store_errors: Counter,
    breaker_open: Gauge,
    reloads: Family<OutcomeLabel, Counter>,
    queued: Gauge,
}

impl Metrics {
    /// Fresh, unregistered metrics.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Registers every metric under `registry` (give it a prefix such as
    /// `registry.sub_registry_with_prefix("ratelimit")`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "decisions",
            "Rate-limit decisions by rule and outcome",
            self.decisions.clone(),
        );
        registry.register(
            "store_errors",
            "Counter store calls that failed or timed out",
            self.store_errors.clone(),
        );
        registry.register(
            "breaker_open",
            "1 while the remote store's circuit breaker is open",
            self.breaker_open.clone(),
        );
        registry.register(
            "rules_reloads",
            "Rules file reloads by outcome (ok, rejected)",
            self.reloads.clone(),
        );
        registry.register(
            "queued_requests",
            "Requests waiting in the layer's queue",
            self.queued.clone(),
        );
    }

    /// Counts one decision.
    pub fn decision(&self, rule: &str, outcome: Outcome) {
        self.decisions
            .get_or_create(&DecisionLabels {
                rule: rule.to_owned(),
                outcome: outcome.label(),
            })
            .inc();
    }

    /// How many decisions of `rule` had `outcome` (for tests and status pages).
    pub fn decisions_of(&self, rule: &str, outcome: Outcome) -> u64 {
        self.decisions
            .get_or_create(&DecisionLabels {
                rule: rule.to_owned(),
                outcome: outcome.label(),
            })
            .get()
    }

    /// Counts one failed store call.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// Failed store calls so far.
    pub fn store_errors(&self) -> u64 {
        self.store_errors.get()
    }

    /// Records the breaker's state.
    pub fn set_breaker_open(&self, open: bool) {
        self.breaker_open.set(i64::from(open));
    }

    /// Counts one reload attempt.
    pub fn reload(&self, outcome: &'static str) {
        self.reloads.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Adjusts the number of queued requests.
    pub fn queued_delta(&self, delta: i64) {
        self.queued.inc_by(delta);
    }
}
