//! The data store as a cluster: the chapter's data routing service, placement service
//! and data nodes as separate processes, with durability by replication or erasure
//! coding.
//!
//! Why a module per concept:
//! * [`wire`]: the authenticated binary protocol between an API node and a data node.
//! * [`datanode`]: a data node process (`hyperscale s3 datanode`) serving [`Node`], and
//!   the [`DataNode`] trait for in-process and remote nodes.
//! * [`placement`]: the virtual cluster map (members, failure domains, states from
//!   heartbeats) and placement as a pure function.
//! * [`layout`]: a chunk as whole copies or 4+2 erasure-coded shards (`reed-solomon-simd`).
//! * [`Cluster`] (`route.rs`): puts, reads and deletes over the nodes, with repair on read.
//!
//! ```text
//!  API node ── put(chunk) ──▶ layout::encode ──▶ placement::place(id, map)[..width]
//!     │                                             │ in parallel, each fsynced
//!     │                      ┌──────────────────────┼──────────────────────┐
//!     │                 data node 1            data node 2     …      data node 6
//!     │                      └──── ack when write_quorum are durable ──────┘
//!     └── get(id) ──▶ nearest healthy copy (up before suspect, down skipped), or any
//!                     4 of 6 shards decoded; a missing or corrupt copy/shard read on
//!                     the way is rewritten from the good bytes (repair on read)
//! ```
//!
//! Write rule: 3-way replication acknowledges when 2 copies are fsynced (a majority:
//! with W = 2 of N = 3 any two surviving nodes hold an acknowledged chunk); 4+2 erasure
//! coding acknowledges when 5 of 6 shards are fsynced (the chunk then survives any one
//! further loss before repair). Heartbeats are pulled: the API node's placement
//! service sends a `Ping` to every data node each `interval_ms` and each answers with
//! its identity, zone and sizes.

pub mod datanode;
pub mod layout;
pub mod placement;
mod rebuild;
mod route;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

pub use datanode::DataNode;
pub use layout::Durability;
pub use placement::{Heartbeat, Member, NodeState};
pub use wire::NodeInfo;

use crate::{Error, Node, ObjectId, Result};

/// Where an API node keeps chunks: its embedded data node, or a cluster of them.
pub enum DataStore {
    /// One embedded data node (`hyperscale s3 serve` without `--datanodes`).
    Local(Arc<Node>),
    /// Remote (or in-process) data nodes with replication or erasure coding.
    Cluster(Arc<Cluster>),
}

impl DataStore {
    /// Stores a chunk; durable (on enough nodes) when it returns.
    pub fn put(&self, data: &[u8]) -> Result<ObjectId> {
        match self {
            DataStore::Local(n) => n.put(data),
            DataStore::Cluster(c) => c.put(data),
        }
    }

    /// Bytes `range` of a chunk, checksum verified, or `None`.
    pub fn get(
        &self,
        id: ObjectId,
        range: impl std::ops::RangeBounds<u64>,
    ) -> Result<Option<Vec<u8>>> {
        match self {
            DataStore::Local(n) => n.get(id, range),
            DataStore::Cluster(c) => c.get(id, range),
        }
    }

    /// Deletes a chunk (its bytes become garbage for compaction).
    pub fn delete(&self, id: ObjectId) -> Result<bool> {
        match self {
            DataStore::Local(n) => n.delete(id),
            DataStore::Cluster(c) => c.delete(id),
        }
    }
}

/// Parses `host:port[@zone],...` into members (a node without `@zone` is a failure
/// domain of its own).
pub fn parse_members(
    spec: &str,
) -> std::result::Result<Vec<(Member, std::net::SocketAddr)>, String> {
    let mut out: Vec<(Member, std::net::SocketAddr)> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (addr, zone) = item.split_once('@').unwrap_or((item, item));
        let sock = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| format!("data node {addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("data node {addr}: no address"))?;
        if out.iter().any(|(m, _)| m.name == addr) {
            return Err(format!("data node {addr} is listed twice"));
        }
        out.push((
            Member {
                name: addr.to_string(),
                zone: zone.to_string(),
            },
            sock,
        ));
    }
    Ok(out)
}

/// Reads a cluster secret file (trailing whitespace ignored; 16 to
/// [`wire::SECRET_BYTES_MAX`] bytes).
pub fn read_secret(path: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let end = raw
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    let secret = raw[..end].to_vec();
    if !(16..=wire::SECRET_BYTES_MAX).contains(&secret.len()) {
        return Err(format!(
            "the cluster secret in {} must be 16 to {} bytes",
            path.display(),
            wire::SECRET_BYTES_MAX
        ));
    }
    Ok(secret)
}

/// Connects to the remote data nodes of `spec` (see [`parse_members`]).
pub fn connect(
    spec: &str,
    secret: Vec<u8>,
    durability: Durability,
    heartbeat: Heartbeat,
    timeout_ms: u64,
) -> std::result::Result<Cluster, String> {
    let nodes = parse_members(spec)?
        .into_iter()
        .map(|(m, addr)| {
            let remote: Arc<dyn DataNode> = Arc::new(wire::Remote::new(
                addr,
                secret.clone(),
                timeout_ms.min(2_000),
                timeout_ms,
            ));
            (m, remote)
        })
        .collect();
    Cluster::new(nodes, durability, heartbeat).map_err(|e| e.to_string())
}

/// A node as the cluster map holds it.
#[derive(Clone, Debug, Default)]
struct Health {
    last_ok_ms: Option<u64>,
    /// The last heartbeat went unanswered.
    missed: bool,
    failed_since: bool,
    info: Option<NodeInfo>,
}

/// One member's line in [`Cluster::status`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct MemberStatus {
    /// Its name (address).
    pub name: String,
    /// Its failure domain.
    pub zone: String,
    /// Up, suspect or down.
    pub state: NodeState,
    /// Milliseconds since it last answered a heartbeat (`None`: never).
    pub last_ok_age_ms: Option<u64>,
    /// What it said in its last heartbeat.
    pub info: Option<NodeInfo>,
}

/// Counters of the data routing service.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ClusterCounters {
    /// Reads that found a copy or shard missing or corrupt.
    pub degraded_reads: u64,
    /// Reads refused by a node because the stored record failed its checksum.
    pub corrupt_reads: u64,
    /// Copies or shards rewritten by repair.
    pub repaired: u64,
    /// Writes acknowledged with fewer than all copies or shards.
    pub partial_writes: u64,
}

/// Data nodes behind the data routing service.
pub struct Cluster {
    members: Vec<Member>,
    nodes: Vec<Arc<dyn DataNode>>,
    health: Mutex<Vec<Health>>,
    durability: Durability,
    heartbeat: Heartbeat,
    degraded_reads: AtomicU64,
    corrupt_reads: AtomicU64,
    repaired: AtomicU64,
    partial_writes: AtomicU64,
    recoveries: AtomicU64,
    started_ms: u64,
}

impl Cluster {
    /// A cluster of `nodes` storing every chunk with `durability`; sends one round of
    /// heartbeats before returning. Refuses fewer nodes than the scheme's width.
    pub fn new(
        nodes: Vec<(Member, Arc<dyn DataNode>)>,
        durability: Durability,
        heartbeat: Heartbeat,
    ) -> Result<Self> {
        if nodes.len() < durability.width() {
            return Err(Error::InvalidArgument(format!(
                "{durability} needs {} data nodes, {} given",
                durability.width(),
                nodes.len()
            )));
        }
        let (members, nodes): (Vec<_>, Vec<_>) = nodes.into_iter().unzip();
        let c = Self {
            health: Mutex::new(vec![Health::default(); members.len()]),
            members,
            nodes,
            durability,
            heartbeat,
            degraded_reads: AtomicU64::new(0),
            corrupt_reads: AtomicU64::new(0),
            repaired: AtomicU64::new(0),
            partial_writes: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            started_ms: clock::now_ms(),
        };
        c.heartbeat_once();
        Ok(c)
    }

    /// The durability every chunk is written with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// One round of heartbeats, to every node in parallel.
    pub fn heartbeat_once(&self) {
        std::thread::scope(|s| {
            for i in 0..self.nodes.len() {
                s.spawn(move || self.heartbeat(i));
            }
        });
    }

    /// One heartbeat to node `i`, and its state updated from the answer.
    fn heartbeat(&self, i: usize) {
        let answer = self.nodes[i].ping();
        let now = clock::now_ms();
        let mut health = self.health.lock();
        match answer {
            Ok(info) => {
                if !info.zone.is_empty() && info.zone != self.members[i].zone {
                    tracing::warn!(node = %self.members[i].name, reported = %info.zone,
                        configured = %self.members[i].zone, "data node reports another zone");
                }
                if health[i].missed {
                    self.recoveries.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(node = %self.members[i].name, "data node is back");
                }
                health[i] = Health {
                    last_ok_ms: Some(now),
                    missed: false,
                    failed_since: false,
                    info: Some(info),
                };
            }
            Err(e) => {
                tracing::debug!(node = %self.members[i].name, error = %e, "missed heartbeat");
                health[i].failed_since = true;
                health[i].missed = true;
            }
        }
    }

    /// Starts one heartbeat thread per data node (so a node that hangs delays only its
    /// own heartbeats); they stop when the cluster is dropped.
    pub fn start_heartbeats(self: &Arc<Self>) -> std::io::Result<()> {
        let interval = std::time::Duration::from_millis(self.heartbeat.interval_ms.max(10));
        for i in 0..self.nodes.len() {
            let weak = Arc::downgrade(self);
            std::thread::Builder::new()
                .name(format!("s3-heartbeat-{i}"))
                .spawn(move || {
                    loop {
                        std::thread::sleep(interval);
                        match weak.upgrade() {
                            Some(c) => c.heartbeat(i),
                            None => return,
                        }
                    }
                })?;
        }
        Ok(())
    }

    pub(super) fn state(&self, i: usize) -> NodeState {
        let h = &self.health.lock()[i];
        placement::state(
            h.last_ok_ms,
            h.failed_since,
            clock::now_ms(),
            &self.heartbeat,
        )
    }

    fn mark(&self, i: usize, ok: bool) {
        let mut health = self.health.lock();
        if ok {
            // A call answered is as good as a heartbeat.
            health[i].last_ok_ms = Some(clock::now_ms());
            health[i].failed_since = false;
        } else {
            health[i].failed_since = true;
        }
    }

    /// The cluster map with each member's state.
    pub fn status(&self) -> Vec<MemberStatus> {
        let now = clock::now_ms();
        let health = self.health.lock();
        self.members
            .iter()
            .zip(health.iter())
            .map(|(m, h)| MemberStatus {
                name: m.name.clone(),
                zone: m.zone.clone(),
                state: placement::state(h.last_ok_ms, h.failed_since, now, &self.heartbeat),
                last_ok_age_ms: h.last_ok_ms.map(|t| now.saturating_sub(t)),
                info: h.info.clone(),
            })
            .collect()
    }

    /// How many times a data node answered a heartbeat after missing one (the repair
    /// pass runs when this changes).
    pub fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Relaxed)
    }

    /// The routing counters.
    pub fn counters(&self) -> ClusterCounters {
        ClusterCounters {
            degraded_reads: self.degraded_reads.load(Ordering::Relaxed),
            corrupt_reads: self.corrupt_reads.load(Ordering::Relaxed),
            repaired: self.repaired.load(Ordering::Relaxed),
            partial_writes: self.partial_writes.load(Ordering::Relaxed),
        }
    }

    /// `id`'s places: member indexes, in shard (or copy) order.
    pub fn places(&self, id: ObjectId) -> Vec<usize> {
        let mut p = placement::place(id, &self.members);
        p.truncate(self.durability.width());
        p
    }
}
