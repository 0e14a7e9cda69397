//! Alertmanager's API v2 (`/api/v2/alerts`, `/alerts/groups`, `/silences`,
//! `/silence/{id}`, `/status`, `/receivers`) as its OpenAPI spec shapes it,
//! so `amtool` and Prometheus talk to ours unchanged; plus our history
//! (`/api/v1/history`) and delivery backlog (`/api/v1/queues`).
//!
//! Why a module: the wire format only; every decision is [`super::state`]'s.
//! Reads are open; silence changes need a token of role `silencer` or
//! `admin` when tokens are configured (`Authorization: Bearer ...`).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::journal::Event;
use super::matcher::{self, Matcher};
use super::server::{AlertManager, Role, now_ms};
use super::state::{AmAlert, Silence, fingerprint};
use crate::http::rfc3339;
use crate::rules::LabelSet;

/// Bytes of a request body.
pub const BODY_BYTES_MAX: usize = 8 << 20;
/// Alerts in one POST.
pub const POST_ALERTS_MAX: usize = 10_000;

fn reply(status: StatusCode, body: Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    reply(StatusCode::BAD_REQUEST, Json::String(msg.into()))
}

fn parse_time(s: &Option<String>) -> Result<Option<i64>, String> {
    let Some(s) = s.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("bad time {s:?}: {e}"))?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    // Go's zero time means "not set".
    if t.year() <= 1 {
        return Ok(None);
    }
    i64::try_from(ms)
        .map(Some)
        .map_err(|_| format!("time out of range: {s:?}"))
}

fn params(q: Option<String>) -> Vec<(String, String)> {
    let uri: Option<axum::http::Uri> = format!("/?{}", q.unwrap_or_default()).parse().ok();
    uri.and_then(|u| axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&u).ok())
        .map(|q| q.0)
        .unwrap_or_default()
}

fn flag(p: &[(String, String)], name: &str) -> bool {
    p.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v != "false")
        .unwrap_or(true)
}

fn filters(p: &[(String, String)]) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (_, v) in p.iter().filter(|(k, _)| k == "filter") {
        out.extend(matcher::parse_list(v)?);
    }
    Ok(out)
}

/// `None` if allowed, else the refusal.
fn authorize(am: &AlertManager, headers: &HeaderMap, need: Role) -> Option<Response> {
    let tokens = &am.inner.opts.tokens;
    if tokens.is_empty() {
        return None;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| tokens.get(t)) {
        Some(role) if *role >= need => None,
        Some(_) => Some(reply(
            StatusCode::FORBIDDEN,
            Json::String(format!(
                "this token's role may not do this (needs {need:?})"
            )),
        )),
        None => Some(reply(
            StatusCode::UNAUTHORIZED,
            Json::String("a token is required: Authorization: Bearer <token>".into()),
        )),
    }
}

#[derive(Deserialize)]
struct PostableAlert {
    labels: LabelSet,
    #[serde(default)]
    annotations: LabelSet,
    #[serde(default, rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(default, rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

async fn post_alerts(State(am): State<AlertManager>, body: Bytes) -> Response {
    let list: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return bad(format!("bad alerts: {e}")),
    };
    if list.len() > POST_ALERTS_MAX {
        return bad(format!("more than {POST_ALERTS_MAX} alerts in one request"));
    }
    let now = now_ms();
    let resolve_ms = am.inner.state.lock().config.resolve_timeout_ms;
    let mut alerts = Vec::with_capacity(list.len());
    for p in list {
        if p.labels.is_empty() {
            return bad("at least one label pair required");
        }
        if let Some(k) = p.labels.keys().find(|k| !tsdb::labels::valid_label_name(k)) {
            return bad(format!("invalid label name {k:?}"));
        }
        let (starts, ends) = match (parse_time(&p.starts_at), parse_time(&p.ends_at)) {
            // Alertmanager's defaults: no start means now, or the end if one is given.
            (Ok(s), Ok(e)) => (s.or(e).unwrap_or(now), e),
            (Err(e), _) | (_, Err(e)) => return bad(e),
        };
        let ends = ends.unwrap_or(now.max(starts) + resolve_ms);
        if ends < starts {
            return bad("start time must be before end time");
        }
        alerts.push(AmAlert {
            labels: p.labels,
            annotations: p.annotations,
            starts_at_ms: starts,
            ends_at_ms: ends,
            generator_url: p.generator_url,
            updated_at_ms: now,
        });
    }
    let mut events = Vec::new();
    {
        let mut st = am.inner.state.lock();
        for a in alerts {
            let labels = a.labels.clone();
            match st.receive(a, now) {
                Ok((fp, Some(what))) => events.push(Event {
                    t_ms: now,
                    kind: "alert".into(),
                    labels,
                    subject: format!("{fp:016x}"),
                    what: what.into(),
                    receiver: String::new(),
                    attempt: 0,
                }),
                Ok(_) => {}
                Err(e) => return reply(StatusCode::SERVICE_UNAVAILABLE, Json::String(e)),
            }
        }
    }
    for e in events {
        am.event(e);
    }
    reply(StatusCode::OK, Json::Null)
}

fn gettable_alert(am: &AlertManager, st: &super::state::State, a: &AmAlert, now: i64) -> Json {
    let silenced = st.silenced_by(&a.labels, now);
    let inhibited: Vec<String> = st
        .inhibited_by(&a.labels, now)
        .iter()
        .map(|f| format!("{f:016x}"))
        .collect();
    let state = if silenced.is_empty() && inhibited.is_empty() {
        "active"
    } else {
        "suppressed"
    };
    let mut routes = Vec::new();
    st.config.route.matching(&a.labels, &mut routes);
    let mut receivers: Vec<&str> = routes.iter().map(|r| r.receiver.as_str()).collect();
    receivers.dedup();
    let _ = am;
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(Some(a.starts_at_ms)),
        "endsAt": rfc3339(Some(a.ends_at_ms)),
        "updatedAt": rfc3339(Some(a.updated_at_ms)),
        "generatorURL": a.generator_url,
        "fingerprint": format!("{:016x}", fingerprint(&a.labels)),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {"state": state, "silencedBy": silenced, "inhibitedBy": inhibited},
    })
}

fn wanted(p: &[(String, String)], j: &Json) -> bool {
    let silenced = j["status"]["silencedBy"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    let inhibited = j["status"]["inhibitedBy"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    let active = !silenced && !inhibited;
    (active && flag(p, "active"))
        || (silenced && flag(p, "silenced"))
        || (inhibited && flag(p, "inhibited"))
}

async fn get_alerts(State(am): State<AlertManager>, RawQuery(q): RawQuery) -> Response {
    listing(&am, q, |st, query, now| {
        listed(&am, st, st.alerts.values(), query, now)
    })
}

/// A list request's parameters and its `filter` matchers.
struct ListQuery {
    params: Vec<(String, String)>,
    filters: Vec<Matcher>,
}

/// Answers a list request: its query parsed (400 when a filter is bad),
/// then `list` run with the state locked, at one `now`.
fn listing(
    am: &AlertManager,
    q: Option<String>,
    list: impl FnOnce(&super::state::State, &ListQuery, i64) -> Vec<Json>,
) -> Response {
    let params = params(q);
    let filters = match filters(&params) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let query = ListQuery { params, filters };
    let now = now_ms();
    let st = am.inner.state.lock();
    reply(StatusCode::OK, Json::Array(list(&st, &query, now)))
}

/// The active `alerts` that match the query's filters and flags, as
/// Alertmanager lists them.
fn listed<'a>(
    am: &AlertManager,
    st: &super::state::State,
    alerts: impl Iterator<Item = &'a AmAlert>,
    query: &ListQuery,
    now: i64,
) -> Vec<Json> {
    alerts
        .filter(|a| !a.resolved(now) && matcher::all(&query.filters, &a.labels))
        .map(|a| gettable_alert(am, st, a, now))
        .filter(|j| wanted(&query.params, j))
        .collect()
}

async fn get_groups(State(am): State<AlertManager>, RawQuery(q): RawQuery) -> Response {
    listing(&am, q, |st, query, now| {
        st.groups
            .values()
            .filter_map(|g| {
                let members = g.alerts.iter().filter_map(|fp| st.alerts.get(fp));
                let alerts = listed(&am, st, members, query, now);
                (!alerts.is_empty()).then(
                    || json!({"labels": g.labels, "receiver": {"name": g.receiver}, "alerts": alerts}),
                )
            })
            .collect()
    })
}

fn silence_json(s: &Silence, now: i64) -> Json {
    json!({
        "id": s.id,
        "status": {"state": s.state(now)},
        "updatedAt": rfc3339(Some(s.updated_at_ms)),
        "matchers": s.matchers,
        "startsAt": rfc3339(Some(s.starts_at_ms)),
        "endsAt": rfc3339(Some(s.ends_at_ms)),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

async fn get_silences(State(am): State<AlertManager>, RawQuery(q): RawQuery) -> Response {
    listing(&am, q, |st, query, now| {
        st.silences
            .values()
            .filter(|s| {
                // A silence passes a filter when some matcher of it equals each filter's label.
                query.filters.iter().all(|m| {
                    s.matchers.iter().any(|sm| {
                        sm.name == m.name
                            && m.matches(&[(sm.name.clone(), sm.value.clone())].into())
                    })
                })
            })
            .map(|s| silence_json(s, now))
            .collect()
    })
}

async fn get_silence(State(am): State<AlertManager>, Path(id): Path<String>) -> Response {
    let st = am.inner.state.lock();
    match st.silences.get(&id) {
        Some(s) => reply(StatusCode::OK, silence_json(s, now_ms())),
        None => reply(
            StatusCode::NOT_FOUND,
            Json::String(format!("silence {id} not found")),
        ),
    }
}

#[derive(Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<Matcher>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(default, rename = "createdBy")]
    created_by: String,
    #[serde(default)]
    comment: String,
}

async fn post_silence(State(am): State<AlertManager>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = authorize(&am, &headers, Role::Silencer) {
        return r;
    }
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad(format!("bad silence: {e}")),
    };
    let now = now_ms();
    let matchers = match p
        .matchers
        .into_iter()
        .map(Matcher::checked)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(m) if !m.is_empty() && m.len() <= 100 => m,
        Ok(_) => return bad("a silence needs 1 to 100 matchers"),
        Err(e) => return bad(e),
    };
    let (starts, ends) = match (parse_time(&p.starts_at), parse_time(&p.ends_at)) {
        (Ok(s), Ok(Some(e))) => (s.unwrap_or(now).max(now), e),
        (Ok(_), Ok(None)) => return bad("endsAt is required"),
        (Err(e), _) | (_, Err(e)) => return bad(e),
    };
    if ends <= starts {
        return bad("silence invalid: end time must not be before start time");
    }
    if p.comment.len() > 4096 || p.created_by.len() > 256 {
        return bad("comment or createdBy too long");
    }
    let id = match p.id.filter(|i| !i.is_empty()) {
        Some(id) => {
            if !am.inner.state.lock().silences.contains_key(&id) {
                return reply(
                    StatusCode::NOT_FOUND,
                    Json::String(format!("silence {id} not found")),
                );
            }
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let s = Silence {
        id: id.clone(),
        matchers,
        starts_at_ms: starts,
        ends_at_ms: ends,
        created_by: p.created_by,
        comment: p.comment,
        updated_at_ms: now,
    };
    {
        let st = am.inner.state.lock();
        if st.silences.len() >= super::state::SILENCES_MAX && !st.silences.contains_key(&id) {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                Json::String("too many silences".into()),
            );
        }
    }
    let what = format!(
        "created by {}: {}",
        s.created_by,
        s.matchers
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    if let Some(failed) = store_silence(&am, s, what, now).await {
        return failed;
    }
    reply(StatusCode::OK, json!({"silenceID": id}))
}

/// Journals silence `s` (durable before it takes effect), records `what`
/// happened to it in the history, and applies it; the 500 to answer if the
/// journal cannot store it.
async fn store_silence(am: &AlertManager, s: Silence, what: String, now: i64) -> Option<Response> {
    if let Err(e) = am.inner.journal.put_silence(&s).await {
        return Some(reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            Json::String(format!("cannot store the silence: {e}")),
        ));
    }
    am.event(Event {
        t_ms: now,
        kind: "silence".into(),
        labels: LabelSet::new(),
        subject: s.id.clone(),
        what,
        receiver: String::new(),
        attempt: 0,
    });
    am.inner.state.lock().silences.insert(s.id.clone(), s);
    None
}

async fn delete_silence(
    State(am): State<AlertManager>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = authorize(&am, &headers, Role::Silencer) {
        return r;
    }
    let now = now_ms();
    let expired = {
        let st = am.inner.state.lock();
        match st.silences.get(&id) {
            None => {
                return reply(
                    StatusCode::NOT_FOUND,
                    Json::String(format!("silence {id} not found")),
                );
            }
            Some(s) if s.state(now) == "expired" => {
                return bad(format!("silence {id} already expired"));
            }
            Some(s) => Silence {
                ends_at_ms: now,
                starts_at_ms: s.starts_at_ms.min(now),
                updated_at_ms: now,
                ..s.clone()
            },
        }
    };
    if let Some(failed) = store_silence(&am, expired, "expired".into(), now).await {
        return failed;
    }
    reply(StatusCode::OK, Json::Null)
}

async fn status(State(am): State<AlertManager>) -> Response {
    let original = am.inner.state.lock().config.original.clone();
    reply(
        StatusCode::OK,
        json!({
            "cluster": {"name": "hyperscale", "status": "disabled", "peers": []},
            "config": {"original": original},
            "uptime": rfc3339(Some(am.inner.started_ms)),
            "versionInfo": {"branch": "main", "buildDate": "", "buildUser": "", "goVersion": "none (Rust)", "revision": "", "version": env!("CARGO_PKG_VERSION")},
        }),
    )
}

async fn receivers(State(am): State<AlertManager>) -> Response {
    let names: Vec<Json> = am
        .inner
        .state
        .lock()
        .config
        .receivers
        .keys()
        .map(|n| json!({"name": n}))
        .collect();
    reply(StatusCode::OK, Json::Array(names))
}

async fn history(State(am): State<AlertManager>, RawQuery(q): RawQuery) -> Response {
    let p = params(q);
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let limit = get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(1000)
        .min(super::journal::HISTORY_MAX);
    let f = match filters(&p) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let kind = get("kind");
    let since = get("since_ms")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    let events = am.history(
        |e| {
            kind.as_ref().is_none_or(|k| &e.kind == k)
                && e.t_ms >= since
                && matcher::all(&f, &e.labels)
        },
        limit,
    );
    reply(StatusCode::OK, json!({"events": events}))
}

async fn queues(State(am): State<AlertManager>) -> Response {
    let b: BTreeMap<String, usize> = am.backlog();
    reply(StatusCode::OK, json!({"backlog": b}))
}

/// The routes.
pub fn router(am: AlertManager) -> Router {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/v1/history", get(history))
        .route("/api/v1/queues", get(queues))
        .route("/-/healthy", get(|| async { "OK" }))
        .route("/-/ready", get(|| async { "OK" }))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(am)
}
