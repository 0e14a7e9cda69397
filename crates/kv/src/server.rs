//! The server: shared state, the accept loop, background tasks, shutdown.
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

use parking_lot::RwLock;
use service::SystemContext;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clients::Clients;
use crate::config::{Config, EngineKind};
use crate::engine::lsm::LsmEngine;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, EngineError};
use crate::keyspace::{Db, Keyspace};
use crate::metrics::Metrics;
use crate::pubsub::Hub;

/// How long shutdown waits for connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often metrics gauges are refreshed from the keyspace.
const METRICS_REFRESH: Duration = Duration::from_secs(1);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine could not be opened.
    #[error("cannot open the {engine} engine: {source}")]
    Engine {
        /// Which engine.
        engine: &'static str,
        /// Why.
        source: EngineError,
    },
    /// The listener failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
}

/// State shared by every connection.
pub struct Shared {
    /// The keyspace behind its lock.
    pub db: Db,
    /// Pub/sub routing.
    pub hub: Hub,
    /// Settings; `CONFIG SET` writes here.
    pub config: RwLock<Config>,
    /// Metrics handles.
    pub metrics: Arc<Metrics>,
    /// Connected clients.
    pub clients: Clients,
    /// Start time (uptime).
    pub started: Instant,
    /// Start time as Unix ms (`LASTSAVE`).
    pub started_unix_ms: u64,
    /// The listening port (`INFO server`).
    pub port: u16,
    /// Fires on shutdown.
    pub shutdown: CancellationToken,
}

/// Opens the engine `config` names.
pub fn open_engine(config: &Config) -> Result<Box<dyn Engine>, Error> {
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
            LsmEngine::open(&config.data_dir, config.fsync).map_err(|source| Error::Engine {
                engine: "lsm",
                source,
            })
        }
    }
}

/// Metrics for the full command table (register them before serving).
pub fn new_metrics() -> Arc<Metrics> {
    let names: Vec<&str> = crate::command::table().iter().map(|s| s.name).collect();
    Arc::new(Metrics::new(&names))
}

/// Serves RESP on `listener` until `ctx.shutdown` fires (see the module docs).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    metrics: Arc<Metrics>,
    ctx: SystemContext,
) -> Result<(), Error> {
    let engine = open_engine(&config)?;
    let port = listener.local_addr()?.port();
    let shared = Arc::new(Shared {
        db: parking_lot::Mutex::new(Keyspace::new(engine)),
        hub: Hub::default(),
        metrics,
        clients: Clients::default(),
        started: Instant::now(),
        started_unix_ms: clock::now_ms(),
        port,
        shutdown: ctx.shutdown.child_token(),
        config: RwLock::new(config),
    });
    spawn_background(&shared);
    ctx.health.set_up();
    tracing::info!(addr = %listener.local_addr()?, engine = ?shared.config.read().engine, "kv server listening");
    accept_loop(&shared, &listener, &ctx.shutdown).await;
    ctx.health.set_down("shutting down");
    shared.shutdown.cancel();
    drop(listener);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.clients.count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let synced = shared.db.lock().engine_mut().sync();
    synced.map_err(|source| Error::Engine {
        engine: "configured",
        source,
    })
}

fn spawn_background(shared: &Arc<Shared>) {
    tokio::spawn(crate::expiry::run_active_expiry(shared.clone()));
    let refresher = shared.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(METRICS_REFRESH);
        loop {
            tokio::select! {
                () = refresher.shutdown.cancelled() => return,
                _ = ticker.tick() => refresher.metrics.refresh(&refresher.db.lock()),
            }
        }
    });
    // `everysec` needs no task here: the LSM fsyncs its log once a second itself.
}

async fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, shutdown: &CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
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
        tokio::spawn(async move {
            let id = info.id;
            crate::connection::serve_connection(shared.clone(), stream, info).await;
            shared.clients.unregister(id);
            shared.metrics.connections.dec();
        });
    }
}
