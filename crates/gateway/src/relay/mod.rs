//! The relay: the gateway's own HTTP/1.1 forwarding loop for plain
//! requests, nginx's design, with hyper kept for everything else.
//!
//! Why: through hyper, a proxied request runs two HTTP state machines (the
//! server's and the client's), a header map built and rewritten, and a hop
//! between the request's task and the upstream connection's task; profiles
//! at saturation showed those costs spread flat, with the gateway at 0.75x
//! nginx `proxy_pass` (BENCHMARKS.md). nginx instead parses the request
//! head in place, writes the rewritten head to an upstream socket owned by
//! the same event handler, and copies the answer back. This module does the
//! same, per client connection, in one task:
//!
//! 1. read until a request head is complete (within `header_read_ms`);
//! 2. [`request::plan`]: a head the relay can forward (a bodiless `GET` or
//!    `HEAD` on a plain route, nothing ambiguous) becomes the upstream's
//!    head in one buffer; any other head hands the whole connection, bytes
//!    already read included, to hyper and the full gateway
//!    ([`crate::hyper_conn`]), for the rest of its life (the loop is
//!    `service::front`'s, which the shortener's redirect shares);
//! 3. pick an upstream (same pools, balancing, data centers, health), take
//!    an idle socket of this thread or connect, write the head, read the
//!    response head within `upstream_response_ms` ([`response::parse`]);
//! 4. write the client's head and the first body bytes in one write, then
//!    copy the body in the upstream's own framing ([`chunked`] finds the end
//!    of a chunked one), and put the upstream socket back when it ended
//!    cleanly.
//!
//! Failover is the proxy's ([`crate::proxy`]): a connect error, a broken or
//! timed-out exchange, or a status in `retry.statuses` counts against the
//! upstream and is retried once on another (the relay's requests are all
//! idempotent). A pooled socket that turns out closed before any byte of an
//! answer is not a failure: the request goes again on a new connection, as
//! nginx does with its keepalive cache.
//!
//! What the relay does not do, and hyper does: bodies, HTTP/1.0, upgrades,
//! rate limits, cached routes, `/metrics`, purges,
//! non-canonical paths. `relay = false` in `gateway.toml` turns it off.

mod chunked;
pub mod request;
pub mod response;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http::StatusCode;
use hyper_util::server::graceful::Watcher;
use service::Shutdown;
use service::front::{Answered, Front, Limits, Prefixed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::balance::Pool;
use crate::handler::Gateway;
use crate::idle::IdleLists;
use crate::upstream::{InFlight, Upstream};
use request::{Fast, Plan};
use response::{Framing, Head};

/// Bytes read from an upstream at a time.
const READ_BYTES: usize = 16 * 1024;

/// The longest upstream response head accepted.
const RESPONSE_HEAD_BYTES_MAX: usize = 64 * 1024;

thread_local! {
    /// This thread's idle upstream sockets, by upstream id.
    static IDLE: std::cell::RefCell<IdleLists<TcpStream>> =
        const { std::cell::RefCell::new(IdleLists::new()) };
}

/// What a connection needs to be served by hyper.
pub(crate) struct HandOff {
    /// The server settings (timeouts, buffer bound).
    pub http: hyper::server::conn::http1::Builder,
    /// The graceful shutdown's watch on this connection: held for the
    /// connection's life, so the drain waits for relayed ones too.
    pub watcher: Watcher,
}

/// Serves one client connection until it closes, the gateway shuts down,
/// or it is handed to hyper (the loop is `service::front`'s).
pub(crate) async fn serve(
    gateway: Gateway,
    stream: TcpStream,
    client: SocketAddr,
    hand_off: HandOff,
    shutdown: Shutdown,
) {
    let config = &gateway.inner.config;
    let limits = Limits {
        header_read: Duration::from_millis(config.timeouts.header_read_ms),
        // hyper answers an oversized head (431).
        head_bytes_max: config.limits.header_bytes_max,
    };
    let relay = Relay {
        gateway,
        client,
        hand_off,
        answer: BytesMut::with_capacity(READ_BYTES),
        client_ip: client.ip().to_string(),
    };
    service::front::serve(relay, stream, limits, shutdown).await;
}

/// One client connection's relay.
struct Relay {
    gateway: Gateway,
    client: SocketAddr,
    hand_off: HandOff,
    /// The upstream's answer being relayed (kept across requests).
    answer: BytesMut,
    /// The client's address as `X-Forwarded-For` writes it.
    client_ip: String,
}

impl Front for Relay {
    type Request = Fast;

    fn plan(&mut self, buffer: &[u8]) -> Plan {
        request::plan(buffer, &self.gateway.inner, &self.client_ip)
    }

    fn head_bytes(fast: &Fast) -> usize {
        fast.head_bytes
    }

    async fn answer(&mut self, fast: Fast, stream: &mut TcpStream) -> Answered {
        let keep = forward(&self.gateway, &fast, stream, &mut self.answer, self.client).await;
        if keep && !fast.close {
            Answered::KeepAlive
        } else {
            Answered::Close
        }
    }

    async fn full(self, io: Prefixed<TcpStream>) {
        crate::hyper_conn::serve(self.gateway, io, self.client, self.hand_off).await;
    }
}

/// A failed attempt: the answer the client gets if no retry does better.
enum Failure {
    /// An error the relay writes itself.
    Error(StatusCode, String),
    /// An upstream answer with a status in `retry.statuses`.
    Status(Exchange),
}

/// An upstream socket with a response head read from it.
struct Exchange {
    socket: TcpStream,
    head: Head,
    upstream: Arc<Upstream>,
    _in_flight: InFlight,
}

/// Forwards one request and relays the answer; returns whether the client
/// connection can serve another request.
async fn forward(
    gateway: &Gateway,
    fast: &Fast,
    client: &mut TcpStream,
    answer: &mut BytesMut,
    peer: SocketAddr,
) -> bool {
    let inner = &*gateway.inner;
    // Read only by the access log.
    let began = fast.logged.is_some().then(Instant::now);
    let route = inner.routes.get(fast.route);
    let pool = gateway.pool_for(route, peer.ip());
    let answered = |status: u16, upstream: Option<&Upstream>| {
        answered(gateway, route, fast, peer, status, upstream, began);
    };
    let retry = inner.config.retry.enabled;
    let mut exclude = None;
    let mut last: Option<Failure> = None;
    for attempt in 0..2 {
        let Some(index) = pool.pick(fast.key.as_deref(), exclude) else {
            break;
        };
        if attempt > 0 {
            inner.metrics.retries.inc();
        }
        let upstream = &pool.upstreams[index];
        let in_flight = upstream.start();
        let started = Instant::now();
        let outcome = send(gateway, upstream, &fast.upstream_head, answer, fast.is_head).await;
        let failure = match outcome {
            Ok((socket, head)) => {
                upstream.latency.observe(started.elapsed().as_secs_f64());
                let exchange = Exchange {
                    socket,
                    head,
                    upstream: upstream.clone(),
                    _in_flight: in_flight,
                };
                if !inner.retry_statuses.contains(&exchange.head.status) {
                    upstream.record_success();
                    answered(exchange.head.status.as_u16(), Some(upstream));
                    return relay(fast, exchange, client, answer).await;
                }
                tracing::warn!(pool = %pool.name, upstream = %upstream.authority, status = %exchange.head.status, "upstream answered with a failure status");
                Failure::Status(exchange)
            }
            Err(failure) => failure,
        };
        if upstream.record_failure(pool.eject_after_failures) {
            tracing::warn!(pool = %pool.name, upstream = %upstream.authority, "upstream ejected after consecutive failures");
        }
        last = Some(failure);
        if attempt > 0 || !retry {
            break;
        }
        exclude = Some(index);
    }
    match last {
        Some(Failure::Status(exchange)) => {
            answered(exchange.head.status.as_u16(), Some(&exchange.upstream));
            relay(fast, exchange, client, answer).await
        }
        Some(Failure::Error(status, message)) => {
            answered(status.as_u16(), None);
            write_error(client, status, &message, fast.close).await
        }
        None => {
            let status = StatusCode::SERVICE_UNAVAILABLE;
            answered(status.as_u16(), None);
            let message = no_upstream(pool);
            write_error(client, status, &message, fast.close).await
        }
    }
}

/// Counts an answered request and writes its access-log line, as
/// [`Gateway::handle`] does for the requests hyper serves.
fn answered(
    gateway: &Gateway,
    route: &crate::routes::Compiled,
    fast: &Fast,
    peer: SocketAddr,
    status: u16,
    upstream: Option<&Upstream>,
    began: Option<Instant>,
) {
    gateway.inner.metrics.count_request(&route.label, status);
    if let Some((method, uri)) = &fast.logged {
        tracing::info!(
            target: "gateway::access",
            client = %peer.ip(),
            %method,
            %uri,
            status,
            route = route.label.as_str(),
            upstream = upstream.map_or("-", |u| u.authority.as_str()),
            elapsed_us = began.map_or(0, |b| b.elapsed().as_micros() as u64),
        );
    }
}

fn no_upstream(pool: &Pool) -> String {
    format!("no healthy upstream in pool `{}`", pool.name)
}

/// How one try on one socket went.
enum Sent {
    Answered(Head),
    /// No byte came back on a reused socket: it was closed while idle.
    Stale,
    Failed(Failure),
}

/// Sends `head` to `upstream` (an idle socket of this thread first) and
/// reads the response head into `answer`.
async fn send(
    gateway: &Gateway,
    upstream: &Upstream,
    head: &[u8],
    answer: &mut BytesMut,
    is_head: bool,
) -> Result<(TcpStream, Head), Failure> {
    let inner = &*gateway.inner;
    let idle_timeout = crate::handler::UPSTREAM_IDLE;
    let pooled = IDLE.with(|idle| {
        idle.borrow_mut()
            .checkout(upstream.id, idle_timeout, still_open)
    });
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(inner.config.timeouts.upstream_response_ms);
    if let Some(mut socket) = pooled {
        match exchange_head(&mut socket, head, answer, is_head, deadline, true, inner).await {
            Sent::Answered(parsed) => return Ok((socket, parsed)),
            Sent::Stale => {}
            Sent::Failed(failure) => return Err(failure),
        }
    }
    let mut socket = connect(upstream, inner).await?;
    match exchange_head(&mut socket, head, answer, is_head, deadline, false, inner).await {
        Sent::Answered(parsed) => Ok((socket, parsed)),
        Sent::Stale => Err(closed()),
        Sent::Failed(failure) => Err(failure),
    }
}

/// Whether an idle socket is still usable: nothing to read (no EOF, no
/// stray bytes). Costs no system call while the socket is not readable.
fn still_open(socket: &mut TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(socket.try_read(&mut probe), Err(err) if err.kind() == std::io::ErrorKind::WouldBlock)
}

fn closed() -> Failure {
    Failure::Error(
        StatusCode::BAD_GATEWAY,
        "the upstream server closed the connection or sent an invalid response".into(),
    )
}

/// Opens a socket to `upstream` within `timeouts.connect_ms`.
async fn connect(upstream: &Upstream, inner: &crate::handler::Inner) -> Result<TcpStream, Failure> {
    let address = upstream.authority.as_str();
    let limit = Duration::from_millis(inner.config.timeouts.connect_ms);
    match tokio::time::timeout(limit, TcpStream::connect(address)).await {
        Ok(Ok(socket)) => {
            let _ = socket.set_nodelay(true);
            Ok(socket)
        }
        Ok(Err(err)) => {
            tracing::warn!(upstream = %address, "upstream request failed: cannot connect: {err}");
            Err(Failure::Error(
                StatusCode::BAD_GATEWAY,
                "cannot connect to the upstream server".into(),
            ))
        }
        Err(_) => {
            tracing::warn!(upstream = %address, "upstream request failed: connect timed out");
            Err(Failure::Error(
                StatusCode::BAD_GATEWAY,
                "cannot connect to the upstream server".into(),
            ))
        }
    }
}

/// Writes the request head, reads the response head (skipping 1xx
/// interim answers, as hyper's client does) before `deadline`.
async fn exchange_head(
    socket: &mut TcpStream,
    head: &[u8],
    answer: &mut BytesMut,
    is_head: bool,
    deadline: tokio::time::Instant,
    reused: bool,
    inner: &crate::handler::Inner,
) -> Sent {
    answer.clear();
    if socket.write_all(head).await.is_err() {
        return if reused {
            Sent::Stale
        } else {
            Sent::Failed(closed())
        };
    }
    let mut received = false;
    loop {
        match response::parse(answer, is_head) {
            Ok(Some(parsed)) if parsed.status.is_informational() => {
                answer.advance(parsed.head_bytes);
                continue;
            }
            Ok(Some(parsed)) => return Sent::Answered(parsed),
            Ok(None) if answer.len() >= RESPONSE_HEAD_BYTES_MAX => {
                return Sent::Failed(closed());
            }
            Ok(None) => {}
            Err(invalid) => {
                tracing::warn!("upstream request failed: {invalid}");
                return Sent::Failed(closed());
            }
        }
        answer.reserve(READ_BYTES);
        match tokio::time::timeout_at(deadline, socket.read_buf(answer)).await {
            Ok(Ok(n)) if n > 0 => received = true,
            Ok(_) if reused && !received => return Sent::Stale,
            Ok(_) => return Sent::Failed(closed()),
            Err(_) => {
                let ms = inner.config.timeouts.upstream_response_ms;
                tracing::warn!(timeout_ms = ms, "upstream did not answer in time");
                return Sent::Failed(Failure::Error(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("the upstream server did not answer within {ms} ms"),
                ));
            }
        }
    }
}

/// Writes the client's head and the body in the upstream's framing; puts
/// the upstream socket back when the body ended cleanly. Returns whether
/// the client connection can go on.
async fn relay(
    fast: &Fast,
    exchange: Exchange,
    client: &mut TcpStream,
    answer: &mut BytesMut,
) -> bool {
    let Exchange {
        mut socket,
        head,
        upstream,
        _in_flight,
    } = exchange;
    answer.advance(head.head_bytes);
    let close = fast.close || head.framing == Framing::UntilClose;
    let mut out = head.client_head;
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let body = copy_body(&mut socket, head.framing, out, client, answer).await;
    match body {
        Ok(ended_cleanly) => {
            if ended_cleanly && head.reusable {
                let idle_timeout = crate::handler::UPSTREAM_IDLE;
                IDLE.with(|idle| idle.borrow_mut().checkin(upstream.id, socket, idle_timeout));
            }
            !close
        }
        Err(()) => false,
    }
}

/// Copies the body after `out` (the client's head): `Ok(true)` when it
/// ended with nothing extra from the upstream, `Ok(false)` when the
/// upstream socket cannot be reused, `Err` when the client connection must
/// close (a broken body or a failed write).
async fn copy_body(
    socket: &mut TcpStream,
    framing: Framing,
    mut out: Vec<u8>,
    client: &mut TcpStream,
    answer: &mut BytesMut,
) -> Result<bool, ()> {
    match framing {
        Framing::Empty => {
            client.write_all(&out).await.map_err(drop)?;
            Ok(answer.is_empty())
        }
        Framing::Length(length) => {
            let mut remaining = length;
            let take = remaining.min(answer.len() as u64) as usize;
            out.extend_from_slice(&answer[..take]);
            answer.advance(take);
            remaining -= take as u64;
            client.write_all(&out).await.map_err(drop)?;
            while remaining > 0 {
                answer.clear();
                answer.reserve(READ_BYTES);
                match socket.read_buf(answer).await {
                    Ok(n) if n > 0 => {}
                    // The upstream stopped mid-body: the client cannot
                    // tell, except by the connection closing.
                    _ => return Err(()),
                }
                let take = remaining.min(answer.len() as u64) as usize;
                client.write_all(&answer[..take]).await.map_err(drop)?;
                answer.advance(take);
                remaining -= take as u64;
            }
            Ok(answer.is_empty())
        }
        Framing::Chunked => {
            let mut scanner = chunked::Scanner::new();
            let take = scanner.advance(answer).map_err(drop)?;
            out.extend_from_slice(&answer[..take]);
            answer.advance(take);
            client.write_all(&out).await.map_err(drop)?;
            while !scanner.is_done() {
                answer.clear();
                answer.reserve(READ_BYTES);
                match socket.read_buf(answer).await {
                    Ok(n) if n > 0 => {}
                    _ => return Err(()),
                }
                let take = scanner.advance(answer).map_err(drop)?;
                client.write_all(&answer[..take]).await.map_err(drop)?;
                answer.advance(take);
            }
            Ok(answer.is_empty())
        }
        Framing::UntilClose => {
            out.extend_from_slice(answer);
            answer.clear();
            client.write_all(&out).await.map_err(drop)?;
            loop {
                answer.clear();
                answer.reserve(READ_BYTES);
                match socket.read_buf(answer).await {
                    Ok(0) => return Ok(false),
                    Ok(_) => client.write_all(answer).await.map_err(drop)?,
                    Err(_) => return Err(()),
                }
            }
        }
    }
}

/// Writes a JSON error the way [`crate::error::json`] shapes it.
async fn write_error(
    client: &mut TcpStream,
    status: StatusCode,
    message: &str,
    close: bool,
) -> bool {
    let body = crate::error::body(message);
    let mut out = Vec::with_capacity(body.len() + 200);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\n");
    request::push_header(&mut out, b"via", crate::headers::VIA.as_bytes());
    request::push_header(
        &mut out,
        b"content-length",
        body.len().to_string().as_bytes(),
    );
    service::front::push_date(&mut out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    client.write_all(&out).await.is_ok() && !close
}
