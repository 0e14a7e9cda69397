//! The controller's decisions, as plain functions of the metadata image:
//! replica placement, leader election when a broker is fenced or returns,
//! ISR changes asked by partition leaders, and broker liveness.
//!
//! The notes' controller "is responsible for partition placement" and is
//! the one active broker elected through the coordination service; here
//! that is whoever leads the Raft quorum (`cluster::node`), and every
//! decision below becomes a [`Command`] in its log. Election is *clean*
//! only: a new leader comes from the ISR, so every acknowledged
//! (`acks=all`) record survives; with no live ISR member the partition
//! stays leaderless until one returns (Kafka's
//! `unclean.leader.election.enable=false`).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::metadata::{BrokerId, Command, Image, NO_LEADER, PartitionInfo};

/// Places `partitions` partitions of `replication_factor` copies on the live
/// brokers round-robin, starting at `start` (Kafka's rack-unaware placement:
/// leaders spread, each partition's replicas on distinct brokers).
pub fn place_replicas(
    live: &[BrokerId],
    partitions: i32,
    replication_factor: i32,
    start: usize,
) -> Result<Vec<PartitionInfo>, (i16, String)> {
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf == 0 || rf > live.len() {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            format!(
                "replication factor {replication_factor}: {} brokers are alive",
                live.len()
            ),
        ));
    }
    let n = live.len();
    Ok((0..usize::try_from(partitions).unwrap_or(0))
        .map(|p| {
            let replicas: Vec<BrokerId> = (0..rf).map(|j| live[(start + p + j) % n]).collect();
            PartitionInfo {
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
            }
        })
        .collect())
}

/// The first replica (preferred order) that is in `isr` and not fenced.
fn first_eligible(image: &Image, info: &PartitionInfo, isr: &[BrokerId]) -> BrokerId {
    info.replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && image.brokers.get(r).is_some_and(|b| !b.fenced))
        .unwrap_or(NO_LEADER)
}

fn changes(
    image: &Image,
    mut decide: impl FnMut(&PartitionInfo) -> Option<PartitionInfo>,
) -> Vec<Command> {
    let mut out = Vec::new();
    for (name, topic) in &image.topics {
        for (index, info) in topic.partitions.iter().enumerate() {
            if let Some(mut next) = decide(info) {
                if next.leader != info.leader {
                    next.leader_epoch = info.leader_epoch + 1;
                }
                next.partition_epoch = info.partition_epoch + 1;
                out.push(Command::ChangePartition {
                    topic: name.clone(),
                    partition: i32::try_from(index).unwrap_or(i32::MAX),
                    info: next,
                });
            }
        }
    }
    out
}

/// A broker stopped heartbeating: fence it, take it out of every ISR (but
/// never empty one: the last member stays, so it can lead again when it
/// returns) and move the leadership of its partitions to another ISR member.
pub fn fence(image: &Image, broker: BrokerId) -> Vec<Command> {
    let mut after = image.clone();
    let fenced = Command::FenceBroker { id: broker };
    after.apply(image.applied, &fenced);
    let mut out = vec![fenced];
    out.extend(changes(&after, |info| {
        if !info.replicas.contains(&broker) {
            return None;
        }
        let mut isr: Vec<BrokerId> = info.isr.iter().copied().filter(|r| *r != broker).collect();
        if isr.is_empty() {
            isr = info.isr.clone();
        }
        let leader = if info.leader == broker || info.leader == NO_LEADER {
            first_eligible(&after, info, &isr)
        } else {
            info.leader
        };
        (isr != info.isr || leader != info.leader).then(|| PartitionInfo {
            isr,
            leader,
            ..info.clone()
        })
    }));
    out
}

/// A broker (re)registered: record it, and let it lead the leaderless
/// partitions whose ISR it is in.
pub fn register(image: &Image, broker: BrokerId, host: String, port: i32) -> Vec<Command> {
    let mut after = image.clone();
    let registered = Command::RegisterBroker {
        id: broker,
        host,
        port,
    };
    after.apply(image.applied, &registered);
    let mut out = vec![registered];
    out.extend(changes(&after, |info| {
        (info.leader == NO_LEADER && info.isr.contains(&broker)).then(|| PartitionInfo {
            leader: first_eligible(&after, info, &info.isr),
            ..info.clone()
        })
    }));
    out
}

/// Preferred-leader election (Kafka's `auto.leader.rebalance.enable`): a
/// partition led by another broker while its first replica is live and in
/// sync moves back to it, so leaderships spread again once a failed broker
/// has returned and caught up.
pub fn preferred_leaders(image: &Image) -> Vec<Command> {
    changes(image, |info| {
        let preferred = *info.replicas.first()?;
        let eligible = info.isr.contains(&preferred)
            && image.brokers.get(&preferred).is_some_and(|b| !b.fenced);
        (eligible && info.leader != preferred).then(|| PartitionInfo {
            leader: preferred,
            ..info.clone()
        })
    })
}

/// A partition leader's request to change its ISR (Kafka's AlterPartition):
/// accepted only from the current leader at the current epochs, keeping the
/// leader in, adding only live replicas.
pub fn alter_isr(
    image: &Image,
    topic: &str,
    partition: i32,
    requester: BrokerId,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: Vec<BrokerId>,
) -> Result<Command, i16> {
    let info = image
        .partition(topic, partition)
        .ok_or(ResponseError::UnknownTopicOrPartition.code())?;
    if info.leader != requester || info.leader_epoch != leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch.code());
    }
    if info.partition_epoch != partition_epoch {
        return Err(ResponseError::InvalidUpdateVersion.code());
    }
    let live = |r: &BrokerId| image.brokers.get(r).is_some_and(|b| !b.fenced);
    let valid = isr.contains(&requester)
        && isr.iter().all(|r| info.replicas.contains(r))
        && isr.iter().all(|r| info.isr.contains(r) || live(r));
    if !valid {
        return Err(ResponseError::IneligibleReplica.code());
    }
    let mut isr = isr;
    isr.sort_unstable();
    isr.dedup();
    Ok(Command::ChangePartition {
        topic: topic.to_string(),
        partition,
        info: PartitionInfo {
            isr,
            partition_epoch: info.partition_epoch + 1,
            ..info.clone()
        },
    })
}

/// When the controller last heard from each broker (its heartbeats).
#[derive(Debug, Default, Clone)]
pub struct Liveness {
    last_seen: BTreeMap<BrokerId, u64>,
}

impl Liveness {
    /// A heartbeat from `broker` at `now`.
    pub fn heard(&mut self, broker: BrokerId, now: u64) {
        self.last_seen.insert(broker, now);
    }

    /// Live brokers (per `image`) not heard from for `timeout_ms`. A broker
    /// never heard from by this controller counts from `since` (when it
    /// took office), so a new controller gives everyone a full timeout.
    pub fn expired(&self, image: &Image, now: u64, since: u64, timeout_ms: u64) -> Vec<BrokerId> {
        image
            .live_brokers()
            .into_iter()
            .filter(|b| {
                let seen = self.last_seen.get(b).copied().unwrap_or(since).max(since);
                now.saturating_sub(seen) > timeout_ms
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(brokers: &[BrokerId], replicas: &[BrokerId]) -> Image {
        let mut image = Image::default();
        for &id in brokers {
            image.apply(
                1,
                &Command::RegisterBroker {
                    id,
                    host: "h".into(),
                    port: 9000 + id,
                },
            );
        }
        let rf = i32::try_from(replicas.len()).unwrap();
        let partitions = place_replicas(replicas, 1, rf, 0).unwrap();
        image.apply(
            2,
            &Command::CreateTopic {
                name: "t".into(),
                configs: BTreeMap::new(),
                partitions,
            },
        );
        image
    }

    fn apply_all(image: &mut Image, commands: &[Command]) {
        for c in commands {
            image.apply(image.applied + 1, c);
        }
    }

    #[test]
    fn placement_spreads_leaders_and_refuses_too_few_brokers() {
        let placed = place_replicas(&[1, 2, 3], 3, 2, 0).unwrap();
        let leaders: Vec<_> = placed.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, vec![1, 2, 3]);
        assert_eq!(placed[2].replicas, vec![3, 1]);
        assert!(placed.iter().all(|p| p.isr == p.replicas));
        let err = place_replicas(&[1, 2], 1, 3, 0).unwrap_err();
        assert_eq!(err.0, ResponseError::InvalidReplicationFactor.code());
    }

    #[test]
    fn fencing_the_leader_elects_an_isr_member_with_a_new_epoch() {
        let mut image = image(&[1, 2, 3], &[1, 2, 3]);
        let commands = fence(&image, 1);
        apply_all(&mut image, &commands);
        let p = image.partition("t", 0).unwrap();
        assert_eq!(p.leader, 2);
        assert_eq!(p.isr, vec![2, 3]);
        assert_eq!((p.leader_epoch, p.partition_epoch), (1, 1));
        assert!(image.brokers[&1].fenced);
        // Fencing a follower only shrinks the ISR.
        let commands = fence(&image, 3);
        apply_all(&mut image, &commands);
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch), (2, 1));
        assert_eq!(p.isr, vec![2]);
    }

    #[test]
    fn the_last_isr_member_stays_and_leads_again_when_it_returns() {
        let mut image = image(&[1, 2, 3], &[1, 2, 3]);
        for b in [2, 3, 1] {
            let commands = fence(&image, b);
            apply_all(&mut image, &commands);
        }
        let p = image.partition("t", 0).unwrap().clone();
        assert_eq!(p.leader, NO_LEADER, "no clean leader is left");
        assert_eq!(p.isr, vec![1]);
        // An out-of-sync replica returning does not lead (clean election only).
        let commands = register(&image, 2, "h".into(), 9002);
        apply_all(&mut image, &commands);
        assert_eq!(image.partition("t", 0).unwrap().leader, NO_LEADER);
        let commands = register(&image, 1, "h".into(), 9001);
        apply_all(&mut image, &commands);
        let back = image.partition("t", 0).unwrap();
        assert_eq!(back.leader, 1);
        assert_eq!(back.leader_epoch, p.leader_epoch + 1);
    }

    #[test]
    fn leadership_returns_to_the_preferred_replica_once_it_is_back_in_sync() {
        let mut image = image(&[1, 2, 3], &[1, 2, 3]);
        assert!(preferred_leaders(&image).is_empty(), "already preferred");
        let commands = fence(&image, 1);
        apply_all(&mut image, &commands);
        assert!(preferred_leaders(&image).is_empty(), "1 is fenced");
        let commands = register(&image, 1, "h".into(), 9001);
        apply_all(&mut image, &commands);
        assert!(preferred_leaders(&image).is_empty(), "1 is not in sync yet");
        let Ok(expand) = alter_isr(&image, "t", 0, 2, 1, 1, vec![1, 2, 3]) else {
            panic!("the leader adds 1 back")
        };
        apply_all(&mut image, &[expand]);
        let commands = preferred_leaders(&image);
        apply_all(&mut image, &commands);
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch), (1, 2));
        assert_eq!(p.isr, vec![1, 2, 3]);
    }

    #[test]
    fn isr_changes_come_only_from_the_current_leader_at_current_epochs() {
        let image = image(&[1, 2, 3], &[1, 2, 3]);
        assert_eq!(
            alter_isr(&image, "t", 0, 2, 0, 0, vec![2]).unwrap_err(),
            ResponseError::FencedLeaderEpoch.code()
        );
        assert_eq!(
            alter_isr(&image, "t", 0, 1, 0, 5, vec![1]).unwrap_err(),
            ResponseError::InvalidUpdateVersion.code()
        );
        assert_eq!(
            alter_isr(&image, "t", 0, 1, 0, 0, vec![2, 3]).unwrap_err(),
            ResponseError::IneligibleReplica.code(),
            "the leader stays in"
        );
        let Command::ChangePartition { info, .. } =
            alter_isr(&image, "t", 0, 1, 0, 0, vec![3, 1]).unwrap()
        else {
            panic!("a partition change")
        };
        assert_eq!(info.isr, vec![1, 3]);
        assert_eq!((info.leader, info.partition_epoch), (1, 1));
    }

    #[test]
    fn liveness_counts_from_the_controllers_start() {
        let image = image(&[1, 2], &[1, 2]);
        let mut live = Liveness::default();
        live.heard(1, 1_000);
        assert_eq!(
            live.expired(&image, 1_500, 0, 1_000),
            vec![2],
            "never heard of"
        );
        assert_eq!(live.expired(&image, 2_500, 0, 1_000), vec![1, 2]);
        assert_eq!(
            live.expired(&image, 2_500, 2_000, 1_000),
            Vec::<BrokerId>::new()
        );
    }
}
