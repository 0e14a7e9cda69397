//! The `tower::Layer`: rate limiting in front of any axum or hyper service.
//!
//! The notes place the limiter as middleware between clients and API servers
//! (usually inside an API gateway). [`RateLimitLayer`] is that middleware:
//! it reads the request's descriptors, asks the [`RateLimiter`], and either
//! forwards the request (adding `X-Ratelimit-Remaining` and friends to the
//! response) or answers `429 Too Many Requests` itself. The response body
//! becomes `Either<inner body, Full<Bytes>>`, so the layer composes with any
//! service whose body is an `http_body::Body`.
//!
//! Two ways to wait instead of failing, both bounded:
//! - a leaking-bucket rule admits requests *with a delay* — the layer holds
//!   each request until its turn, which is what makes the outflow steady;
//! - the optional queue ([`QueueConfig`]) parks a rejected request until its
//!   retry-after (the notes: a rejected request may be kept for later instead
//!   of dropped), at most `waiting_max` at once and `wait_ms_max` each.

pub mod extract;
pub mod headers;

use crate::limiter::{RateLimiter, Verdict};
use bytes::Bytes;
use extract::{Cidr, RequestView, client_ip, peer_ip};
use http::{HeaderName, Request, Response};
use http_body_util::{Either, Full};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Parking rejected requests instead of rejecting them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Most requests parked at once; beyond it, reject at once.
    pub waiting_max: usize,
    /// Longest a request may be parked; a longer retry-after rejects at once.
    pub wait_ms_max: u64,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            waiting_max: 1_000,
            wait_ms_max: 2_000,
        }
    }
}

/// Knobs of the HTTP layer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayerConfig {
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed. Empty: the
    /// connection's peer address is the client, whatever the header says.
    pub trusted_proxies: Vec<String>,
    /// Header whose value is the `api_key` descriptor.
    pub api_key_header: String,
    /// Park rejected requests (None: reject at once, the default).
    pub queue: Option<QueueConfig>,
}

impl Default for LayerConfig {
    fn default() -> LayerConfig {
        LayerConfig {
            trusted_proxies: Vec::new(),
            api_key_header: "x-api-key".into(),
            queue: None,
        }
    }
}

/// Why a layer config was refused.
#[derive(Debug, thiserror::Error)]
pub enum LayerConfigError {
    /// A `trusted_proxies` entry is not a CIDR.
    #[error("trusted_proxies: {0}")]
    Proxy(String),
    /// `api_key_header` is not a header name.
    #[error("api_key_header {0:?} is not a valid HTTP header name")]
    Header(String),
}

/// Parsed, shared state of the layer.
#[derive(Debug)]
struct Shared {
    limiter: Arc<RateLimiter>,
    trusted: Vec<Cidr>,
    api_key_header: HeaderName,
    queue: Option<(QueueConfig, Arc<Semaphore>)>,
}

/// Rate limits every request of the wrapped service.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

impl RateLimitLayer {
    /// A layer enforcing `limiter`'s rules with `config`.
    pub fn new(
        limiter: Arc<RateLimiter>,
        config: &LayerConfig,
    ) -> Result<RateLimitLayer, LayerConfigError> {
        let trusted = config
            .trusted_proxies
            .iter()
            .map(|p| p.parse::<Cidr>())
            .collect::<Result<_, _>>()
            .map_err(LayerConfigError::Proxy)?;
        let api_key_header = HeaderName::from_bytes(config.api_key_header.as_bytes())
            .map_err(|_| LayerConfigError::Header(config.api_key_header.clone()))?;
        let queue = config.queue.clone().map(|q| {
            let permits = q.waiting_max.min(Semaphore::MAX_PERMITS);
            (q, Arc::new(Semaphore::new(permits)))
        });
        Ok(RateLimitLayer {
            shared: Arc::new(Shared {
                limiter,
                trusted,
                api_key_header,
                queue,
            }),
        })
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> RateLimitService<S> {
        RateLimitService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] produces.
#[derive(Clone, Debug)]
pub struct RateLimitService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// The boxed future of [`RateLimitService`].
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, ResB> tower::Service<Request<B>> for RateLimitService<S>
where
    S: tower::Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Either<ResB, Full<Bytes>>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call (tower's contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let matches = {
            let view = RequestView {
                method: request.method(),
                uri: request.uri(),
                headers: request.headers(),
                client: client_ip(peer_ip(&request), request.headers(), &shared.trusted),
                api_key_header: &shared.api_key_header,
            };
            shared.limiter.matches(&view)
        };
        Box::pin(async move {
            if matches.is_empty() {
                return Ok(inner.call(request).await?.map(Either::Left));
            }
            let mut verdict = shared.limiter.decide(matches.clone()).await;
            if !verdict.allowed {
                verdict = park(&shared, matches, verdict).await;
            }
            if !verdict.allowed {
                return Ok(headers::too_many_requests(verdict.binding()).map(Either::Right));
            }
            let delay = verdict.delay_ns();
            if delay > 0 {
                tokio::time::sleep(Duration::from_nanos(delay)).await;
            }
            let mut response = inner.call(request).await?;
            if let Some(binding) = verdict.binding() {
                headers::apply(response.headers_mut(), binding, false);
            }
            Ok(response.map(Either::Left))
        })
    }
}

/// Holds a rejected request until its retry-after and asks again, while the
/// queue has room and the wait stays within bounds.
async fn park(shared: &Shared, matches: Vec<crate::rules::Match>, mut verdict: Verdict) -> Verdict {
    let Some((config, semaphore)) = &shared.queue else {
        return verdict;
    };
    let Ok(_permit) = semaphore.try_acquire() else {
        return verdict;
    };
    let _gauge = QueuedGauge::enter(shared.limiter.metrics());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(config.wait_ms_max);
    while !verdict.allowed {
        let wait = verdict
            .binding()
            .map_or(0, |b| b.decision.retry_after_ns)
            .max(1_000_000);
        let wake = tokio::time::Instant::now() + Duration::from_nanos(wait);
        if wake > deadline {
            break;
        }
        tokio::time::sleep_until(wake).await;
        verdict = shared.limiter.decide(matches.clone()).await;
    }
    verdict
}

/// Keeps the queued-requests gauge right even if the client goes away
/// (the future is dropped) mid-wait.
struct QueuedGauge<'a>(&'a crate::metrics::Metrics);

impl<'a> QueuedGauge<'a> {
    fn enter(metrics: &'a crate::metrics::Metrics) -> QueuedGauge<'a> {
        metrics.queued_delta(1);
        QueuedGauge(metrics)
    }
}

impl Drop for QueuedGauge<'_> {
    fn drop(&mut self) {
        self.0.queued_delta(-1);
    }
}
