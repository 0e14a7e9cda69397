//! Rule evaluation over fixed series: pending → firing → resolved at the
//! right evaluation, with the right labels and annotations, and the
//! Prometheus-shaped HTTP API over the result.

use std::collections::BTreeMap;

use alerting::rules::{AlertState, RuleManager};
use tsdb::promql::{QueryLimits, QueryValue, Value, instant_query};

use crate::support::{STEP_MS, setup};

/// `(t_s, alertname, instance-or-job, state)` of every active alert after each evaluation.
fn timeline(m: &RuleManager, until_ms: i64) -> Vec<(i64, String, String, AlertState)> {
    let mut out = Vec::new();
    let mut t = 0;
    while t <= until_ms {
        m.eval_all_at(t);
        for g in m.groups() {
            for r in &g.rules {
                for a in r
                    .alerts
                    .values()
                    .filter(|a| a.state != AlertState::Inactive)
                {
                    let who = a
                        .labels
                        .get("instance")
                        .or(a.labels.get("job"))
                        .cloned()
                        .unwrap_or_default();
                    out.push((t / 1000, r.spec.name.clone(), who, a.state));
                }
            }
        }
        t += STEP_MS;
    }
    out
}

fn states_of(
    tl: &[(i64, String, String, AlertState)],
    name: &str,
    who: &str,
) -> Vec<(i64, AlertState)> {
    tl.iter()
        .filter(|(_, n, w, _)| n == name && w == who)
        .map(|(t, _, _, s)| (*t, *s))
        .collect()
}

#[test]
fn pending_firing_resolved_with_for_and_keep_firing_for() {
    let dir = tempfile::tempdir().unwrap();
    let (db, m) = setup(dir.path());
    let tl = timeline(&m, 300_000);
    use AlertState::{Firing, Pending};
    // b is down from 60 s to 165 s: pending for `for: 30s`, firing from 90 s, resolved at 180 s.
    let b = states_of(&tl, "InstanceDown", "b");
    let want: Vec<(i64, AlertState)> = [(60, Pending), (75, Pending)]
        .into_iter()
        .chain((90..=165).step_by(15).map(|t| (t, Firing)))
        .collect();
    assert_eq!(b, want);
    // c flaps (one scrape down, then two): pending only, never fires.
    assert_eq!(
        states_of(&tl, "InstanceDown", "c"),
        vec![(45, Pending), (120, Pending), (135, Pending)]
    );
    assert!(states_of(&tl, "InstanceDown", "a").is_empty());
    // JobDegraded (no `for`) fires at once and keep_firing_for holds it 30 s after it clears.
    assert_eq!(
        states_of(&tl, "JobDegraded", "db"),
        vec![
            (45, Firing),
            (60, Firing),
            (75, Firing),
            (120, Firing),
            (135, Firing),
            (150, Firing),
            (165, Firing)
        ]
    );
    // The resolved alert is kept (inactive, resolvedAt) for re-notification.
    let g = &m.groups()[0];
    let down = g
        .rules
        .iter()
        .find(|r| r.spec.name == "InstanceDown")
        .unwrap();
    let resolved: Vec<_> = down
        .alerts
        .values()
        .filter(|a| a.state == AlertState::Inactive)
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].resolved_at_ms, Some(180_000));
    assert_eq!(resolved[0].fired_at_ms, Some(90_000));
    // Labels and annotations from templates.
    let want_labels: BTreeMap<String, String> = [
        ("alertname", "InstanceDown"),
        ("instance", "b"),
        ("job", "api"),
        ("severity", "page"),
        ("team", "api-oncall"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(resolved[0].labels, want_labels);
    assert_eq!(
        resolved[0].annotations["summary"],
        "Instance b of api is down"
    );
    assert_eq!(resolved[0].annotations["value"], "0 (0.0)");
    // Recording rule output and ALERTS are queryable.
    let q = |expr: &str, t: i64| match instant_query(&db, expr, t, &QueryLimits::default()).unwrap()
    {
        QueryValue::Instant {
            value: Value::Vector(v),
            ..
        } => v,
        other => panic!("{other:?}"),
    };
    let rec = q("job:up:sum{job=\"api\"}", 90_000);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].value, 1.0);
    let alerts = q(
        "ALERTS{alertname=\"InstanceDown\",alertstate=\"firing\"}",
        120_000,
    );
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].metric["instance"], "b");
    // Staleness: after resolution ALERTS has no firing series.
    assert!(
        q(
            "ALERTS{alertname=\"InstanceDown\",alertstate=\"firing\"}",
            200_000
        )
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_v1_rules_and_alerts_are_shaped_as_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, m) = setup(dir.path());
    for t in (0..=90_000).step_by(15_000) {
        m.eval_all_at(t);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, alerting::http::router(m)).into_future());
    let get = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let alerts = get("/api/v1/alerts").await;
    assert_eq!(alerts["status"], "success");
    let list = alerts["data"]["alerts"].as_array().unwrap();
    let b = list
        .iter()
        .find(|a| a["labels"]["instance"] == "b")
        .unwrap();
    assert_eq!(b["state"], "firing");
    assert_eq!(b["activeAt"], "1970-01-01T00:01:00Z");
    assert_eq!(b["value"], "0e+00");
    assert_eq!(b["annotations"]["summary"], "Instance b of api is down");

    let rules = get("/api/v1/rules").await;
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "availability");
    assert_eq!(group["interval"], 15.0);
    assert_eq!(group["lastEvaluation"], "1970-01-01T00:01:30Z");
    let r = group["rules"].as_array().unwrap();
    assert_eq!(r[0]["type"], "recording");
    assert_eq!(r[0]["name"], "job:up:sum");
    assert_eq!(r[0]["health"], "ok");
    assert_eq!(r[1]["type"], "alerting");
    assert_eq!(r[1]["state"], "firing");
    assert_eq!(r[1]["duration"], 30.0);
    assert_eq!(r[1]["labels"]["team"], "{{ $labels.job }}-oncall");
    assert!(
        r[1]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["instance"] == "b")
    );
    assert_eq!(r[2]["keepFiringFor"], 30.0);

    let only_rec = get("/api/v1/rules?type=record").await;
    assert_eq!(
        only_rec["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let bad = reqwest::get(format!("http://{addr}/api/v1/rules?type=nope"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// `ALERTS_FOR_STATE` (Prometheus's series) carries an alert's `for` across
/// a restart: pending 20 of 30 minutes, down 5, it fires 10 minutes after
/// the restart (not 30), and the series holds the active-since in seconds.
#[test]
fn for_state_survives_a_restart() {
    const MIN: i64 = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(tsdb::Db::open(dir.path(), tsdb::Options::default()).unwrap());
    let labels = db
        .labels(vec![("__name__", "up"), ("job", "batch")])
        .unwrap();
    // The series grows with the clock (the head accepts recent samples only).
    let at = |minute: i64| {
        let sample = vec![(minute * MIN, 0.0)];
        db.append(vec![(labels.clone(), sample)])
            .unwrap()
            .wait()
            .unwrap();
        minute * MIN
    };
    let rules = "groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: Long\n    expr: up == 0\n    for: 30m\n";
    let manager = || {
        let file = alerting::rules::parse_rule_file("r.yml", rules).unwrap();
        let opts = alerting::rules::RuleOptions::default();
        alerting::rules::RuleManager::new(db.clone(), vec![file], opts)
    };
    let alert = |m: &alerting::rules::RuleManager| {
        let groups = m.groups();
        let a = groups[0].rules[0].alerts.values().next().unwrap().clone();
        (a.state, a.active_at_ms)
    };
    let first = manager();
    for minute in 0..=20 {
        first.eval_all_at(at(minute));
    }
    assert_eq!(alert(&first), (AlertState::Pending, 0));
    let stored = db
        .select(
            &[
                tsdb::Matcher::eq("__name__", "ALERTS_FOR_STATE"),
                tsdb::Matcher::eq("alertname", "Long"),
                tsdb::Matcher::eq("job", "batch"),
            ],
            0,
            20 * MIN,
        )
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].1.last(), Some(&(20 * MIN, 0.0)));

    // Restarted 5 minutes later: the outage does not count as pending.
    let second = manager();
    second.eval_all_at(at(25));
    assert_eq!(alert(&second), (AlertState::Pending, 5 * MIN));
    second.eval_all_at(at(34));
    assert_eq!(alert(&second).0, AlertState::Pending);
    second.eval_all_at(at(35));
    assert_eq!(alert(&second).0, AlertState::Firing);
}
