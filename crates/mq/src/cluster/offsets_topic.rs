//! Committed offsets in a cluster, the I/O side: the internal topic
//! `__consumer_offsets` (records encoded by `group::offsets_log`) is where
//! they are durable, and the leader of a group's partition of it is the
//! group's coordinator, as in Kafka.
//!
//! - **Creation.** The first FindCoordinator creates the topic through the
//!   controller ([`ensure_topic`]): `offsets_topic_num_partitions`
//!   partitions, the cluster's `default_replication_factor`,
//!   `cleanup.policy=compact` and the broker's `min_insync_replicas`.
//! - **Coordinator.** [`coordinator`] reads the metadata: the leader of
//!   partition `partition_for(group)`. When that leader dies, the
//!   controller elects another from the ISR, and so the group moves with
//!   its offsets.
//! - **Commit.** [`append`] writes one batch (a record per partition
//!   committed) to the group's partition and waits, as `acks=all` does,
//!   until every in-sync replica holds it before the commit is answered;
//!   only then does the coordinator's in-memory table change.
//! - **Load.** When a broker becomes leader of an offsets partition,
//!   [`reconcile_blocking`] (run by the replication reconciler, on a
//!   blocking thread) replays that partition's log into the in-memory table
//!   (last value per key, see `offsets_log::table_from_records`); until it
//!   is done the partition's groups are answered
//!   COORDINATOR_LOAD_IN_PROGRESS. Losing the leadership forgets them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use super::isr::enough_replicas;
use super::metadata::{BrokerId, Image};
use super::node::Node;
use crate::api::produce::{min_insync, wait_replicated};
use crate::broker::Broker;
use crate::group::offsets::Committed;
use crate::group::offsets_log::{OFFSETS_TOPIC, Table, apply_record, commit_batch, partition_for};
use crate::log::LogError;
use crate::log::records::{batch_payload, parse_records};
use crate::partition::{Appending, Partition};

/// How long a commit waits for the in-sync replicas (Kafka's `offsets.commit.timeout.ms`).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read per step while loading a partition.
const LOAD_CHUNK_BYTES: usize = 1 << 20;

/// Where this broker is with an offsets partition it leads, by leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Loading(i32),
    Loaded(i32),
}

/// The offsets partitions this broker leads and whether their groups are loaded.
#[derive(Debug, Default)]
pub struct Loads {
    states: Mutex<HashMap<i32, Load>>,
}

impl Loads {
    fn get(&self, index: i32) -> Option<Load> {
        self.states.lock().get(&index).copied()
    }

    fn set(&self, index: i32, load: Option<Load>) {
        let mut states = self.states.lock();
        match load {
            Some(load) => states.insert(index, load),
            None => states.remove(&index),
        };
    }
}

fn partition_count(image: &Image) -> Option<i32> {
    let topic = image.topics.get(OFFSETS_TOPIC)?;
    Some(i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX))
}

/// The coordinator of `group` by `image`: (broker id, host, port) of the
/// leader of its offsets partition, or COORDINATOR_NOT_AVAILABLE (no
/// offsets topic yet, or no live leader).
pub fn coordinator(image: &Image, group: &str) -> Result<(BrokerId, String, i32), i16> {
    let not_available = ResponseError::CoordinatorNotAvailable.code();
    let count = partition_count(image).ok_or(not_available)?;
    let info = image
        .partition(OFFSETS_TOPIC, partition_for(group, count))
        .ok_or(not_available)?;
    let leader = image
        .brokers
        .get(&info.leader)
        .filter(|b| !b.fenced)
        .ok_or(not_available)?;
    Ok((leader.id, leader.host.clone(), leader.port))
}

/// Whether this broker serves `group` now: NOT_COORDINATOR when another
/// broker leads its partition, COORDINATOR_LOAD_IN_PROGRESS while the
/// partition's log is not loaded here in the current leader epoch.
pub fn serving(broker: &Broker, node: &Node, group: &str) -> Result<(), i16> {
    let image = node.image();
    let (leader, _, _) = coordinator(&image, group)?;
    if leader != broker.config.broker_id {
        return Err(ResponseError::NotCoordinator.code());
    }
    let index = partition_for(group, partition_count(&image).unwrap_or(0));
    let epoch = image
        .partition(OFFSETS_TOPIC, index)
        .map_or(-1, |p| p.leader_epoch);
    match broker.offsets_loads.get(index) {
        Some(Load::Loaded(loaded)) if loaded == epoch => Ok(()),
        _ => Err(ResponseError::CoordinatorLoadInProgress.code()),
    }
}

/// Creates the offsets topic through the controller when the metadata has none.
pub async fn ensure_topic(broker: &Broker, node: &Node) {
    if node.image().topics.contains_key(OFFSETS_TOPIC) {
        return;
    }
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        (
            "min.insync.replicas".to_string(),
            broker.config.min_insync_replicas.to_string(),
        ),
    ]);
    let created = crate::api::cluster::create_topic(
        broker,
        node,
        OFFSETS_TOPIC,
        broker.config.offsets_topic_num_partitions,
        broker.config.default_replication_factor,
        configs,
    )
    .await;
    match created {
        Ok(()) => tracing::info!("offsets topic {OFFSETS_TOPIC} created"),
        Err(err) if err.code == ResponseError::TopicAlreadyExists.code() => {}
        Err(err) => tracing::warn!(error = err.message, "cannot create {OFFSETS_TOPIC} yet"),
    }
}

/// Commits `entries` of `group` (None: a tombstone) to its offsets
/// partition and waits until every in-sync replica holds them. Err is the
/// Kafka error code for the commit, mapped as Kafka maps append errors.
pub async fn append(
    broker: &Arc<Broker>,
    group: &str,
    entries: Vec<(String, i32, Option<Committed>)>,
) -> Result<(), i16> {
    let not_coordinator = ResponseError::NotCoordinator.code();
    let not_available = ResponseError::CoordinatorNotAvailable.code();
    let too_large = ResponseError::InvalidCommitOffsetSize.code();
    let node = broker.cluster.as_ref().ok_or(not_coordinator)?;
    let count = partition_count(&node.image()).ok_or(not_available)?;
    let partition = broker
        .topics
        .partition(OFFSETS_TOPIC, partition_for(group, count))
        .ok_or(not_available)?;
    let now_ms = i64::try_from(clock::now_ms()).unwrap_or(i64::MAX);
    let batch = commit_batch(group, &entries, now_ms).map_err(|_| too_large)?;
    if batch.len() > broker.config.message_max_bytes {
        return Err(too_large);
    }
    let min_isr = min_insync(broker, OFFSETS_TOPIC);
    let p = partition.clone();
    let (last_offset, epoch) = broker
        .blocking(move |_| {
            let epoch = p.leader_epoch().ok_or(not_coordinator)?;
            if !enough_replicas(p.isr_len(), min_isr) {
                return Err(not_available);
            }
            match p.append_blocking(&batch, now_ms) {
                Ok(Appending::Appended(appended)) => Ok((appended.last_offset, epoch)),
                Ok(_) => Err(not_coordinator),
                Err(LogError::BatchTooLarge { .. }) => Err(too_large),
                Err(err) => {
                    tracing::error!(error = %err, "cannot append to {OFFSETS_TOPIC}");
                    Err(not_coordinator)
                }
            }
        })
        .await?;
    let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
    match wait_replicated(&partition, last_offset, epoch, deadline).await {
        0 => Ok(()),
        code if code == ResponseError::NotLeaderOrFollower.code() => Err(not_coordinator),
        _ => Err(not_available),
    }
}

/// Replays an offsets partition's log (blocking) into the table it amounts to.
fn read_table_blocking(partition: &Partition) -> Result<Table, LogError> {
    let mut table = Table::new();
    let mut next = partition.start_offset();
    let end = partition.end_offset();
    while next < end {
        let batches = partition.read_blocking(next, LOAD_CHUNK_BYTES)?;
        if batches.is_empty() {
            break;
        }
        for batch in batches {
            let (header, payload) = batch_payload(&batch).map_err(LogError::InvalidBatch)?;
            if !header.is_control() {
                for record in
                    parse_records(&payload, header.records_count).map_err(LogError::InvalidBatch)?
                {
                    let offset = header.base_offset + i64::from(record.offset_delta);
                    // A read starts at a whole batch: skip what was applied.
                    if offset >= next {
                        apply_record(&mut table, record.key, record.value);
                        next = offset + 1;
                    }
                }
            }
            next = next.max(header.last_offset() + 1);
        }
    }
    Ok(table)
}

/// Loads the groups of offsets partition `partition` (of `count`) led in `epoch`.
fn load_blocking(broker: &Broker, partition: &Partition, count: i32, epoch: i32) {
    let index = partition.index;
    broker.offsets_loads.set(index, Some(Load::Loading(epoch)));
    let started = Instant::now();
    match read_table_blocking(partition) {
        Ok(table) => {
            let groups = table.len();
            broker
                .offsets
                .replace(|group| partition_for(group, count) == index, table);
            broker.offsets_loads.set(index, Some(Load::Loaded(epoch)));
            tracing::info!(
                partition = index,
                epoch,
                groups,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "committed offsets loaded"
            );
        }
        // Stays Loading: its groups are answered COORDINATOR_LOAD_IN_PROGRESS
        // and the next metadata change retries.
        Err(err) => {
            tracing::error!(partition = index, error = %err, "cannot load committed offsets")
        }
    }
}

/// After the local partitions followed `image` (blocking): loads the offsets
/// partitions this broker now leads, forgets the groups of those it stopped leading.
pub fn reconcile_blocking(broker: &Broker, image: &Image, me: BrokerId) {
    let Some(count) = partition_count(image) else {
        let led: Vec<i32> = broker.offsets_loads.states.lock().keys().copied().collect();
        for index in led {
            broker.offsets_loads.set(index, None);
        }
        broker.offsets.replace(|_| true, Table::new());
        return;
    };
    for index in 0..count {
        let Some(info) = image.partition(OFFSETS_TOPIC, index) else {
            continue;
        };
        let local = broker.topics.partition(OFFSETS_TOPIC, index);
        let state = broker.offsets_loads.get(index);
        let led =
            local.filter(|p| info.leader == me && p.leader_epoch() == Some(info.leader_epoch));
        match led {
            Some(partition) if state != Some(Load::Loaded(info.leader_epoch)) => {
                load_blocking(broker, &partition, count, info.leader_epoch);
            }
            Some(_) => {}
            None if state.is_some() => {
                broker.offsets_loads.set(index, None);
                broker
                    .offsets
                    .replace(|group| partition_for(group, count) == index, Table::new());
                tracing::info!(
                    partition = index,
                    "no longer coordinating this offsets partition"
                );
            }
            None => {}
        }
    }
}
