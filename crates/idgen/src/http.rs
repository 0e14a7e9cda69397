//! IDs over HTTP: `GET /api/v1/ids?count=N`, for callers that are not Rust.
//!
//! A generator embedded in each service is the fastest way to get IDs, but a
//! service in another language needs a network hop. This module is that hop:
//! [`router`] builds the `axum` routes around a shared generator and [`serve`]
//! runs them on a bound listener until a shutdown future completes, so both
//! `hyperscale id serve` and `hyperscale up` host the same thing.
//!
//! - `GET /api/v1/ids?count=N` → `{"ids": ["…", …]}`, `1 <= N <= count_max`.
//!   IDs are JSON *strings*: numbers above 2^53 lose precision in JavaScript.
//! - `GET /api/v1/ids/{id}` → the decoded ID (time, datacenter, machine, sequence).
//! - Bad input → 400 `{"error": …}`; a generator that must not issue (clock
//!   stepped back too far, lease lost) → 503 `{"error": …}`; an unknown path →
//!   404; a missing or wrong bearer token when `auth_token` is set → 401.
//!
//! Generating runs inline on the async worker: it blocks at most until the
//! next millisecond (sequence exhausted) or `backward_wait_ms_max`, a few ms.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::lease::{LeaseConfig, LeaseError};
use crate::machine::{Claimed, MachineClaim};
use crate::snowflake::{GenerateError, Generator, GeneratorConfig};
use crate::system::Metrics;

/// The ID service's configuration (`[id]` in a config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; loopback by default.
    pub bind: String,
    /// Most IDs one request may ask for: bounds response size and the time a
    /// request holds a worker (1,000 IDs ≈ a quarter of a millisecond's quota).
    /// From 1 to [`COUNT_MAX_LIMIT`].
    pub count_max: usize,
    /// When set, every request needs `Authorization: Bearer <auth_token>`.
    pub auth_token: Option<String>,
    /// The generator: epoch, layout, datacenter, machine.
    pub generator: GeneratorConfig,
    /// A RESP store (`redis://host:port`) to lease the machine id from; when
    /// unset, the id is claimed as `machine_claim` says.
    pub lease_store: Option<String>,
    /// How the machine id is claimed without a lease store: `"lock"` (a lock
    /// file per id in `lock_dir`) or `"fixed"` (`generator.machine`). See
    /// [`crate::machine`].
    pub machine_claim: MachineClaim,
    /// Where `machine_claim = "lock"` keeps its lock files; default
    /// [`crate::machine::default_lock_dir`]. Servers see each other's claims
    /// only through the same directory.
    pub lock_dir: Option<PathBuf>,
    /// How leases are taken and renewed.
    pub lease: LeaseConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:7070".to_owned(),
            count_max: 1000,
            auth_token: None,
            generator: GeneratorConfig::default(),
            lease_store: None,
            machine_claim: MachineClaim::Lock,
            lock_dir: None,
            lease: LeaseConfig::default(),
        }
    }
}

/// The largest `count_max` accepted: 100,000 IDs hold an async worker for
/// about 25 ms (4,096 IDs per ms) and make a 2.5 MB reply.
pub const COUNT_MAX_LIMIT: usize = 100_000;

impl ServerConfig {
    /// Refuses settings under which the service could not serve a request.
    pub fn validate(&self) -> Result<(), ServeError> {
        if !(1..=COUNT_MAX_LIMIT).contains(&self.count_max) {
            return Err(ServeError::InvalidConfig(format!(
                "count_max = {} must be from 1 to {COUNT_MAX_LIMIT} \
                 (the most IDs one request may ask for)",
                self.count_max
            )));
        }
        Ok(())
    }
}

/// Why the service could not start or stopped. (The causes are in the
/// messages, not chained as sources, so `{:#}` prints each once.)
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The generator config is invalid.
    #[error(transparent)]
    Generator(#[from] GenerateError),
    /// A service setting is invalid.
    #[error("invalid ID service config: {0}")]
    InvalidConfig(String),
    /// No machine id could be claimed (lock files).
    #[error("claiming a machine id: {0}")]
    Claim(String),
    /// No machine id could be leased.
    #[error("leasing a machine id: {0}")]
    Lease(LeaseError),
    /// The listener failed.
    #[error("serving HTTP: {0}")]
    Io(std::io::Error),
}

impl From<LeaseError> for ServeError {
    fn from(err: LeaseError) -> Self {
        ServeError::Lease(err)
    }
}

impl From<std::io::Error> for ServeError {
    fn from(err: std::io::Error) -> Self {
        ServeError::Io(err)
    }
}

/// Claims a machine id (see [`crate::machine`]), then serves until
/// `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let claimed = crate::machine::claim_async(&config).await?;
    serve_claimed(listener, &claimed, &config, shutdown).await
}

/// Serves IDs from an already claimed generator until `shutdown` completes.
pub async fn serve_claimed(
    listener: tokio::net::TcpListener,
    claimed: &Claimed,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = router(claimed.generator.clone(), config);
    tracing::info!(addr = ?listener.local_addr().ok(), "id service listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// What every handler needs.
struct AppState<C: Clock> {
    generator: Arc<Generator<C>>,
    metrics: Metrics,
    count_max: usize,
    /// `Bearer <token>` expected in `Authorization`, if auth is on.
    bearer: Option<String>,
}

/// The routes around `generator`, with metrics nobody scrapes.
pub fn router<C: Clock + 'static>(generator: Arc<Generator<C>>, config: &ServerConfig) -> Router {
    router_with_metrics(generator, config, Metrics::default())
}

/// The routes around `generator`, counting into `metrics`.
pub fn router_with_metrics<C: Clock + 'static>(
    generator: Arc<Generator<C>>,
    config: &ServerConfig,
    metrics: Metrics,
) -> Router {
    let state = Arc::new(AppState {
        generator,
        metrics,
        count_max: config.count_max,
        bearer: config.auth_token.as_ref().map(|t| format!("Bearer {t}")),
    });
    Router::new()
        .route("/api/v1/ids", get(next_ids::<C>))
        .route("/api/v1/ids/{id}", get(decode_id::<C>))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; try GET /api/v1/ids?count=N",
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed; use GET",
            )
        })
        .with_state(state)
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body {
        error: String,
    }
    (
        status,
        Json(Body {
            error: message.into(),
        }),
    )
        .into_response()
}

/// The 401 to send when auth is on and the bearer token is missing or wrong.
fn denied<C: Clock>(state: &AppState<C>, headers: &HeaderMap) -> Option<Response> {
    let expected = state.bearer.as_ref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(expected.as_str()) {
        return None;
    }
    Some(error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token",
    ))
}

/// The `ids` reply.
#[derive(Serialize, Deserialize)]
struct IdsBody {
    ids: Vec<String>,
}

async fn next_ids<C: Clock>(
    State(state): State<Arc<AppState<C>>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    if let Some(denied) = denied(&state, &headers) {
        return denied;
    }
    let parsed = query
        .map_err(|e| format!("bad query string: {e}"))
        .and_then(|Query(params)| parse_count(&params, state.count_max));
    let count = match parsed {
        Ok(count) => count,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut ids = Vec::with_capacity(count);
    let result = state.generator.next_ids(count, &mut ids);
    state.metrics.issued.inc_by(ids.len() as u64);
    match result {
        Ok(()) => Json(IdsBody {
            ids: ids.iter().map(u64::to_string).collect(),
        })
        .into_response(),
        Err(err) => {
            state.metrics.refused.inc();
            tracing::error!(%err, "refusing to issue IDs");
            error(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
        }
    }
}

/// `count` from the query pairs: absent means 1; otherwise it must appear
/// once, as a whole number in `1..=count_max`; no other parameter is accepted.
fn parse_count(params: &[(String, String)], count_max: usize) -> Result<usize, String> {
    let mut count = None;
    for (key, value) in params {
        if key != "count" {
            return Err(format!("unknown parameter {key:?}; the only one is count"));
        }
        if count.replace(value).is_some() {
            return Err("parameter count is given more than once; give it once".to_owned());
        }
    }
    let Some(text) = count else {
        return Ok(1);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=count_max).contains(&n) => Ok(n),
        _ => Err(format!(
            "count must be a whole number from 1 to {count_max}, got {text:?}"
        )),
    }
}

async fn decode_id<C: Clock>(
    State(state): State<Arc<AppState<C>>>,
    headers: HeaderMap,
    Path(text): Path<String>,
) -> Response {
    if let Some(denied) = denied(&state, &headers) {
        return denied;
    }
    let Ok(id) = text.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not a 64-bit unsigned ID"),
        );
    };
    let g = &state.generator;
    match crate::decode(id, g.layout(), g.epoch_ms()) {
        Ok(decoded) => Json(decoded).into_response(),
        Err(err) => error(StatusCode::BAD_REQUEST, err.to_string()),
    }
}
