//! The listening side: accepting connections within `connections_max`,
//! serving HTTP/1.1 on each (the relay, [`crate::relay`], handing to hyper
//! what it does not take) under the header-read timeout, and draining on
//! shutdown.
//!
//! Limits at this layer protect the gateway itself, before any request is
//! parsed: a connection over `connections_max` gets a canned 503 and is
//! closed (not left to wait in the kernel's accept queue where the client
//! cannot tell a slow gateway from a dead one); a client that does not
//! finish its request head within `header_read_ms` (the slowloris attack:
//! many connections each trickling a header byte at a time) is cut off by
//! hyper's header-read timer, which also closes idle keep-alive connections.
//!
//! **Thread per core.** [`Gateway::serve_workers`] runs the accept loop on
//! N single-threaded runtimes, each with a listener of its own on the same
//! address (`SO_REUSEPORT`: the kernel spreads new connections over them),
//! like nginx's worker processes. A connection, its requests and the
//! upstream connections serving them ([`crate::client`]) stay on one
//! thread: no work stealing, no cross-thread wakeups. On one core a
//! single-threaded runtime proxies about 40 % more than tokio's
//! work-stealing one (BENCHMARKS.md), and N of them keep that per core.
//! Health checks, data-center failover and rules reloading run once, on the
//! calling runtime; the connection limit is shared by all workers.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;
use service::SystemContext;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::error;
use crate::handler::Gateway;
use crate::health;
use crate::relay::{self, HandOff};

impl Gateway {
    /// Serves clients on `listener` until `ctx.shutdown`, then drains open
    /// connections (the caller bounds the drain). Starts one health checker
    /// per pool, reports `ctx.health` up once accepting.
    pub async fn serve(self, listener: TcpListener, ctx: SystemContext) -> anyhow::Result<()> {
        self.serve_workers(listener, 1, ctx).await
    }

    /// [`Gateway::serve`] on `workers` single-threaded runtimes: the calling
    /// one on `listener`, and `workers - 1` threads of their own, each on a
    /// new listener at `listener`'s address. With `workers > 1`, bind
    /// `listener` with [`service::net::bind_reuseport`] (and call this on a
    /// current-thread runtime, so that it is one worker too).
    pub async fn serve_workers(
        self,
        listener: TcpListener,
        workers: usize,
        ctx: SystemContext,
    ) -> anyhow::Result<()> {
        self.start_background(&ctx);
        let permits = Arc::new(Semaphore::new(self.inner.config.limits.connections_max));
        let pools = self.inner.pools.len();
        let health = ctx.health.clone();
        let gateway = self.clone();
        let serve = move |listener| {
            gateway
                .clone()
                .accept(listener, permits.clone(), ctx.clone())
        };
        service::net::serve_workers(listener, workers, "gateway", serve, |addr| {
            health.set_up();
            tracing::info!(%addr, pools, workers, "gateway listening");
        })
        .await
    }

    /// The tasks that run once per gateway, whatever the worker count:
    /// health checks, data-center failover, rules reloading.
    fn start_background(&self, ctx: &SystemContext) {
        let inner = &self.inner;
        for (pool, check) in inner.pools.iter().zip(&inner.checks) {
            tokio::spawn(health::run(
                pool.clone(),
                check.clone(),
                inner.config.timeouts.connect_ms,
                ctx.shutdown.clone(),
            ));
        }
        if !inner.datacenters.is_empty() {
            tokio::spawn(inner.datacenters.clone().run(
                inner.pools.clone(),
                inner.metrics.clone(),
                ctx.shutdown.clone(),
            ));
        }
        if let Some(limiting) = &inner.limiting {
            limiting.start_reloading(ctx.shutdown.clone());
        }
    }

    /// One worker's accept loop: serves connections from `listener` within
    /// the shared `permits` until shutdown, then drains them.
    async fn accept(
        self,
        listener: TcpListener,
        permits: Arc<Semaphore>,
        ctx: SystemContext,
    ) -> anyhow::Result<()> {
        let inner = self.inner.clone();
        let graceful = GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(inner.config.timeouts.header_read_ms))
            .max_buf_size(inner.config.limits.header_bytes_max);
        while let Some((stream, client)) = service::net::accept(&listener, &ctx.shutdown).await {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                inner.metrics.count_refusal("connections_max");
                tokio::spawn(refuse(stream));
                continue;
            };
            let _ = stream.set_nodelay(true);
            let gateway = self.clone();
            let hand_off = HandOff {
                http: http.clone(),
                watcher: graceful.watcher(),
            };
            let connections = inner.metrics.connections.clone();
            connections.inc();
            let (relayed, shutdown) = (inner.config.relay, ctx.shutdown.clone());
            tokio::spawn(async move {
                if relayed {
                    relay::serve(gateway, stream, client, hand_off, shutdown).await;
                } else {
                    crate::hyper_conn::serve(gateway, stream, client, hand_off).await;
                }
                connections.dec();
                drop(permit);
            });
        }
        drop(listener);
        ctx.health.set_down("shutting down");
        graceful.shutdown().await;
        Ok(())
    }
}

/// Answers a connection over the limit with a 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let write = stream.write_all(error::CONNECTIONS_FULL);
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
    let _ = stream.shutdown().await;
}

/// Starts a standalone gateway: validates `config`, registers metrics in a
/// registry of its own (served at `config.metrics_path`), and serves.
pub async fn serve(
    listener: TcpListener,
    config: crate::config::Config,
    ctx: SystemContext,
) -> anyhow::Result<()> {
    let mut registry = service::metrics::Registry::with_prefix("hyperscale");
    let gateway = Gateway::new(config, registry.sub_registry_with_prefix("gateway"))?;
    gateway.set_metrics_source(crate::handler::MetricsSource::Own(Arc::new(registry)));
    gateway.serve(listener, ctx).await
}
