//! What `hyperscale kv cluster status` shows: one node's view of the
//! cluster, as a serializable snapshot (sent as JSON by `KV.STATUS`).
//!
//! Why it exists: the chapter's cluster is only operable if its hidden
//! state is visible: who owns which share of the ring, who is believed up,
//! how many hints wait for whom (rising while a node is down, draining
//! after), and whether anti-entropy finds replicas in sync.

use serde::{Deserialize, Serialize};

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// `--node-id`.
    pub id: u32,
    /// Internode address.
    pub addr: String,
    /// Datacenter, if set.
    pub datacenter: Option<String>,
    /// Virtual nodes.
    pub vnodes: u32,
    /// Share of the ring's primary ranges (0..1).
    pub ownership: f64,
    /// `self`, `alive`, `suspect`, `down`, or `unknown` while forming.
    pub state: String,
    /// Hints this node holds for the member: keys, bytes.
    pub hints_keys: usize,
    /// Bytes of those hints.
    pub hints_bytes: usize,
    /// Its part in the ring: `normal`, `joining`, `leaving`, or
    /// `not in ring` (a node about to join, or one that left).
    #[serde(default)]
    pub ring: String,
}

/// The membership change in flight, as this node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeStatus {
    /// The ring's version (bumped by every step of a change).
    pub version: u64,
    /// `stable`, `streaming` or `switched` (see `cluster::topology`).
    pub phase: String,
    /// Members that adopted this version.
    pub seen: Vec<u32>,
    /// Nodes of the new ring that pulled their ranges.
    pub streamed: Vec<u32>,
    /// This node's streaming: members it pulls from.
    pub stream_sources: usize,
    /// Of those, the ones that sent everything.
    pub stream_sources_done: usize,
    /// Key states this node received by streaming.
    pub stream_keys: u64,
}

/// Anti-entropy progress of this node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AntiEntropyStatus {
    /// Exchanges started.
    pub rounds_started: u64,
    /// Exchanges that found the trees equal.
    pub rounds_in_sync: u64,
    /// Exchanges that found differing buckets.
    pub rounds_differ: u64,
    /// Keys whose state an exchange changed here.
    pub keys_repaired: u64,
    /// Tombstones purged here after their grace period.
    #[serde(default)]
    pub tombstones_purged: u64,
}

/// One node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The node answering.
    pub node_id: u32,
    /// Whether it knows every member and serves requests.
    pub formed: bool,
    /// Seed addresses it has not met yet (while forming).
    pub waiting_for: Vec<String>,
    /// `N`.
    pub replicas: usize,
    /// `W`.
    pub write_quorum: usize,
    /// `R`.
    pub read_quorum: usize,
    /// `sloppy` or `strict`.
    pub quorum_mode: String,
    /// Every member, this node included.
    pub members: Vec<MemberStatus>,
    /// Keys stored here as a replica.
    pub keys: usize,
    /// Hinted keys held here for other members, all targets.
    pub hints_keys: usize,
    /// Anti-entropy progress.
    pub anti_entropy: AntiEntropyStatus,
    /// Requests and forwarded operations in flight.
    pub in_flight: usize,
    /// Internode messages dropped (peer unreachable or queue full).
    pub messages_dropped: u64,
    /// The ring's version and the membership change in flight.
    #[serde(default)]
    pub change: ChangeStatus,
}

/// The cluster's queues and progress as Prometheus gauges on `/metrics`
/// (`--admin-bind`), refreshed by the node's thread about once a second:
/// the same numbers as [`Status`], for dashboards and alerts.
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    /// Keys stored here as a replica.
    pub keys: prometheus_client::metrics::gauge::Gauge,
    /// Hinted keys held here for down members.
    pub hints_keys: prometheus_client::metrics::gauge::Gauge,
    /// Bytes of those hints.
    pub hints_bytes: prometheus_client::metrics::gauge::Gauge,
    /// Requests and forwarded operations in flight.
    pub in_flight: prometheus_client::metrics::gauge::Gauge,
    /// Members this node believes down.
    pub members_down: prometheus_client::metrics::gauge::Gauge,
    /// Internode messages dropped so far.
    pub messages_dropped: prometheus_client::metrics::gauge::Gauge,
    /// Keys anti-entropy repaired here so far.
    pub ae_keys_repaired: prometheus_client::metrics::gauge::Gauge,
}

impl ClusterMetrics {
    /// Registers the gauges (give it a `kv` sub-registry).
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        let gauges = [
            (
                "cluster_keys",
                "Keys stored on this node as a replica",
                &self.keys,
            ),
            (
                "cluster_hints_keys",
                "Hinted keys held for down members",
                &self.hints_keys,
            ),
            (
                "cluster_hints_bytes",
                "Bytes of hints held for down members",
                &self.hints_bytes,
            ),
            (
                "cluster_in_flight",
                "Quorum rounds and forwards in flight",
                &self.in_flight,
            ),
            (
                "cluster_members_down",
                "Members this node believes down",
                &self.members_down,
            ),
            (
                "cluster_messages_dropped",
                "Internode messages dropped (peer unreachable or queue full)",
                &self.messages_dropped,
            ),
            (
                "cluster_ae_keys_repaired",
                "Keys anti-entropy repaired on this node",
                &self.ae_keys_repaired,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
    }

    /// Sets every gauge from a status snapshot.
    pub fn update(&self, status: &Status) {
        let set = |g: &prometheus_client::metrics::gauge::Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.keys, status.keys as u64);
        set(&self.hints_keys, status.hints_keys as u64);
        set(
            &self.hints_bytes,
            status.members.iter().map(|m| m.hints_bytes as u64).sum(),
        );
        set(&self.in_flight, status.in_flight as u64);
        set(
            &self.members_down,
            status.members.iter().filter(|m| m.state == "down").count() as u64,
        );
        set(&self.messages_dropped, status.messages_dropped);
        set(&self.ae_keys_repaired, status.anti_entropy.keys_repaired);
    }
}
