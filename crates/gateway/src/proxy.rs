//! The reverse proxy: one client request in, one upstream attempt (or two)
//! out, the upstream's response streamed back.
//!
//! The path of a request: match a route (404 if none); take the body
//! ([`crate::body`]: streamed, or buffered when it may be replayed; 413 /
//! 408); pick an upstream with the pool's policy; forward with rewritten
//! headers ([`crate::headers`]); once the body is sent, wait for the
//! response head within `upstream_response_ms`; stream the response back.
//!
//! **Failover.** A failed attempt (connect error, reset, timeout, or a
//! status in `retry.statuses`) counts against the upstream (passive
//! ejection) and, if the request may be replayed, is retried once on a
//! different upstream. Replaying is safe when the request never reached the
//! upstream (a connect error: any method) or when repeating it changes
//! nothing (RFC 9110's idempotent methods GET, HEAD, OPTIONS, PUT, DELETE,
//! TRACE, or a request carrying `retry.idempotent_header`). A POST whose
//! connection reset mid-way is *not* replayed: it may have been applied.
//! Only replayable requests have their body buffered; a streamed body can
//! go to a second upstream only if no byte of it was read yet.
//! One retry, not N: with two failures in a row the problem is rarely one
//! server, and every retry multiplies load on a struggling pool.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;

use crate::balance::Pool;
use crate::body::{Payload, UpstreamBody};
use crate::client::{Lease, UpstreamClient};
use crate::config::HashKey;
use crate::error;
use crate::headers;
use crate::routes::{self, Compiled};
use crate::upstream::InFlight;

/// Which upstream served a response, left in its extensions for the access log.
#[derive(Debug, Clone)]
pub struct ServedBy(pub http::uri::Authority);

/// What the proxy needs from the gateway to forward one request.
pub struct Forwarder<'a> {
    /// The upstream client.
    pub client: &'a UpstreamClient,
    /// `timeouts.upstream_response_ms`.
    pub response_timeout: Duration,
    /// Whether retries are on at all.
    pub retry_enabled: bool,
    /// Statuses that count as a failed attempt.
    pub retry_statuses: &'a [StatusCode],
    /// The header that marks any request as replayable.
    pub idempotent_header: Option<&'a header::HeaderName>,
    /// Counts retries.
    pub metrics: &'a crate::metrics::Metrics,
    /// Whether responses carry [`ServedBy`] (only the access log reads it;
    /// inserting it allocates the extensions map).
    pub mark_served_by: bool,
}

/// Whether `method` is idempotent per RFC 9110 §9.2.2.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The consistent-hashing key of a request, if the pool hashes.
fn request_key(key: &HashKey, parts: &Parts, client_ip: IpAddr) -> Option<Vec<u8>> {
    match key {
        HashKey::ClientIp => Some(client_ip.to_string().into_bytes()),
        HashKey::Path => Some(parts.uri.path().as_bytes().to_vec()),
        HashKey::Header(name) => parts.headers.get(name).map(|v| v.as_bytes().to_vec()),
    }
}

/// One attempt's request to the upstream at `authority`: origin-form
/// `target`, the prepared `headers` (with a `Host` naming the upstream if
/// the client sent none, as HTTP/1.0 clients may).
fn upstream_request(
    method: &Method,
    authority: &http::uri::Authority,
    target: &PathAndQuery,
    mut headers: http::HeaderMap,
    body: UpstreamBody,
) -> Request<UpstreamBody> {
    if !headers.contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(header::HOST, host);
    }
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = Uri::from(target.clone());
    *request.headers_mut() = headers;
    request
}

/// One failed attempt, turned into the response the client gets if it is
/// the last one.
enum Failure {
    /// The upstream answered with a status in `retry.statuses`.
    Status(Response<Body>),
    /// No usable answer; `replayable_anyway` when the request never left.
    Error {
        response: Response<Body>,
        replayable_anyway: bool,
    },
}

impl Failure {
    /// Whether the request may be sent again after this failure:
    /// `replayable` requests always, others only if they never left.
    fn may_replay(&self, replayable: bool) -> bool {
        replayable
            || matches!(
                self,
                Failure::Error {
                    replayable_anyway: true,
                    ..
                }
            )
    }
}

impl Forwarder<'_> {
    /// Whether a failed attempt of this request may be repeated on another
    /// upstream after it reached the first (see the module doc).
    pub fn replayable(&self, parts: &Parts) -> bool {
        self.retry_enabled
            && (is_idempotent(&parts.method)
                || self
                    .idempotent_header
                    .is_some_and(|name| parts.headers.contains_key(name)))
    }

    /// Forwards a request with its body `payload`; see the module doc.
    pub async fn forward(
        &self,
        pool: &Pool,
        route: &Compiled,
        parts: Parts,
        payload: Payload,
        client_ip: IpAddr,
    ) -> Response<Body> {
        let key = pool
            .hash_key()
            .and_then(|key| request_key(key, &parts, client_ip));
        let replayable = self.replayable(&parts);
        let target = match routes::upstream_target(route, &parts.uri) {
            Ok(target) => target,
            Err(err) => {
                let message = format!("bad request target: {err}");
                return error::json(StatusCode::BAD_REQUEST, &message);
            }
        };
        let mut headers = parts.headers;
        headers::to_upstream(&mut headers, client_ip);
        if let Some(length) = payload.buffered_length() {
            // A chunked body that was buffered goes out with its length.
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        let mut exclude = None;
        let mut last_failure = None;
        for attempt in 0..2 {
            let Some(index) = pool.pick(key.as_deref(), exclude) else {
                break;
            };
            if attempt > 0 {
                self.metrics.retries.inc();
            }
            // Any request may get a second attempt (after a connect error),
            // if there is another upstream to take it.
            let attempt_headers = if attempt == 0 && self.retry_enabled && pool.upstreams.len() > 1
            {
                headers.clone()
            } else {
                std::mem::take(&mut headers)
            };
            let Some(body) = payload.attempt_body() else {
                break;
            };
            let authority = &pool.upstreams[index].authority;
            let request =
                upstream_request(&parts.method, authority, &target, attempt_headers, body);
            match self.attempt(pool, index, request, &payload).await {
                Ok(response) => return response,
                Err(_) if payload.fault().is_some() => break,
                Err(failure) => {
                    let may_retry =
                        attempt == 0 && self.retry_enabled && failure.may_replay(replayable);
                    last_failure = Some(failure);
                    if !may_retry {
                        break;
                    }
                    exclude = Some(index);
                }
            }
        }
        if let Some(fault) = payload.fault() {
            // The client's body broke a limit while streaming: its fault,
            // not the upstream's.
            self.metrics.count_refusal(fault.reason());
            return fault.response();
        }
        match last_failure {
            Some(Failure::Status(response) | Failure::Error { response, .. }) => response,
            None => error::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("no healthy upstream in pool `{}`", pool.name),
            ),
        }
    }

    /// One attempt on upstream `index`, with passive health bookkeeping.
    async fn attempt(
        &self,
        pool: &Pool,
        index: usize,
        request: Request<UpstreamBody>,
        payload: &Payload,
    ) -> Result<Response<Body>, Failure> {
        let upstream = &pool.upstreams[index];
        let in_flight = upstream.start();
        let started = Instant::now();
        let exchange = self.client.send(upstream, request);
        tokio::pin!(exchange);
        // The response timeout starts once the client's body is sent: a slow
        // upload is bounded by `body_read_ms`, not blamed on the upstream.
        // An upstream that stops reading the body is given the body's time
        // plus its own before it is timed out.
        let stalled = payload
            .read_deadline()
            .map(|deadline| deadline + self.response_timeout);
        let outcome = tokio::select! {
            answered = &mut exchange => Ok(answered),
            () = payload.read_to_end() => {
                tokio::time::timeout(self.response_timeout, &mut exchange)
                    .await
                    .map_err(drop)
            }
            () = sleep_until(stalled) => Err(()),
        };
        let failure = match outcome {
            Ok(Ok((response, lease))) => {
                upstream.latency.observe(started.elapsed().as_secs_f64());
                let served_by = self.mark_served_by.then(|| upstream.authority.clone());
                if !self.retry_statuses.contains(&response.status()) {
                    upstream.record_success();
                    return Ok(to_client(response, lease, in_flight, served_by));
                }
                let status = response.status();
                tracing::warn!(pool = %pool.name, upstream = %upstream.authority, %status, "upstream answered with a failure status");
                Failure::Status(to_client(response, lease, in_flight, served_by))
            }
            Ok(Err(err)) => {
                let connect = err.is_connect();
                tracing::warn!(pool = %pool.name, upstream = %upstream.authority, "upstream request failed: {}", error_chain(&err));
                let message = if connect {
                    "cannot connect to the upstream server"
                } else {
                    "the upstream server closed the connection or sent an invalid response"
                };
                Failure::Error {
                    response: error::json(StatusCode::BAD_GATEWAY, message),
                    replayable_anyway: connect,
                }
            }
            Err(_) => {
                tracing::warn!(pool = %pool.name, upstream = %upstream.authority, timeout_ms = self.response_timeout.as_millis() as u64, "upstream did not answer in time");
                let message = format!(
                    "the upstream server did not answer within {} ms",
                    self.response_timeout.as_millis()
                );
                Failure::Error {
                    response: error::json(StatusCode::GATEWAY_TIMEOUT, &message),
                    replayable_anyway: false,
                }
            }
        };
        if payload.fault().is_some() {
            // The client's streamed body broke a limit: not the upstream's
            // failure, so it must not count towards ejecting it.
            return Err(failure);
        }
        pool.upstreams[index].record_failure(pool.eject_after_failures)
            .then(|| tracing::warn!(pool = %pool.name, upstream = %upstream.authority, "upstream ejected after consecutive failures"));
        Err(failure)
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The upstream's response, ready for the client: hop-by-hop headers gone,
/// body streamed, in-flight count and connection held until the body ends.
fn to_client(
    response: Response<Incoming>,
    lease: Lease,
    in_flight: InFlight,
    served_by: Option<http::uri::Authority>,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    headers::to_client(&mut parts.headers);
    if let Some(upstream) = served_by {
        parts.extensions.insert(ServedBy(upstream));
    }
    Response::from_parts(
        parts,
        Body::new(Guarded {
            body,
            lease,
            _in_flight: in_flight,
        }),
    )
}

/// A response body that holds its upstream's in-flight count until it is
/// finished or dropped, so least-connections sees streaming responses, and
/// gives its connection back to the pool once the body has ended.
struct Guarded {
    body: Incoming,
    lease: Lease,
    _in_flight: InFlight,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // Bodies nobody polls to the end (HEAD, 204, 304) are complete too.
        if http_body::Body::is_end_stream(&self.body) {
            self.lease.release();
        }
    }
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) {
            self.lease.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// `err` and its causes on one line ("client error (Connect): tcp connect
/// error: Connection refused"): the legacy client's own message hides why.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
