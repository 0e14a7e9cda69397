//! Key routing against a real Kafka client: kafka-python (PyPI), whose
//! default partitioner is Kafka's murmur2, produces keyed records to our
//! broker; `mqclient` must place every one of those keys in the partition
//! kafka-python chose, so producers of both kinds keep a key's records
//! together (and in order) in one partition.

use std::collections::BTreeMap;
use std::process::Command;

use mqclient::{ConsumerConfig, Record};

use crate::harness::{Harness, Kind, drain};

const PRODUCE: &str = r#"
import sys
from kafka import KafkaProducer
producer = KafkaProducer(bootstrap_servers=sys.argv[1], acks="all")
for key in sys.argv[3:]:
    sent = producer.send(sys.argv[2], key=key.encode(), value=key.encode()).get(timeout=30)
    print(key, sent.partition)
producer.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_where_kafka_python_puts_them() {
    let h = Harness::start(Kind::Kafka).await;
    let client = h.client();
    client.ensure_topic("routed", 7).await.unwrap();
    let keys: Vec<String> = (0..50)
        .map(|i| format!("user-{i}"))
        .chain(["", "ä", "a-little-bit-long-string"].map(String::from))
        .collect();
    let bootstrap = h.bootstrap().unwrap();
    let output = tokio::task::spawn_blocking({
        let keys = keys.clone();
        move || {
            Command::new("python3")
                .args(["-c", PRODUCE, &bootstrap, "routed"])
                .args(&keys)
                .output()
                .expect("python3 runs (kafka-python comes from pip)")
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "kafka-python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: BTreeMap<String, i32> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, partition) = line.rsplit_once(' ').unwrap();
            (key.to_string(), partition.parse().unwrap())
        })
        .collect();
    assert_eq!(theirs.len(), keys.len());
    let spread: std::collections::BTreeSet<_> = theirs.values().collect();
    assert!(
        spread.len() > 3,
        "the keys use several partitions: {spread:?}"
    );
    for key in &keys {
        let ours = client
            .produce("routed", Record::new("ours").key(key.clone()))
            .await
            .unwrap();
        assert_eq!(ours.partition, theirs[key], "key {key:?}");
    }
    // And our consumer finds kafka-python's records where it said.
    let mut reader = client
        .subscribe(ConsumerConfig::no_group(&["routed"]))
        .await
        .unwrap();
    let got = drain(reader.as_mut(), 2 * keys.len()).await;
    let mut seen = 0;
    for m in got
        .iter()
        .filter(|m| m.value.as_deref() != Some(&b"ours"[..]))
    {
        let key = String::from_utf8(m.key.clone().unwrap()).unwrap();
        assert_eq!(m.partition, theirs[&key]);
        seen += 1;
    }
    assert_eq!(seen, keys.len());
}
