//! The broker's settings: one struct, loadable from TOML, `HYPERSCALE_MQ_*`
//! environment variables and flags (see `service::config`).
//!
//! Names follow Kafka's `server.properties` with `_` for `.` where one exists
//! (`auto_create_topics` is `auto.create.topics.enable`, `num_partitions` is
//! `num.partitions`, `message_max_bytes`, `socket_request_max_bytes`,
//! `connections_max_idle_ms`, `group_min_session_timeout_ms`...), so an
//! operator's Kafka knowledge carries over; units are last in every name.

use std::path::PathBuf;

use serde::Deserialize;

use crate::log::{FlushPolicy, LogConfig};

/// When an acknowledged produce reaches the disk (the log's [`FlushPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// fsync before acknowledging every produce: nothing acknowledged is lost
    /// on a power cut (`acks` then means "on disk", as the notes' ACK=1).
    Always,
    /// fsync once a second in the background (`flush.ms=1000`).
    #[default]
    Interval,
    /// Never explicitly: the OS writes back (Kafka's default; survives a
    /// process crash, not a power loss).
    Os,
}

/// Every setting of the broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on; loopback by default so nothing is exposed by accident.
    pub bind: String,
    /// `HOST:PORT` clients are told to connect to (Metadata, FindCoordinator);
    /// empty = the bound address. Set it behind NAT or when binding 0.0.0.0.
    pub advertised_address: String,
    /// This broker's id (`node.id`).
    pub broker_id: i32,
    /// The cluster id clients see in Metadata.
    pub cluster_id: String,
    /// Where topics, partition logs and committed offsets live.
    pub data_dir: PathBuf,
    /// Create a topic on first use (Metadata with auto-creation allowed).
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic, and of CreateTopics with `-1`.
    pub num_partitions: i32,
    /// Most topics this broker holds.
    pub topics_max: usize,
    /// Most partitions one topic may have.
    pub partitions_max: i32,
    /// Most simultaneous client connections; extra ones are closed at accept.
    pub connections_max: usize,
    /// Close a connection idle (no request) this long.
    pub connections_max_idle_ms: u64,
    /// Largest request frame (Kafka's `socket.request.max.bytes`, 100 MiB);
    /// checked on the length prefix, before anything is allocated.
    pub socket_request_max_bytes: usize,
    /// Bytes of requests all connections together may hold in memory
    /// (Kafka's `queued.max.request.bytes`); a connection whose next frame
    /// does not fit waits before reading it.
    pub queued_max_request_bytes: usize,
    /// Largest record batch a producer may send (Kafka's `message.max.bytes`).
    pub message_max_bytes: usize,
    /// Upper bound on one Fetch response whatever the client asks (`fetch.max.bytes`).
    pub fetch_max_bytes: usize,
    /// Upper bound on a Fetch's `max_wait_ms` (long polling).
    pub fetch_max_wait_ms: u64,
    /// When appended batches reach the disk.
    pub fsync: Fsync,
    /// Interval of [`Fsync::Interval`].
    pub fsync_interval_ms: u64,
    /// Roll a segment beyond this size (`segment.bytes`).
    pub segment_bytes: u64,
    /// Delete segments older than this (`retention.ms`); 0 = keep forever.
    pub retention_ms: u64,
    /// Delete old segments beyond this partition size (`retention.bytes`); 0 = unlimited.
    pub retention_bytes: u64,
    /// Shortest session timeout a consumer may ask for.
    pub group_min_session_timeout_ms: u64,
    /// Longest session timeout a consumer may ask for.
    pub group_max_session_timeout_ms: u64,
    /// Most members of one consumer group.
    pub group_max_size: usize,
    /// Most consumer groups.
    pub groups_max: usize,
    /// The cluster's voters, `id@host:port,...` (each broker's internal
    /// listener; this broker binds its own entry). Empty: a single broker.
    pub controller_quorum: String,
    /// Copies of each partition of auto-created topics (and CreateTopics with
    /// -1), and of the committed-offsets topic `__consumer_offsets`.
    pub default_replication_factor: i32,
    /// Partitions of `__consumer_offsets` in a cluster (Kafka's
    /// `offsets.topic.num.partitions`): a group's coordinator is the leader
    /// of its partition, so this spreads groups over brokers. Fixed once the
    /// topic exists.
    pub offsets_topic_num_partitions: i32,
    /// Fewest in-sync replicas an `acks=all` produce needs (topic config
    /// `min.insync.replicas` overrides it).
    pub min_insync_replicas: usize,
    /// A follower not caught up with its leader this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// A broker whose heartbeats stop this long is fenced and loses its leaderships.
    pub broker_session_timeout_ms: u64,
    /// How often a broker heartbeats the controller.
    pub broker_heartbeat_interval_ms: u64,
    /// Raft's shortest election timeout (the longest is twice it).
    pub controller_election_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        let log = LogConfig::default();
        Config {
            bind: "127.0.0.1:9092".into(),
            advertised_address: String::new(),
            broker_id: 0,
            cluster_id: "hyperscale-mq".into(),
            data_dir: PathBuf::from("data/mq"),
            auto_create_topics: true,
            num_partitions: 1,
            topics_max: 10_000,
            partitions_max: 1_000,
            connections_max: 10_000,
            connections_max_idle_ms: 10 * 60 * 1000,
            socket_request_max_bytes: 100 * 1024 * 1024,
            queued_max_request_bytes: 512 * 1024 * 1024,
            message_max_bytes: log.batch_bytes_max,
            fetch_max_bytes: 55 * 1024 * 1024,
            fetch_max_wait_ms: 30_000,
            fsync: Fsync::default(),
            fsync_interval_ms: 1_000,
            segment_bytes: log.segment_bytes,
            retention_ms: log.retention_ms.unwrap_or(0),
            retention_bytes: log.retention_bytes.unwrap_or(0),
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 30 * 60 * 1000,
            group_max_size: 1_000,
            groups_max: 10_000,
            controller_quorum: String::new(),
            default_replication_factor: 1,
            offsets_topic_num_partitions: 5,
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 10_000,
            broker_session_timeout_ms: 6_000,
            broker_heartbeat_interval_ms: 500,
            controller_election_timeout_ms: 1_000,
        }
    }
}

impl Config {
    /// The partition log's settings derived from these.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            retention_bytes: (self.retention_bytes > 0).then_some(self.retention_bytes),
            retention_ms: (self.retention_ms > 0).then_some(self.retention_ms),
            flush: match self.fsync {
                Fsync::Always => FlushPolicy::Always,
                Fsync::Interval => FlushPolicy::IntervalMs(self.fsync_interval_ms),
                Fsync::Os => FlushPolicy::Os,
            },
            batch_bytes_max: self.message_max_bytes,
            ..LogConfig::default()
        }
    }

    /// Checks settings that cannot work together; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.offsets_topic_num_partitions < 1
            || self.offsets_topic_num_partitions > self.partitions_max
        {
            return Err(format!(
                "offsets_topic_num_partitions is {} but must be between 1 and partitions_max ({})",
                self.offsets_topic_num_partitions, self.partitions_max
            ));
        }
        if self.num_partitions < 1 || self.num_partitions > self.partitions_max {
            return Err(format!(
                "num_partitions is {} but must be between 1 and partitions_max ({})",
                self.num_partitions, self.partitions_max
            ));
        }
        if self.socket_request_max_bytes < 64 || self.socket_request_max_bytes > i32::MAX as usize {
            return Err("socket_request_max_bytes must be between 64 and 2147483647".into());
        }
        if self.queued_max_request_bytes < self.socket_request_max_bytes
            || self.queued_max_request_bytes > u32::MAX as usize
        {
            return Err(format!(
                "queued_max_request_bytes ({}) must be at least socket_request_max_bytes ({}) and at most 4294967295",
                self.queued_max_request_bytes, self.socket_request_max_bytes
            ));
        }
        if self.message_max_bytes + 1024 > self.socket_request_max_bytes {
            return Err(format!(
                "message_max_bytes ({}) must leave room in socket_request_max_bytes ({}) for the request around it",
                self.message_max_bytes, self.socket_request_max_bytes
            ));
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err(
                "group_min_session_timeout_ms must not exceed group_max_session_timeout_ms".into(),
            );
        }
        if !self.advertised_address.is_empty()
            && split_host_port(&self.advertised_address).is_none()
        {
            return Err(format!(
                "advertised_address {:?} is not HOST:PORT",
                self.advertised_address
            ));
        }
        if !self.controller_quorum.is_empty() {
            let voters = crate::cluster::parse_quorum(&self.controller_quorum)?;
            if !voters.contains_key(&self.broker_id) {
                return Err(format!(
                    "controller_quorum must name this broker (broker_id {})",
                    self.broker_id
                ));
            }
            if self.broker_heartbeat_interval_ms == 0
                || self.broker_heartbeat_interval_ms * 2 > self.broker_session_timeout_ms
            {
                return Err("broker_heartbeat_interval_ms must be above 0 and at most half of broker_session_timeout_ms".into());
            }
            if self.controller_election_timeout_ms < 50 {
                return Err("controller_election_timeout_ms must be at least 50".into());
            }
        }
        if self.default_replication_factor < 1 || self.min_insync_replicas < 1 {
            return Err(
                "default_replication_factor and min_insync_replicas must be at least 1".into(),
            );
        }
        Ok(())
    }

    /// The cluster settings when `controller_quorum` is set.
    pub fn node_config(&self) -> Option<crate::cluster::node::NodeConfig> {
        let voters = crate::cluster::parse_quorum(&self.controller_quorum).ok()?;
        if voters.is_empty() {
            return None;
        }
        let election = self.controller_election_timeout_ms;
        Some(crate::cluster::node::NodeConfig {
            broker_id: self.broker_id,
            voters,
            raft_dir: self.data_dir.join("raft"),
            timing: crate::cluster::raft::Timing {
                election_min_ms: election,
                election_max_ms: election * 2,
                heartbeat_ms: (election / 5).max(10),
            },
            session_timeout_ms: self.broker_session_timeout_ms,
            heartbeat_interval_ms: self.broker_heartbeat_interval_ms,
        })
    }
}

/// Splits `host:port` (also `[v6]:port`) into its parts.
pub fn split_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.bind.starts_with("127.0.0.1:"));
    }

    #[test]
    fn bad_combinations_are_refused_with_the_key_named() {
        let config = Config {
            num_partitions: 0,
            ..Config::default()
        };
        assert!(config.validate().unwrap_err().contains("num_partitions"));
        let config = Config {
            advertised_address: "nohost".into(),
            ..Config::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("advertised_address")
        );
    }

    #[test]
    fn host_port_splits() {
        assert_eq!(
            split_host_port("example.com:9092"),
            Some(("example.com".into(), 9092))
        );
        assert_eq!(split_host_port("[::1]:9092"), Some(("::1".into(), 9092)));
        assert_eq!(split_host_port(":9092"), None);
        assert_eq!(split_host_port("host:x"), None);
    }
}
