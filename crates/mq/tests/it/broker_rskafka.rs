//! Interop with rskafka (a pure-Rust Kafka client from crates.io): create a
//! topic, produce, fetch, list offsets, against our broker.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is the test failing

use crate::broker_support;

use std::collections::BTreeMap;
use std::time::Duration;

use broker_support::TestBroker;
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

const WAIT: Duration = Duration::from_secs(30);

async fn client(broker: &TestBroker) -> Client {
    tokio::time::timeout(WAIT, ClientBuilder::new(vec![broker.bootstrap()]).build())
        .await
        .expect("connects in time")
        .expect("connects")
}

/// Now (records older than the 7-day retention would be deleted at start).
fn now() -> chrono::DateTime<chrono::Utc> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    chrono::DateTime::from_timestamp_millis(ms as i64).unwrap()
}

fn record(value: &str) -> Record {
    Record {
        key: Some(b"k".to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: BTreeMap::new(),
        timestamp: now(),
    }
}

#[tokio::test]
async fn create_produce_fetch_and_list_offsets() {
    let broker = TestBroker::start();
    let client = client(&broker).await;
    let controller = client.controller_client().unwrap();
    tokio::time::timeout(WAIT, controller.create_topic("orders", 2, 1, 5_000))
        .await
        .unwrap()
        .unwrap();
    let topics = client.list_topics().await.unwrap();
    let orders = topics.iter().find(|t| t.name == "orders").expect("listed");
    assert_eq!(orders.partitions.len(), 2);

    let partition = client
        .partition_client("orders", 1, UnknownTopicHandling::Error)
        .await
        .unwrap();
    let first = partition
        .produce(vec![record("a"), record("b")], Compression::NoCompression)
        .await
        .unwrap();
    assert_eq!(first, vec![0, 1]);
    let second = partition
        .produce(vec![record("c")], Compression::NoCompression)
        .await
        .unwrap();
    assert_eq!(second, vec![2]);

    let (records, high_watermark) = partition
        .fetch_records(0, 1..1_000_000, 1_000)
        .await
        .unwrap();
    assert_eq!(high_watermark, 3);
    let values: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.record.value.clone().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        values,
        vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]
    );

    // Whole batches come back: asking from offset 1 returns the batch holding 0 and 1.
    let (records, _) = partition
        .fetch_records(1, 1..1_000_000, 1_000)
        .await
        .unwrap();
    assert!(records.iter().any(|r| r.offset == 2));

    assert_eq!(partition.get_offset(OffsetAt::Earliest).await.unwrap(), 0);
    assert_eq!(partition.get_offset(OffsetAt::Latest).await.unwrap(), 3);
    let other = client
        .partition_client("orders", 0, UnknownTopicHandling::Error)
        .await
        .unwrap();
    assert_eq!(
        other.get_offset(OffsetAt::Latest).await.unwrap(),
        0,
        "partition 0 is untouched"
    );

    let metrics = broker.metrics_text();
    assert!(
        metrics.contains("mq_requests_total{api=\"Produce\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mq_request_latency_seconds_count{api=\"Fetch\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains("mq_bytes_in_total 0\n"), "{metrics}");
}

#[tokio::test]
async fn a_fetch_at_the_end_waits_for_the_next_produce() {
    let broker = TestBroker::start();
    let client = client(&broker).await;
    client
        .controller_client()
        .unwrap()
        .create_topic("waits", 1, 1, 5_000)
        .await
        .unwrap();
    let partition = client
        .partition_client("waits", 0, UnknownTopicHandling::Error)
        .await
        .unwrap();
    // Long poll for up to 20 s; the produce below must wake it long before.
    let fetch = tokio::spawn(async move { partition.fetch_records(0, 1..1_000_000, 20_000).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let producer = client
        .partition_client("waits", 0, UnknownTopicHandling::Error)
        .await
        .unwrap();
    producer
        .produce(vec![record("wake")], Compression::NoCompression)
        .await
        .unwrap();
    let (records, high_watermark) = tokio::time::timeout(WAIT, fetch)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(high_watermark, 1);
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn errors_are_kafka_errors() {
    let broker = TestBroker::start_with(|c| c.auto_create_topics = false);
    let client = client(&broker).await;
    let controller = client.controller_client().unwrap();
    controller.create_topic("dup", 1, 1, 5_000).await.unwrap();
    let again = controller
        .create_topic("dup", 1, 1, 5_000)
        .await
        .unwrap_err();
    assert!(again.to_string().contains("TopicAlreadyExists"), "{again}");
    let bad_name = controller
        .create_topic("no/slash", 1, 1, 5_000)
        .await
        .unwrap_err();
    assert!(bad_name.to_string().contains("InvalidTopic"), "{bad_name}");
    let replicated = controller
        .create_topic("r3", 1, 3, 5_000)
        .await
        .unwrap_err();
    assert!(
        replicated.to_string().contains("InvalidReplicationFactor"),
        "{replicated}"
    );
    let partition = client
        .partition_client("dup", 0, UnknownTopicHandling::Error)
        .await
        .unwrap();
    let out_of_range = partition
        .fetch_records(5, 1..1_000_000, 100)
        .await
        .unwrap_err();
    assert!(
        out_of_range.to_string().contains("OffsetOutOfRange"),
        "{out_of_range}"
    );
    let missing = client
        .partition_client("absent", 0, UnknownTopicHandling::Error)
        .await;
    assert!(missing.is_err(), "no auto-creation when it is off");
}

#[tokio::test]
async fn topics_and_data_survive_a_restart() {
    let broker = TestBroker::start();
    let client = client(&broker).await;
    client
        .controller_client()
        .unwrap()
        .create_topic("kept", 3, 1, 5_000)
        .await
        .unwrap();
    let partition = client
        .partition_client("kept", 2, UnknownTopicHandling::Error)
        .await
        .unwrap();
    partition
        .produce(vec![record("x"), record("y")], Compression::NoCompression)
        .await
        .unwrap();
    drop(partition);
    drop(client);
    let dir = broker.stop();
    let config = mq::Config {
        data_dir: dir.path().to_path_buf(),
        ..mq::Config::default()
    };
    let broker = TestBroker::start_in(dir, config);
    let client = self::client(&broker).await;
    let topics = client.list_topics().await.unwrap();
    assert_eq!(
        topics
            .iter()
            .find(|t| t.name == "kept")
            .unwrap()
            .partitions
            .len(),
        3
    );
    let partition = client
        .partition_client("kept", 2, UnknownTopicHandling::Error)
        .await
        .unwrap();
    assert_eq!(partition.get_offset(OffsetAt::Latest).await.unwrap(), 2);
    let (records, _) = partition.fetch_records(0, 1..1_000_000, 100).await.unwrap();
    assert_eq!(records.len(), 2);
}
