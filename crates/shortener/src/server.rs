//! The listening side: HTTP/1.1 connections, thread per core, with the
//! redirect answered before hyper ([`crate::front`], on `service::front`'s
//! loop) and, on connections handed to hyper, before the router (below).
//!
//! `GET /{code}` is the request the chapter sizes the system for (10 reads
//! per write, ≈11,600/s), so it skips axum's router: a request whose path is
//! one plain segment goes straight to [`crate::http::redirect_response`],
//! without the router's matching, the `Path` extractor's `String` or a
//! copy of the header map. Everything else, and any path the router would
//! decode (`%`), goes through the router ([`crate::http::router`]), which
//! has the same `/{code}` route, so both paths answer alike.
//!
//! **Thread per core** ([`serve_workers`]): N single-threaded runtimes,
//! each accepting on its own `SO_REUSEPORT` listener on the same address
//! (see `service::net`): a request is served by the thread that accepted
//! its connection, with no cross-thread wakeup.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use service::SystemContext;
use service::front::{Limits, Prefixed};
use tokio::net::{TcpListener, TcpStream};

use crate::front::RedirectFront;
use crate::http::{self, HttpState};

/// A client that has not sent its request head within this is cut off
/// (slowloris), which also ends idle keep-alive connections.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The front's bounds: the same head timeout; heads over 64 KiB go to
/// hyper, which refuses them.
const FRONT_LIMITS: Limits = Limits {
    header_read: HEADER_READ_TIMEOUT,
    head_bytes_max: 64 * 1024,
};

/// Serves `router` (and the redirect fast path on `state`) on `listener`
/// and `workers - 1` more threads until `ctx.shutdown`, then drains.
/// With `workers > 1`, `listener` must be bound with
/// `service::net::bind_reuseport`.
pub async fn serve_workers(
    listener: TcpListener,
    workers: usize,
    router: Router,
    state: HttpState,
    ctx: SystemContext,
) -> anyhow::Result<()> {
    let health = ctx.health.clone();
    let serve = move |listener| accept(listener, router.clone(), state.clone(), ctx.clone());
    service::net::serve_workers(listener, workers, "shortener", serve, |addr| {
        health.set_up();
        tracing::info!(%addr, workers, "shortener listening");
    })
    .await
}

/// One worker's accept loop, until shutdown; then drains its connections.
async fn accept(
    listener: TcpListener,
    router: Router,
    state: HttpState,
    ctx: SystemContext,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    while let Some((stream, client)) = service::net::accept(&listener, &ctx.shutdown).await {
        let _ = stream.set_nodelay(true);
        let (router, full_state) = (router.clone(), state.clone());
        let (watcher, builder) = (graceful.watcher(), builder.clone());
        // Everything the front does not answer: hyper, the redirect fast
        // path below, then the router.
        let full = move |io: Prefixed<TcpStream>| async move {
            let service = service_fn(move |request| {
                let (router, state) = (router.clone(), full_state.clone());
                async move { Ok::<_, Infallible>(answer(request, client, router, state).await) }
            });
            let connection = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
            if let Err(err) = connection.await {
                tracing::debug!(%client, "connection ended: {err}");
            }
        };
        let front = RedirectFront {
            state: state.clone(),
            full,
        };
        tokio::spawn(service::front::serve(
            front,
            stream,
            FRONT_LIMITS,
            ctx.shutdown.clone(),
        ));
    }
    drop(listener);
    ctx.health.set_down("shutting down");
    graceful.shutdown().await;
    Ok(())
}

/// One request: the redirect fast path, or the router.
async fn answer(
    mut request: Request<Incoming>,
    client: SocketAddr,
    router: Router,
    state: HttpState,
) -> Response {
    if let Some(code) = redirect_code(request.method(), request.uri().path()) {
        let (method, headers) = (request.method(), request.headers());
        return http::redirect_response(&state, code, method, headers).await;
    }
    // What `axum::serve` with connect info would insert: the rate limiter
    // reads the client address from it.
    request.extensions_mut().insert(ConnectInfo(client));
    let request = request.map(Body::new);
    match tower::ServiceExt::oneshot(router, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The code of a `GET`/`HEAD /{code}` the fast path may answer: one
/// non-empty segment with nothing the router would percent-decode.
fn redirect_code<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    let code = path.strip_prefix('/')?;
    let plain = !code.is_empty() && !code.contains(['/', '%']);
    plain.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_single_segments_take_the_fast_path() {
        assert_eq!(redirect_code(&Method::GET, "/abc123"), Some("abc123"));
        assert_eq!(redirect_code(&Method::HEAD, "/abc123"), Some("abc123"));
        assert_eq!(redirect_code(&Method::POST, "/abc123"), None);
        assert_eq!(redirect_code(&Method::GET, "/"), None);
        assert_eq!(redirect_code(&Method::GET, "/api/v1/abc"), None);
        assert_eq!(redirect_code(&Method::GET, "/ab%41"), None);
        assert_eq!(redirect_code(&Method::GET, "/abc/"), None);
    }
}
