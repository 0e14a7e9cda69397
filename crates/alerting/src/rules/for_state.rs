//! `ALERTS_FOR_STATE`: the series Prometheus writes so an alert's `for`
//! survives a restart. Every evaluation writes, for each pending or firing
//! alert, a sample whose value is the alert's active-since time (Unix
//! seconds) under the alert's labels; the first evaluation after a start
//! reads the last such sample (within the outage tolerance) and moves the
//! new alert's active-since back, so an alert pending for 9 of its 10
//! minutes before a restart does not wait another 10.
//!
//! The rules are Prometheus's (`RestoreForState`): rules whose `for` is
//! shorter than the grace period are not restored; an alert that had
//! already served its `for` keeps its old start (it fires at the next
//! evaluation); one with less than the grace period left gets the grace
//! period; otherwise the outage is added to its start (the time down does
//! not count as pending). Nothing is written for a group until it has
//! restored, so the first evaluation cannot read its own fresh samples.

use tsdb::{Db, Matcher};

use super::alert::{Alert, AlertState, LabelSet};

/// Prometheus's default `--rules.alert.for-grace-period`.
pub const FOR_GRACE_PERIOD_MS: i64 = 10 * 60_000;
/// Prometheus's default `--rules.alert.for-outage-tolerance`.
pub const OUTAGE_TOLERANCE_MS: i64 = 60 * 60_000;

/// The `ALERTS_FOR_STATE` samples of `alerts` (pending and firing ones).
pub fn samples<'a>(alerts: impl Iterator<Item = &'a Alert>) -> Vec<(LabelSet, f64)> {
    alerts
        .filter(|a| a.state != AlertState::Inactive)
        .map(|a| {
            let mut labels = a.labels.clone();
            labels.insert("__name__".into(), "ALERTS_FOR_STATE".into());
            (labels, (a.active_at_ms / 1000) as f64)
        })
        .collect()
}

/// When an alert restored at `now_ms` counts as active since, given the
/// stored active-since `stored_ms` and the time of the last stored sample
/// `down_at_ms` (pure: Prometheus's cases, see the module doc).
pub fn restored_active_at_ms(
    for_ms: i64,
    grace_ms: i64,
    stored_ms: i64,
    down_at_ms: i64,
    now_ms: i64,
) -> i64 {
    let remaining_ms = for_ms - (down_at_ms - stored_ms);
    if remaining_ms <= 0 {
        stored_ms
    } else if remaining_ms < grace_ms {
        now_ms + grace_ms - for_ms
    } else {
        stored_ms + (now_ms - down_at_ms)
    }
}

/// Restores the active-since of the pending `alerts` of a rule with
/// `for_ms` from the database, at `now_ms`.
pub fn restore(
    db: &Db,
    alerts: &mut std::collections::BTreeMap<LabelSet, Alert>,
    for_ms: i64,
    (grace_ms, tolerance_ms): (i64, i64),
    now_ms: i64,
) {
    if for_ms < grace_ms {
        return;
    }
    for alert in alerts.values_mut() {
        if alert.state != AlertState::Pending {
            continue;
        }
        let mut matchers = vec![Matcher::eq("__name__", "ALERTS_FOR_STATE")];
        matchers.extend(alert.labels.iter().map(|(k, v)| Matcher::eq(k, v)));
        let found = match db.select(&matchers, now_ms - tolerance_ms, now_ms) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read ALERTS_FOR_STATE; the alert restarts its `for`");
                continue;
            }
        };
        // The series with exactly the alert's labels (matchers only
        // require them), its last real sample.
        let last = found
            .iter()
            .filter(|(labels, _)| labels.len() == alert.labels.len() + 1)
            .flat_map(|(_, samples)| samples.iter())
            .filter(|(_, v)| v.is_finite())
            .max_by_key(|(t, _)| *t);
        if let Some(&(down_at_ms, stored_s)) = last {
            let stored_ms = (stored_s as i64).saturating_mul(1000);
            alert.active_at_ms =
                restored_active_at_ms(for_ms, grace_ms, stored_ms, down_at_ms, now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::restored_active_at_ms as at;

    const MIN: i64 = 60_000;

    #[test]
    fn restoration_follows_prometheus_cases() {
        let (for_ms, grace) = (30 * MIN, 10 * MIN);
        // Pending 5 min, down 20 min: the outage is added (25 left).
        assert_eq!(at(for_ms, grace, 0, 5 * MIN, 25 * MIN), 20 * MIN);
        // Pending 25 min (5 left < grace): waits the grace period.
        assert_eq!(at(for_ms, grace, 0, 25 * MIN, 40 * MIN), 20 * MIN);
        // Already past `for`: keeps the old start and fires at once.
        assert_eq!(at(for_ms, grace, 0, 31 * MIN, 40 * MIN), 0);
    }
}
