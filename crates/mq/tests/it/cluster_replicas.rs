//! Replication between two partition replicas without sockets: the
//! leader's side of a fetch (`serve_replica_blocking`) and the follower's
//! (`append_fetched_blocking`, `truncate_diverging_blocking`) called
//! directly, as `cluster::replication` calls them over the network.
//!
//! Covers: the high watermark moves only when the follower's fetch shows it
//! holds the data, consumers read only below it, a follower outside the
//! leader's epoch is refused, and a returning old leader cuts the tail it
//! wrote but never replicated (leader epochs), ending with the same log.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use mq::cluster::metadata::PartitionInfo;
use mq::log::records::{NewRecord, encode_batch};
use mq::log::{Compression, LogConfig, PartitionLog};
use mq::partition::{Appending, Partition};

fn replica(dir: &std::path::Path) -> Partition {
    Partition::replicated(0, PartitionLog::open(dir, LogConfig::default()).unwrap()).unwrap()
}

fn info(leader: i32, leader_epoch: i32, isr: Vec<i32>) -> PartitionInfo {
    PartitionInfo {
        replicas: vec![1, 2],
        isr,
        leader,
        leader_epoch,
        partition_epoch: leader_epoch,
    }
}

fn produce(p: &Partition, value: &str) -> i64 {
    let record = NewRecord {
        key: None,
        value: Some(value.as_bytes()),
        timestamp_ms: 1,
        headers: &[],
    };
    let batch = encode_batch(&[record], Compression::None).unwrap();
    match p.append_blocking(&batch, 1).unwrap() {
        Appending::Appended(a) => a.base_offset,
        other => panic!("not appended: {other:?}"),
    }
}

/// One follower fetch round: what the leader answers, applied by the follower.
fn sync(leader: &Partition, follower: &Partition, follower_id: i32, epoch: i32) {
    let (offset, last_epoch) = follower.follower_position();
    let (batches, diverging) = leader
        .serve_replica_blocking(follower_id, epoch, offset, last_epoch, 1 << 20, 0)
        .unwrap();
    match diverging {
        Some(point) => follower.truncate_diverging_blocking(point).unwrap(),
        None => follower.append_fetched_blocking(&batches).unwrap(),
    }
    follower.set_follower_high_watermark(leader.high_watermark());
}

fn values(p: &Partition) -> Vec<Bytes> {
    p.read_blocking(0, 1 << 20).unwrap()
}

#[test]
fn the_high_watermark_waits_for_the_isr_and_an_old_leaders_tail_is_cut() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (one, two) = (replica(d1.path()), replica(d2.path()));
    assert_eq!(
        produce_refused(&one),
        kafka_protocol::ResponseError::NotLeaderOrFollower.code(),
        "a replica leads only once the metadata says so"
    );
    one.become_leader_blocking(1, &info(1, 0, vec![1, 2]), 0)
        .unwrap();
    two.become_follower(Some((1, 0)));

    produce(&one, "a");
    assert_eq!(one.high_watermark(), 0, "the follower does not hold it yet");
    assert!(one.read_committed_blocking(0, 1 << 20).unwrap().is_empty());
    sync(&one, &two, 2, 0); // copies "a"
    assert_eq!(one.high_watermark(), 0, "known only at the next fetch");
    sync(&one, &two, 2, 0); // reports holding it
    assert_eq!(one.high_watermark(), 1);
    assert_eq!(one.read_committed_blocking(0, 1 << 20).unwrap().len(), 1);
    sync(&one, &two, 2, 0);
    assert_eq!(
        two.high_watermark(),
        1,
        "the follower learns the high watermark"
    );

    // A fetch in a stale epoch is refused.
    assert_eq!(
        one.serve_replica_blocking(2, -5, 1, 0, 1 << 20, 0)
            .unwrap_err(),
        kafka_protocol::ResponseError::FencedLeaderEpoch.code()
    );

    // Broker 1 writes "b" and "c" that never reach broker 2, then is cut off:
    // broker 2 leads in epoch 1 and takes "d".
    produce(&one, "b");
    produce(&one, "c");
    two.become_leader_blocking(2, &info(2, 1, vec![2]), 0)
        .unwrap();
    one.become_follower(Some((2, 1)));
    assert_eq!(produce(&two, "d"), 1);
    assert_eq!(two.high_watermark(), 2, "alone in its ISR");

    // Broker 1 returns as a follower: its tail "b","c" (epoch 0, offsets
    // 1..3) diverges from the new leader's "d" (epoch 1 from offset 1).
    sync(&two, &one, 1, 1);
    assert_eq!(
        one.end_offset(),
        1,
        "cut back to where epoch 0 ends on the leader"
    );
    sync(&two, &one, 1, 1);
    assert_eq!(values(&one), values(&two), "the same log as the leader");
    assert_eq!(one.follower_position(), (2, 1));
}

fn produce_refused(p: &Partition) -> i16 {
    let record = NewRecord {
        key: None,
        value: Some(b"x"),
        timestamp_ms: 1,
        headers: &[],
    };
    let batch = encode_batch(&[record], Compression::None).unwrap();
    match p.append_blocking(&batch, 1).unwrap() {
        Appending::Refused(code) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
