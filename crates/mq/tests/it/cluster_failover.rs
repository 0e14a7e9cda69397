//! The cluster's Done-when test (issue 11): three brokers as real processes
//! on 127.0.0.1, a topic with replication factor 3, `acks=all` and
//! `min.insync.replicas=2`; the partition leader is killed with SIGKILL
//! during a produce load. No acknowledged record may be lost, a consumer
//! continues after the failover, offsets stay monotonic. Then the old
//! leader comes back (cutting any divergent tail), rejoins the ISR, and
//! after the *new* leader is killed too every acknowledged record is still
//! there, at the offset it was acknowledged at.
//!
//! Each broker is this test binary re-executed to run `cluster_broker_child`
//! (which does nothing unless `MQ_CLUSTER_CHILD_ID` is set); the children are
//! killed when the test ends, also on failure.
#![allow(clippy::unwrap_used)]

use crate::cluster_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_support::{Cluster, TOPIC, create_topic, raw_produce};

use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;

fn record(value: String) -> Record {
    Record {
        key: None,
        value: Some(value.into_bytes()),
        headers: BTreeMap::new(),
        timestamp: chrono::DateTime::from_timestamp_millis(i64::try_from(clock::now_ms()).unwrap())
            .unwrap(),
    }
}

async fn try_partition_client(bootstrap: Vec<String>) -> Option<PartitionClient> {
    let client = ClientBuilder::new(bootstrap).build().await.ok()?;
    client
        .partition_client(TOPIC, 0, UnknownTopicHandling::Retry)
        .await
        .ok()
}

/// After a failed call: a short pause, then a fresh client (new metadata)
/// if one can be had quickly.
async fn reconnect(client: &mut PartitionClient, bootstrap: &[String]) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = tokio::time::timeout(
        Duration::from_secs(3),
        try_partition_client(bootstrap.to_vec()),
    );
    if let Ok(Some(fresh)) = fresh.await {
        *client = fresh;
    }
}

/// A partition client, retried (bounded) while the cluster settles.
async fn partition_client(bootstrap: Vec<String>) -> PartitionClient {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(3),
            try_partition_client(bootstrap.clone()),
        );
        if let Ok(Some(client)) = attempt.await {
            return client;
        }
        assert!(Instant::now() < deadline, "no partition client within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Acknowledged (value → offset), shared with the producer task.
type Acked = Arc<Mutex<BTreeMap<String, i64>>>;

/// Produces `p-N` records one at a time (acks=all) until `stop`, retrying
/// each until it is acknowledged; records every acknowledgement.
async fn produce_load(
    bootstrap: Vec<String>,
    acked: Acked,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut client = partition_client(bootstrap.clone()).await;
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        let value = format!("p-{n}");
        let sent = tokio::time::timeout(
            Duration::from_secs(3),
            client.produce(vec![record(value.clone())], Compression::NoCompression),
        )
        .await;
        match sent {
            Ok(Ok(offsets)) => {
                acked.lock().unwrap().insert(value, offsets[0]);
                n += 1;
            }
            // Not acknowledged: send the same value again (at-least-once).
            _ => {
                reconnect(&mut client, &bootstrap).await;
            }
        }
    }
}

/// Reads the partition from `from` until its high watermark; checks offsets increase.
async fn read_all(bootstrap: Vec<String>) -> Vec<(i64, String)> {
    let client = partition_client(bootstrap).await;
    let mut out: Vec<(i64, String)> = Vec::new();
    let mut offset = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fetched = tokio::time::timeout(
            Duration::from_secs(5),
            client.fetch_records(offset, 1..1_000_000, 200),
        )
        .await;
        let Ok(Ok((records, high_watermark))) = fetched else {
            assert!(Instant::now() < deadline, "reading the partition timed out");
            continue;
        };
        for r in records {
            if r.offset < offset {
                continue; // whole batches come back: skip what precedes our offset
            }
            if let Some(&(last, _)) = out.last() {
                assert!(
                    r.offset > last,
                    "offsets increase: {} after {last}",
                    r.offset
                );
            }
            out.push((
                r.offset,
                String::from_utf8(r.record.value.unwrap()).unwrap(),
            ));
            offset = r.offset + 1;
        }
        if offset >= high_watermark {
            return out;
        }
    }
}

fn assert_all_acked_present(acked: &BTreeMap<String, i64>, log: &[(i64, String)]) {
    let by_offset: BTreeMap<i64, &str> = log.iter().map(|(o, v)| (*o, v.as_str())).collect();
    for (value, offset) in acked {
        assert_eq!(
            by_offset.get(offset).copied(),
            Some(value.as_str()),
            "acknowledged {value} at offset {offset} is lost or moved"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_lose_no_acknowledged_record_when_the_leader_is_killed() {
    let started = Instant::now();
    let mut cluster = Cluster::start();
    // A topic of replication factor 3 (the brokers' default) and
    // min.insync.replicas=2, and a strict one that needs all three.
    create_topic(&cluster, TOPIC, "2").await;
    create_topic(&cluster, "strict", "3").await;
    let leader = cluster
        .wait_for(None, 3, "a leader with 3 in-sync replicas")
        .await;
    // Metadata names every broker; a follower refuses writes so clients go to the leader.
    let mut client = mq::client::Client::connect(&cluster.bootstrap(None)[0])
        .await
        .unwrap();
    assert_eq!(client.metadata(None).await.unwrap().brokers.len(), 3);
    let follower = [1, 2, 3].into_iter().find(|b| *b != leader).unwrap();
    assert_eq!(
        raw_produce(&cluster, follower, TOPIC, -1).await,
        kafka_protocol::ResponseError::NotLeaderOrFollower.code()
    );

    // Produce and consume while the leader is killed.
    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = tokio::spawn(produce_load(
        cluster.bootstrap(None),
        acked.clone(),
        stop.clone(),
    ));
    let consumed: Arc<Mutex<Vec<i64>>> = Arc::default();
    let consumer = {
        let (bootstrap, consumed, stop) = (cluster.bootstrap(None), consumed.clone(), stop.clone());
        tokio::spawn(async move {
            let client = partition_client(bootstrap.clone()).await;
            let mut client = client;
            let mut offset = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let fetched = tokio::time::timeout(
                    Duration::from_secs(3),
                    client.fetch_records(offset, 1..1_000_000, 200),
                )
                .await;
                match fetched {
                    Ok(Ok((records, _))) => {
                        let mut seen = consumed.lock().unwrap();
                        let from = offset;
                        for r in records.into_iter().filter(|r| r.offset >= from) {
                            if let Some(last) = seen.last() {
                                assert!(r.offset > *last, "consumer offsets increase");
                            }
                            seen.push(r.offset);
                            offset = r.offset + 1;
                        }
                    }
                    _ => {
                        reconnect(&mut client, &bootstrap).await;
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let acked_before = acked.lock().unwrap().len();
    assert!(acked_before > 0, "records are acknowledged before the kill");
    cluster.kill(leader);
    let consumed_at_kill = consumed.lock().unwrap().len();
    let second = cluster
        .wait_for(Some(leader), 2, "a new leader from the ISR")
        .await;
    // Keep the load on after the failover until more records are acknowledged and consumed.
    let deadline = Instant::now() + Duration::from_secs(15);
    while acked.lock().unwrap().len() < acked_before + 20
        || consumed.lock().unwrap().len() < consumed_at_kill + 20
    {
        assert!(
            Instant::now() < deadline,
            "the load continues after the failover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    producer.await.unwrap();
    consumer.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    let log = read_all(cluster.bootstrap(Some(leader))).await;
    assert_all_acked_present(&acked, &log);

    // With one broker fenced, the strict topic (min.insync.replicas=3)
    // refuses acks=all but still takes acks=1.
    let strict_leader = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut client = mq::client::Client::connect(&cluster.bootstrap(Some(leader))[0])
                .await
                .unwrap();
            let meta = client.metadata(Some(&["strict"])).await.unwrap();
            let p = &meta.topics[0].partitions[0];
            if p.isr_nodes.len() == 2 && p.leader_id.0 != leader && p.leader_id.0 >= 0 {
                break p.leader_id.0;
            }
            assert!(Instant::now() < deadline, "the strict topic's ISR shrinks");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(
        raw_produce(&cluster, strict_leader, "strict", -1).await,
        kafka_protocol::ResponseError::NotEnoughReplicas.code()
    );
    assert_eq!(raw_produce(&cluster, strict_leader, "strict", 1).await, 0);

    // The old leader returns: it cuts any divergent tail, catches up and rejoins the ISR.
    cluster.spawn(leader);
    cluster
        .wait_for(None, 3, "the old leader back in the ISR")
        .await;
    // Now kill the second leader: a third election, and still nothing acknowledged is lost.
    cluster.kill(second);
    cluster.wait_for(Some(second), 2, "a third leader").await;
    let log = read_all(cluster.bootstrap(Some(second))).await;
    assert_all_acked_present(&acked, &log);
    eprintln!(
        "leaders {leader} -> {second} -> third; {} acknowledged ({acked_before} before the kill), {} consumed, log of {} records, {:?}",
        acked.len(),
        consumed.lock().unwrap().len(),
        log.len(),
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "bounded wall time: {:?}",
        started.elapsed()
    );
}

/// A follower that stops fetching (SIGSTOP, while the controller's session
/// timeout is long enough not to fence it) leaves the ISR after
/// `replica_lag_time_max_ms`, by the leader's own decision; `acks=all`
/// writes go on with the other two; once resumed (SIGCONT) it catches up
/// and rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_follower_leaves_the_isr_and_rejoins_when_caught_up() {
    let mut cluster = Cluster::start_with((60_000, 1_000));
    create_topic(&cluster, TOPIC, "2").await;
    let leader = cluster.wait_for(None, 3, "3 in-sync replicas").await;
    let follower = [1, 2, 3].into_iter().find(|b| *b != leader).unwrap();
    cluster.signal(follower, "STOP");
    let shrunk = async {
        loop {
            if let Some((l, isr)) = cluster.partition_state(Some(follower)).await
                && l == leader
                && isr.len() == 2
            {
                assert!(
                    !isr.contains(&follower),
                    "the stalled follower left: {isr:?}"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), shrunk)
        .await
        .expect("the ISR shrinks");
    // acks=all with min.insync.replicas=2 still works while it is out.
    for _ in 0..5 {
        assert_eq!(raw_produce(&cluster, leader, TOPIC, -1).await, 0);
    }
    cluster.signal(follower, "CONT");
    cluster
        .wait_for(None, 3, "the follower back in the ISR")
        .await;
    cluster.kill(follower);
}
