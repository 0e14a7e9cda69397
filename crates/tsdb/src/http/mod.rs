//! The Prometheus HTTP API over [`Db`]: `/api/v1/query`, `query_range`,
//! `series`, `labels`, `label/<name>/values`, `status/buildinfo`, and the
//! remote-write receiver `/api/v1/write`.
//!
//! Why a module: the chapter's query service sits between storage and
//! dashboards; speaking Prometheus's API means Grafana, `promtool` and every
//! client work unchanged. Parameters come from the query string or a form
//! body (GET or POST, as Prometheus accepts); PromQL evaluation and appends
//! touch storage, so they run on the blocking pool, never on async workers.

pub mod json;
pub mod remote_write;
mod rfc3339;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};

use crate::Db;
use crate::promql::{self, EvalError, QueryLimits};

/// Bytes a remote-write or form body may have.
pub const BODY_BYTES_MAX: usize = 32 << 20;

/// What the API serves.
#[derive(Clone)]
pub struct Api {
    /// The database.
    pub db: Arc<Db>,
    /// Per-query bounds.
    pub limits: QueryLimits,
}

/// The API's routes.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/write", post(write))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(|| async { "Ready.\n" }))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(api)
}

/// Serves the API on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, api: Api) -> std::io::Result<()> {
    axum::serve(listener, router(api)).await
}

/// Serves the API until `shutdown` resolves, then finishes open requests.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    api: Api,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(api))
        .with_graceful_shutdown(shutdown)
        .await
}

fn reply(status: u16, body: Json) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn fail(e: EvalError) -> Response {
    let (status, body) = json::error(&e);
    reply(status, body)
}

type Params = Vec<(String, String)>;

fn params(q: Option<String>, form: Option<Bytes>) -> Params {
    let mut out: Params = Vec::new();
    for raw in [q.map(Bytes::from), form].into_iter().flatten() {
        if let Ok(p) = serde_urlencoded_pairs(&raw) {
            out.extend(p);
        }
    }
    out
}

fn serde_urlencoded_pairs(raw: &[u8]) -> Result<Params, ()> {
    // axum's Query uses serde_urlencoded; go through it for the same decoding.
    let uri = format!("/?{}", String::from_utf8_lossy(raw));
    let uri: axum::http::Uri = uri.parse().map_err(|_| ())?;
    axum::extract::Query::<Params>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| ())
}

fn param<'p>(p: &'p Params, name: &str) -> Option<&'p str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A time parameter: float Unix seconds or RFC 3339, as Prometheus takes.
fn parse_time(p: &Params, name: &str, default_ms: i64) -> Result<i64, EvalError> {
    let Some(s) = param(p, name) else {
        return Ok(default_ms);
    };
    let bad = || {
        EvalError::BadData(format!(
            "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid timestamp"
        ))
    };
    let Ok(secs) = s.parse::<f64>() else {
        return rfc3339::parse_ms(s).ok_or_else(bad);
    };
    if !secs.is_finite() || secs.abs() > 9.2e15 {
        return Err(bad());
    }
    Ok((secs * 1000.0).round() as i64)
}

fn parse_step(p: &Params) -> Result<i64, EvalError> {
    let s = param(p, "step").ok_or_else(|| {
        EvalError::BadData(
            "invalid parameter \"step\": cannot parse \"\" to a valid duration".into(),
        )
    })?;
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
        && secs.abs() < 9.2e15
    {
        return Ok((secs * 1000.0).round() as i64);
    }
    promql_parser::util::parse_duration(s)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(|| {
            EvalError::BadData(format!(
                "invalid parameter \"step\": cannot parse \"{s}\" to a valid duration"
            ))
        })
}

fn now_ms() -> i64 {
    i64::try_from(clock::now_ms()).unwrap_or(i64::MAX)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EvalError> + Send + 'static,
) -> Result<T, EvalError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EvalError::Execution(format!("query task failed: {e}")))?
}

async fn query(State(api): State<Api>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = params(q, Some(body));
    let run = move || {
        let expr = param(&p, "query").unwrap_or_default().to_string();
        let t = parse_time(&p, "time", now_ms())?;
        promql::instant_query(&api.db, &expr, t, &api.limits)
    };
    match blocking(run).await {
        Ok(v) => reply(200, json::success(json::query_data(&v))),
        Err(e) => fail(e),
    }
}

async fn query_range(State(api): State<Api>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = params(q, Some(body));
    let run = move || {
        let expr = param(&p, "query").unwrap_or_default().to_string();
        let start = parse_time(&p, "start", i64::MIN).and_then(|t| {
            (t != i64::MIN).then_some(t).ok_or_else(|| {
                EvalError::BadData(
                    "invalid parameter \"start\": cannot parse \"\" to a valid timestamp".into(),
                )
            })
        })?;
        let end = parse_time(&p, "end", i64::MIN).and_then(|t| {
            (t != i64::MIN).then_some(t).ok_or_else(|| {
                EvalError::BadData(
                    "invalid parameter \"end\": cannot parse \"\" to a valid timestamp".into(),
                )
            })
        })?;
        let step = parse_step(&p)?;
        promql::range_query(&api.db, &expr, start, end, step, &api.limits)
    };
    match blocking(run).await {
        Ok(v) => reply(200, json::success(json::query_data(&v))),
        Err(e) => fail(e),
    }
}

fn match_sets(p: &Params) -> Result<Vec<Vec<crate::Matcher>>, EvalError> {
    p.iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| match promql::parse(v)? {
            promql_parser::parser::Expr::VectorSelector(vs) => promql::Evaluator::matchers(&vs),
            _ => Err(EvalError::BadData(format!(
                "invalid parameter \"match[]\": {v:?} is not a series selector"
            ))),
        })
        .collect()
}

async fn series(State(api): State<Api>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = params(q, Some(body));
    let run = move || {
        let sets = match_sets(&p)?;
        if sets.is_empty() {
            return Err(EvalError::BadData("no match[] parameter provided".into()));
        }
        let mut all = std::collections::BTreeSet::new();
        for m in sets {
            all.extend(api.db.series(&m));
        }
        Ok(Json::Array(
            all.iter()
                .map(|l| {
                    Json::Object(
                        l.iter()
                            .map(|x| (x.name.clone(), Json::String(x.value.clone())))
                            .collect(),
                    )
                })
                .collect(),
        ))
    };
    match blocking(run).await {
        Ok(v) => reply(200, json::success(v)),
        Err(e) => fail(e),
    }
}

/// Label names (`name` is `None`) or one label's values over the series of
/// the `match[]` sets (all series without one) in `[start, end]`.
async fn names_or_values(api: Api, p: Params, name: Option<String>) -> Response {
    let run = move || {
        if let Some(n) = &name
            && !crate::labels::valid_label_name(n)
        {
            return Err(EvalError::BadData(format!("invalid label name: {n:?}")));
        }
        let (start, end) = (
            parse_time(&p, "start", i64::MIN)?,
            parse_time(&p, "end", i64::MAX)?,
        );
        let mut sets = match_sets(&p)?;
        if sets.is_empty() {
            sets.push(Vec::new());
        }
        let mut all = std::collections::BTreeSet::new();
        for m in sets {
            all.extend(match &name {
                None => api.db.label_names(&m, start, end),
                Some(n) => api.db.label_values(n, &m, start, end),
            });
        }
        Ok(json!(all))
    };
    match blocking(run).await {
        Ok(v) => reply(200, json::success(v)),
        Err(e) => fail(e),
    }
}

async fn labels(State(api): State<Api>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    names_or_values(api, params(q, Some(body)), None).await
}

async fn label_values(
    State(api): State<Api>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    names_or_values(api, params(q, None), Some(name)).await
}

async fn buildinfo() -> Response {
    reply(
        200,
        json::success(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "", "branch": "", "buildUser": "", "buildDate": "",
            "goVersion": "none (Rust)",
        })),
    )
}

async fn write(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING)
        && enc.as_bytes() != b"snappy"
    {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Encoding, expected snappy\n",
        )
            .into_response();
    }
    let db = api.db.clone();
    let res = tokio::task::spawn_blocking(move || {
        let batch = remote_write::decode(&body, &db.options().limits)?;
        if batch.is_empty() {
            return Ok(());
        }
        db.append_wait(batch).map_err(|e| e.to_string())
    })
    .await;
    match res {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(msg)) => (StatusCode::BAD_REQUEST, format!("{msg}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
