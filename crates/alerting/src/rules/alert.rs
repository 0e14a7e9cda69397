//! The alert state machine of one alerting rule: inactive → pending →
//! firing → resolved, with `for` and `keep_firing_for`, as Prometheus's
//! `AlertingRule.Eval` runs it.
//!
//! Why a module: this is the decision the chapter's alert system makes on
//! every evaluation, so it is a pure function of (alerts so far, what the
//! expression returned, the time) with no I/O, tested on its own.

use std::collections::BTreeMap;

/// A label set (sorted).
pub type LabelSet = BTreeMap<String, String>;

/// How long a resolved alert is kept (and re-sent as resolved), as Prometheus.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

/// The state of one alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Not active: resolved (kept for [`RESOLVED_RETENTION_MS`]).
    Inactive,
    /// Active for less than `for`.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// The name Prometheus uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule: one label set the expression returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Its labels (the sample's, minus `__name__`, plus the rule's and `alertname`).
    pub labels: LabelSet,
    /// Its annotations, expanded at the last evaluation that returned it.
    pub annotations: LabelSet,
    /// The sample's value at that evaluation.
    pub value: f64,
    /// Its state.
    pub state: AlertState,
    /// When it became pending.
    pub active_at_ms: i64,
    /// When it started firing.
    pub fired_at_ms: Option<i64>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
    /// Since when the expression no longer returns it while `keep_firing_for` holds it.
    pub keep_firing_since_ms: Option<i64>,
}

/// What the expression returned for one label set (labels and annotations expanded).
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Final labels of the alert.
    pub labels: LabelSet,
    /// Expanded annotations.
    pub annotations: LabelSet,
    /// The value.
    pub value: f64,
}

/// A change of state, for history and notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The alert's labels.
    pub labels: LabelSet,
    /// Before.
    pub from: AlertState,
    /// After (`Inactive` = resolved).
    pub to: AlertState,
    /// When.
    pub t_ms: i64,
}

/// Advances a rule's alerts to time `t_ms` given this evaluation's hits.
/// Returns the transitions, in label order.
pub fn step(
    active: &mut BTreeMap<LabelSet, Alert>,
    hits: Vec<Hit>,
    t_ms: i64,
    for_ms: i64,
    keep_firing_for_ms: i64,
) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut returned = std::collections::BTreeSet::new();
    for h in hits {
        returned.insert(h.labels.clone());
        match active.get_mut(&h.labels) {
            Some(a) if a.state != AlertState::Inactive => {
                a.value = h.value;
                a.annotations = h.annotations;
            }
            _ => {
                out.push(Transition {
                    labels: h.labels.clone(),
                    from: AlertState::Inactive,
                    to: AlertState::Pending,
                    t_ms,
                });
                active.insert(
                    h.labels.clone(),
                    Alert {
                        labels: h.labels,
                        annotations: h.annotations,
                        value: h.value,
                        state: AlertState::Pending,
                        active_at_ms: t_ms,
                        fired_at_ms: None,
                        resolved_at_ms: None,
                        keep_firing_since_ms: None,
                    },
                );
            }
        }
    }
    let mut remove = Vec::new();
    for (key, a) in active.iter_mut() {
        if !returned.contains(key) {
            let mut keep_firing = false;
            if a.state == AlertState::Firing && keep_firing_for_ms > 0 {
                let since = *a.keep_firing_since_ms.get_or_insert(t_ms);
                keep_firing = t_ms - since < keep_firing_for_ms;
            }
            if a.state == AlertState::Pending
                || a.resolved_at_ms
                    .is_some_and(|r| t_ms - r > RESOLVED_RETENTION_MS)
            {
                remove.push(key.clone());
            }
            if a.state != AlertState::Inactive && !keep_firing {
                out.push(Transition {
                    labels: key.clone(),
                    from: a.state,
                    to: AlertState::Inactive,
                    t_ms,
                });
                a.state = AlertState::Inactive;
                a.resolved_at_ms = Some(t_ms);
            }
            if !keep_firing {
                continue;
            }
        } else {
            a.keep_firing_since_ms = None;
        }
        if a.state == AlertState::Pending && t_ms - a.active_at_ms >= for_ms {
            out.push(Transition {
                labels: key.clone(),
                from: AlertState::Pending,
                to: AlertState::Firing,
                t_ms,
            });
            a.state = AlertState::Firing;
            a.fired_at_ms = Some(t_ms);
        }
    }
    for k in remove {
        active.remove(&k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(v: f64) -> Hit {
        Hit {
            labels: [("alertname".to_string(), "X".to_string())].into(),
            annotations: LabelSet::new(),
            value: v,
        }
    }

    #[test]
    fn pending_firing_resolved_and_keep_firing() {
        let mut a = BTreeMap::new();
        let states =
            |a: &BTreeMap<LabelSet, Alert>| a.values().map(|x| x.state).collect::<Vec<_>>();
        step(&mut a, vec![hit(1.0)], 0, 30_000, 20_000);
        assert_eq!(states(&a), [AlertState::Pending]);
        step(&mut a, vec![hit(1.0)], 15_000, 30_000, 20_000);
        assert_eq!(states(&a), [AlertState::Pending]);
        let t = step(&mut a, vec![hit(2.0)], 30_000, 30_000, 20_000);
        assert_eq!(t[0].to, AlertState::Firing);
        // Gone, but keep_firing_for holds it for 20 s.
        step(&mut a, vec![], 45_000, 30_000, 20_000);
        assert_eq!(states(&a), [AlertState::Firing]);
        let t = step(&mut a, vec![], 65_000, 30_000, 20_000);
        assert_eq!(
            (t[0].from, t[0].to),
            (AlertState::Firing, AlertState::Inactive)
        );
        assert_eq!(a.values().next().unwrap().resolved_at_ms, Some(65_000));
        // Kept 15 minutes as resolved, then dropped.
        step(
            &mut a,
            vec![],
            65_000 + RESOLVED_RETENTION_MS + 1,
            30_000,
            20_000,
        );
        assert!(a.is_empty());
        // A pending alert that disappears is dropped at once.
        step(&mut a, vec![hit(1.0)], 0, 30_000, 0);
        step(&mut a, vec![], 1, 30_000, 0);
        assert!(a.is_empty());
    }
}
