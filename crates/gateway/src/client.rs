//! The upstream client: keep-alive HTTP/1.1 connections on hyper's
//! `client::conn::http1`, pooled per thread.
//!
//! Why not hyper-util's pooled client: its pool is one map behind a mutex
//! shared by every thread, keyed by scheme and authority, and it spawns and
//! tracks connections through an executor of its own; profiles of the
//! gateway at saturation showed its checkout among the costs nginx does not
//! pay. Here each serving thread (see [`crate::server`]: one
//! single-threaded runtime per core) keeps its own idle connections per
//! upstream in a thread-local list, so a checkout is a `Vec::pop` with no
//! lock, and a connection's task runs on the thread that serves its
//! requests.
//!
//! A connection goes back to its thread's idle list when the response body
//! that used it is complete ([`Lease`] is dropped then); a response read
//! only part-way closes it, since its unread bytes make it unusable. Idle
//! connections are reused newest first (warm ones), at most
//! [`IDLE_MAX_PER_UPSTREAM`] per upstream and thread, and dropped after
//! `idle_timeout` unused; a connection the upstream closed is noticed at
//! checkout and discarded. A request that a pooled connection could not
//! even send (closed under us) goes out on a fresh connection: it never
//! left, so that is not a retry.

use std::cell::RefCell;
use std::time::Duration;

use futures::FutureExt;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::UpstreamBody;
pub use crate::idle::IDLE_MAX_PER_UPSTREAM;
use crate::idle::IdleLists;
use crate::upstream::Upstream;

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be opened: the request never left.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection failed mid-exchange, or the answer was not HTTP.
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl SendError {
    /// Whether the request never reached the upstream.
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

/// The forwarding client's settings (the connections live in thread-locals).
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    connect_timeout: Duration,
    idle_timeout: Duration,
}

thread_local! {
    /// This thread's idle connections, by upstream id.
    static IDLE: RefCell<IdleLists<SendRequest<UpstreamBody>>> =
        const { RefCell::new(IdleLists::new()) };
}

/// A connection lent to one exchange; back to the idle list on
/// [`Lease::release`] (the response body ended), closed if dropped first.
pub struct Lease {
    upstream_id: u64,
    idle_timeout: Duration,
    sender: Option<SendRequest<UpstreamBody>>,
}

impl Lease {
    /// The exchange is complete: the connection may serve the next request.
    pub fn release(&mut self) {
        if let Some(sender) = self.sender.take() {
            checkin(self.upstream_id, sender, self.idle_timeout);
        }
    }
}

impl UpstreamClient {
    /// A client whose connects give up after `connect_timeout` and whose idle
    /// connections close after `idle_timeout`.
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            idle_timeout,
        }
    }

    /// Sends `request` (origin-form target, `Host` set) to `upstream` on an
    /// idle connection of this thread, or a new one; returns the response
    /// head and the lease to release once its body is read.
    pub async fn send(
        &self,
        upstream: &Upstream,
        request: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let mut request = request;
        if let Some(mut sender) = self.checkout(upstream.id) {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, self.lease(upstream.id, sender))),
                Err(mut failed) => match failed.take_message() {
                    // Closed before the request was written: send it anew.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Http(failed.into_error())),
                },
            }
        }
        let mut sender = self.connect(upstream).await?;
        let response = sender.send_request(request).await?;
        Ok((response, self.lease(upstream.id, sender)))
    }

    /// The newest idle connection to `upstream_id` that is ready, dropping
    /// closed and expired ones on the way.
    fn checkout(&self, upstream_id: u64) -> Option<SendRequest<UpstreamBody>> {
        IDLE.with(|idle| {
            idle.borrow_mut()
                .checkout(upstream_id, self.idle_timeout, |sender| {
                    // Closed by the upstream, or still finishing the last
                    // exchange: not usable now.
                    matches!(sender.ready().now_or_never(), Some(Ok(())))
                })
        })
    }

    fn lease(&self, upstream_id: u64, sender: SendRequest<UpstreamBody>) -> Lease {
        Lease {
            upstream_id,
            idle_timeout: self.idle_timeout,
            sender: Some(sender),
        }
    }

    /// Opens a connection to `upstream` within the connect timeout and
    /// spawns its task on this thread's runtime.
    async fn connect(&self, upstream: &Upstream) -> Result<SendRequest<UpstreamBody>, SendError> {
        let address = upstream.authority.as_str();
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => return Err(SendError::Connect(format!("{address}: {err}"))),
                Err(_) => {
                    let ms = self.connect_timeout.as_millis();
                    return Err(SendError::Connect(format!(
                        "{address}: timed out after {ms} ms"
                    )));
                }
            };
        // Small requests and responses: Nagle's delay would add latency for nothing.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| SendError::Connect(format!("{address}: {err}")))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("upstream connection ended: {err}");
            }
        });
        Ok(sender)
    }
}

/// Puts a connection back on this thread's idle list for `upstream_id`,
/// closing the ones idle longer than `idle_timeout` on the way.
fn checkin(upstream_id: u64, sender: SendRequest<UpstreamBody>, idle_timeout: Duration) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|idle| idle.borrow_mut().checkin(upstream_id, sender, idle_timeout));
}
