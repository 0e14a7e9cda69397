//! Committed offsets survive the death of the group's coordinator (issue:
//! offsets in `__consumer_offsets`): three brokers as real processes, a
//! group commits, its coordinator (the leader of the group's offsets
//! partition) is killed with SIGKILL, and a new consumer of the group,
//! coordinated by the broker elected in its place, resumes exactly at the
//! committed offset: nothing re-read, nothing skipped.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use mq::client::Client;
use mq::client::consumer::{ConsumeOptions, Consumer, Message};
use mq::client::producer::{Outgoing, Producer};

use crate::cluster_support::{Cluster, TOPIC, create_topic};

const GROUP: &str = "resumers";
/// Records produced, and how many the first consumer commits.
const RECORDS: i64 = 20;
const COMMITTED: i64 = 12;

/// Retries `what` (a fresh client each time, from the brokers still up)
/// until it works or 30 s pass: the cluster may still be electing leaders
/// or loading offsets.
async fn retry<T, F, Fut>(cluster: &Cluster, except: Option<i32>, what: &str, mut f: F) -> T
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bootstrap = cluster.bootstrap(except)[0].clone();
        let attempt = async {
            let client = Client::connect(&bootstrap).await?;
            f(client).await
        };
        let error = match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok(value)) => return value,
            Ok(Err(err)) => err.to_string(),
            Err(_) => "timed out".to_string(),
        };
        assert!(Instant::now() < deadline, "{what}: {error}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn options() -> ConsumeOptions {
    ConsumeOptions {
        topics: vec![TOPIC.to_string()],
        group: Some(GROUP.to_string()),
        from_beginning: true,
        session_timeout_ms: 6_000,
        ..ConsumeOptions::default()
    }
}

/// Polls `consumer` until it returned `count` messages (bounded).
async fn poll_n(consumer: &mut Consumer, client: &mut Client, count: usize) -> Vec<Message> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < count {
        assert!(Instant::now() < deadline, "only {} messages", got.len());
        got.extend(consumer.poll(client).await.unwrap());
    }
    got
}

/// The group's committed offset in `TOPIC`-0 as its coordinator answers
/// OffsetFetch, and that coordinator; retried while the answer is
/// COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR or not available.
async fn committed_offset(cluster: &Cluster, except: Option<i32>) -> (i32, i64) {
    retry(cluster, except, "OffsetFetch", |mut client| async move {
        let coordinator = client.coordinator(GROUP).await?;
        let wanted = [(TOPIC.to_string(), vec![0])].into_iter().collect();
        let request = mq::client::admin::offset_fetch_request(GROUP, &wanted);
        let response = client.send_to(coordinator, &request).await?;
        mq::client::check_code(response.error_code, "OffsetFetch")?;
        let partition = &response.topics[0].partitions[0];
        mq::client::check_code(partition.error_code, "OffsetFetch partition")?;
        Ok((coordinator, partition.committed_offset))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_kill_9_of_the_coordinator() {
    let started = Instant::now();
    let mut cluster = Cluster::start();
    create_topic(&cluster, TOPIC, "2").await;
    cluster
        .wait_for(None, 3, "a leader with 3 in-sync replicas")
        .await;
    retry(&cluster, None, "producing", |mut client| async move {
        let mut producer = Producer::new(&mut client, TOPIC, -1).await?;
        let records: Vec<Outgoing> = (0..RECORDS)
            .map(|i| Outgoing::new(format!("r-{i}")))
            .collect();
        producer.send(&mut client, &records, Some(0)).await?;
        Ok(())
    })
    .await;

    // The first member reads everything, commits after the 12th record, leaves.
    retry(
        &cluster,
        None,
        "the first consumer",
        |mut client| async move {
            let mut consumer = Consumer::start(&mut client, options()).await?;
            let got = poll_n(&mut consumer, &mut client, RECORDS as usize).await;
            assert_eq!(got[0].offset, 0, "a new group starts at the beginning");
            consumer.consumed(&got[COMMITTED as usize - 1]);
            consumer.commit(&mut client).await?;
            consumer.leave(&mut client).await
        },
    )
    .await;
    let (coordinator, offset) = committed_offset(&cluster, None).await;
    assert_eq!(offset, COMMITTED);

    // kill -9 the coordinator: the leader of the group's offsets partition.
    cluster.kill(coordinator);
    let (successor, offset) = committed_offset(&cluster, Some(coordinator)).await;
    assert_ne!(
        successor, coordinator,
        "another broker coordinates the group"
    );
    assert_eq!(offset, COMMITTED, "the commit survived on {successor}");

    // A new member of the group resumes at the committed offset.
    let resumed = retry(
        &cluster,
        Some(coordinator),
        "the second consumer",
        |mut client| async move {
            let mut consumer = Consumer::start(&mut client, options()).await?;
            let got = poll_n(&mut consumer, &mut client, (RECORDS - COMMITTED) as usize).await;
            consumer.leave(&mut client).await?;
            Ok(got)
        },
    )
    .await;
    let offsets: Vec<i64> = resumed.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        (COMMITTED..RECORDS).collect::<Vec<_>>(),
        "no re-read, no skip"
    );
    assert_eq!(resumed[0].value.as_deref(), Some(&b"r-12"[..]));
    eprintln!(
        "coordinator {coordinator} killed, {successor} resumed the group at {COMMITTED}, {:?}",
        started.elapsed()
    );
}

/// Until the offsets topic exists and has leaders, FindCoordinator says
/// COORDINATOR_NOT_AVAILABLE or names a broker; a broker that does not
/// coordinate a group refuses its commits with NOT_COORDINATOR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_offsets_partition_leader_takes_commits() {
    let cluster = Cluster::start();
    create_topic(&cluster, TOPIC, "1").await;
    let coordinator = retry(&cluster, None, "FindCoordinator", |mut client| async move {
        client.coordinator(GROUP).await
    })
    .await;
    let other = [1, 2, 3].into_iter().find(|b| *b != coordinator).unwrap();
    let mut client = Client::connect(&cluster.bootstrap(None)[0]).await.unwrap();
    let request =
        mq::client::consumer::requests::commit(GROUP, -1, "", &[((TOPIC.to_string(), 0), 3)]);
    // Each broker answers once it has applied the offsets topic's metadata
    // (COORDINATOR_NOT_AVAILABLE before) and, for the leader, loaded its
    // partition (COORDINATOR_LOAD_IN_PROGRESS before).
    let mut answer = async |to: i32, want: i16| {
        let waiting = [
            ResponseError::CoordinatorNotAvailable.code(),
            ResponseError::CoordinatorLoadInProgress.code(),
        ];
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = client.send_to(to, &request).await.unwrap();
            let code = response.topics[0].partitions[0].error_code;
            if code == want {
                return;
            }
            assert!(waiting.contains(&code), "broker {to} answered {code}");
            assert!(
                Instant::now() < deadline,
                "broker {to} never answered {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    answer(coordinator, 0).await;
    answer(other, ResponseError::NotCoordinator.code()).await;
    let (_, offset) = committed_offset(&cluster, None).await;
    assert_eq!(offset, 3);
    let meta = client.metadata(None).await.unwrap();
    let internal = meta
        .topics
        .iter()
        .find(|t| {
            t.name
                .as_ref()
                .is_some_and(|n| n.0.as_str() == "__consumer_offsets")
        })
        .expect("the offsets topic is listed");
    assert!(internal.is_internal);
}
