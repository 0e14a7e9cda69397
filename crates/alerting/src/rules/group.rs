//! One evaluation of a rule group at a time `t`: each rule's PromQL runs in
//! process against [`tsdb::Db`] (the evaluator tsdb's HTTP API calls), a
//! recording rule's result is appended as new series (so later rules of the
//! group see it), an alerting rule's result goes through the state machine
//! ([`super::alert::step`]), and the `ALERTS` series is written as
//! Prometheus writes it.
//!
//! Why a module: this is the evaluation the notes' alert system performs
//! on the stored series; it owns the rules' runtime state (health, last
//! error, timing, active alerts) and nothing else: scheduling is
//! [`super::manager`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use tsdb::promql::{Element, EvalError, Evaluator, QueryLimits, Value};
use tsdb::{Db, SeriesSamples};

use super::alert::{self, Alert, AlertState, Hit, LabelSet, Transition};
use super::file::{GroupSpec, RuleSpec};
use crate::template::Data;

/// A rule's health, as `/api/v1/rules` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// The last evaluation succeeded.
    Ok,
    /// The last evaluation failed.
    Err,
}

impl Health {
    /// The name Prometheus uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule and what its evaluations left.
#[derive(Clone, Debug)]
pub struct RuleState {
    /// The rule.
    pub spec: RuleSpec,
    /// Its health.
    pub health: Health,
    /// The last error.
    pub last_error: Option<String>,
    /// When it was last evaluated.
    pub last_eval_ms: Option<i64>,
    /// How long that took, in seconds.
    pub eval_seconds: f64,
    /// Its alerts (alerting rules), by label set.
    pub alerts: BTreeMap<LabelSet, Alert>,
    /// Series it wrote at the last evaluation (for staleness markers).
    written: BTreeSet<LabelSet>,
}

/// A group and its rules' state.
#[derive(Clone, Debug)]
pub struct GroupState {
    /// The group.
    pub spec: GroupSpec,
    /// Its interval.
    pub interval_ms: i64,
    /// Its rules, in order.
    pub rules: Vec<RuleState>,
    /// When it was last evaluated.
    pub last_eval_ms: Option<i64>,
    /// How long that took, in seconds.
    pub eval_seconds: f64,
    /// Whether its alerts' `for` state was restored from `ALERTS_FOR_STATE`
    /// (after the first evaluation; see [`super::for_state`]).
    pub restored: bool,
}

/// What evaluation needs besides the group.
pub struct EvalContext<'a> {
    /// The database.
    pub db: &'a Db,
    /// Bounds of each query.
    pub limits: &'a QueryLimits,
    /// External labels (templates' `$externalLabels`).
    pub external_labels: &'a LabelSet,
    /// External URL (templates' `$externalURL`).
    pub external_url: &'a str,
    /// `for` grace period and outage tolerance of the restoration.
    pub for_restore_ms: (i64, i64),
}

/// A transition of one alert of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleTransition {
    /// The rule.
    pub rule: String,
    /// The change.
    pub transition: Transition,
}

impl GroupState {
    /// A group never evaluated; `default_interval_ms` applies without `interval`.
    pub fn new(spec: GroupSpec, default_interval_ms: i64) -> Self {
        assert!(
            default_interval_ms > 0,
            "evaluation interval must be positive"
        );
        let rules = spec
            .rules
            .iter()
            .map(|r| RuleState {
                spec: r.clone(),
                health: Health::Unknown,
                last_error: None,
                last_eval_ms: None,
                eval_seconds: 0.0,
                alerts: BTreeMap::new(),
                written: BTreeSet::new(),
            })
            .collect();
        Self {
            interval_ms: spec.interval_ms.unwrap_or(default_interval_ms),
            spec,
            rules,
            last_eval_ms: None,
            eval_seconds: 0.0,
            restored: false,
        }
    }

    /// Evaluates every rule at `t_ms`, appending recorded series and
    /// `ALERTS` to the database, and returns the alerts' transitions.
    pub fn eval(&mut self, ctx: &EvalContext<'_>, t_ms: i64) -> Vec<RuleTransition> {
        let started = Instant::now();
        let mut transitions = Vec::new();
        let query_t = t_ms - self.spec.query_offset_ms;
        for rule in &mut self.rules {
            let rule_started = Instant::now();
            let result = eval_rule(rule, &self.spec, ctx, (query_t, t_ms), self.restored);
            rule.eval_seconds = rule_started.elapsed().as_secs_f64();
            rule.last_eval_ms = Some(t_ms);
            match result {
                Ok(ts) => {
                    rule.health = Health::Ok;
                    rule.last_error = None;
                    transitions.extend(ts.into_iter().map(|transition| RuleTransition {
                        rule: rule.spec.name.clone(),
                        transition,
                    }));
                }
                Err(e) => {
                    tracing::warn!(group = %self.spec.name, rule = %rule.spec.name, error = %e, "rule evaluation failed");
                    rule.health = Health::Err;
                    rule.last_error = Some(e);
                }
            }
        }
        if !self.restored {
            for rule in self.rules.iter_mut().filter(|r| r.spec.alerting) {
                let restore = ctx.for_restore_ms;
                super::for_state::restore(
                    ctx.db,
                    &mut rule.alerts,
                    rule.spec.for_ms,
                    restore,
                    t_ms,
                );
            }
            self.restored = true;
        }
        self.last_eval_ms = Some(t_ms);
        self.eval_seconds = started.elapsed().as_secs_f64();
        transitions
    }
}

fn vector(ctx: &EvalContext<'_>, rule: &RuleSpec, t_ms: i64) -> Result<Vec<Element>, String> {
    let mut ev = Evaluator::new(ctx.db, ctx.limits, t_ms, t_ms, 0, Instant::now());
    match ev.eval(&rule.expr, t_ms) {
        Ok(Value::Vector(v)) => Ok(v),
        Ok(Value::Scalar(v)) => Ok(vec![Element {
            metric: Default::default(),
            value: v,
        }]),
        Ok(_) => Err("rule result is not a vector or scalar".into()),
        Err(EvalError::BadData(e) | EvalError::Execution(e)) => Err(e),
        Err(e @ EvalError::Timeout(_)) => Err(e.to_string()),
    }
}

fn append(ctx: &EvalContext<'_>, series: Vec<(LabelSet, f64)>, t_ms: i64) -> Result<(), String> {
    let mut batch: Vec<SeriesSamples> = Vec::with_capacity(series.len());
    for (labels, v) in series {
        let l = ctx.db.labels(labels).map_err(|e| e.to_string())?;
        batch.push((l, vec![(t_ms, v)]));
    }
    if batch.is_empty() {
        return Ok(());
    }
    // Visible to queries once appended; durability follows with the WAL's
    // next group commit (rule output can be recomputed, as in Prometheus).
    ctx.db.append(batch).map(drop).map_err(|e| e.to_string())
}

/// Series gone since the last evaluation get a staleness marker.
fn with_stale(
    written: &mut BTreeSet<LabelSet>,
    mut now: Vec<(LabelSet, f64)>,
) -> Vec<(LabelSet, f64)> {
    let fresh: BTreeSet<LabelSet> = now.iter().map(|(l, _)| l.clone()).collect();
    for gone in written.difference(&fresh) {
        now.push((gone.clone(), tsdb::chunk::stale_nan()));
    }
    *written = fresh;
    now
}

fn eval_rule(
    rule: &mut RuleState,
    group: &GroupSpec,
    ctx: &EvalContext<'_>,
    (query_t, t_ms): (i64, i64),
    write_for_state: bool,
) -> Result<Vec<Transition>, String> {
    let v = vector(ctx, &rule.spec, query_t)?;
    if group.limit > 0 && v.len() > group.limit {
        let what = if rule.spec.alerting {
            "alerts"
        } else {
            "series"
        };
        return Err(format!(
            "exceeded limit of {} with {} {what}",
            group.limit,
            v.len()
        ));
    }
    if !rule.spec.alerting {
        let mut out: BTreeMap<LabelSet, f64> = BTreeMap::new();
        for e in v {
            let mut labels = e.metric.into_map();
            labels.extend(group.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            labels.extend(rule.spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            labels.insert("__name__".into(), rule.spec.name.clone());
            if out.insert(labels, e.value).is_some() {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
        }
        let series = with_stale(&mut rule.written, out.into_iter().collect());
        append(ctx, series, t_ms)?;
        return Ok(Vec::new());
    }
    let mut hits: BTreeMap<LabelSet, Hit> = BTreeMap::new();
    for e in v {
        let mut sample_labels = e.metric.into_map();
        sample_labels.remove("__name__");
        let data = Data {
            labels: &sample_labels,
            external_labels: ctx.external_labels,
            external_url: ctx.external_url,
            value: e.value,
        };
        let mut labels = sample_labels.clone();
        labels.extend(group.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (k, t) in &rule.spec.label_templates {
            labels.insert(k.clone(), t.render(&data).map_err(|e| e.to_string())?);
        }
        labels.insert("alertname".into(), rule.spec.name.clone());
        let mut annotations = LabelSet::new();
        for (k, t) in &rule.spec.annotation_templates {
            let text = t
                .render(&data)
                .unwrap_or_else(|e| format!("<error expanding template: {e}>"));
            annotations.insert(k.clone(), text);
        }
        if hits.contains_key(&labels) {
            return Err(
                "vector contains metrics with the same labelset after applying alert labels".into(),
            );
        }
        hits.insert(
            labels.clone(),
            Hit {
                labels,
                annotations,
                value: e.value,
            },
        );
    }
    let transitions = alert::step(
        &mut rule.alerts,
        hits.into_values().collect(),
        t_ms,
        rule.spec.for_ms,
        rule.spec.keep_firing_for_ms,
    );
    let mut alerts_series: Vec<(LabelSet, f64)> = rule
        .alerts
        .values()
        .filter(|a| a.state != AlertState::Inactive)
        .map(|a| {
            let mut l = a.labels.clone();
            l.insert("__name__".into(), "ALERTS".into());
            l.insert("alertstate".into(), a.state.as_str().into());
            (l, 1.0)
        })
        .collect();
    if write_for_state {
        alerts_series.extend(super::for_state::samples(rule.alerts.values()));
    }
    let series = with_stale(&mut rule.written, alerts_series);
    append(ctx, series, t_ms)?;
    Ok(transitions)
}
