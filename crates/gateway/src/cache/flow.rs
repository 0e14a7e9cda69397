//! The request path through the cache (see the module doc of
//! [`super`]): lookup, fresh hit, stale handling, collapsed fill or
//! revalidation, storing, and the `X-Cache` / `Age` headers.

use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::header::{AGE, AUTHORIZATION, CONTENT_LENGTH, HeaderName, RANGE};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;

use super::collapse::{self, Flight, Role};
use super::config::RouteCache;
use super::entry::{self, Entry};
use super::freshness::{self, CacheControl, Overrides, Usable};
use super::key::{self, Key};
use super::revalidate;
use super::stale::{self, StalePolicy};
use super::vary;
use super::{EdgeCache, Origin};
use crate::error;

/// The header naming what the cache did.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// What the cache did for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Miss,
    Stale,
    Revalidated,
    Bypass,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Revalidated => "revalidated",
            Self::Bypass => "bypass",
        }
    }

    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Hit | Self::Revalidated => "HIT",
            Self::Miss => "MISS",
            Self::Stale => "STALE",
            Self::Bypass => "BYPASS",
        })
    }
}

/// Sets `X-Cache` on a response (the gateway marks bypassed requests).
pub fn with_x_cache(mut response: Response<Body>, value: &'static str) -> Response<Body> {
    response
        .headers_mut()
        .insert(X_CACHE, HeaderValue::from_static(value));
    response
}

/// Removes what clients must not see of a stored response.
fn strip_internal(headers: &mut http::HeaderMap) {
    headers.remove("surrogate-key");
}

impl EdgeCache {
    /// Answers a `GET` or `HEAD` on a cached route (see the module doc).
    pub async fn serve<O: Origin>(
        self: &Arc<Self>,
        route: &Arc<RouteCache>,
        parts: Parts,
        origin: O,
    ) -> Response<Body> {
        debug_assert!(matches!(parts.method, Method::GET | Method::HEAD));
        if parts.headers.contains_key(RANGE) || parts.headers.contains_key(AUTHORIZATION) {
            self.metrics.count(Outcome::Bypass.label());
            let mut response = origin.fetch(parts).await;
            strip_internal(response.headers_mut());
            response
                .headers_mut()
                .insert(X_CACHE, Outcome::Bypass.header());
            return response;
        }
        let key = key::build(
            &route.key,
            parts.uri.path(),
            parts.uri.query(),
            &parts.headers,
        );
        let request_cc = if route.ignore_request_cache_control {
            CacheControl::default()
        } else {
            freshness::parse(&parts.headers)
        };
        let now = clock::now_ms();
        if let Some(stored) = self.store.find(&key, &parts.headers).await {
            let age = stored.age_ms(now);
            match freshness::usable(&request_cc, age, stored.lifetime_ms, stored.stale.forbidden) {
                Usable::Fresh => return self.answer(&stored, &parts, Outcome::Hit, now),
                Usable::StaleAccepted => return self.answer(&stored, &parts, Outcome::Stale, now),
                Usable::Revalidate => {}
            }
            let staleness = stored.staleness_ms(now);
            if age >= stored.lifetime_ms
                && stale::while_revalidate(&stored.stale, staleness, &request_cc)
            {
                if let Some(flight) = self.collapser.lead(&key.full) {
                    let cache = self.clone();
                    let (route, parts, stored, key) =
                        (route.clone(), parts.clone(), stored.clone(), key.clone());
                    tokio::spawn(async move {
                        let fill = Fill {
                            route: &route,
                            key: &key,
                            request_cc: CacheControl::default(),
                        };
                        let _ = cache
                            .fetch(&fill, &parts, &origin, Some(stored), Some(flight))
                            .await;
                    });
                }
                return self.answer(&stored, &parts, Outcome::Stale, now);
            }
            let fill = Fill {
                route,
                key: &key,
                request_cc,
            };
            return self.collapsed(&fill, &parts, origin, Some(stored)).await;
        }
        if request_cc.only_if_cached {
            self.metrics.count(Outcome::Miss.label());
            return error::json(
                StatusCode::GATEWAY_TIMEOUT,
                "only-if-cached: not in the cache",
            );
        }
        let fill = Fill {
            route,
            key: &key,
            request_cc,
        };
        self.collapsed(&fill, &parts, origin, None).await
    }

    /// Fetches through a flight: the leader fetches, followers wait and
    /// look again, then fetch themselves if the leader stored nothing usable.
    async fn collapsed<O: Origin>(
        self: &Arc<Self>,
        fill: &Fill<'_>,
        parts: &Parts,
        origin: O,
        stored: Option<Arc<Entry>>,
    ) -> Response<Body> {
        match self.collapser.join(&fill.key.full) {
            Role::Leader(flight) => self.fetch(fill, parts, &origin, stored, Some(flight)).await,
            Role::Follower(landing) => {
                let wait = std::time::Duration::from_millis(self.config.collapse_wait_ms);
                collapse::wait(landing, wait).await;
                let now = clock::now_ms();
                if let Some(landed) = self.store.find(fill.key, &parts.headers).await
                    && freshness::usable(
                        &fill.request_cc,
                        landed.age_ms(now),
                        landed.lifetime_ms,
                        landed.stale.forbidden,
                    ) == Usable::Fresh
                {
                    return self.answer(&landed, parts, Outcome::Hit, now);
                }
                self.fetch(fill, parts, &origin, stored, None).await
            }
        }
    }

    /// One origin request: a fill, or a revalidation of `stored`. Stores
    /// what may be stored; `flight` lands once it is stored (or not).
    async fn fetch<O: Origin>(
        &self,
        fill: &Fill<'_>,
        parts: &Parts,
        origin: &O,
        stored: Option<Arc<Entry>>,
        flight: Option<Flight>,
    ) -> Response<Body> {
        let mut upstream = parts.clone();
        upstream.method = Method::GET;
        revalidate::strip_client_conditionals(&mut upstream.headers);
        if let Some(stored) = &stored {
            revalidate::make_conditional(&mut upstream.headers, &stored.headers);
        }
        let request_time = clock::now_ms();
        self.metrics.origin_fetches.inc();
        let response = origin.fetch(upstream).await;
        let response_time = clock::now_ms();
        let status = response.status();
        let overrides = Overrides {
            default_ttl_ms: fill.route.default_ttl_ms,
            max_ttl_ms: fill.route.max_ttl_ms,
            heuristic: self.config.heuristic,
        };
        if let Some(stored) = &stored {
            if status == StatusCode::NOT_MODIFIED {
                let headers = revalidate::merge_not_modified(&stored.headers, response.headers());
                let cc = freshness::parse(&headers);
                let renewed = Arc::new(Entry {
                    lifetime_ms: freshness::lifetime_ms(
                        stored.status,
                        &headers,
                        &cc,
                        response_time,
                        &overrides,
                    ),
                    initial_age_ms: freshness::initial_age_ms(
                        response.headers(),
                        request_time,
                        response_time,
                    ),
                    stale: StalePolicy::of(&cc),
                    response_time_ms: response_time,
                    headers,
                    status: stored.status,
                    body: stored.body.clone(),
                    vary: stored.vary.clone(),
                    tags: stored.tags.clone(),
                });
                if !(cc.no_store || cc.private) {
                    self.store.insert(fill.key, renewed.clone());
                }
                drop(flight);
                return self.answer(&renewed, parts, Outcome::Revalidated, response_time);
            }
            if stale::is_origin_error(status)
                && stale::if_error(
                    &stored.stale,
                    stored.staleness_ms(response_time),
                    fill.route.stale_if_error_ms,
                    &fill.request_cc,
                )
            {
                tracing::debug!(key = %fill.key.full, %status, "origin failed: serving stale");
                return self.answer(stored, parts, Outcome::Stale, response_time);
            }
        }
        let (mut head, body) = response.into_parts();
        let response_cc = freshness::parse(&head.headers);
        let lifetime = freshness::lifetime_ms(
            status,
            &head.headers,
            &response_cc,
            response_time,
            &overrides,
        );
        let storable = freshness::storable(
            &parts.headers,
            &fill.request_cc,
            status,
            &head.headers,
            &response_cc,
            lifetime,
        );
        let declared = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        self.metrics.count(Outcome::Miss.label());
        head.headers.insert(X_CACHE, Outcome::Miss.header());
        if storable.is_err() || declared.is_some_and(|n| n > fill.route.object_bytes_max) {
            drop(flight);
            strip_internal(&mut head.headers);
            return Response::from_parts(head, body);
        }
        let limit = fill.route.object_bytes_max as usize;
        let read = tokio::time::timeout(self.body_read, collect_bounded(body, limit)).await;
        let (collected, rest) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(err)) => {
                tracing::warn!(key = %fill.key.full, "origin body failed: {err}");
                return error::json(
                    StatusCode::BAD_GATEWAY,
                    "the upstream server broke off its response body",
                );
            }
            Err(_) => {
                return error::json(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the upstream server sent its body too slowly to cache",
                );
            }
        };
        if let Some(rest) = rest {
            // Over the object bound without a Content-Length: streamed on, not stored.
            drop(flight);
            strip_internal(&mut head.headers);
            let first = futures::stream::iter([Ok::<_, axum::Error>(collected)]);
            let body = Body::from_stream(first.chain(rest.into_data_stream()));
            return Response::from_parts(head, body);
        }
        let mut headers = head.headers;
        headers.remove(X_CACHE);
        let tags = entry::surrogate_keys(&headers);
        let initial_age_ms = freshness::initial_age_ms(&headers, request_time, response_time);
        headers.remove(AGE);
        strip_internal(&mut headers);
        let stored = Arc::new(Entry {
            status,
            vary: vary::select(&vary::names(&headers), &parts.headers),
            headers,
            body: collected,
            tags,
            response_time_ms: response_time,
            initial_age_ms,
            lifetime_ms: lifetime,
            stale: StalePolicy::of(&response_cc),
        });
        self.store.insert(fill.key, stored.clone());
        drop(flight);
        self.respond(&stored, parts, Outcome::Miss, response_time)
    }

    /// Answers from a stored object, counting the outcome.
    fn answer(
        &self,
        stored: &Entry,
        parts: &Parts,
        outcome: Outcome,
        now_ms: u64,
    ) -> Response<Body> {
        self.metrics.count(outcome.label());
        self.metrics.served_bytes.inc_by(stored.body.len() as u64);
        self.respond(stored, parts, outcome, now_ms)
    }

    /// The response for a stored object: its headers with `Age` and
    /// `X-Cache`, no body for `HEAD`, a 304 for a matching conditional.
    fn respond(
        &self,
        stored: &Entry,
        parts: &Parts,
        outcome: Outcome,
        now_ms: u64,
    ) -> Response<Body> {
        let age = HeaderValue::from(stored.age_ms(now_ms) / 1000);
        if stored.status == StatusCode::OK
            && revalidate::client_not_modified(&parts.headers, &stored.headers)
        {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            *response.headers_mut() = revalidate::not_modified_headers(&stored.headers);
            response.headers_mut().insert(AGE, age);
            response.headers_mut().insert(X_CACHE, outcome.header());
            return response;
        }
        let body = if parts.method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(stored.body.clone())
        };
        let mut response = Response::new(body);
        *response.status_mut() = stored.status;
        let headers = response.headers_mut();
        headers.clone_from(&stored.headers);
        headers.insert(AGE, age);
        headers.insert(X_CACHE, outcome.header());
        response
    }
}

/// What a fill needs from the request.
struct Fill<'a> {
    route: &'a Arc<RouteCache>,
    key: &'a Key,
    request_cc: CacheControl,
}

/// Reads `body` whole if it is at most `limit` bytes; otherwise returns
/// what was read and the rest of the body.
async fn collect_bounded(
    mut body: Body,
    limit: usize,
) -> Result<(Bytes, Option<Body>), axum::Error> {
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        if buffer.len() > limit {
            return Ok((buffer.freeze(), Some(body)));
        }
    }
    Ok((buffer.freeze(), None))
}
