//! The `[cluster]` settings of `hyperscale kv serve` (flags
//! `--cluster-bind`, `--seeds`, `--node-id`, ...): cluster mode is on when
//! `cluster_bind` is set.
//!
//! Why it exists: a cluster node is configured like the single server,
//! in the same layers (TOML file, `HYPERSCALE_KV_CLUSTER__*` env, flags),
//! so `examples/kv-cluster/node1.toml` is one file per node. This is only
//! the settings' shape; `node::ClusterConfig::from_settings` checks them
//! and reads the secret.

use std::path::PathBuf;

use serde::Deserialize;

/// Cluster mode's settings (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// The internode address (also what peers dial); cluster mode when set.
    pub cluster_bind: Option<String>,
    /// Every other node's internode address.
    pub seeds: Vec<String>,
    /// This node's id: stable for the life of its data.
    pub node_id: Option<u32>,
    /// This node's datacenter (replicas spread across datacenters).
    pub datacenter: Option<String>,
    /// Virtual nodes of this node on the ring.
    pub vnodes: u32,
    /// Copies of each key (`N`).
    pub replicas: usize,
    /// Acks a write waits for (`W`).
    pub write_quorum: usize,
    /// Replies a read waits for (`R`).
    pub read_quorum: usize,
    /// Strict quorum: no substitutes (and no hints) for down replicas.
    pub strict_quorum: bool,
    /// A file holding the shared cluster secret (at least 16 bytes).
    pub cluster_secret_file: Option<PathBuf>,
    /// How long a quorum round waits for replicas, in ms.
    pub request_timeout_ms: u64,
    /// How old a deleted key's tombstone must be before it is purged
    /// (only once every replica holds it); Cassandra's `gc_grace`.
    pub tombstone_gc_grace_ms: u64,
    /// Start outside the ring, as a node that will join a running
    /// cluster (`hyperscale kv cluster join`); ignored once it has a ring.
    pub join: bool,
}

impl Default for ClusterSettings {
    fn default() -> ClusterSettings {
        ClusterSettings {
            cluster_bind: None,
            seeds: Vec::new(),
            node_id: None,
            datacenter: None,
            vnodes: 64,
            replicas: 3,
            write_quorum: 2,
            read_quorum: 2,
            strict_quorum: false,
            cluster_secret_file: None,
            request_timeout_ms: 1_000,
            join: false,
            // 10 days: `cluster::replica::TOMBSTONE_GC_GRACE_MS_DEFAULT`.
            tombstone_gc_grace_ms: 10 * 24 * 3600 * 1000,
        }
    }
}
