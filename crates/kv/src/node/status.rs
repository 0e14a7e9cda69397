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
}
