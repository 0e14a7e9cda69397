//! One API node and six data node processes on 127.0.0.1 (`hyperscale s3 datanode`):
//! `kill -9` of a data node during a stream of boto3 PUTs loses no acknowledged object,
//! with 3-way replication (acknowledged on 2 copies) and with 4+2 erasure coding
//! (acknowledged on 5 shards). Every acknowledged object reads back byte for byte while
//! the node is down; after it restarts, the repair pass rewrites what it missed, so
//! everything still reads back with two *other* nodes killed.

use std::time::Duration;

use crate::common::{Guard, Lines, serve};
use crate::s3_harness::{PutStream, create_key, verify};

fn datanode(
    dir: &std::path::Path,
    i: usize,
    bind: &str,
    secret: &std::path::Path,
) -> (Guard, String) {
    let data = dir.join(format!("dn{i}"));
    let (guard, _lines, banner) = serve(
        [
            "s3",
            "datanode",
            "--bind",
            bind,
            "--data-dir",
            data.to_str().unwrap(),
            "--cluster-secret-file",
            secret.to_str().unwrap(),
            "--zone",
            &format!("z{i}"),
        ],
        Duration::from_secs(30),
    );
    let addr = banner
        .rsplit_once("listening on ")
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .1
        .to_string();
    (guard, addr)
}

fn api(
    data: &str,
    nodes: &str,
    durability: &str,
    secret: &std::path::Path,
) -> (Guard, Lines, String) {
    let (guard, lines, mut banner) = serve(
        [
            "s3",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--datanodes",
            nodes,
            "--durability",
            durability,
            "--cluster-secret-file",
            secret.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    if banner.starts_with("data store:") {
        assert!(banner.contains("6 up"), "{banner}");
        banner = lines.next_within(Duration::from_secs(30));
    }
    let addr = banner
        .strip_prefix("s3 listening on ")
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_string();
    (guard, lines, format!("http://{addr}"))
}

fn kill_a_data_node_during_puts(durability: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("cluster-secret");
    std::fs::write(&secret, "a-test-cluster-secret-of-some-length\n").unwrap();
    let mut nodes: Vec<(Guard, String)> = (0..6)
        .map(|i| datanode(tmp.path(), i, "127.0.0.1:0", &secret))
        .collect();
    let list: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, (_, a))| format!("{a}@z{i}"))
        .collect();
    let list = list.join(",");
    let data = tmp.path().join("api");
    let data = data.to_str().unwrap();
    let key = create_key(data);
    let (_api, api_lines, endpoint) = api(data, &list, durability, &secret);

    let writer = PutStream::start(&endpoint, &key, 0);
    let mut acked = writer.take(20);
    let victim = 2;
    nodes[victim].0.0.kill().unwrap(); // SIGKILL
    nodes[victim].0.0.wait().unwrap();
    // PUTs go on and are acknowledged on the surviving nodes.
    acked.extend(writer.take(30));
    acked.extend(writer.stop());
    verify(&endpoint, &key, &acked, "data node down");

    // Restart it on its port and directory: the placement service sees it back and a
    // repair pass rewrites the copies or shards it missed.
    let addr = nodes[victim].1.clone();
    nodes[victim] = datanode(tmp.path(), victim, &addr, &secret);
    // A pass that ran while the node was still down (past `repair_after_ms` on a
    // slow machine) may come first and rewrite nothing: wait for the one that repairs.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let report = api_lines.next_within(left);
        assert!(report.starts_with("repair pass: "), "{report}");
        assert!(report.ends_with(" 0 unreadable"), "{report}");
        if !report.contains(" 0 copies or shards rewritten") {
            break;
        }
    }
    verify(&endpoint, &key, &acked, "data node restarted");
    // Full redundancy is back: lose two *other* nodes, and everything still reads.
    for i in [0, 4] {
        nodes[i].0.0.kill().unwrap();
        nodes[i].0.0.wait().unwrap();
    }
    verify(
        &endpoint,
        &key,
        &acked,
        "two other data nodes down after repair",
    );
}

#[test]
fn acknowledged_puts_survive_kill_9_of_a_replicated_data_node() {
    kill_a_data_node_during_puts("replicate3");
}

#[test]
fn acknowledged_puts_survive_kill_9_of_an_erasure_coded_data_node() {
    kill_a_data_node_during_puts("ec4+2");
}
