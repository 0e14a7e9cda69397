//! Committed offsets: where each consumer group resumes in each partition.
//!
//! The notes' state store wants frequent small writes, strong consistency and
//! lookups by (group, partition). Kafka keeps them in the compacted internal
//! topic `__consumer_offsets`, and so does a cluster of ours (see below); a
//! single broker keeps one small JSON file per group,
//! replaced atomically on every commit (see `durable`). Why: a group's file
//! is a few hundred bytes per partition, consumers commit every few seconds,
//! and a whole-file replace needs no compaction, no replay and no recovery
//! logic: a crash leaves the previous commit or the new one. The cost is one
//! fsync per commit and a rewrite of the group's offsets each time, fine for
//! thousands of partitions per group, not for millions (then an internal
//! compacted log, which `mq::log` supports, is the better store).
//!
//! Writes run on blocking threads (they fsync) and are serialized by one
//! lock, so two commits of the same group cannot reorder their files.
//!
//! In a cluster the store is memory only ([`OffsetStore::in_memory`]): the
//! durable copy is the replicated `__consumer_offsets` topic
//! ([`super::offsets_log`], written and loaded by `cluster::offsets_topic`),
//! and this table holds the groups of the offsets partitions this broker
//! leads, loaded from their logs when it became their leader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::durable::{hex_name, write_atomically};

/// One committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The next offset the group will read.
    pub offset: i64,
    /// The leader epoch the client saw (echoed back).
    pub leader_epoch: i32,
    /// Client metadata (echoed back).
    pub metadata: String,
}

#[derive(Serialize, Deserialize)]
struct GroupFile {
    group: String,
    offsets: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    topic: String,
    partition: i32,
    #[serde(flatten)]
    committed: Committed,
}

type Offsets = super::offsets_log::GroupOffsets;

/// A group's lag in one partition: the end offset (next to be written)
/// minus the committed offset (next to be read); None when nothing is
/// committed, since where the group starts then depends on its
/// `auto.offset.reset`.
pub fn lag(committed_offset: Option<i64>, end_offset: i64) -> Option<i64> {
    committed_offset
        .filter(|&c| c >= 0)
        .map(|c| end_offset.saturating_sub(c).max(0))
}

/// Every group's committed offsets, durable under one directory (or, in a
/// cluster, in memory with the offsets topic as the durable copy).
pub struct OffsetStore {
    dir: Option<PathBuf>,
    groups: Mutex<HashMap<String, Offsets>>,
    write: Mutex<()>,
}

impl OffsetStore {
    /// Loads every group's file under `dir` (created if missing). Blocking.
    pub fn open(dir: &Path) -> std::io::Result<OffsetStore> {
        std::fs::create_dir_all(dir)?;
        let mut groups = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue; // a leftover `.tmp` from a crash mid-write
            }
            let text = std::fs::read(&path)?;
            let file: GroupFile = serde_json::from_slice(&text).map_err(|err| {
                std::io::Error::other(format!(
                    "committed offsets file {} is damaged: {err}",
                    path.display()
                ))
            })?;
            let offsets = file
                .offsets
                .into_iter()
                .map(|e| ((e.topic, e.partition), e.committed))
                .collect();
            groups.insert(file.group, offsets);
        }
        Ok(OffsetStore {
            dir: Some(dir.to_path_buf()),
            groups: Mutex::new(groups),
            write: Mutex::new(()),
        })
    }

    /// A store without files (cluster mode: the offsets topic is durable).
    pub fn in_memory() -> OffsetStore {
        OffsetStore {
            dir: None,
            groups: Mutex::new(HashMap::new()),
            write: Mutex::new(()),
        }
    }

    /// Replaces every group `owned` selects with the groups of `loaded`
    /// (a coordinator loaded an offsets partition; an empty `loaded`
    /// forgets them: it no longer leads that partition).
    pub fn replace(&self, owned: impl Fn(&str) -> bool, loaded: super::offsets_log::Table) {
        let _writing = self.write.lock();
        let mut groups = self.groups.lock();
        groups.retain(|group, _| !owned(group));
        groups.extend(loaded);
    }

    /// Commits `entries` for `group` durably (its file; nothing to write in
    /// memory mode), then makes them visible. Blocking.
    pub fn commit(
        &self,
        group: &str,
        entries: Vec<(String, i32, Committed)>,
    ) -> std::io::Result<()> {
        let _writing = self.write.lock();
        let mut offsets = self.groups.lock().get(group).cloned().unwrap_or_default();
        for (topic, partition, committed) in entries {
            offsets.insert((topic, partition), committed);
        }
        if let Some(dir) = &self.dir {
            let file = GroupFile {
                group: group.to_string(),
                offsets: offsets
                    .iter()
                    .map(|((topic, partition), committed)| Entry {
                        topic: topic.clone(),
                        partition: *partition,
                        committed: committed.clone(),
                    })
                    .collect(),
            };
            let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
            write_atomically(&dir.join(format!("{}.json", hex_name(group))), &bytes)?;
        }
        self.groups.lock().insert(group.to_string(), offsets);
        Ok(())
    }

    /// The committed offset of `group` in a partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        let groups = self.groups.lock();
        groups
            .get(group)?
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// Every group with committed offsets.
    pub fn groups(&self) -> Vec<String> {
        self.groups.lock().keys().cloned().collect()
    }

    /// Every committed offset of `group`, by topic then partition.
    pub fn all(&self, group: &str) -> Vec<(String, i32, Committed)> {
        let groups = self.groups.lock();
        groups
            .get(group)
            .map(|offsets| {
                offsets
                    .iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }
    }

    #[test]
    fn commits_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        store
            .commit("g/1", vec![("t".into(), 0, at(5)), ("t".into(), 1, at(7))])
            .unwrap();
        store.commit("g/1", vec![("t".into(), 0, at(6))]).unwrap();
        drop(store);
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.get("g/1", "t", 0), Some(at(6)));
        assert_eq!(store.get("g/1", "t", 1), Some(at(7)));
        assert_eq!(store.get("g/1", "t", 2), None);
        assert_eq!(store.all("g/1").len(), 2);
        assert!(store.all("other").is_empty());
    }
}
