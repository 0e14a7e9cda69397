//! Three crawler nodes on 127.0.0.1 crawl one test web together: every page
//! is fetched once across the cluster, each host only by the node the ring
//! gives it (so per-host politeness holds, measured by the web's own log),
//! URLs cross nodes through the forwarded batches, and a node reopened
//! from its store keeps what it did.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crawler::cluster::{Node, NodeConfig};
use crawler::crawl::CrawlConfig;
use crawler::route::Router;
use crawler::state::Scope;
use crawler::store::Outcome;
use crawler::testweb::{CRAWL_DELAY_HOST, TestWeb, WebSpec, is_trap};

const DELAY_MS: u64 = 15;

fn node_config(
    dir: &std::path::Path,
    id: &str,
    peers: &[(String, std::net::SocketAddr)],
    seed: &str,
) -> NodeConfig {
    let mut crawl = CrawlConfig {
        data_dir: dir.join(id),
        concurrency: 4,
        ..CrawlConfig::default()
    };
    crawl.state.scope = Scope::SameDomain;
    crawl.state.politeness.delay_ms = DELAY_MS;
    crawl.state.store_bodies = false;
    crawl.state.expected_urls = 10_000;
    NodeConfig {
        node_id: id.into(),
        peers: peers.to_vec(),
        seeds: vec![seed.to_string()],
        crawl,
        token: Some("cluster-secret".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_fetch_each_page_once_and_hosts_stay_with_their_owner() {
    let web = TestWeb::start(WebSpec {
        hosts: 9,
        pages: 9 * 16,
        slow_ms: 0,
        base_port: 0,
        crawl_delay_ms: 50,
        change_ms: 0,
    })
    .await
    .expect("test web");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut listeners = Vec::new();
    let mut peers = Vec::new();
    for id in ["a", "b", "c"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        peers.push((id.to_string(), listener.local_addr().expect("addr")));
        listeners.push(listener);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    for ((id, _), listener) in peers.iter().zip(listeners) {
        let node =
            Arc::new(Node::open(&node_config(dir.path(), id, &peers, &web.seed())).expect("node"));
        nodes.push(node.clone());
        let (peers, stop) = (peers.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            node.run(listener, &peers, stop).await
        }));
    }

    // Run until the web has served every expected page, then a little more
    // (anything fetched twice would show up in that time too).
    let expected = web.expected();
    let started = Instant::now();
    loop {
        let served: BTreeSet<(usize, String)> =
            web.log().into_iter().map(|e| (e.host, e.target)).collect();
        if expected.pages.is_subset(&served) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cluster did not cover the web: {} of {} pages",
            expected.pages.intersection(&served).count(),
            expected.pages.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Each node serves its live counters and the console page that shows them.
    let client = reqwest::Client::new();
    let busy = nodes
        .iter()
        .position(|n| n.crawler().stats().snapshot().pages > 0)
        .expect("a node fetched pages");
    let base = format!("http://{}", peers[busy].1);
    let status: serde_json::Value = client
        .get(format!("{base}/status"))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("status JSON");
    assert!(status["pages"].as_u64().expect("pages") > 0, "{status}");
    // Forwarding needs the cluster's token.
    let forward = serde_json::json!({"from": "x", "urls": []});
    let refused = client
        .post(format!("{base}/urls"))
        .json(&forward)
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 401);
    let page = client.get(&base).send().await.expect("console");
    assert!(page.status().is_success());
    assert!(
        page.text()
            .await
            .expect("body")
            .contains("fetch(\"status\"")
    );
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("node task").expect("node run");
    }

    let log = web.log();
    let mut counts: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for e in &log {
        *counts.entry((e.host, e.target.clone())).or_default() += 1;
    }
    for ((h, target), n) in &counts {
        assert_eq!(
            *n, 1,
            "host {h} {target} requested {n} times across the cluster"
        );
        assert!(
            expected.pages.contains(&(*h, target.clone()))
                || target == "/robots.txt"
                || (*h == 0 && is_trap(target)),
            "unexpected request: host {h} {target}"
        );
    }
    // Each node fetched only hosts the ring gives it, and all nodes worked.
    let ids: Vec<String> = peers.iter().map(|(id, _)| id.clone()).collect();
    let mut fetched_by_node = Vec::new();
    for (node, (id, _)) in nodes.iter().zip(&peers) {
        let router = Router::new(id, &ids).expect("router");
        let pages = node.crawler().state().lock().pages().expect("pages");
        let fetched: Vec<_> = pages
            .iter()
            .filter(|p| p.outcome == Outcome::Fetched)
            .collect();
        for page in &fetched {
            let host = page
                .url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .expect("host");
            assert!(
                router.remote_owner(host).is_none(),
                "node {id} fetched {} of another node's host",
                page.url
            );
        }
        fetched_by_node.push(fetched.len());
    }
    // Ports are random, so the split is too: a node may draw only the
    // robots-503 host, but the work is never all on one node.
    assert!(
        fetched_by_node.iter().filter(|n| **n > 0).count() >= 2,
        "{fetched_by_node:?}"
    );
    let forwarded: u64 = nodes
        .iter()
        .map(|n| n.crawler().stats().snapshot().forwarded)
        .sum();
    assert!(forwarded > 0, "no URL crossed nodes");
    // Per-host politeness, from the server's log.
    let mut by_host: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for e in &log {
        by_host.entry(e.host).or_default().push(e.at_us);
    }
    for (h, mut times) in by_host {
        times.sort_unstable();
        let floor_ms = if h == CRAWL_DELAY_HOST { 50 } else { DELAY_MS };
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] + 1000 >= floor_ms * 1000,
                "host {h}: two requests {} µs apart",
                pair[1] - pair[0]
            );
        }
    }
    // State survives a restart: a node reopened from its store keeps its pages.
    let done_before = nodes[0].crawler().state().lock().pages_done();
    drop(nodes);
    let reopened = Node::open(&node_config(dir.path(), "a", &peers, &web.seed())).expect("reopen");
    assert_eq!(reopened.crawler().state().lock().pages_done(), done_before);
    assert_eq!(reopened.crawler().stats().snapshot().frontier, 0);
}
