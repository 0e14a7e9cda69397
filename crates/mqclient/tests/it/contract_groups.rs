//! Group membership, on both implementations: two members split a topic's
//! partitions between them (each partition read by exactly one), read every
//! record exactly once between them, and when one leaves the other takes
//! over its partitions from the committed offsets.

use std::collections::BTreeSet;
use std::time::Duration;

use mqclient::{Consumer, ConsumerConfig, Message, Record};

use crate::harness::{Harness, WAIT, both, drain};

both! {
    two_members_split_the_partitions_and_one_takes_over_when_the_other_leaves => split_and_take_over;
}

fn values(messages: &[Message]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// Polls `consumer` until its assignment has `count` partitions; returns
/// what those polls read.
async fn until_assigned(consumer: &mut dyn Consumer, count: usize) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut read = Vec::new();
    while consumer.assignment().len() != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rebalance to {count} partitions"
        );
        read.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    read
}

async fn split_and_take_over(h: Harness) {
    let client = h.client();
    client.ensure_topic("tasks", 4).await.unwrap();
    let config = ConsumerConfig::group("pool", &["tasks"]);
    let mut first = client.subscribe(config.clone()).await.unwrap();
    assert_eq!(first.assignment().len(), 4, "alone, it reads everything");

    // The second join completes only once the first rejoins, which it does
    // on a poll: both run at once.
    let joining = {
        let client = client.clone();
        let config = config.clone();
        tokio::spawn(async move { client.subscribe(config).await.unwrap() })
    };
    let mut early = Vec::new();
    while !joining.is_finished() {
        early.extend(first.poll(Duration::from_millis(200)).await.unwrap());
    }
    let mut second = joining.await.unwrap();
    early.extend(until_assigned(first.as_mut(), 2).await);
    assert!(early.is_empty(), "nothing produced yet: {early:?}");
    let a: BTreeSet<_> = first.assignment().into_iter().collect();
    let b: BTreeSet<_> = second.assignment().into_iter().collect();
    assert_eq!((a.len(), b.len()), (2, 2), "range splits 4 partitions 2/2");
    assert!(a.is_disjoint(&b), "a partition has one reader: {a:?} {b:?}");

    let records = (0..40).map(|i| Record::new(format!("{i}")).key(format!("key-{i}")));
    client
        .produce_batch("tasks", records.collect())
        .await
        .unwrap();
    let mut from_a = Vec::new();
    let mut from_b = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while from_a.len() + from_b.len() < 40 && tokio::time::Instant::now() < deadline {
        from_a.extend(first.poll(Duration::from_millis(100)).await.unwrap());
        from_b.extend(second.poll(Duration::from_millis(100)).await.unwrap());
    }
    assert!(
        from_a
            .iter()
            .all(|m| a.contains(&(m.topic.clone(), m.partition)))
    );
    assert!(
        from_b
            .iter()
            .all(|m| b.contains(&(m.topic.clone(), m.partition)))
    );
    assert_eq!(from_a.len() + from_b.len(), 40, "each record read once");
    let all: BTreeSet<String> = values(&from_a).union(&values(&from_b)).cloned().collect();
    assert_eq!(all.len(), 40);
    first.commit().await.unwrap();

    // The second member processed nothing it commits, then leaves: its
    // partitions go to the first, which reads them again from the start.
    second.close().await.unwrap();
    let taken = until_assigned(first.as_mut(), 4).await;
    let rest = drain(first.as_mut(), from_b.len().saturating_sub(taken.len())).await;
    let mut redelivered = values(&taken);
    redelivered.extend(values(&rest));
    assert_eq!(
        redelivered,
        values(&from_b),
        "uncommitted records come again"
    );
    first.commit().await.unwrap();
    assert!(
        first
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    first.close().await.unwrap();
}
