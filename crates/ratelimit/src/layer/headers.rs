//! The response headers the notes list, plus the IETF draft's.
//!
//! - `X-Ratelimit-Limit`: requests allowed per window.
//! - `X-Ratelimit-Remaining`: requests left in the window (also on success).
//! - `X-Ratelimit-Retry-After`: seconds to wait before retrying (429 only).
//! - `Retry-After`: the standard header for the same (RFC 9110, 429 only).
//! - `RateLimit-Policy` / `RateLimit`: draft-ietf-httpapi-ratelimit-headers
//!   structured fields: `"name";q=10;w=60` and `"name";r=3;t=12`.
//!
//! Seconds are rounded up, so a client that waits the advertised time is
//! never rejected for being a few milliseconds early.

use crate::algorithm::{NANOS_PER_SECOND, Nanos};
use crate::limiter::LimitVerdict;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// Whole seconds, rounded up.
pub fn ceil_seconds(ns: Nanos) -> u64 {
    ns.div_ceil(NANOS_PER_SECOND)
}

/// Writes the headers describing `binding` into `headers`.
pub fn apply(headers: &mut HeaderMap, binding: &LimitVerdict, rejected: bool) {
    let d = &binding.decision;
    let number = |n: u64| HeaderValue::from(n);
    headers.insert("x-ratelimit-limit", number(d.limit));
    headers.insert("x-ratelimit-remaining", number(d.remaining));
    let name = sf_string(&binding.rule.name);
    let policy = format!("{name};q={};w={}", d.limit, binding.rule.window_seconds);
    let state = format!(
        "{name};r={};t={}",
        d.remaining,
        ceil_seconds(d.reset_after_ns)
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert("ratelimit-policy", value);
    }
    if let Ok(value) = HeaderValue::from_str(&state) {
        headers.insert("ratelimit", value);
    }
    if rejected {
        let seconds = ceil_seconds(d.retry_after_ns).max(1);
        headers.insert("x-ratelimit-retry-after", number(seconds));
        headers.insert(http::header::RETRY_AFTER, number(seconds));
    }
}

/// A structured-field string: printable ASCII, `"` and `\` escaped.
fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}

/// The 429 response: the headers and a JSON body naming the rule.
pub fn too_many_requests(binding: Option<&LimitVerdict>) -> Response<Full<Bytes>> {
    let (rule, retry) = match binding {
        Some(b) => (
            b.rule.name.as_str(),
            ceil_seconds(b.decision.retry_after_ns).max(1),
        ),
        None => ("", 1),
    };
    let body = serde_json::json!({
        "error": "too many requests: rate limit exceeded",
        "rule": rule,
        "retry_after_seconds": retry,
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    match binding {
        Some(b) => apply(headers, b, true),
        None => {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(1u64));
        }
    }
    response
}
