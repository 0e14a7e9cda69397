//! ListGroups, DescribeGroups and DescribeLogDirs (what `hyperscale mq
//! groups` and `topics describe` ask), driven by `mq::client`: two members
//! in one group split a topic's partitions, the broker describes both with
//! their assignments, the lag follows commits, and a group known only by
//! its offsets is listed as Empty.
#![allow(clippy::unwrap_used)] // a failure is the test failing

use crate::broker_support;

use std::collections::BTreeMap;
use std::time::Duration;

use broker_support::TestBroker;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;
use mq::client::Client;
use mq::client::consumer::{ConsumeOptions, Consumer};
use mq::client::producer::{Outgoing, Producer};

const WAIT: Duration = Duration::from_secs(30);

fn options(group: &str) -> ConsumeOptions {
    ConsumeOptions {
        topics: vec!["events".into()],
        group: Some(group.into()),
        from_beginning: true,
        ..ConsumeOptions::default()
    }
}

async fn produce(client: &mut Client, count: usize) {
    let mut producer = Producer::new(client, "events", -1).await.unwrap();
    let records: Vec<Outgoing> = (0..count)
        .map(|i| Outgoing::new("v").key(format!("k{i}")))
        .collect();
    producer.send(client, &records, None).await.unwrap();
}

async fn scenario(broker: &TestBroker) {
    let bootstrap = broker.bootstrap();
    let mut admin = Client::connect(&bootstrap).await.unwrap();
    admin
        .create_topic("events", 4, &BTreeMap::new())
        .await
        .unwrap();
    produce(&mut admin, 40).await;

    // Two members: the second join makes the first rebalance on its next
    // heartbeat, so both must keep polling while the group settles.
    let mut first_client = Client::connect(&bootstrap).await.unwrap();
    let mut first = Consumer::start(&mut first_client, options("pair"))
        .await
        .unwrap();
    let mut second_client = Client::connect(&bootstrap).await.unwrap();
    let second_start = Consumer::start(&mut second_client, options("pair"));
    let first_polls = async {
        for _ in 0..20 {
            first.poll(&mut first_client).await.unwrap();
        }
    };
    let (second, ()) = tokio::join!(second_start, first_polls);
    let mut second = second.unwrap();
    assert_eq!(first.assigned().len() + second.assigned().len(), 4);
    assert_eq!(first.assigned().len(), 2, "range splits 4 partitions 2/2");

    // Read everything both were assigned and commit it.
    for _ in 0..4 {
        for m in first.poll(&mut first_client).await.unwrap() {
            first.consumed(&m);
        }
        for m in second.poll(&mut second_client).await.unwrap() {
            second.consumed(&m);
        }
    }
    first.commit(&mut first_client).await.unwrap();
    second.commit(&mut second_client).await.unwrap();

    let described = admin.describe_group("pair").await.unwrap();
    assert_eq!(described.state, "Stable");
    assert_eq!(described.protocol, "range");
    assert_eq!(described.members.len(), 2);
    let assigned: usize = described
        .members
        .iter()
        .map(|m| m.assignment["events"].len())
        .sum();
    assert_eq!(assigned, 4);
    assert_eq!(described.partitions.len(), 4);
    assert!(
        described
            .partitions
            .iter()
            .all(|p| p.lag == Some(0) && p.member_id.is_some()),
        "{described:?}"
    );

    produce(&mut admin, 4).await;
    let described = admin.describe_group("pair").await.unwrap();
    let lag: i64 = described.partitions.iter().filter_map(|p| p.lag).sum();
    assert_eq!(lag, 4);
    // The same lag on /metrics, once the broker refreshes it (every 5 s).
    let mut metric_lag = None;
    for _ in 0..100 {
        metric_lag = metric_lag_sum(&broker.metrics_text(), "pair");
        if metric_lag == Some(4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(metric_lag, Some(4), "{}", broker.metrics_text());

    let groups = admin.list_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].state, "Stable");
    assert_eq!(groups[0].protocol_type, "consumer");

    // Both leave: the group is Empty but still known by its offsets.
    first.close(&mut first_client).await.unwrap();
    second.close(&mut second_client).await.unwrap();
    let described = admin.describe_group("pair").await.unwrap();
    assert_eq!(described.state, "Empty");
    assert!(described.members.is_empty());
    assert_eq!(described.partitions.len(), 4, "commits outlive members");

    // States filter (ListGroups v4) and an unknown group (Dead).
    let filtered: ListGroupsResponse = admin
        .any()
        .send(
            &ListGroupsRequest::default()
                .with_states_filter(vec![StrBytes::from_static_str("Stable")]),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert!(filtered.groups.is_empty(), "no group is Stable any more");
    let unknown = admin
        .any()
        .send(
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(StrBytes::from_static_str("nobody"))]),
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(unknown.groups[0].group_state.as_str(), "Dead");

    // Sizes on disk come from DescribeLogDirs.
    let topic = admin.describe_topic("events").await.unwrap();
    let ends: i64 = topic.partitions.iter().map(|p| p.end_offset).sum();
    assert_eq!(ends, 44);
    assert!(
        topic
            .partitions
            .iter()
            .all(|p| p.size_bytes.is_some_and(|s| s > 0))
    );
}

/// The sum of `mq_consumer_lag` over `group`'s partitions, if it has any.
fn metric_lag_sum(text: &str, group: &str) -> Option<i64> {
    let prefix = format!("mq_consumer_lag{{group=\"{group}\"");
    let values: Vec<i64> = text
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_and_described_with_members_assignments_and_lag() {
    let broker = TestBroker::start();
    tokio::time::timeout(WAIT * 2, scenario(&broker))
        .await
        .expect("the scenario finishes in time");
}
