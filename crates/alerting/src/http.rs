//! `/api/v1/rules` and `/api/v1/alerts` shaped as Prometheus shapes them,
//! so Grafana, `promtool` and scripts written for Prometheus read ours.
//!
//! Why a module: the rules' state is what operators look at; this only
//! renders [`RuleManager::groups`] into Prometheus's JSON.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};

use crate::format::go_float;
use crate::rules::group::{GroupState, RuleState};
use crate::rules::{Alert, AlertState, RuleManager};

/// RFC 3339 with nanoseconds, UTC, as Go's `time.Time` marshals (the zero
/// time when `t_ms` is `None`).
pub fn rfc3339(t_ms: Option<i64>) -> String {
    let Some(t) = t_ms else {
        return "0001-01-01T00:00:00Z".into();
    };
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t) * 1_000_000)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

fn alert_json(a: &Alert) -> Json {
    let mut o = json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(Some(a.active_at_ms)),
        "value": go_float(a.value, 'e', None),
    });
    if let Some(k) = a.keep_firing_since_ms {
        o["keepFiringSince"] = json!(rfc3339(Some(k)));
    }
    o
}

fn active(r: &RuleState) -> impl Iterator<Item = &Alert> {
    r.alerts
        .values()
        .filter(|a| a.state != AlertState::Inactive)
}

fn rule_json(r: &RuleState, with_alerts: bool) -> Json {
    let mut o = json!({
        "name": r.spec.name,
        "query": r.spec.query,
        "labels": r.spec.labels,
        "health": r.health.as_str(),
        "evaluationTime": r.eval_seconds,
        "lastEvaluation": rfc3339(r.last_eval_ms),
    });
    if let Some(e) = &r.last_error {
        o["lastError"] = json!(e);
    }
    if r.spec.alerting {
        let state = active(r)
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive);
        o["state"] = json!(state.as_str());
        o["duration"] = json!(r.spec.for_ms as f64 / 1000.0);
        o["keepFiringFor"] = json!(r.spec.keep_firing_for_ms as f64 / 1000.0);
        o["annotations"] = json!(r.spec.annotations);
        if with_alerts {
            o["alerts"] = Json::Array(active(r).map(alert_json).collect());
        }
        o["type"] = json!("alerting");
    } else {
        o["type"] = json!("recording");
    }
    o
}

/// The `data` of `/api/v1/rules`: `kind` is `alert`, `record` or `None` for both.
pub fn rules_data(
    groups: &[GroupState],
    kind: Option<&str>,
    with_alerts: bool,
    names: &[String],
    group_names: &[String],
) -> Json {
    let groups: Vec<Json> = groups
        .iter()
        .filter(|g| group_names.is_empty() || group_names.contains(&g.spec.name))
        .filter_map(|g| {
            let rules: Vec<Json> = g
                .rules
                .iter()
                .filter(|r| match kind {
                    Some("alert") => r.spec.alerting,
                    Some("record") => !r.spec.alerting,
                    _ => true,
                })
                .filter(|r| names.is_empty() || names.contains(&r.spec.name))
                .map(|r| rule_json(r, with_alerts))
                .collect();
            if rules.is_empty() && (kind.is_some() || !names.is_empty()) {
                return None;
            }
            Some(json!({
                "name": g.spec.name,
                "file": g.spec.file,
                "rules": rules,
                "interval": g.interval_ms as f64 / 1000.0,
                "limit": g.spec.limit,
                "evaluationTime": g.eval_seconds,
                "lastEvaluation": rfc3339(g.last_eval_ms),
            }))
        })
        .collect();
    json!({ "groups": groups })
}

/// The `data` of `/api/v1/alerts`: every pending or firing alert.
pub fn alerts_data(groups: &[GroupState]) -> Json {
    let alerts: Vec<Json> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .flat_map(active)
        .map(alert_json)
        .collect();
    json!({ "alerts": alerts })
}

fn reply(status: axum::http::StatusCode, body: Json) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn rules(State(m): State<RuleManager>, RawQuery(q): RawQuery) -> Response {
    let uri: Option<axum::http::Uri> = format!("/?{}", q.unwrap_or_default()).parse().ok();
    let params: Vec<(String, String)> = uri
        .and_then(|u| axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&u).ok())
        .map(|q| q.0)
        .unwrap_or_default();
    let get_all = |k: &str| {
        params
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let kind = params
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.as_str());
    if let Some(k) = kind
        && k != "alert"
        && k != "record"
    {
        return reply(
            axum::http::StatusCode::BAD_REQUEST,
            json!({"status": "error", "errorType": "bad_data", "error": format!("invalid parameter \"type\": unsupported value {k:?}")}),
        );
    }
    let exclude = params
        .iter()
        .any(|(k, v)| k == "exclude_alerts" && v == "true");
    let groups = m.groups();
    let data = rules_data(
        &groups,
        kind,
        !exclude,
        &get_all("rule_name[]"),
        &get_all("rule_group[]"),
    );
    reply(
        axum::http::StatusCode::OK,
        json!({"status": "success", "data": data}),
    )
}

async fn alerts(State(m): State<RuleManager>) -> Response {
    reply(
        axum::http::StatusCode::OK,
        json!({"status": "success", "data": alerts_data(&m.groups())}),
    )
}

/// The routes, to merge with tsdb's API router.
pub fn router(m: RuleManager) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .with_state(m)
}
