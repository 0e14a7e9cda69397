//! Replication, the I/O side: followers pull from partition leaders, and a
//! broker's local partitions follow the metadata.
//!
//! - [`serve_fetch`] is the leader's answer to a follower's fetch (on the
//!   internal listener): batches from the follower's log end, long-polling
//!   up to `max_wait_ms` when there is nothing new, or where to truncate
//!   when the follower's log diverges. Each fetch reports the follower's log
//!   end, which advances the high watermark (`isr`).
//! - [`follow`] is one follower's loop for one partition.
//! - [`run`] reconciles the local partitions with every metadata change
//!   (create/delete topics, become leader or follower, start and stop
//!   follower loops) and, as leader, asks the controller for ISR changes.
//!
//! Followers pull (the notes' consumers-pull argument applies to replicas
//! too: each goes at its own pace, and a slow one only slows itself — until
//! it leaves the ISR).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use tokio_util::sync::CancellationToken;

use super::isr::ReplicaRole;
use super::metadata::{BrokerId, Image, NO_LEADER};
use super::node::Node;
use super::transport::{ReplicaFetch, Request, Response};
use crate::api::produce::split_batches;
use crate::broker::Broker;
use crate::partition::Partition;

/// Bytes a follower asks for per fetch.
const FETCH_MAX_BYTES: usize = 1 << 20;
/// How long a leader parks a follower's fetch when there is nothing new.
const FETCH_MAX_WAIT_MS: u64 = 500;

fn now_ms() -> u64 {
    clock::now_ms()
}

/// The leader's side of a replica fetch.
pub async fn serve_fetch(broker: Arc<Broker>, request: ReplicaFetch) -> (Response, Bytes) {
    let fail = |code: i16| {
        (
            Response::Fetched {
                error: code,
                high_watermark: -1,
                diverging: None,
            },
            Bytes::new(),
        )
    };
    let Some(partition) = broker.topics.partition(&request.topic, request.partition) else {
        return fail(ResponseError::UnknownTopicOrPartition.code());
    };
    let wait = Duration::from_millis(request.max_wait_ms.min(FETCH_MAX_WAIT_MS));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut end = partition.subscribe_end();
        let (p, r) = (partition.clone(), request.clone());
        let max_bytes = r.max_bytes.min(FETCH_MAX_BYTES);
        let read = broker
            .blocking(move |_| {
                p.serve_replica_blocking(
                    r.replica,
                    r.leader_epoch,
                    r.fetch_offset,
                    r.last_fetched_epoch,
                    max_bytes,
                    now_ms(),
                )
            })
            .await;
        let (batches, diverging) = match read {
            Ok(found) => found,
            Err(code) => return fail(code),
        };
        let done = !batches.is_empty() || diverging.is_some();
        if done || tokio::time::Instant::now() >= deadline {
            let mut payload = BytesMut::new();
            for batch in &batches {
                payload.extend_from_slice(batch);
            }
            let response = Response::Fetched {
                error: 0,
                high_watermark: partition.high_watermark(),
                diverging,
            };
            return (response, payload.freeze());
        }
        // Nothing new: wait for an append (or the deadline), then read again.
        let _ = tokio::time::timeout_at(deadline, end.changed()).await;
    }
}

/// One follower's loop: fetch from `leader` in `leader_epoch`, append,
/// truncate when told, learn the high watermark; until `stop`.
pub async fn follow(
    broker: Arc<Broker>,
    node: Arc<Node>,
    topic: String,
    partition: Arc<Partition>,
    (leader, leader_epoch): (BrokerId, i32),
    stop: CancellationToken,
) {
    let Some(addr) = node.config.voters.get(&leader).cloned() else {
        tracing::warn!(
            leader,
            "the leader has no internal address in controller_quorum"
        );
        return;
    };
    let me = node.config.broker_id;
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    loop {
        let (fetch_offset, last_fetched_epoch) = partition.follower_position();
        let request = Request::ReplicaFetch(ReplicaFetch {
            replica: me,
            topic: topic.clone(),
            partition: partition.index,
            leader_epoch,
            fetch_offset,
            last_fetched_epoch,
            max_bytes: FETCH_MAX_BYTES,
            max_wait_ms: FETCH_MAX_WAIT_MS,
        });
        let call = node
            .pool
            .call(&addr, request, Duration::from_millis(FETCH_MAX_WAIT_MS * 6));
        let answer = tokio::select! {
            () = stop.cancelled() => return,
            answer = call => answer,
        };
        let wait_ms = match answer {
            Ok((
                Response::Fetched {
                    error: 0,
                    high_watermark,
                    diverging,
                },
                payload,
            )) => {
                let p = partition.clone();
                let applied = broker
                    .blocking(move |_| match diverging {
                        Some(point) => p.truncate_diverging_blocking(point),
                        None => match split_batches(&payload) {
                            Some(batches) => p.append_fetched_blocking(&batches),
                            None => Err(crate::log::LogError::InvalidBatch(
                                "a leader sent a torn batch".into(),
                            )),
                        },
                    })
                    .await;
                partition.set_follower_high_watermark(high_watermark);
                match applied {
                    Ok(()) => 0,
                    Err(err) => {
                        tracing::warn!(topic, partition = partition.index, error = %err, "replication append failed");
                        500
                    }
                }
            }
            // Not (yet) the leader in our epoch: the metadata will catch up.
            Ok(_) => 100,
            Err(err) => {
                tracing::debug!(topic, leader, error = %err, "replica fetch failed");
                200
            }
        };
        if wait_ms > 0 {
            tokio::select! {
                () = stop.cancelled() => return,
                () = pause(wait_ms) => {}
            }
        }
    }
}

/// A partition this broker must follow: (topic, index) → (leader, epoch).
type FollowTargets = HashMap<(String, i32), (BrokerId, i32)>;

/// Makes the local partitions match `image` (blocking): creates and deletes
/// topics, takes or leaves leadership; returns the partitions to follow.
pub fn reconcile(broker: &Broker, image: &Image, previous: &Image, me: BrokerId) -> FollowTargets {
    for name in previous.topics.keys() {
        if !image.topics.contains_key(name)
            && let Err(err) = broker.topics.delete(name)
        {
            tracing::debug!(topic = name, error = err.message, "local delete");
        }
    }
    let mut targets = FollowTargets::new();
    for (name, topic) in &image.topics {
        if broker.topics.get(name).is_none() {
            let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
            if let Err(err) = broker.topics.create(name, count, topic.configs.clone()) {
                tracing::error!(
                    topic = name,
                    error = err.message,
                    "cannot create a replica's log"
                );
                continue;
            }
        }
        for (index, info) in topic.partitions.iter().enumerate() {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            let Some(partition) = broker.topics.partition(name, index) else {
                continue;
            };
            let role = partition.role();
            if !info.replicas.contains(&me) || info.leader == NO_LEADER {
                if role != ReplicaRole::None {
                    partition.become_follower(None);
                }
            } else if info.leader == me {
                match role {
                    ReplicaRole::Leader(state) if state.leader_epoch == info.leader_epoch => {
                        if state.partition_epoch != info.partition_epoch {
                            partition.update_leader(info);
                        }
                    }
                    _ => {
                        tracing::info!(
                            topic = name,
                            partition = index,
                            epoch = info.leader_epoch,
                            "leading"
                        );
                        if let Err(err) = partition.become_leader_blocking(me, info, now_ms()) {
                            tracing::error!(topic = name, partition = index, error = %err, "cannot lead");
                        }
                    }
                }
            } else {
                let wanted = (info.leader, info.leader_epoch);
                let current = match role {
                    ReplicaRole::Follower {
                        leader,
                        leader_epoch,
                    } => Some((leader, leader_epoch)),
                    _ => None,
                };
                if current != Some(wanted) {
                    tracing::info!(
                        topic = name,
                        partition = index,
                        leader = info.leader,
                        epoch = info.leader_epoch,
                        "following"
                    );
                    partition.become_follower(Some(wanted));
                }
                targets.insert((name.clone(), index), wanted);
            }
        }
    }
    super::offsets_topic::reconcile_blocking(broker, image, me);
    targets
}

/// Asks the controller for the ISR changes this broker's leaders want.
fn maintain_isr(broker: &Arc<Broker>, node: &Arc<Node>, lag_max_ms: u64) {
    let mut under_replicated = 0;
    for topic in broker.topics.list() {
        for partition in &topic.partitions {
            under_replicated += i64::from(partition.under_replicated());
            let Some((isr, leader_epoch, partition_epoch)) =
                partition.isr_change(now_ms(), lag_max_ms)
            else {
                continue;
            };
            tracing::info!(topic = %topic.name, partition = partition.index, ?isr, "asking for an ISR change");
            broker.metrics.isr_changes.inc();
            let request = Request::AlterIsr {
                topic: topic.name.clone(),
                partition: partition.index,
                broker: node.config.broker_id,
                leader_epoch,
                partition_epoch,
                isr,
            };
            let (node, partition) = (node.clone(), partition.clone());
            tokio::spawn(async move {
                match node.call_controller(request, Duration::from_secs(5)).await {
                    Ok(Response::Done { .. }) => {}
                    other => {
                        tracing::debug!(?other, "ISR change not made");
                        partition.isr_change_failed();
                    }
                }
            });
        }
    }
    broker
        .metrics
        .under_replicated_partitions
        .set(under_replicated);
}

/// Keeps the local partitions in line with the metadata until `stop` (see the module doc).
pub async fn run(broker: Arc<Broker>, node: Arc<Node>, lag_max_ms: u64, stop: CancellationToken) {
    let me = node.config.broker_id;
    let mut images = node.subscribe();
    let mut previous = Arc::new(Image::default());
    let mut followers: HashMap<(String, i32), ((BrokerId, i32), CancellationToken)> =
        HashMap::new();
    let mut ticker =
        tokio::time::interval(Duration::from_millis((lag_max_ms / 4).clamp(50, 1_000)));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => maintain_isr(&broker, &node, lag_max_ms),
            changed = images.changed() => {
                if changed.is_err() {
                    break;
                }
                let image = images.borrow_and_update().clone();
                let before = previous.clone();
                let now = image.clone();
                let targets = broker.blocking(move |b| reconcile(b, &now, &before, me)).await;
                previous = image;
                followers.retain(|key, (target, token)| {
                    let keep = targets.get(key) == Some(target);
                    if !keep {
                        token.cancel();
                    }
                    keep
                });
                for (key, target) in targets {
                    if followers.contains_key(&key) {
                        continue;
                    }
                    let Some(partition) = broker.topics.partition(&key.0, key.1) else {
                        continue;
                    };
                    let token = stop.child_token();
                    tokio::spawn(follow(broker.clone(), node.clone(), key.0.clone(), partition, target, token.clone()));
                    followers.insert(key, (target, token));
                }
            }
        }
    }
    for (_, token) in followers.into_values() {
        token.cancel();
    }
}
