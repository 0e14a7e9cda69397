//! The limiter: rules in, counters checked, one verdict out.
//!
//! This is the notes' "rate limiting middleware" minus HTTP: fetch the rules
//! from the cache ([`RulesHandle`]), find the limits that apply, check each
//! against its counter in the store, and combine. Every matching limit is
//! checked and charged, even after one rejects (as envoyproxy/ratelimit
//! does): a request rejected by limit B still counts against limit A. That
//! errs toward rejecting, never toward admitting too much, so hard limits stay
//! hard, and shadow-mode limits see the real traffic.
//!
//! Soft limits are enforced at their overshoot but reported at their nominal
//! value; a request admitted inside the overshoot is counted as
//! `allowed_over_soft_limit`. When the store fails, the failure policy
//! decides: fail open (default, the notes' fault tolerance) or fail closed.

use crate::algorithm::{Algorithm, Decision, NANOS_PER_SECOND, Nanos};
use crate::metrics::{Metrics, Outcome};
use crate::rules::reload::RulesHandle;
use crate::rules::{Attributes, Match, Mode, Rule};
use crate::store::Store;
use std::sync::Arc;
use std::time::Instant;

/// What to do when the counter store cannot answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Admit: a limiter outage must not become an API outage.
    #[default]
    Open,
    /// Reject: for limits that protect something more fragile than the API.
    Closed,
}

/// One limit's part in a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitVerdict {
    /// The limit.
    pub rule: Arc<Rule>,
    /// Its counter.
    pub counter_key: String,
    /// The decision, reported against the nominal limit.
    pub decision: Decision,
    /// How it was counted.
    pub outcome: Outcome,
}

/// The combined decision for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Whether every enforced limit admitted the request.
    pub allowed: bool,
    /// One entry per matching limit, in rules order.
    pub limits: Vec<LimitVerdict>,
}

impl Verdict {
    /// The limit to report in headers: on rejection the enforced rejecting
    /// limit with the longest wait; otherwise the one with least remaining.
    pub fn binding(&self) -> Option<&LimitVerdict> {
        let enforced = self.limits.iter().filter(|l| !l.rule.shadow);
        if self.allowed {
            enforced.min_by_key(|l| l.decision.remaining)
        } else {
            enforced
                .filter(|l| !l.decision.allowed)
                .max_by_key(|l| l.decision.retry_after_ns)
        }
    }

    /// How long an admitted request must wait (leaking bucket queues).
    pub fn delay_ns(&self) -> Nanos {
        self.limits
            .iter()
            .filter(|l| !l.rule.shadow)
            .map(|l| l.decision.delay_ns)
            .max()
            .unwrap_or(0)
    }
}

/// Rules + store + metrics.
#[derive(Debug)]
pub struct RateLimiter {
    rules: RulesHandle,
    store: Store,
    metrics: Metrics,
    policy: FailurePolicy,
    /// Origin of the local monotonic clock handed to the in-process store.
    epoch: Instant,
}

impl RateLimiter {
    /// A limiter over `rules` counting in `store`.
    pub fn new(
        rules: RulesHandle,
        store: Store,
        metrics: Metrics,
        policy: FailurePolicy,
    ) -> RateLimiter {
        RateLimiter {
            rules,
            store,
            metrics,
            policy,
            epoch: Instant::now(),
        }
    }

    /// The rules handle (to reload or inspect).
    pub fn rules(&self) -> &RulesHandle {
        &self.rules
    }

    /// The metrics this limiter updates.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The limits that apply to a request (synchronous: no store access).
    pub fn matches(&self, request: &(impl Attributes + ?Sized)) -> Vec<Match> {
        self.rules.get().matching(request)
    }

    /// Checks every matching limit and combines the decisions.
    pub async fn decide(&self, matches: Vec<Match>) -> Verdict {
        let mut verdict = Verdict {
            allowed: true,
            limits: Vec::with_capacity(matches.len()),
        };
        for found in matches {
            let now = self.epoch.elapsed().as_nanos() as Nanos;
            let rule = &found.rule;
            let result = self
                .store
                .check(&found.counter_key, rule.algorithm, &rule.enforced, now)
                .await;
            let (decision, outcome) = match result {
                Ok(decision) => judge(rule, decision),
                Err(error) => self.on_store_error(rule, &error),
            };
            if outcome == Outcome::ShadowRejected {
                tracing::info!(rule = %rule.name, key = %found.counter_key, "shadow mode: would have rejected");
            }
            self.metrics.decision(&rule.name, outcome);
            verdict.allowed &= !matches!(outcome, Outcome::Rejected | Outcome::FailedClosed);
            verdict.limits.push(LimitVerdict {
                rule: rule.clone(),
                counter_key: found.counter_key,
                decision,
                outcome,
            });
        }
        verdict
    }

    /// Convenience: [`matches`](Self::matches) then [`decide`](Self::decide).
    pub async fn check(&self, request: &(impl Attributes + ?Sized)) -> Verdict {
        let matches = self.matches(request);
        self.decide(matches).await
    }

    /// Drops idle keys from an in-process store (returns how many); run it
    /// periodically so memory is returned between bursts.
    pub fn sweep_idle(&self) -> usize {
        match &self.store {
            Store::Memory(store) => store.sweep(self.epoch.elapsed().as_nanos() as Nanos),
            Store::Redis(_) => 0, // Redis expires keys itself (PEXPIRE).
        }
    }

    fn on_store_error(&self, rule: &Rule, error: &crate::store::StoreError) -> (Decision, Outcome) {
        tracing::debug!(rule = %rule.name, store = self.store.kind(), %error, policy = ?self.policy, "store failed");
        let allowed = self.policy == FailurePolicy::Open;
        let decision = Decision {
            allowed,
            limit: reported_limit(rule),
            remaining: if allowed { reported_limit(rule) } else { 0 },
            retry_after_ns: if allowed { 0 } else { NANOS_PER_SECOND },
            reset_after_ns: 0,
            delay_ns: 0,
        };
        (
            decision,
            if allowed {
                Outcome::FailedOpen
            } else {
                Outcome::FailedClosed
            },
        )
    }
}

/// The number clients are told: the burst for buckets, the count for windows.
fn reported_limit(rule: &Rule) -> u64 {
    match rule.algorithm {
        Algorithm::TokenBucket | Algorithm::LeakingBucket => rule.nominal.burst,
        _ => rule.nominal.limit,
    }
}

/// Re-expresses a decision against the nominal limit and names its outcome.
pub(crate) fn judge(rule: &Rule, mut decision: Decision) -> (Decision, Outcome) {
    let nominal = reported_limit(rule);
    let enforced = match rule.algorithm {
        Algorithm::TokenBucket | Algorithm::LeakingBucket => rule.enforced.burst,
        _ => rule.enforced.limit,
    };
    let overshoot = enforced - nominal;
    decision.limit = nominal;
    let over_nominal = decision.remaining < overshoot;
    decision.remaining = decision.remaining.saturating_sub(overshoot);
    let outcome = match (decision.allowed, rule.shadow) {
        (true, _) if rule.mode == Mode::Soft && over_nominal => Outcome::AllowedOverSoft,
        (true, _) => Outcome::Allowed,
        (false, true) => Outcome::ShadowRejected,
        (false, false) => Outcome::Rejected,
    };
    if rule.shadow {
        decision.allowed = true;
    }
    (decision, outcome)
}
