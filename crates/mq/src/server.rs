//! The server: the accept loop, one task per connection, background tasks,
//! shutdown.
//!
//! As in `kv`, [`Server::open`] opens the data directory (blocking, before
//! anything is announced) and [`Server::serve`] takes a bound listener and a
//! [`SystemContext`], so the same code runs under `hyperscale mq serve`,
//! `hyperscale up` and the tests (port 0).
//!
//! Each connection handles its requests one at a time, in order, as a Kafka
//! broker does (clients pipeline, and responses must come back in request
//! order). `connections_max` is enforced at accept by closing the extra
//! connection; an idle connection is closed after `connections_max_idle_ms`;
//! request bodies held in memory are bounded over all connections by
//! `queued_max_request_bytes` (a semaphore acquired before a body is read).
//! On shutdown the listener closes, connections finish the request they are
//! handling (bounded), and every partition is fsynced.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use service::SystemContext;
use tokio::io::BufWriter;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::api::{Outcome, handle};
use crate::broker::Broker;
use crate::cluster::node::FetchHandler;
use crate::cluster::replication::{self, serve_fetch};
use crate::config::{Config, Fsync};
use crate::frame::{FrameError, read_body, read_length, write_frame};
use crate::group::coordinator::{TICK, now_ms};
use crate::metrics::Metrics;

/// How long shutdown waits for connections to finish their request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the consumer-lag metric is refreshed.
const LAG_REFRESH: Duration = Duration::from_secs(5);
/// How often retention runs (Kafka's `log.retention.check.interval.ms`).
const RETENTION_CHECK: Duration = Duration::from_secs(300);

/// A broker whose data directory is open, ready to serve.
pub struct Server {
    broker: Arc<Broker>,
    listener: TcpListener,
}

impl Server {
    /// Opens the data directory named by `config` (blocking) for serving on
    /// `listener`, whose address is advertised unless `advertised_address` is set.
    pub fn open(
        config: Config,
        listener: TcpListener,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Server> {
        let bound = listener.local_addr()?;
        let broker = Broker::open(config, bound, metrics)?;
        Ok(Server {
            broker: Arc::new(broker),
            listener,
        })
    }

    /// The shared state (tests inspect it).
    pub fn broker(&self) -> Arc<Broker> {
        self.broker.clone()
    }

    /// Serves until `ctx.shutdown` fires (see the module doc).
    pub async fn serve(self, ctx: SystemContext) -> anyhow::Result<()> {
        let Server { broker, listener } = self;
        let stop = ctx.shutdown.child_token();
        // Cancelled by a shutdown, or when the cluster's Raft state cannot
        // be persisted (this broker must then stop serving, not linger).
        let stop_accepting = ctx.shutdown.child_token();
        let failed = Arc::new(parking_lot::Mutex::new(None));
        spawn_maintenance(&broker, &stop);
        spawn_cluster(&broker, &stop, &stop_accepting, &failed)?;
        ctx.health.set_up();
        tracing::info!(addr = %listener.local_addr()?, data_dir = %broker.config.data_dir.display(), "mq broker listening");
        let open = Arc::new(AtomicUsize::new(0));
        accept_loop(&broker, &listener, &stop_accepting, &stop, &open).await;
        ctx.health.set_down("shutting down");
        stop.cancel();
        drop(listener);
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while open.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        broker.blocking(Broker::flush_all_blocking).await?;
        match failed.lock().take() {
            Some(reason) => Err(anyhow::anyhow!(reason)),
            None => Ok(()),
        }
    }
}

/// Opens `config`'s data directory off the async workers, then serves.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    metrics: Arc<Metrics>,
    ctx: SystemContext,
) -> anyhow::Result<()> {
    let server =
        tokio::task::spawn_blocking(move || Server::open(config, listener, metrics)).await??;
    server.serve(ctx).await
}

/// Starts what a broker runs besides requests, until `stop`: the group
/// coordinator's ticker (session timeouts, overdue rebalances) and the lag
/// metric, the `fsync = interval` timer, and retention. [`Server::serve`]
/// calls it; so does a broker embedded in a process without a listener
/// (the `mqclient` crate).
pub fn spawn_maintenance(broker: &Arc<Broker>, stop: &CancellationToken) {
    let (b, s) = (broker.clone(), stop.clone());
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK);
        let mut lag_refreshed = tokio::time::Instant::now() - LAG_REFRESH;
        loop {
            tokio::select! {
                () = s.cancelled() => return,
                _ = ticker.tick() => {
                    b.groups.tick();
                    let (groups, members) = b.groups.counts();
                    b.metrics.groups.set(groups as i64);
                    b.metrics.group_members.set(members as i64);
                    // In-memory maps and atomics only: cheap enough for a worker.
                    if lag_refreshed.elapsed() >= LAG_REFRESH {
                        lag_refreshed = tokio::time::Instant::now();
                        b.metrics.set_consumer_lags(b.consumer_lags());
                    }
                }
            }
        }
    });
    if broker.config.fsync == Fsync::Interval {
        // The log fsyncs on an append once the interval has passed; this
        // timer covers the last appends before a quiet period.
        let (b, s) = (broker.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval(Duration::from_millis(b.config.fsync_interval_ms.max(1)));
            loop {
                tokio::select! {
                    () = s.cancelled() => return,
                    _ = ticker.tick() => b.blocking(flush_appended).await,
                }
            }
        });
    }
    let (b, s) = (broker.clone(), stop.clone());
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(RETENTION_CHECK);
        loop {
            tokio::select! {
                () = s.cancelled() => return,
                _ = ticker.tick() => {
                    b.blocking(|b| {
                        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
                        for topic in b.topics.list() {
                            for partition in &topic.partitions {
                                if let Err(err) = partition.enforce_retention_blocking(now) {
                                    tracing::warn!(topic = %topic.name, partition = partition.index, error = %err, "retention failed");
                                }
                            }
                        }
                    }).await;
                }
            }
        }
    });
}

/// In a cluster: the Raft driver, the internal listener, heartbeats to the
/// controller and the replication reconciler.
fn spawn_cluster(
    broker: &Arc<Broker>,
    stop: &CancellationToken,
    stop_accepting: &CancellationToken,
    failed: &Arc<parking_lot::Mutex<Option<String>>>,
) -> anyhow::Result<()> {
    let (Some(node), Some((driver, internal))) =
        (broker.cluster.clone(), broker.cluster_parts.lock().take())
    else {
        return Ok(());
    };
    let internal = TcpListener::from_std(internal)?;
    let (s, halt, failed) = (stop.clone(), stop_accepting.clone(), failed.clone());
    tokio::spawn(async move {
        if let Err(err) = driver.run(s).await {
            // The Raft state cannot be persisted: this broker must not vote
            // on, nor keep leading partitions with nobody fencing it.
            tracing::error!(error = %err, "controller quorum driver failed: the broker stops");
            *failed.lock() = Some(format!("controller quorum driver failed: {err}"));
            halt.cancel();
        }
    });
    let b = broker.clone();
    let fetch: FetchHandler = Arc::new(move |request| Box::pin(serve_fetch(b.clone(), request)));
    tokio::spawn(node.clone().serve_internal(internal, fetch, stop.clone()));
    tokio::spawn(node.clone().run_heartbeats(
        broker.advertised_host.clone(),
        broker.advertised_port,
        stop.clone(),
    ));
    let lag = broker.config.replica_lag_time_max_ms;
    tokio::spawn(replication::run(broker.clone(), node, lag, stop.clone()));
    Ok(())
}

fn flush_appended(broker: &Broker) {
    for topic in broker.topics.list() {
        for partition in &topic.partitions {
            if let Err(err) = partition.flush_if_appended_blocking() {
                tracing::error!(topic = %topic.name, partition = partition.index, error = %err, "fsync failed");
            }
        }
    }
}

async fn accept_loop(
    broker: &Arc<Broker>,
    listener: &TcpListener,
    stop_accepting: &CancellationToken,
    stop: &CancellationToken,
    open: &Arc<AtomicUsize>,
) {
    loop {
        let accepted = tokio::select! {
            () = stop_accepting.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.load(Ordering::Acquire) >= broker.config.connections_max {
            broker.metrics.connections_rejected.inc();
            tracing::debug!(%peer, "connection refused: connections_max reached");
            drop(stream);
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        broker.metrics.connections.inc();
        let (broker, stop, open) = (broker.clone(), stop.clone(), open.clone());
        tokio::spawn(async move {
            if let Err(reason) = serve_connection(&broker, stream, &stop).await {
                tracing::debug!(%peer, "connection closed: {reason}");
            }
            broker.metrics.connections.dec();
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

async fn serve_connection(
    broker: &Arc<Broker>,
    stream: TcpStream,
    stop: &CancellationToken,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::new(writer);
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let max_bytes = broker.config.socket_request_max_bytes;
    loop {
        let len = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            read = tokio::time::timeout(idle, read_length(&mut reader, max_bytes)) => match read {
                Err(_) => return Err("idle for connections_max_idle_ms".into()),
                Ok(Err(FrameError::Closed)) => return Ok(()),
                Ok(Err(err)) => {
                    broker.metrics.requests_invalid.inc();
                    return Err(err.to_string());
                }
                Ok(Ok(len)) => len,
            },
        };
        // Held until the response is written: bounds request memory overall.
        let permits = u32::try_from(len).map_err(|_| "frame length above u32".to_string())?;
        let _budget = broker
            .request_budget
            .acquire_many(permits)
            .await
            .map_err(|_| "request budget closed".to_string())?;
        let frame = match tokio::time::timeout(idle, read_body(&mut reader, len)).await {
            Err(_) => return Err("stalled mid-request for connections_max_idle_ms".into()),
            Ok(Err(err)) => return Err(err.to_string()),
            Ok(Ok(frame)) => frame,
        };
        broker.metrics.bytes_in.inc_by(frame.len() as u64 + 4);
        match handle(broker, frame).await {
            Outcome::Respond(body) => {
                write_frame(&mut writer, &body)
                    .await
                    .map_err(|e| e.to_string())?;
                broker.metrics.bytes_out.inc_by(body.len() as u64 + 4);
            }
            Outcome::Silent => {}
            Outcome::Close(reason) => return Err(reason),
        }
    }
}
