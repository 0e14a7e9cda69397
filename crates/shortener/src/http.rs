//! The HTTP surface: the chapter's API, the redirect, and the small web page.
//!
//! - `POST /api/v1/data/shorten` `{"longUrl": ..., "alias"?: ..., "expiresInSeconds"?: ...}`
//!   → `201 {"shortUrl", "code", "longUrl", ...}` (or `200` with the existing code);
//! - `GET /{code}` → `301`/`302` with `Location`, or a 404 page;
//! - `GET /api/v1/{code}` → the link as JSON; `GET /api/v1/{code}/stats` → clicks;
//! - `GET /` and `POST /` → the web page and its form.
//!
//! Every API error is JSON `{"error": "..."}` with a 4xx/5xx status; a store
//! outage is a 503, never a hang (the store client bounds every call).

use clock::now_ms;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use serde_json::json;

use crate::analytics::{self, Click, Recorder};
use crate::app::{App, ShortenError, ShortenRequest, Shortened};
use crate::page;

/// What every handler shares.
#[derive(Clone)]
pub struct HttpState {
    /// The shortener.
    pub app: Arc<App>,
    /// Where clicks go; `None` when analytics are off.
    pub recorder: Option<Recorder>,
}

/// The routes. Body size is limited to the configured maximum; the two
/// shorten routes (API and form) sit behind the rate limiter when one is given.
pub fn router(state: HttpState, limit: Option<ratelimit::RateLimitLayer>) -> Router {
    let body_limit = state.app.config().body_bytes_max;
    let mut shorten_routes = Router::new()
        .route("/", post(index_form))
        .route("/api/v1/data/shorten", post(shorten));
    if let Some(limit) = limit {
        shorten_routes = shorten_routes.route_layer(limit);
    }
    Router::new()
        .merge(shorten_routes)
        .route("/", get(index))
        .route("/api/v1/{code}", get(link_info))
        .route("/api/v1/{code}/stats", get(link_stats))
        .route("/stats/{code}", get(stats_page))
        .route("/{code}", get(redirect))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn error_response(err: &ShortenError) -> Response {
    let status = match err {
        ShortenError::Invalid(_) => StatusCode::BAD_REQUEST,
        ShortenError::AliasTaken(_) => StatusCode::CONFLICT,
        ShortenError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ShortenError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        tracing::warn!("shorten failed: {err}");
    }
    error(status, err)
}

fn link_json(app: &App, shortened: &Shortened) -> serde_json::Value {
    let link = &shortened.link;
    json!({
        "shortUrl": format!("{}/{}", app.config().public_base(), link.code),
        "code": link.code,
        "longUrl": link.long_url,
        "createdMs": link.created_ms,
        "expiresMs": link.expires_ms,
        "custom": link.custom,
    })
}

async fn shorten(State(state): State<HttpState>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        // Too large (413) or unreadable: axum's status says which.
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    // The body is parsed as JSON whatever its Content-Type: `curl -d` labels
    // JSON as a form, and the chapter's API has only one body format.
    let request: ShortenRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("bad JSON body: {err}")),
    };
    match state.app.shorten(request, now_ms()).await {
        Ok(shortened) => {
            let status = if shortened.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(link_json(&state.app, &shortened))).into_response()
        }
        Err(err) => error_response(&err),
    }
}

async fn link_info(State(state): State<HttpState>, Path(code): Path<String>) -> Response {
    match state.app.resolve(&code, now_ms()).await {
        Ok(Some(link)) => Json(link_json(
            &state.app,
            &Shortened {
                link,
                created: false,
            },
        ))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no link with code `{code}`")),
        Err(err) => error_response(&err),
    }
}

async fn link_stats(State(state): State<HttpState>, Path(code): Path<String>) -> Response {
    match state.app.resolve(&code, now_ms()).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no link with code `{code}`")),
        Err(err) => return error_response(&err),
    }
    match analytics::stats(&**state.app.store().kv(), &code).await {
        Ok(stats) => Json(stats).into_response(),
        Err(err) => error_response(&err.into()),
    }
}

async fn stats_page(State(state): State<HttpState>, Path(code): Path<String>) -> Response {
    let link = match state.app.resolve(&code, now_ms()).await {
        Ok(Some(link)) => link,
        Ok(None) => return (StatusCode::NOT_FOUND, Html(page::not_found(&code))).into_response(),
        Err(err) => return error_response(&err),
    };
    match analytics::stats(&**state.app.store().kv(), &code).await {
        Ok(stats) => Html(page::stats(&link, &stats)).into_response(),
        Err(err) => error_response(&err.into()),
    }
}

async fn redirect(
    State(state): State<HttpState>,
    Path(code): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    redirect_response(&state, &code, &method, &headers).await
}

/// `GET /{code}`: the redirect to the code's long URL (the status per
/// config), with the click recorded; a 404 page for an unknown code. Also
/// called by [`crate::server`]'s fast path, before the router.
pub async fn redirect_response(
    state: &HttpState,
    code: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let header_text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    let click = ClickHeaders {
        referer: header_text(header::REFERER),
        user_agent: header_text(header::USER_AGENT),
        is_head: *method == Method::HEAD,
    };
    match resolve_redirect(state, code, click).await {
        Ok(Some(redirect)) => (
            redirect.status,
            [
                (header::LOCATION, redirect.link.long_url.as_str()),
                (header::CACHE_CONTROL, redirect.cache_control),
            ],
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, Html(page::not_found(code))).into_response(),
        Err(err) => error_response(&err),
    }
}

/// A redirect to send: status (301 or 302 per config), `Location`, and the
/// `Cache-Control` that goes with the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// 301 or 302.
    pub status: StatusCode,
    /// The link; `Location` is its long URL.
    pub link: Arc<crate::store::Link>,
    /// `private, max-age=0` for 302 (every click reaches us and is
    /// counted), `public, max-age=86400` for 301.
    pub cache_control: &'static str,
}

/// What a click's analytics read from the request.
#[derive(Debug, Clone, Copy)]
pub struct ClickHeaders<'a> {
    /// `Referer`.
    pub referer: Option<&'a str>,
    /// `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// The request was `HEAD` (a link checker, not a person).
    pub is_head: bool,
}

/// Resolves `code` and records the click: the redirect, `None` for an
/// unknown code. Both the router and the fast paths ([`crate::server`],
/// [`crate::front`]) answer from this.
pub async fn resolve_redirect(
    state: &HttpState,
    code: &str,
    click: ClickHeaders<'_>,
) -> Result<Option<Redirect>, ShortenError> {
    let now = now_ms();
    let Some(link) = state.app.resolve_shared(code, now).await? else {
        return Ok(None);
    };
    if let Some(recorder) = &state.recorder {
        recorder.record(Click {
            code: link.code.clone(),
            day: now / 86_400_000,
            referrer_host: click.referer.and_then(analytics::referrer_host),
            agent: analytics::classify(click.user_agent, click.is_head),
        });
    }
    let status = StatusCode::from_u16(state.app.config().redirect_status().unwrap_or(302))
        .unwrap_or(StatusCode::FOUND);
    let cache_control = if status == StatusCode::FOUND {
        "private, max-age=0"
    } else {
        "public, max-age=86400"
    };
    Ok(Some(Redirect {
        status,
        link,
        cache_control,
    }))
}

async fn index() -> Html<String> {
    Html(page::index(None))
}

#[derive(serde::Deserialize)]
struct FormInput {
    url: String,
    #[serde(default)]
    alias: String,
}

async fn index_form(State(state): State<HttpState>, Form(input): Form<FormInput>) -> Response {
    let alias = Some(input.alias.trim().to_string()).filter(|alias| !alias.is_empty());
    let request = ShortenRequest {
        long_url: input.url,
        alias,
        expires_in_seconds: None,
    };
    let outcome = match state.app.shorten(request, now_ms()).await {
        Ok(shortened) => {
            let short = format!(
                "{}/{}",
                state.app.config().public_base(),
                shortened.link.code
            );
            Ok((short, shortened.link))
        }
        Err(err) => Err(err.to_string()),
    };
    Html(page::index(Some(outcome))).into_response()
}
