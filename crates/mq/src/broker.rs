//! The broker's shared state: what every connection's requests read and
//! change (topics, groups, committed offsets), and how it is opened from a
//! data directory.
//!
//! Layout under `data_dir`: `topics/` (metadata store), `logs/` (partition
//! logs), `offsets/` (committed offsets of a single broker; a cluster keeps
//! them in the `__consumer_offsets` topic's logs), and in a cluster `raft/` (the
//! controller quorum's log, see `cluster`). Opening reads them all and
//! recovers every partition log; it blocks, so it runs before serving
//! (`Broker::open`) and off the async workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::cluster::node::{Driver, Node};
use crate::config::{Config, split_host_port};
use crate::group::state::Limits;
use crate::group::{Coordinator, OffsetStore};
use crate::metrics::Metrics;
use crate::topics::{TopicLimits, Topics};

/// Everything a request handler may need.
pub struct Broker {
    /// The settings.
    pub config: Config,
    /// The metadata store and partition logs.
    pub topics: Topics,
    /// Consumer groups.
    pub groups: Coordinator,
    /// Committed offsets (in a cluster: of the groups this broker coordinates).
    pub offsets: OffsetStore,
    /// In a cluster: the `__consumer_offsets` partitions led and loaded here.
    pub offsets_loads: crate::cluster::offsets_topic::Loads,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Host clients are told to connect to.
    pub advertised_host: String,
    /// Port clients are told to connect to.
    pub advertised_port: i32,
    /// Request bytes in memory across connections (`queued_max_request_bytes`).
    pub request_budget: tokio::sync::Semaphore,
    next_producer_id: AtomicI64,
    /// In a cluster: this broker's node (metadata, controller access).
    pub cluster: Option<Arc<Node>>,
    /// Taken by the server: the Raft driver and the bound internal listener.
    pub(crate) cluster_parts: parking_lot::Mutex<Option<(Driver, std::net::TcpListener)>>,
}

impl Broker {
    /// Opens the data directory (blocking). The advertised address is
    /// `config.advertised_address`, or `bound` when that is empty.
    pub fn open(
        config: Config,
        bound: std::net::SocketAddr,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Broker> {
        config
            .validate()
            .map_err(|err| anyhow::anyhow!("invalid settings: {err}"))?;
        let limits = TopicLimits {
            topics_max: config.topics_max,
            partitions_max: config.partitions_max,
        };
        let (cluster, cluster_parts) = match config.node_config() {
            Some(node_config) => {
                let addr = node_config
                    .voters
                    .get(&config.broker_id)
                    .cloned()
                    .unwrap_or_default();
                let internal = std::net::TcpListener::bind(&addr).map_err(|err| {
                    anyhow::anyhow!(
                        "cannot bind the internal (controller) listener on {addr}: {err}"
                    )
                })?;
                internal.set_nonblocking(true)?;
                let (node, driver) = Node::open(node_config)?;
                (Some(node), Some((driver, internal)))
            }
            None => (None, None),
        };
        let topics = Topics::open_with(
            &config.data_dir,
            config.log_config(),
            limits,
            cluster.is_some(),
        )?;
        // A single broker keeps a file per group; a cluster replicates them
        // in `__consumer_offsets` and keeps only a table in memory.
        let offsets = match cluster {
            Some(_) => OffsetStore::in_memory(),
            None => OffsetStore::open(&config.data_dir.join("offsets"))?,
        };
        let groups = Coordinator::new(
            Limits {
                session_timeout_min_ms: config.group_min_session_timeout_ms,
                session_timeout_max_ms: config.group_max_session_timeout_ms,
                members_max: config.group_max_size,
            },
            config.groups_max,
        );
        let (advertised_host, advertised_port) = match split_host_port(&config.advertised_address) {
            Some((host, port)) => (host, i32::from(port)),
            None => (bound.ip().to_string(), i32::from(bound.port())),
        };
        // Producer ids must not repeat across restarts: start from the
        // clock (milliseconds since 1970 fit easily in an i64 with room for
        // millions of producers per millisecond of downtime).
        let seed = i64::try_from(crate::group::coordinator::now_ms())
            .unwrap_or(0)
            .saturating_mul(1000);
        let request_budget = tokio::sync::Semaphore::new(config.queued_max_request_bytes);
        Ok(Broker {
            config,
            topics,
            groups,
            offsets,
            offsets_loads: Default::default(),
            metrics,
            advertised_host,
            advertised_port,
            request_budget,
            next_producer_id: AtomicI64::new(seed),
            cluster,
            cluster_parts: parking_lot::Mutex::new(cluster_parts),
        })
    }

    /// A fresh producer id (InitProducerId).
    pub fn new_producer_id(&self) -> i64 {
        let next = self.next_producer_id.fetch_add(1, Ordering::Relaxed);
        match self.cluster {
            // Brokers hand out ids independently: the broker id in the low
            // bits keeps them apart (Kafka has the controller hand out blocks).
            Some(_) => next.saturating_mul(1024) + i64::from(self.config.broker_id & 1023),
            None => next,
        }
    }

    /// The broker coordinating consumer group `group`: (id, host, port), or
    /// a Kafka error code (COORDINATOR_NOT_AVAILABLE). Alone, this broker.
    /// In a cluster, the leader of the group's `__consumer_offsets`
    /// partition (see `cluster::offsets_topic`), so the group moves with its
    /// committed offsets when that leader fails.
    pub fn coordinator(&self, group: &str) -> Result<(i32, String, i32), i16> {
        match &self.cluster {
            None => Ok((
                self.config.broker_id,
                self.advertised_host.clone(),
                self.advertised_port,
            )),
            Some(node) => crate::cluster::offsets_topic::coordinator(&node.image(), group),
        }
    }

    /// Why this broker cannot serve group `group` now, if it cannot:
    /// NOT_COORDINATOR (another broker coordinates it),
    /// COORDINATOR_LOAD_IN_PROGRESS or COORDINATOR_NOT_AVAILABLE.
    pub fn not_coordinator(&self, group: &str) -> Option<i16> {
        let node = self.cluster.as_ref()?;
        crate::cluster::offsets_topic::serving(self, node, group).err()
    }

    /// The error for a partition this broker does not hold: in a cluster,
    /// one the metadata knows is led elsewhere (NOT_LEADER_OR_FOLLOWER, so
    /// the client refreshes its metadata), else UNKNOWN_TOPIC_OR_PARTITION.
    pub fn missing_partition(&self, topic: &str, partition: i32) -> kafka_protocol::ResponseError {
        match &self.cluster {
            Some(node) if node.image().partition(topic, partition).is_some() => {
                kafka_protocol::ResponseError::NotLeaderOrFollower
            }
            _ => kafka_protocol::ResponseError::UnknownTopicOrPartition,
        }
    }

    /// Every group's lag in every partition it committed that still exists:
    /// (group, topic, partition, end offset - committed offset).
    pub fn consumer_lags(&self) -> Vec<(String, String, i32, i64)> {
        let mut lags = Vec::new();
        for group in self.offsets.groups() {
            for (topic, index, committed) in self.offsets.all(&group) {
                let Some(partition) = self.topics.partition(&topic, index) else {
                    continue;
                };
                if let Some(lag) =
                    crate::group::offsets::lag(Some(committed.offset), partition.end_offset())
                {
                    lags.push((group.clone(), topic, index, lag));
                }
            }
        }
        lags
    }

    /// fsyncs every partition (blocking): the last step of a shutdown.
    pub fn flush_all_blocking(&self) -> Result<(), crate::log::LogError> {
        for topic in self.topics.list() {
            for partition in &topic.partitions {
                partition.flush_blocking()?;
            }
        }
        Ok(())
    }

    /// Runs blocking `work` on a blocking thread.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Broker) -> T + Send + 'static,
    ) -> T {
        let broker = self.clone();
        match tokio::task::spawn_blocking(move || work(&broker)).await {
            Ok(value) => value,
            // A panic in storage code is a bug; keep it loud.
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
}
