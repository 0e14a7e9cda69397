//! [`Replicated`]: the [`KvClient`] over a primary and its replicas, the
//! chapter's "writes to the primary, reads spread over replicas".
//!
//! Writes always go to the primary. Reads go where [`ReadFrom`] says:
//! - [`ReadFrom::Primary`]: the primary (read-your-writes, the default);
//! - [`ReadFrom::Replica`]: the replicas in turn, the primary if none answers;
//! - [`ReadFrom::Nearest`]: whichever of them answered `PING` fastest at the
//!   last topology refresh.
//!
//! **Stale reads.** Replication is asynchronous: a replica applies a write
//! some time after the primary acknowledged it (milliseconds on a LAN; the
//! replica's `slave_repl_offset` against the primary's `master_repl_offset`
//! in `INFO replication` shows the lag). A read from a replica may
//! therefore miss a write this very client just made, or go back in time
//! when two reads land on replicas with different lags, and after a
//! failover a write the old primary acknowledged but never sent is gone
//! for good (`WAIT` narrows that window; Redis and our kv behave alike).
//! Use `Replica`/`Nearest` for reads that tolerate that (counters shown to
//! users, caches, listings), and `Primary` for read-modify-write logic.
//!
//! The topology is either fixed ([`Topology::Static`]) or asked from
//! sentinels ([`Topology::Sentinel`]: `SENTINEL get-master-addr-by-name`
//! and `SENTINEL replicas`), in which case a failed write, or a `READONLY`
//! answer from a primary that was demoted, refreshes it and retries once,
//! so the application follows a failover with no configuration change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::remote::{Remote, RemoteOptions};
use crate::{BoxFuture, Error, KvClient, Pair, Result};

/// Where reads go (see the module docs for the stale-read risk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// The primary only.
    #[default]
    Primary,
    /// The replicas, the primary as a fallback.
    Replica,
    /// The lowest-latency of primary and replicas.
    Nearest,
}

impl std::str::FromStr for ReadFrom {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "primary" => Ok(ReadFrom::Primary),
            "replica" => Ok(ReadFrom::Replica),
            "nearest" => Ok(ReadFrom::Nearest),
            other => Err(format!(
                "read_from must be primary, replica or nearest, not `{other}`"
            )),
        }
    }
}

/// Where the primary and replicas are.
#[derive(Debug, Clone)]
pub enum Topology {
    /// Fixed `host:port` addresses.
    Static {
        /// The primary.
        primary: String,
        /// The replicas.
        replicas: Vec<String>,
    },
    /// Asked from sentinels (`host:port` each) for the primary `name`.
    Sentinel {
        /// The sentinels, tried in order.
        sentinels: Vec<String>,
        /// The primary's name (`mymaster`).
        name: String,
    },
}

/// One reachable server and its last measured round trip.
#[derive(Clone)]
struct Node {
    addr: String,
    remote: Remote,
    rtt: Duration,
}

#[derive(Clone, Default)]
struct Current {
    primary: Option<Node>,
    replicas: Vec<Node>,
}

/// A primary–replica store (see the module docs).
pub struct Replicated {
    topology: Topology,
    read_from: ReadFrom,
    options: RemoteOptions,
    current: Mutex<Current>,
    next_replica: AtomicUsize,
}

impl std::fmt::Debug for Replicated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicated")
            .field("topology", &self.topology)
            .field("read_from", &self.read_from)
            .finish_non_exhaustive()
    }
}

async fn open(addr: &str, options: &RemoteOptions) -> Option<Node> {
    let remote = Remote::connect(&format!("redis://{addr}/"), options.clone())
        .await
        .ok()?;
    let started = Instant::now();
    let mut connection = remote.connection();
    let timeout = Duration::from_millis(options.timeout_ms);
    let pong: Option<String> =
        tokio::time::timeout(timeout, redis::cmd("PING").query_async(&mut connection))
            .await
            .ok()?
            .ok();
    pong.map(|_| Node {
        addr: addr.to_string(),
        remote,
        rtt: started.elapsed(),
    })
}

impl Replicated {
    /// Resolves the topology and connects to what answers (the primary
    /// must, for writes; replicas that do not are skipped until a refresh).
    pub async fn connect(
        topology: Topology,
        read_from: ReadFrom,
        options: RemoteOptions,
    ) -> Result<Self> {
        let client = Replicated {
            topology,
            read_from,
            options,
            current: Mutex::new(Current::default()),
            next_replica: AtomicUsize::new(0),
        };
        client.refresh().await?;
        Ok(client)
    }

    /// The primary's address now.
    pub fn primary_addr(&self) -> Option<String> {
        self.current.lock().primary.as_ref().map(|n| n.addr.clone())
    }

    /// Asks the topology again and reconnects.
    pub async fn refresh(&self) -> Result<()> {
        let (primary, replicas) = match &self.topology {
            Topology::Static { primary, replicas } => (primary.clone(), replicas.clone()),
            Topology::Sentinel { sentinels, name } => self.ask_sentinels(sentinels, name).await?,
        };
        let primary_node = open(&primary, &self.options).await;
        let mut replica_nodes = Vec::new();
        for addr in &replicas {
            if let Some(node) = open(addr, &self.options).await {
                replica_nodes.push(node);
            }
        }
        let found = primary_node.is_some();
        *self.current.lock() = Current {
            primary: primary_node,
            replicas: replica_nodes,
        };
        if found {
            Ok(())
        } else {
            Err(Error::Unavailable(format!(
                "the primary {primary} does not answer"
            )))
        }
    }

    async fn ask_sentinels(
        &self,
        sentinels: &[String],
        name: &str,
    ) -> Result<(String, Vec<String>)> {
        let timeout = Duration::from_millis(self.options.timeout_ms);
        for sentinel in sentinels {
            let Ok(remote) =
                Remote::connect(&format!("redis://{sentinel}/"), self.options.clone()).await
            else {
                continue;
            };
            let mut connection = remote.connection();
            let asked = tokio::time::timeout(timeout, async {
                let addr: Option<(String, String)> = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(name)
                    .query_async(&mut connection)
                    .await?;
                let replicas: Vec<std::collections::HashMap<String, String>> =
                    redis::cmd("SENTINEL")
                        .arg("replicas")
                        .arg(name)
                        .query_async(&mut connection)
                        .await?;
                redis::RedisResult::Ok((addr, replicas))
            })
            .await;
            let Ok(Ok((Some((host, port)), replicas))) = asked else {
                continue;
            };
            let replicas = replicas
                .into_iter()
                .filter(|r| {
                    r.get("flags")
                        .is_some_and(|f| !f.contains("s_down") && !f.contains("o_down"))
                })
                .filter_map(|r| Some(format!("{}:{}", r.get("ip")?, r.get("port")?)))
                .collect();
            return Ok((format!("{host}:{port}"), replicas));
        }
        Err(Error::Unavailable(format!(
            "no sentinel of {sentinels:?} knows the primary `{name}`"
        )))
    }

    fn primary(&self) -> Result<Remote> {
        self.current
            .lock()
            .primary
            .as_ref()
            .map(|n| n.remote.clone())
            .ok_or_else(|| Error::Unavailable("no primary known".into()))
    }

    fn reader(&self) -> Result<Remote> {
        let current = self.current.lock();
        let replica = match self.read_from {
            ReadFrom::Primary => None,
            ReadFrom::Replica if !current.replicas.is_empty() => {
                let i = self.next_replica.fetch_add(1, Ordering::Relaxed) % current.replicas.len();
                Some(current.replicas[i].remote.clone())
            }
            ReadFrom::Replica => None,
            ReadFrom::Nearest => current
                .replicas
                .iter()
                .chain(current.primary.as_ref())
                .min_by_key(|n| n.rtt)
                .map(|n| n.remote.clone()),
        };
        drop(current);
        replica.map_or_else(|| self.primary(), Ok)
    }

    /// Runs a write on the primary; after a failure that a failover
    /// explains (unreachable, `READONLY`), refreshes and retries once.
    async fn write<'a, T, F>(&'a self, op: F) -> Result<T>
    where
        F: Fn(Remote) -> BoxFuture<'a, Result<T>>,
    {
        let first = match self.primary() {
            Ok(remote) => op(remote).await,
            Err(err) => Err(err),
        };
        match first {
            Err(Error::Unavailable(_)) => {}
            Err(Error::Store(text)) if text.contains("READONLY") => {}
            other => return other,
        }
        self.refresh().await?;
        op(self.primary()?).await
    }

    /// Runs a read where [`ReadFrom`] says; a failed replica read falls
    /// back to the primary (after a refresh).
    async fn read<'a, T, F>(&'a self, op: F) -> Result<T>
    where
        F: Fn(Remote) -> BoxFuture<'a, Result<T>>,
    {
        let first = op(self.reader()?).await;
        match first {
            Err(Error::Unavailable(_)) => {
                let _ = self.refresh().await;
                op(self.primary()?).await
            }
            other => other,
        }
    }
}

impl KvClient for Replicated {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(self.read(move |r| Box::pin(async move { r.get(key).await })))
    }

    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.write(move |r| Box::pin(async move { r.set(key, value, ttl).await })))
    }

    fn set_nx<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.write(move |r| Box::pin(async move { r.set_nx(key, value, ttl).await })))
    }

    fn incr_by<'a>(&'a self, key: &'a [u8], delta: i64) -> BoxFuture<'a, Result<i64>> {
        Box::pin(self.write(move |r| Box::pin(async move { r.incr_by(key, delta).await })))
    }

    fn scan_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Pair>>> {
        Box::pin(self.read(move |r| Box::pin(async move { r.scan_prefix(prefix, limit).await })))
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.write(move |r| Box::pin(async move { r.delete(key).await })))
    }
}

/// `WAIT numreplicas timeout_ms` on the primary: how many replicas have
/// every write made so far (for writes that must survive a failover).
pub async fn wait_replicas(
    client: &Replicated,
    numreplicas: usize,
    timeout_ms: u64,
) -> Result<usize> {
    let remote = client.primary()?;
    let mut connection = remote.connection();
    let bound = Duration::from_millis(timeout_ms + client.options.timeout_ms);
    let mut command = redis::cmd("WAIT");
    command.arg(numreplicas).arg(timeout_ms);
    let acked: i64 = tokio::time::timeout(bound, command.query_async::<i64>(&mut connection))
        .await
        .map_err(|_| Error::Unavailable("WAIT did not answer in time".into()))?
        .map_err(|err| Error::Store(err.to_string()))?;
    Ok(acked.max(0) as usize)
}
