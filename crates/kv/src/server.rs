//! The server: the accept loop, background tasks, shutdown.
//!
//! [`serve`] takes an already-bound listener, so the caller decides the
//! address (and tests bind port 0), and a [`service::SystemContext`], so the
//! same function runs under `hyperscale kv serve` and under `hyperscale up`.
//! It opens the engine, starts active expiry and the metrics refresh, then
//! accepts clients until the shutdown token fires; then it stops accepting,
//! lets connections finish the command they are running, waits for them
//! (bounded) and syncs the engine so nothing acknowledged is lost on a clean
//! stop.
//!
//! `maxclients` is enforced at accept: the extra client gets Redis's
//! `-ERR max number of clients reached` and is closed, so 10,000 idle
//! connections cost their buffers and nothing else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use service::SystemContext;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EngineKind};
use crate::connection::serve_connection;
use crate::engine::lsm::LsmEngine;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, EngineError};
use crate::metrics::Metrics;
use crate::state::State;
use crate::state::expiry::run_active_expiry;

/// How long shutdown waits for connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often metrics gauges are refreshed from the keyspace.
const METRICS_REFRESH: Duration = Duration::from_secs(1);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine could not be opened.
    // `reason` is in the message and deliberately not a `source`: callers
    // that print the error chain (`{:#}`) would otherwise print it twice.
    #[error("cannot open the {engine} engine: {reason}")]
    Engine {
        /// Which engine.
        engine: &'static str,
        /// Why.
        reason: EngineError,
    },
    /// The listener failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The settings cannot work together; the message says what to change.
    #[error("invalid settings: {0}")]
    Config(String),
}

/// Opens the engine `config` names.
fn open_engine(config: &Config) -> Result<Box<dyn Engine>, Error> {
    match config.engine {
        EngineKind::Memory => Ok(Box::new(
            MemoryEngine::new(
                config.maxmemory,
                config.maxmemory_policy,
                config.maxmemory_samples,
            )
            .with_lfu(config.lfu_log_factor, config.lfu_decay_time),
        )),
        EngineKind::Lsm => {
            LsmEngine::open(&config.data_dir, config.fsync).map_err(|reason| Error::Engine {
                engine: "lsm",
                reason,
            })
        }
    }
}

/// A server whose engine is open and which is ready to serve.
///
/// Opening is separate from serving so a caller can fail early, before it
/// announces anything: `hyperscale kv serve` on a data directory another
/// server holds reports that once and never prints a listening banner.
pub struct Server {
    config: Config,
    engine: Box<dyn Engine>,
}

impl Server {
    /// Opens the engine `config` names (blocking: the lsm engine reads its
    /// directory; call it outside async worker threads, or use [`serve`]).
    pub fn open(mut config: Config) -> Result<Server, Error> {
        let engine = open_engine(&config)?;
        config.proto_max_bulk_len =
            proto_max_bulk_len(config.proto_max_bulk_len, engine.value_bytes_max())?;
        Ok(Server { config, engine })
    }

    /// Serves RESP on `listener` until `ctx.shutdown` fires (see the module docs).
    pub async fn serve(
        self,
        listener: TcpListener,
        metrics: Arc<Metrics>,
        ctx: SystemContext,
    ) -> Result<(), Error> {
        let port = listener.local_addr()?.port();
        let state = Arc::new(State::new(self.config, self.engine, metrics, port));
        let shutdown = ctx.shutdown.child_token();
        spawn_background(&state, &shutdown);
        ctx.health.set_up();
        tracing::info!(addr = %listener.local_addr()?, engine = ?state.config.read().engine, "kv server listening");
        accept_loop(&state, &listener, &ctx.shutdown, &shutdown).await;
        ctx.health.set_down("shutting down");
        shutdown.cancel();
        drop(listener);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        // A connection leaves the client list a moment before its task lets
        // go of the state; wait for the tasks too, so the engine (and the lsm
        // directory's lock) is released when `serve` returns and a server
        // restarted on the same directory can open it at once.
        while (state.clients.count() > 0 || Arc::strong_count(&state) > 1)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let synced = tokio::task::spawn_blocking(move || {
            let synced = state.db.lock().engine_mut().sync();
            // Closing the engine is disk work too (the lsm joins its threads).
            drop(state);
            synced
        })
        .await
        .map_err(|err| Error::Io(std::io::Error::other(err)))?;
        synced.map_err(|reason| Error::Engine {
            engine: "configured",
            reason,
        })
    }
}

/// `proto-max-bulk-len` on an engine that stores values up to
/// `engine_max` bytes: Redis's default (512 MB) becomes the engine's limit,
/// so `CONFIG GET` tells clients the truth and oversized writes get Redis's
/// errors; a larger value set on purpose is refused at start.
fn proto_max_bulk_len(configured: u64, engine_max: Option<u64>) -> Result<u64, Error> {
    match engine_max {
        Some(max) if configured > max => {
            if configured == Config::default().proto_max_bulk_len {
                Ok(max)
            } else {
                Err(Error::Config(format!(
                    "proto_max_bulk_len is {configured} bytes, but this engine stores values of at most {max} bytes; lower it or use the memory engine"
                )))
            }
        }
        _ => Ok(configured),
    }
}

/// Opens the engine `config` names and serves RESP on `listener` until
/// `ctx.shutdown` fires: [`Server::open`] (off the async workers) then
/// [`Server::serve`].
pub async fn serve(
    listener: TcpListener,
    config: Config,
    metrics: Arc<Metrics>,
    ctx: SystemContext,
) -> Result<(), Error> {
    let server = tokio::task::spawn_blocking(move || Server::open(config))
        .await
        .map_err(|err| Error::Io(std::io::Error::other(err)))??;
    server.serve(listener, metrics, ctx).await
}

fn spawn_background(state: &Arc<State>, shutdown: &CancellationToken) {
    tokio::spawn(run_active_expiry(state.clone(), shutdown.clone()));
    tokio::spawn(crate::replication::replica::run(
        state.clone(),
        shutdown.clone(),
    ));
    let refresher = state.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(METRICS_REFRESH);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {
                    // Skips a turn rather than block a worker behind a long script.
                    if let Some(ks) = refresher.db.try_lock_for(crate::state::expiry::BACKGROUND_LOCK_WAIT) {
                        refresher.metrics.refresh(&ks);
                    }
                }
            }
        }
    });
    // `everysec` needs no task here: the LSM fsyncs its log once a second itself.
}

async fn accept_loop(
    shared: &Arc<State>,
    listener: &TcpListener,
    stop_accepting: &CancellationToken,
    shutdown: &CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop_accepting.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (mut stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let max = shared.config.read().maxclients;
        let Some(info) = shared
            .clients
            .register(max, Some(peer), stream.local_addr().ok())
        else {
            shared.metrics.connections_rejected.inc();
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        };
        shared.metrics.connections_accepted.inc();
        shared.metrics.connections.inc();
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let id = info.id;
            serve_connection(shared.clone(), shutdown, stream, info).await;
            shared.clients.unregister(id);
            shared.metrics.connections.dec();
        });
    }
}
