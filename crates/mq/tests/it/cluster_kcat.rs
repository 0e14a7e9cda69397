//! An unmodified librdkafka client (Debian's kcat) against a three-broker
//! cluster: it learns every broker and each partition's leader from
//! Metadata, produces with `acks=all` to leaders spread over the three
//! brokers, and reads everything back through another broker; a consumer
//! group resumes after its committed offsets whichever broker it
//! bootstraps from (one coordinator per group). `KCAT_DEBUG=1` shows
//! kcat's stderr.
#![allow(clippy::unwrap_used)]

use crate::cluster_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster_support::Cluster;
use testkit::ChildGuard;

/// Runs kcat to completion (bounded) with `stdin`; its stdout.
fn kcat(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let child = Command::new("kcat")
        .arg("-b")
        .arg(bootstrap)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if std::env::var("KCAT_DEBUG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("kcat must be installed: scripts/test installs it (apt-get install kcat)");
    let mut child = ChildGuard(child);
    let mut input = child.0.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "kcat {args:?} did not finish in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_routes_to_leaders_spread_over_three_brokers() {
    let cluster = Cluster::start();
    let bootstrap = cluster.bootstrap(None);
    // Three partitions of three replicas, created through the controller.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let created = async {
            let mut client = mq::client::Client::connect(&bootstrap[0]).await?;
            client.create_topic("spread", 3, &Default::default()).await
        };
        match tokio::time::timeout(Duration::from_secs(5), created).await {
            Ok(Ok(())) => break,
            other => assert!(Instant::now() < deadline, "topic creation: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Another broker learns the topic from the metadata log (shortly after).
    let mut client = mq::client::Client::connect(&bootstrap[1]).await.unwrap();
    let meta = loop {
        let meta = client.metadata(Some(&["spread"])).await.unwrap();
        if meta.topics[0].partitions.len() == 3 {
            break meta;
        }
        assert!(Instant::now() < deadline, "broker 2 learns the topic");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(meta.brokers.len(), 3, "every broker is listed");
    let partitions = &meta.topics[0].partitions;
    let leaders: BTreeSet<i32> = partitions.iter().map(|p| p.leader_id.0).collect();
    assert_eq!(leaders.len(), 3, "leaders are spread: {leaders:?}");
    assert!(partitions.iter().all(|p| p.replica_nodes.len() == 3));
    // `hyperscale mq topics describe` shows them (offsets asked of each leader).
    // A new leader may answer NOT_LEADER_OR_FOLLOWER until it has applied
    // the metadata: retry as clients do.
    let described = loop {
        match client.describe_topic("spread").await {
            Ok(described) => break described,
            Err(err) => assert!(Instant::now() < deadline, "describe: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        described
            .partitions
            .iter()
            .all(|p| p.replicas.len() == 3 && p.isr.len() == 3 && p.end_offset == 0),
        "{described:?}"
    );

    let lines: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let produced = tokio::task::spawn_blocking({
        // Keyed, so librdkafka's partitioner spreads them over the three leaders.
        let input: String = lines.iter().map(|l| format!("{l}:{l}\n")).collect();
        let b = bootstrap[0].clone();
        move || kcat(&b, &["-P", "-t", "spread", "-K:", "-X", "acks=all"], &input)
    });
    produced.await.unwrap();
    let consumed = tokio::task::spawn_blocking({
        let b = bootstrap[2].clone();
        move || kcat(&b, &["-C", "-t", "spread", "-e", "-q"], "")
    })
    .await
    .unwrap();
    let got: BTreeSet<&str> = consumed.lines().collect();
    let want: BTreeSet<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(got, want, "every record comes back, from three leaders");

    // A consumer group: whichever broker a member bootstraps from, the
    // group has one coordinator, so a second run through another broker
    // resumes after the first run's committed offsets.
    let group = |b: String, extra: &'static [&'static str]| {
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["-G", "g1", "-e", "-q"];
            args.extend_from_slice(extra);
            args.push("spread");
            kcat(&b, &args, "")
        })
    };
    let first = group(bootstrap[0].clone(), &["-X", "auto.offset.reset=earliest"])
        .await
        .unwrap();
    assert_eq!(first.lines().count(), 300, "the first run reads everything");
    let more: Vec<String> = (0..5).map(|i| format!("late{i}")).collect();
    tokio::task::spawn_blocking({
        let (b, input) = (bootstrap[1].clone(), more.join("\n") + "\n");
        move || kcat(&b, &["-P", "-t", "spread", "-X", "acks=all"], &input)
    })
    .await
    .unwrap();
    let second = group(bootstrap[2].clone(), &[]).await.unwrap();
    let got: BTreeSet<&str> = second.lines().collect();
    assert_eq!(
        got,
        more.iter().map(String::as_str).collect(),
        "the second run resumes after the committed offsets"
    );
}
