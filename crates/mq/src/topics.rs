//! The metadata store: which topics exist, their partition counts and
//! per-topic settings (the notes: small, rarely changed, must be
//! consistent).
//!
//! On a single broker a file per topic is enough: `topics/<name>.json`,
//! written atomically (see `durable`) after the partition directories are
//! created, so the file is the commit point: a crash mid-creation leaves
//! orphan directories that the next creation of that name clears, never a
//! topic with missing partitions. Partition logs live in
//! `logs/<topic>-<partition>/` as in Kafka. In a cluster the controller's
//! Raft log is the metadata store (`cluster::metadata`) and these files are
//! only the local copy each broker creates as the metadata tells it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::durable::{remove_durably, sync_dir, write_atomically};
use crate::log::{CleanupPolicy, LogConfig, PartitionLog};
use crate::partition::Partition;

/// Kafka's longest topic name.
pub const TOPIC_NAME_MAX_CHARS: usize = 249;

/// A topic and its partitions.
pub struct Topic {
    /// Its name.
    pub name: String,
    /// Partitions by index.
    pub partitions: Vec<Arc<Partition>>,
    /// Per-topic settings as given at creation (`retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct TopicFile {
    name: String,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

/// Why a topic could not be created or deleted: a Kafka error code and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicError {
    /// Kafka error code.
    pub code: i16,
    /// For the client's `error_message` and the log.
    pub message: String,
}

impl TopicError {
    fn new(error: ResponseError, message: impl Into<String>) -> Self {
        TopicError {
            code: error.code(),
            message: message.into(),
        }
    }
}

/// Checks a topic name as Kafka does: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let valid = !name.is_empty()
        && name.len() <= TOPIC_NAME_MAX_CHARS
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(TopicError::new(
            ResponseError::InvalidTopicException,
            format!(
                "topic name {name:?} is invalid: use 1 to {TOPIC_NAME_MAX_CHARS} of a-z A-Z 0-9 . _ -"
            ),
        ))
    }
}

/// The log settings of a topic: the broker's, overridden by the topic's configs.
pub fn topic_log_config(
    base: &LogConfig,
    configs: &BTreeMap<String, String>,
) -> Result<LogConfig, TopicError> {
    let mut config = base.clone();
    for (key, value) in configs {
        let invalid = || {
            TopicError::new(
                ResponseError::InvalidConfig,
                format!("invalid value {value:?} for {key}"),
            )
        };
        let number = || value.parse::<i64>().map_err(|_| invalid());
        match key.as_str() {
            "cleanup.policy" => {
                config.cleanup = match value.as_str() {
                    "delete" => CleanupPolicy::Delete,
                    "compact" => CleanupPolicy::Compact,
                    _ => return Err(invalid()),
                }
            }
            "retention.ms" => config.retention_ms = u64::try_from(number()?).ok(),
            "retention.bytes" => config.retention_bytes = u64::try_from(number()?).ok(),
            "segment.bytes" => {
                config.segment_bytes = u64::try_from(number()?).map_err(|_| invalid())?.max(1)
            }
            "segment.ms" => {
                config.segment_ms = u64::try_from(number()?).map_err(|_| invalid())?.max(1)
            }
            "max.message.bytes" => {
                config.batch_bytes_max = usize::try_from(number()?).map_err(|_| invalid())?
            }
            // Read by Produce (acks=all), not by the log.
            "min.insync.replicas" => {
                if number()? < 1 {
                    return Err(invalid());
                }
            }
            _ => {
                return Err(TopicError::new(
                    ResponseError::InvalidConfig,
                    format!(
                        "unsupported topic config {key} (supported: cleanup.policy, retention.ms, retention.bytes, segment.bytes, segment.ms, max.message.bytes, min.insync.replicas)"
                    ),
                ));
            }
        }
    }
    Ok(config)
}

/// The checks of a creation that need no local state (name, partition
/// count, configs): a cluster's broker runs them before asking the controller.
pub fn check_create_request(
    config: &crate::config::Config,
    name: &str,
    partitions: i32,
    configs: &BTreeMap<String, String>,
) -> Result<(), TopicError> {
    validate_name(name)?;
    if !(1..=config.partitions_max).contains(&partitions) {
        return Err(TopicError::new(
            ResponseError::InvalidPartitions,
            format!(
                "{partitions} partitions: a topic has 1 to {} (partitions_max)",
                config.partitions_max
            ),
        ));
    }
    topic_log_config(&config.log_config(), configs).map(|_| ())
}

/// Bounds on what clients may create.
#[derive(Debug, Clone, Copy)]
pub struct TopicLimits {
    /// Most topics.
    pub topics_max: usize,
    /// Most partitions per topic.
    pub partitions_max: i32,
}

/// Every topic of this broker.
pub struct Topics {
    dir: PathBuf,
    logs_dir: PathBuf,
    base: LogConfig,
    limits: TopicLimits,
    map: RwLock<HashMap<String, Arc<Topic>>>,
    changing: Mutex<()>,
    /// In a cluster: partitions are replicas (see `cluster`).
    replicated: bool,
}

impl Topics {
    /// Loads every topic under `data_dir` and opens (recovers) its partition logs. Blocking.
    pub fn open(data_dir: &Path, base: LogConfig, limits: TopicLimits) -> anyhow::Result<Topics> {
        Self::open_with(data_dir, base, limits, false)
    }

    /// [`Topics::open`]; `replicated` in a cluster, where partitions are
    /// replicas that lead or follow as the metadata says.
    pub fn open_with(
        data_dir: &Path,
        base: LogConfig,
        limits: TopicLimits,
        replicated: bool,
    ) -> anyhow::Result<Topics> {
        let dir = data_dir.join("topics");
        let logs_dir = data_dir.join("logs");
        std::fs::create_dir_all(&dir)?;
        std::fs::create_dir_all(&logs_dir)?;
        let topics = Topics {
            dir,
            logs_dir,
            base,
            limits,
            map: RwLock::new(HashMap::new()),
            changing: Mutex::new(()),
            replicated,
        };
        for entry in std::fs::read_dir(&topics.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let file: TopicFile =
                serde_json::from_slice(&std::fs::read(&path)?).map_err(|err| {
                    anyhow::anyhow!("topic file {} is damaged: {err}", path.display())
                })?;
            let config = topic_log_config(&topics.base, &file.configs)
                .map_err(|err| anyhow::anyhow!("topic file {}: {}", path.display(), err.message))?;
            let mut partitions = Vec::new();
            for index in 0..file.partitions {
                let log_dir = topics.log_dir(&file.name, index);
                let log = PartitionLog::open(&log_dir, config.clone()).map_err(|err| {
                    anyhow::anyhow!("cannot open partition {}-{index}: {err}", file.name)
                })?;
                partitions.push(Arc::new(topics.wrap(index, log)?));
            }
            let topic = Topic {
                name: file.name.clone(),
                partitions,
                configs: file.configs,
            };
            topics.map.write().insert(file.name, Arc::new(topic));
        }
        Ok(topics)
    }

    fn wrap(&self, index: i32, log: PartitionLog) -> Result<Partition, crate::log::LogError> {
        if self.replicated {
            Partition::replicated(index, log)
        } else {
            Ok(Partition::new(index, log))
        }
    }

    fn log_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.logs_dir.join(format!("{topic}-{partition}"))
    }

    /// The topic called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.map.read().get(name).cloned()
    }

    /// A partition.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let topic = self.get(topic)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| topic.partitions.get(i))
            .cloned()
    }

    /// Every topic, by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<_> = self.map.read().values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Checks a creation without doing it (CreateTopics `validate_only`).
    pub fn check_create(
        &self,
        name: &str,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        validate_name(name)?;
        if !(1..=self.limits.partitions_max).contains(&partitions) {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "{partitions} partitions: a topic has 1 to {} (partitions_max)",
                    self.limits.partitions_max
                ),
            ));
        }
        topic_log_config(&self.base, configs)?;
        let map = self.map.read();
        if map.contains_key(name) {
            return Err(TopicError::new(
                ResponseError::TopicAlreadyExists,
                format!("topic {name} already exists"),
            ));
        }
        if map.len() >= self.limits.topics_max {
            return Err(TopicError::new(
                ResponseError::PolicyViolation,
                format!(
                    "this broker holds at most {} topics (topics_max)",
                    self.limits.topics_max
                ),
            ));
        }
        Ok(())
    }

    /// Creates a topic durably. Blocking.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _changing = self.changing.lock();
        self.check_create(name, partitions, &configs)?;
        let storage = |err: String| TopicError::new(ResponseError::KafkaStorageError, err);
        let config = topic_log_config(&self.base, &configs)?;
        let mut opened = Vec::new();
        for index in 0..partitions {
            let dir = self.log_dir(name, index);
            if dir.exists() {
                // Left by a creation that crashed before its topic file.
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| storage(format!("cannot clear {}: {e}", dir.display())))?;
            }
            let log =
                PartitionLog::open(&dir, config.clone()).map_err(|e| storage(e.to_string()))?;
            opened.push(Arc::new(
                self.wrap(index, log).map_err(|e| storage(e.to_string()))?,
            ));
        }
        sync_dir(&self.logs_dir).map_err(|e| storage(e.to_string()))?;
        let file = TopicFile {
            name: name.to_string(),
            partitions,
            configs: configs.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| storage(e.to_string()))?;
        write_atomically(&self.dir.join(format!("{name}.json")), &bytes)
            .map_err(|e| storage(e.to_string()))?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            partitions: opened,
            configs,
        });
        self.map.write().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "topic created");
        Ok(topic)
    }

    /// Deletes a topic and its data. Blocking.
    pub fn delete(&self, name: &str) -> Result<(), TopicError> {
        let _changing = self.changing.lock();
        let Some(topic) = self.map.write().remove(name) else {
            return Err(TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            ));
        };
        let storage = |err: std::io::Error| {
            TopicError::new(ResponseError::KafkaStorageError, err.to_string())
        };
        remove_durably(&self.dir.join(format!("{name}.json"))).map_err(storage)?;
        for partition in &topic.partitions {
            let dir = self.log_dir(name, partition.index);
            if let Err(err) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %err, "could not remove a deleted topic's log");
            }
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        assert!(validate_name("demo.events_v1-x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(250)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topic_configs_override_the_broker_and_unknown_ones_are_refused() {
        let base = LogConfig::default();
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        assert_eq!(
            topic_log_config(&base, &configs).unwrap().retention_ms,
            Some(1000)
        );
        let unknown = BTreeMap::from([("flush.ms".to_string(), "1".to_string())]);
        assert_eq!(
            topic_log_config(&base, &unknown).unwrap_err().code,
            ResponseError::InvalidConfig.code()
        );
        let bad = BTreeMap::from([("segment.bytes".to_string(), "lots".to_string())]);
        assert!(topic_log_config(&base, &bad).is_err());
    }
}
