//! Cluster mode: the Dynamo cluster's decisions ([`crate::cluster`]) run
//! by a real node, over TCP, on a disk, for RESP clients.
//!
//! Why it exists: `crate::cluster` decides everything (placement, quorum
//! rounds, versions, gossip, hints, anti-entropy) as pure functions; this
//! module does the I/O those decisions call for and nothing else, the way
//! `lsm-tree` keeps its decisions apart from `fjall`'s threads.
//!
//! ```text
//!  RESP client ─▶ resp (GET/SET/DEL/EXISTS/KV.*) ─┐ Input::Request (bounded queue)
//!  peer ─▶ transport::accept_loop ─ frames ───────┤ Input::Message / Hello
//!                                                 ▼
//!                          actor (one std thread, not an async worker)
//!                          replica::Node: f(state, now, input) → outputs
//!                              │ Persist  → store (one LSM batch per step, fsync)
//!                              │ Send     → transport::Links (queue per peer) ─▶ peers
//!                              └ Answer   → the waiting RESP client
//! ```
//!
//! - [`frame`]: the shared-secret handshake and the MAC per frame;
//!   [`transport`]: connections, reconnects, bounded queues, timeouts;
//!   `cluster::wire`: the bytes of every message.
//! - [`actor`]: the node's thread; every blocking step (the LSM's fsync,
//!   loading the store) happens there, never on the async workers, and a
//!   step's changes are durable before its replies and messages leave, so
//!   an acknowledged write is on `W` disks.
//! - [`store`]: states, hints, the dot counter, the actor id and the
//!   members, in an LSM tree under `data_dir/cluster`.
//! - [`resp`]: the commands a cluster node serves (see its docs for which
//!   are cluster-aware and how siblings look to a RESP client).
//!
//! # Forming
//!
//! The ring must be the same on every node, so a node serves only once it
//! knows every member: itself plus one node per `--seeds` address (list
//! every other node there). Members learned through hellos are saved, so a
//! node restarting while a peer is down still forms. Until then clients get
//! `-CLUSTERDOWN`.
//!
//! # Joining and leaving
//!
//! A node started with `--join` (its seeds: some running members) forms
//! outside the ring and forwards every request; `KV.CLUSTER JOIN` on it
//! (`hyperscale kv cluster join`) starts the change, and
//! `KV.CLUSTER LEAVE` on a member starts its leave. The phases, the range
//! streaming and why no acknowledged write is lost are in
//! `cluster::topology`; every node saves the ring it adopted, so a
//! restart keeps it. A node that has left owns nothing and may be stopped.
//!
//! # Limits
//!
//! Every queue is bounded ([`NetLimits`]): frames, messages queued per
//! peer (dropped when full: the protocol tolerates loss), requests in
//! flight per node, inputs waiting for the node's thread; every wait has a
//! timeout in ms. Each node also keeps its whole dataset in memory (the
//! LSM tree is its durable copy), which bounds a node's data by its RAM.

mod actor;
mod consistency;
mod data_types;
mod frame;
mod resp;
mod status;
mod store;
mod transport;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use self::frame::Secret;
pub use self::status::{ChangeStatus, ClusterMetrics, MemberStatus, Status};
use crate::cluster::NodeId;
use crate::cluster::placement::QuorumMode;
use crate::cluster::quorum::Quorum;
use crate::cluster::replica::{Answer, Msg, Op, Timing};
use crate::cluster::wire::MemberSpec;

/// Members by id (this node excluded).
pub(crate) type Members = BTreeMap<NodeId, MemberSpec>;

/// Bounds and timeouts of the internode and client paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetLimits {
    /// Largest internode frame.
    pub frame_bytes_max: usize,
    /// Messages queued for one peer before new ones are dropped.
    pub peer_queue_max: usize,
    /// Client requests a node coordinates or waits for at once.
    pub requests_in_flight_max: usize,
    /// Inputs (requests, messages) waiting for the node's thread.
    pub inputs_max: usize,
    /// Connecting to a peer.
    pub connect_timeout_ms: u64,
    /// The handshake and hellos.
    pub handshake_timeout_ms: u64,
    /// An inbound peer connection silent this long is closed.
    pub idle_timeout_ms: u64,
    /// A peer whose wall clock is further off is refused.
    pub clock_skew_max_ms: u64,
}

impl Default for NetLimits {
    fn default() -> NetLimits {
        NetLimits {
            frame_bytes_max: 16 << 20,
            peer_queue_max: 8192,
            requests_in_flight_max: 4096,
            inputs_max: 16_384,
            connect_timeout_ms: 1_000,
            handshake_timeout_ms: 2_000,
            idle_timeout_ms: 10_000,
            clock_skew_max_ms: 60_000,
        }
    }
}

/// A node's cluster settings (`hyperscale kv serve --cluster-bind ...`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `--node-id`: stable for the life of the data.
    pub node_id: u32,
    /// `--cluster-bind`: the internode address, also what peers dial.
    pub cluster_bind: String,
    /// `--seeds`: every other node's internode address.
    pub seeds: Vec<String>,
    /// `--datacenter`: replicas spread across datacenters.
    pub datacenter: Option<String>,
    /// `--vnodes`: virtual nodes on the ring.
    pub vnodes: u32,
    /// `N`, `W`, `R` (`--replicas`, `--write-quorum`, `--read-quorum`).
    pub quorum: Quorum,
    /// Sloppy (hints stand in for down replicas) or strict.
    pub mode: QuorumMode,
    /// The shared secret (`--cluster-secret-file`).
    pub secret: Secret,
    /// Bounds and timeouts.
    pub limits: NetLimits,
    /// Background timing (quorum timeout, handoff, anti-entropy).
    pub timing: Timing,
    /// The failure detector's knobs.
    pub membership: crate::cluster::membership::Config,
    /// `--join`: start outside the ring (see `ClusterSettings::join`).
    pub join: bool,
}

impl ClusterConfig {
    /// Checks `[cluster]` and reads the secret file (blocking, at start).
    pub fn from_settings(
        s: &crate::config::cluster::ClusterSettings,
    ) -> Result<ClusterConfig, ClusterError> {
        let bad = |text: &str| ClusterError::Config(text.to_string());
        let cluster_bind = s
            .cluster_bind
            .clone()
            .ok_or_else(|| bad("cluster mode needs --cluster-bind"))?;
        let node_id = s
            .node_id
            .ok_or_else(|| bad("cluster mode needs --node-id"))?;
        let file = s.cluster_secret_file.as_ref().ok_or_else(|| {
            bad("cluster mode needs --cluster-secret-file (peers without the secret are refused)")
        })?;
        let bytes = std::fs::read(file).map_err(|e| {
            ClusterError::Config(format!(
                "cannot read the cluster secret file {}: {e}",
                file.display()
            ))
        })?;
        let secret = Secret::new(&bytes).map_err(ClusterError::Config)?;
        let quorum = Quorum::new(s.replicas, s.write_quorum, s.read_quorum)
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        if !(1..=60_000).contains(&s.request_timeout_ms) {
            return Err(bad("request_timeout_ms must be 1 to 60000"));
        }
        let timing = Timing {
            request_timeout_ms: s.request_timeout_ms,
            tombstone_gc_grace_ms: s.tombstone_gc_grace_ms,
            ..Timing::default()
        };
        Ok(ClusterConfig {
            node_id,
            cluster_bind,
            seeds: s.seeds.iter().filter(|a| !a.is_empty()).cloned().collect(),
            datacenter: s.datacenter.clone().filter(|d| !d.is_empty()),
            vnodes: s.vnodes,
            quorum,
            mode: if s.strict_quorum {
                QuorumMode::Strict
            } else {
                QuorumMode::Sloppy
            },
            secret,
            limits: NetLimits::default(),
            timing,
            membership: crate::cluster::membership::Config::default(),
            join: s.join,
        })
    }
}

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A setting is invalid; the message says what to change.
    #[error("invalid cluster settings: {0}")]
    Config(String),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A network or OS failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a client request resolves to.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The node's answer.
    Answer(Answer),
    /// Refused before it started; the text is the RESP error.
    Refused(String),
}

/// An input of the node's thread.
pub(crate) enum Input {
    Request {
        op: Op,
        consistency: crate::cluster::quorum::Consistency,
        reply: tokio::sync::oneshot::Sender<Reply>,
    },
    Message {
        from: NodeId,
        msg: Msg,
    },
    Hello {
        /// The seed address this node dialed to meet the peer, if it did.
        dialed: Option<String>,
        spec: MemberSpec,
        known: Vec<MemberSpec>,
    },
    Status(tokio::sync::oneshot::Sender<Status>),
    /// `KV.CLUSTER JOIN|LEAVE`: this node joins or leaves the ring.
    Change {
        join: bool,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    Stop,
}

/// A cluster node whose store is open, ready to serve.
pub struct ClusterServer {
    config: crate::config::Config,
    cluster: ClusterConfig,
    store: store::Store,
    disk: crate::cluster::replica::Disk,
    members: Members,
    nonces: frame::Nonces,
    metrics: Arc<ClusterMetrics>,
}

impl ClusterServer {
    /// Reads `config.cluster` ([`ClusterConfig::from_settings`]) and opens
    /// the node ([`ClusterServer::open_with`]); blocking.
    pub fn open(config: crate::config::Config) -> Result<ClusterServer, ClusterError> {
        let cluster = ClusterConfig::from_settings(&config.cluster)?;
        ClusterServer::open_with(config, cluster)
    }

    /// Checks the settings and opens the store under `data_dir/cluster`
    /// (blocking: call it outside async workers).
    pub fn open_with(
        config: crate::config::Config,
        cluster: ClusterConfig,
    ) -> Result<ClusterServer, ClusterError> {
        let nodes = cluster.seeds.len() + 1;
        if cluster.quorum.n > nodes {
            return Err(ClusterError::Config(format!(
                "--replicas {} needs at least that many nodes; this node and its {} seeds make {nodes}",
                cluster.quorum.n,
                cluster.seeds.len()
            )));
        }
        if cluster.vnodes == 0 {
            return Err(ClusterError::Config("--vnodes must be at least 1".into()));
        }
        let dir: PathBuf = config.data_dir.join("cluster");
        std::fs::create_dir_all(&dir)?;
        let sync = match config.fsync {
            crate::config::FsyncPolicy::Always => lsm::SyncPolicy::Always,
            crate::config::FsyncPolicy::Everysec => lsm::SyncPolicy::EverySec,
            crate::config::FsyncPolicy::No => lsm::SyncPolicy::No,
        };
        let store = store::Store::open(&dir, sync)?;
        let nonces = frame::Nonces::from_os()?;
        let node = NodeId(cluster.node_id);
        let disk = store.load(node, nonces.random_u64(), Default::default())?;
        let members = store.members()?;
        Ok(ClusterServer {
            config,
            cluster,
            store,
            disk,
            members,
            nonces,
            metrics: Arc::default(),
        })
    }

    /// Registers the cluster's gauges (`/metrics`; give it a `kv`
    /// sub-registry).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// The internode address to bind.
    pub fn cluster_bind(&self) -> &str {
        &self.cluster.cluster_bind
    }

    /// Serves RESP clients on `listener` and peers on `cluster_listener`
    /// until `ctx.shutdown` fires.
    pub async fn serve(
        self,
        listener: TcpListener,
        cluster_listener: TcpListener,
        ctx: service::SystemContext,
    ) -> Result<(), ClusterError> {
        let shutdown = ctx.shutdown.child_token();
        let me = MemberSpec {
            id: NodeId(self.cluster.node_id),
            addr: self.cluster.cluster_bind.clone(),
            datacenter: self.cluster.datacenter.clone(),
            vnodes: self.cluster.vnodes,
        };
        let local = Arc::new(transport::Local {
            secret: self.cluster.secret.clone(),
            nonces: self.nonces,
            limits: self.cluster.limits,
            wire: Default::default(),
            replicas: self.cluster.quorum.n as u32,
            hello: parking_lot::Mutex::new((me.clone(), vec![me.clone()])),
        });
        let links = transport::Links::new(
            local.clone(),
            tokio::runtime::Handle::current(),
            shutdown.clone(),
        );
        let (inputs, rx) = std::sync::mpsc::sync_channel(self.cluster.limits.inputs_max);
        let actor = actor::Actor::new(actor::Parts {
            me,
            cluster: self.cluster.clone(),
            store: self.store,
            disk: self.disk,
            members: self.members,
            links: links.clone(),
            local: local.clone(),
            inputs: inputs.clone(),
            shutdown: shutdown.clone(),
            metrics: self.metrics.clone(),
        });
        let thread = std::thread::Builder::new()
            .name(format!("kv-node-{}", self.cluster.node_id))
            .spawn(move || actor.run(rx))?;
        tokio::spawn(transport::accept_loop(
            cluster_listener,
            local,
            inputs.clone(),
            shutdown.clone(),
        ));
        ctx.health.set_up();
        let requirepass = self.config.requirepass.clone();
        let client_wait_ms = 3 * self.cluster.timing.request_timeout_ms + 1_000;
        resp::accept_loop(
            listener,
            resp::Shared {
                inputs: inputs.clone(),
                requirepass,
                client_wait_ms,
                bulk_len_max: self.config.proto_max_bulk_len as usize,
                quorum: self.cluster.quorum,
                mode: self.cluster.mode,
                consistency: crate::cluster::quorum::Consistency::default(),
            },
            &ctx.shutdown,
            &shutdown,
        )
        .await;
        ctx.health.set_down("shutting down");
        shutdown.cancel();
        let _ = inputs.try_send(Input::Stop);
        drop(inputs);
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(std::io::Error::other)?;
        match joined {
            Ok(result) => result.map_err(ClusterError::from),
            Err(_) => Err(ClusterError::Io(std::io::Error::other(
                "the node thread panicked",
            ))),
        }
    }
}

/// Binds `addr` for the internode listener.
pub async fn bind_cluster(addr: &str) -> std::io::Result<TcpListener> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("--cluster-bind {addr}: {e}"),
        )
    })?;
    TcpListener::bind(addr).await
}
