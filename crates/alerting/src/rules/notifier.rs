//! Sends the rule manager's alerts to alert managers (`POST
//! /api/v2/alerts`), as Prometheus's notifier does: firing alerts with an
//! `endsAt` four evaluation intervals ahead (so an alert whose rule stops
//! evaluating resolves by itself), resolved alerts with their `endsAt`;
//! each re-sent at most once per `resend_delay` unless it changed.
//!
//! Why a module: the hand-off between the chapter's rule evaluation and
//! its alert manager; sending runs on its own thread behind a bounded
//! queue, so a slow alert manager never stalls evaluation (a full queue
//! drops the batch; the next evaluation sends the alerts again).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value as Json, json};

use super::alert::{AlertState, LabelSet};
use super::group::{GroupState, RuleTransition};
use super::manager::Listener;
use crate::http::rfc3339;

/// Re-send interval of an unchanged alert (Prometheus's `--rules.alert.resend-delay`).
pub const RESEND_DELAY_MS: i64 = 60_000;

/// A listener for [`super::RuleManager::subscribe`] posting to `urls` (base URLs).
pub fn notifier(urls: Vec<String>, external_labels: LabelSet) -> std::io::Result<Listener> {
    let (tx, rx) = mpsc::sync_channel::<Vec<Json>>(64);
    std::thread::Builder::new().name("alert-notifier".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            tracing::error!("the alert notifier cannot start a runtime");
            return;
        };
        let client = reqwest::Client::new();
        while let Ok(batch) = rx.recv() {
            for url in &urls {
                let url = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
                // The request is built inside the runtime: its timeout needs the reactor.
                let res = rt.block_on(async { client.post(&url).timeout(Duration::from_secs(10)).json(&batch).send().await });
                match res {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => tracing::warn!(%url, status = %r.status(), "alert manager refused alerts"),
                    Err(e) => tracing::warn!(%url, error = %e, "cannot send alerts"),
                }
            }
        }
    })?;
    let sent: Arc<Mutex<BTreeMap<LabelSet, (i64, AlertState)>>> = Arc::default();
    Ok(Arc::new(move |g: &GroupState, _t: &[RuleTransition]| {
        let Some(now) = g.last_eval_ms else { return };
        let mut sent = sent.lock();
        let mut batch = Vec::new();
        for r in g.rules.iter().filter(|r| r.spec.alerting) {
            for a in r.alerts.values().filter(|a| a.state != AlertState::Pending) {
                let last = sent.get(&a.labels).copied();
                if last.is_some_and(|(t, s)| s == a.state && now - t < RESEND_DELAY_MS) {
                    continue;
                }
                sent.insert(a.labels.clone(), (now, a.state));
                let mut labels = external_labels.clone();
                labels.extend(a.labels.clone());
                let ends = match a.resolved_at_ms {
                    Some(r) if a.state == AlertState::Inactive => r,
                    _ => now + 4 * g.interval_ms.max(RESEND_DELAY_MS),
                };
                batch.push(json!({
                    "labels": labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(Some(a.fired_at_ms.unwrap_or(a.active_at_ms))),
                    "endsAt": rfc3339(Some(ends)),
                }));
            }
        }
        sent.retain(|_, (t, _)| now - *t < 2 * super::alert::RESOLVED_RETENTION_MS);
        if !batch.is_empty() && tx.try_send(batch).is_err() {
            tracing::warn!("alert notifier queue full; alerts go out with the next evaluation");
        }
    }))
}
