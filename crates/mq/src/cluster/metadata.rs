//! The metadata store (the notes' "metadata storage"): brokers, topics, and
//! for every partition its replicas, leader, leader epoch and in-sync
//! replicas. It is the state machine of the controller quorum's Raft log:
//! every voter applies the same [`Command`]s in the same order and so holds
//! the same [`Image`]; brokers route, lead and follow by it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A broker id.
pub type BrokerId = i32;

/// "No leader" in [`PartitionInfo::leader`] (Kafka's -1).
pub const NO_LEADER: BrokerId = -1;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// Its id.
    pub id: BrokerId,
    /// Host clients connect to.
    pub host: String,
    /// Kafka port clients connect to.
    pub port: i32,
    /// Fenced: the controller lost its heartbeat; it leads nothing and is in no ISR.
    pub fenced: bool,
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// Brokers holding a copy, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The in-sync replicas (the leader included).
    pub isr: Vec<BrokerId>,
    /// The leader, or [`NO_LEADER`].
    pub leader: BrokerId,
    /// Bumped on every leader change: fences old leaders and marks log divergence.
    pub leader_epoch: i32,
    /// Bumped on every change (leader or ISR): ISR updates are compare-and-set on it.
    pub partition_epoch: i32,
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Per-topic settings given at creation.
    pub configs: BTreeMap<String, String>,
    /// Partitions by index.
    pub partitions: Vec<PartitionInfo>,
}

/// A change to the metadata: an entry of the controller's Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A broker (re)registered: its address, and it is unfenced.
    RegisterBroker {
        /// Id.
        id: BrokerId,
        /// Host for clients.
        host: String,
        /// Port for clients.
        port: i32,
    },
    /// A broker stopped heartbeating.
    FenceBroker {
        /// Id.
        id: BrokerId,
    },
    /// A topic with its partitions placed.
    CreateTopic {
        /// Name.
        name: String,
        /// Settings.
        configs: BTreeMap<String, String>,
        /// Partitions as placed by the controller.
        partitions: Vec<PartitionInfo>,
    },
    /// A topic is gone.
    DeleteTopic {
        /// Name.
        name: String,
    },
    /// A partition's new leader/ISR (elections, ISR shrink or expand).
    ChangePartition {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The new state.
        info: PartitionInfo,
    },
}

/// The metadata as of some applied index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    /// Every broker ever registered.
    pub brokers: BTreeMap<BrokerId, BrokerInfo>,
    /// Every topic.
    pub topics: BTreeMap<String, TopicInfo>,
    /// The Raft index this image reflects.
    pub applied: u64,
}

impl Image {
    /// A partition.
    pub fn partition(&self, topic: &str, index: i32) -> Option<&PartitionInfo> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(index).ok()?)
    }

    /// Brokers not fenced, by id.
    pub fn live_brokers(&self) -> Vec<BrokerId> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .collect()
    }

    /// Applies a committed command. Commands were checked by the controller
    /// before it proposed them; one that no longer fits (a topic deleted in
    /// between) changes nothing.
    pub fn apply(&mut self, index: u64, command: &Command) {
        self.applied = index;
        match command {
            Command::RegisterBroker { id, host, port } => {
                self.brokers.insert(
                    *id,
                    BrokerInfo {
                        id: *id,
                        host: host.clone(),
                        port: *port,
                        fenced: false,
                    },
                );
            }
            Command::FenceBroker { id } => {
                if let Some(broker) = self.brokers.get_mut(id) {
                    broker.fenced = true;
                }
            }
            Command::CreateTopic {
                name,
                configs,
                partitions,
            } => {
                self.topics
                    .entry(name.clone())
                    .or_insert_with(|| TopicInfo {
                        configs: configs.clone(),
                        partitions: partitions.clone(),
                    });
            }
            Command::DeleteTopic { name } => {
                self.topics.remove(name);
            }
            Command::ChangePartition {
                topic,
                partition,
                info,
            } => {
                if let Some(slot) = self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.partitions.get_mut(usize::try_from(*partition).ok()?))
                {
                    *slot = info.clone();
                }
            }
        }
    }
}
