//! The repair pass: every chunk the metadata names is read from all its places (and
//! spares) and any missing or corrupt copy or shard is rewritten on the node that lacks
//! it, or on a spare when that node is down past `repair_after_ms`
//! ([`crate::cluster::Cluster::repair_chunk`]).
//!
//! Why from the metadata: a data node that was down missed writes and deletes, and only
//! the object, version and part rows say which chunks should exist. The pass runs when
//! the placement service sees a node come back ([`crate::cluster::Cluster::recoveries`])
//! or declares one dead ([`crate::cluster::Cluster::dead_members`]), so full redundancy
//! returns without waiting for reads to touch every object.

use std::collections::HashSet;

use serde::Deserialize;

use super::S3Store;
use super::meta::Chunk;
use crate::ObjectId;

/// What a repair pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// Chunks checked.
    pub chunks: u64,
    /// Copies or shards rewritten.
    pub rewritten: u64,
    /// Chunks that could not be read (too few places reachable).
    pub unavailable: u64,
}

/// Any metadata row that names chunks (object, version and part rows).
#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    chunks: Vec<Chunk>,
}

impl S3Store {
    /// Runs one repair pass over every chunk (blocking; a no-op without a cluster).
    pub fn repair_pass(&self) -> Result<RepairReport, lsm::Error> {
        let mut report = RepairReport::default();
        let Some(cluster) = self.cluster() else {
            return Ok(report);
        };
        let mut seen: HashSet<ObjectId> = HashSet::new();
        for db in self.meta.shards() {
            for kv in db.scan(..)? {
                let value = kv?.value;
                let Ok(named) = serde_json::from_slice::<Named>(&value) else {
                    continue;
                };
                for c in named.chunks {
                    // A multipart object's chunks are its parts' chunks: check once.
                    if !seen.insert(c.id) {
                        continue;
                    }
                    report.chunks += 1;
                    match cluster.repair_chunk(c.id) {
                        Ok(n) => report.rewritten += n as u64,
                        Err(e) => {
                            report.unavailable += 1;
                            tracing::warn!(id = %c.id, error = %e, "repair could not read a chunk");
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}

/// Called with each repair pass's report.
pub type RepairHook = std::sync::Arc<dyn Fn(&RepairReport) + Send + Sync>;

/// Starts the thread that runs a repair pass whenever a data node comes back; it ends
/// when the store is dropped.
pub(super) fn start(store: &std::sync::Arc<S3Store>) {
    let Some(cluster) = store.cluster().cloned() else {
        return;
    };
    let weak = std::sync::Arc::downgrade(store);
    let spawned = std::thread::Builder::new()
        .name("s3-repair".into())
        .spawn(move || {
            let mut seen = (cluster.recoveries(), cluster.dead_members());
            loop {
                std::thread::sleep(std::time::Duration::from_millis(250));
                let now = (cluster.recoveries(), cluster.dead_members());
                if now == seen {
                    if weak.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
                seen = now;
                let Some(store) = weak.upgrade() else { return };
                match store.repair_pass() {
                    Ok(r) => {
                        tracing::info!(?r, "repair pass done");
                        if let Some(hook) = &store.repair_hook {
                            hook(&r);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "repair pass failed"),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the repair thread");
    }
}
