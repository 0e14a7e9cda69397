//! The contract every [`MqClient`] honours, run against both
//! implementations (see `harness`): order per partition, key routing,
//! headers, seek, commit and resume across a broker restart, an empty poll
//! after its timeout, and bad input answered with an error, not a panic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mqclient::{ClientOptions, ConsumerConfig, Error, Record};

use crate::harness::{Harness, Kind, both, drain};

both! {
    order_is_kept_per_partition_and_keys_stay_together => order_and_routing;
    committed_offsets_survive_a_restart_and_uncommitted_records_come_again => commit_and_resume;
    headers_travel_and_seek_rereads => headers_and_seek;
    an_empty_poll_returns_after_its_timeout => empty_poll;
    bad_input_is_an_error_and_the_client_goes_on => bad_input;
    a_reader_without_a_group_sees_every_partition => no_group;
}

async fn order_and_routing(h: Harness) {
    let client = h.client();
    assert_eq!(client.ensure_topic("orders", 3).await.unwrap(), 3);
    assert_eq!(
        client.ensure_topic("orders", 5).await.unwrap(),
        3,
        "an existing topic keeps its partitions"
    );
    // Keys k0..k9, six records each, sent one by one and in batches.
    let mut sent: Vec<(String, u32)> = Vec::new();
    let mut placed: BTreeMap<String, i32> = BTreeMap::new();
    let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
    for round in 0..6u32 {
        let records: Vec<Record> = (0..10)
            .map(|k| Record::new(format!("{round}")).key(format!("k{k}")))
            .collect();
        let deliveries = if round % 2 == 0 {
            client.produce_batch("orders", records).await.unwrap()
        } else {
            let mut one_by_one = Vec::new();
            for record in records {
                one_by_one.push(client.produce("orders", record).await.unwrap());
            }
            one_by_one
        };
        for (k, d) in deliveries.iter().enumerate() {
            let key = format!("k{k}");
            let partition = *placed.entry(key.clone()).or_insert(d.partition);
            assert_eq!(
                d.partition, partition,
                "{key} always lands in one partition"
            );
            let expected = mq::client::producer::partition_for_key(key.as_bytes(), 3) as i32;
            assert_eq!(d.partition, expected, "{key}: Kafka's murmur2 partitioner");
            let previous = last_offset.insert(d.partition, d.offset);
            assert!(previous.is_none_or(|p| p < d.offset), "offsets grow");
            sent.push((key, round));
        }
    }
    assert!(
        placed
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1,
        "ten keys spread over more than one partition"
    );
    let explicit = client
        .produce("orders", Record::new("pinned").key("k0").partition(2))
        .await
        .unwrap();
    assert_eq!(
        explicit.partition, 2,
        "an explicit partition wins over the key"
    );

    let mut consumer = client
        .subscribe(ConsumerConfig::group("readers", &["orders"]))
        .await
        .unwrap();
    let got = drain(consumer.as_mut(), 61).await;
    assert_eq!(got.len(), 61);
    let mut rounds: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for m in &got {
        assert_eq!(m.topic, "orders");
        offsets.entry(m.partition).or_default().push(m.offset);
        let key = String::from_utf8(m.key.clone().unwrap()).unwrap();
        let value = String::from_utf8(m.value.clone().unwrap()).unwrap();
        if value == "pinned" {
            assert_eq!(m.partition, 2);
            continue;
        }
        assert_eq!(m.partition, placed[&key], "consumed where it was placed");
        rounds.entry(key).or_default().push(value.parse().unwrap());
    }
    for (partition, offsets) in &offsets {
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {partition} in order"
        );
    }
    for (key, seen) in &rounds {
        assert_eq!(
            seen,
            &(0..6).collect::<Vec<u32>>(),
            "{key} in produce order"
        );
    }
    consumer.commit().await.unwrap();
    consumer.close().await.unwrap();
}

async fn commit_and_resume(mut h: Harness) {
    let client = h.client();
    client.ensure_topic("jobs", 2).await.unwrap();
    let batch = |from: u32| {
        (from..from + 10)
            .map(|i| Record::new(format!("{i}")))
            .collect()
    };
    client.produce_batch("jobs", batch(0)).await.unwrap();
    let mut consumer = client
        .subscribe(ConsumerConfig::group("workers", &["jobs"]))
        .await
        .unwrap();
    let first = drain(consumer.as_mut(), 10).await;
    assert_eq!(first.len(), 10);
    consumer.commit().await.unwrap(); // processed: 0..10
    client.produce_batch("jobs", batch(10)).await.unwrap();
    let second = drain(consumer.as_mut(), 10).await;
    assert_eq!(second.len(), 10);
    // Polled but never committed: the process "crashes" here.
    let positions: Vec<Option<i64>> = (0..2).map(|p| consumer.position("jobs", p)).collect();
    assert_eq!(
        positions.iter().flatten().sum::<i64>(),
        20,
        "positions past all 20"
    );
    consumer.close().await.unwrap();
    drop(client);
    h.restart().await;

    let client = h.client();
    let mut consumer = client
        .subscribe(ConsumerConfig::group("workers", &["jobs"]))
        .await
        .unwrap();
    let again = drain(consumer.as_mut(), 10).await;
    let mut values: Vec<u32> = again
        .iter()
        .map(|m| {
            String::from_utf8_lossy(m.value.as_deref().unwrap())
                .parse()
                .unwrap()
        })
        .collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (10..20).collect::<Vec<_>>(),
        "resumes at the commit, redelivers the rest"
    );
    consumer.commit().await.unwrap();
    let nothing = consumer.poll(Duration::from_millis(300)).await.unwrap();
    assert!(nothing.is_empty(), "nothing else: {nothing:?}");
    consumer.close().await.unwrap();
}

async fn headers_and_seek(h: Harness) {
    let client = h.client();
    client.ensure_topic("events", 1).await.unwrap();
    let record = Record::new("body")
        .key("user-1")
        .header("trace", "abc")
        .header("empty", Vec::new());
    let mut with_null = record.clone();
    with_null.headers.push(("null".into(), None));
    client.produce("events", with_null.clone()).await.unwrap();
    client
        .produce("events", Record::new("second"))
        .await
        .unwrap();
    let mut consumer = client
        .subscribe(ConsumerConfig::group("h", &["events"]))
        .await
        .unwrap();
    let got = drain(consumer.as_mut(), 2).await;
    assert_eq!(got[0].headers, with_null.headers);
    assert_eq!(got[0].header("trace"), Some(&b"abc"[..]));
    assert_eq!(got[0].key.as_deref(), Some(&b"user-1"[..]));
    assert!(got[1].headers.is_empty());
    assert_eq!(consumer.assignment(), vec![("events".to_string(), 0)]);
    assert_eq!(consumer.position("events", 0), Some(2));
    consumer.seek("events", 0, 1).unwrap();
    let again = drain(consumer.as_mut(), 1).await;
    assert_eq!(again[0].value.as_deref(), Some(&b"second"[..]));
    assert!(matches!(
        consumer.seek("events", 7, 0),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        consumer.seek("events", 0, -1),
        Err(Error::InvalidInput(_))
    ));
    consumer.close().await.unwrap();
}

async fn empty_poll(h: Harness) {
    let client = h.client();
    client.ensure_topic("quiet", 2).await.unwrap();
    let mut consumer = client
        .subscribe(ConsumerConfig::group("q", &["quiet"]))
        .await
        .unwrap();
    let started = Instant::now();
    let got = consumer.poll(Duration::from_millis(300)).await.unwrap();
    assert!(got.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by its timeout"
    );
    // A record produced during a poll ends the wait (long polling).
    let producer = client.clone();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        producer
            .produce("quiet", Record::new("late"))
            .await
            .unwrap();
    });
    let got = drain(consumer.as_mut(), 1).await;
    assert_eq!(got.len(), 1);
    late.await.unwrap();
    consumer.close().await.unwrap();
}

fn invalid<T>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::InvalidInput(_)))
}

async fn bad_input(h: Harness) {
    let client = h.client();
    assert!(invalid(client.ensure_topic("", 1).await));
    assert!(invalid(client.ensure_topic("a/b", 1).await));
    assert!(invalid(client.ensure_topic("fine", 0).await));
    assert!(invalid(client.produce("", Record::new("v")).await));
    assert!(invalid(
        client
            .subscribe(ConsumerConfig::group("g", &[""]))
            .await
            .map(|_| ())
    ));
    assert!(invalid(
        client
            .subscribe(ConsumerConfig::group("", &["fine"]))
            .await
            .map(|_| ())
    ));
    let unknown = client.produce("missing", Record::new("v")).await;
    assert!(
        matches!(unknown, Err(Error::UnknownTopic(_))),
        "{unknown:?}"
    );
    let unknown = client
        .subscribe(ConsumerConfig::group("g", &["missing"]))
        .await;
    assert!(matches!(unknown.map(|_| ()), Err(Error::UnknownTopic(_))));

    client.ensure_topic("fine", 2).await.unwrap();
    let limit = h.options.max_record_bytes;
    assert!(invalid(
        client
            .produce("fine", Record::new(vec![7; limit + 1]))
            .await
    ));
    assert!(invalid(
        client.produce("fine", Record::new("v").partition(2)).await
    ));
    let fine = client.produce("fine", Record::new("v")).await.unwrap();
    assert!(fine.offset >= 0, "the client goes on after errors");

    // The broker's own limit (message_max_bytes, about 1 MiB) answers too.
    let roomy = ClientOptions {
        max_record_bytes: 4 << 20,
        ..ClientOptions::default()
    };
    let wide = Harness::start_with(h.kind, roomy).await;
    let wide_client = wide.client();
    wide_client.ensure_topic("big", 1).await.unwrap();
    let refused = wide_client
        .produce("big", Record::new(vec![1; 2 << 20]))
        .await;
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );
    wide_client
        .produce("big", Record::new("small"))
        .await
        .unwrap();
    if h.kind == Kind::Kafka {
        assert!(h.bootstrap().is_some());
    }
}

async fn no_group(h: Harness) {
    let client = h.client();
    client.ensure_topic("all", 3).await.unwrap();
    let records = (0..9).map(|i| Record::new(format!("{i}"))).collect();
    client.produce_batch("all", records).await.unwrap();
    let mut reader = client
        .subscribe(ConsumerConfig::no_group(&["all"]))
        .await
        .unwrap();
    assert_eq!(reader.assignment().len(), 3);
    let got = drain(reader.as_mut(), 9).await;
    assert_eq!(got.len(), 9);
    reader.commit().await.unwrap(); // nothing to commit without a group
    reader.close().await.unwrap();
    let mut again = client
        .subscribe(ConsumerConfig::no_group(&["all"]))
        .await
        .unwrap();
    assert_eq!(
        drain(again.as_mut(), 9).await.len(),
        9,
        "no group, no memory"
    );
}
