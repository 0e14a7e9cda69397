//! Thread-per-core serving and the per-thread upstream pools: several
//! workers on one `SO_REUSEPORT` address all serve, upstream connections are
//! kept alive and reused, and a shutdown drains every worker.

use crate::support;

use std::sync::atomic::Ordering;

use gateway::config::Balance;
use support::{TestGateway, TestUpstream, WAIT, config, header_of, raw, status_of};

#[tokio::test(flavor = "current_thread")]
async fn three_workers_serve_one_address_and_shut_down() {
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    let gateway = TestGateway::start_workers(config(&[&a, &b], Balance::RoundRobin), 3).await;
    // A fresh client connection per request, so the kernel spreads them
    // over the workers' listeners.
    for index in 0..30 {
        let answer = raw(
            gateway.addr,
            format!("GET /w{index} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status_of(&answer), 200, "{answer}");
    }
    let hits = |upstream: &TestUpstream| {
        (0..30)
            .map(|index| upstream.hits(&format!("/w{index}")))
            .sum::<usize>()
    };
    assert_eq!(hits(&a) + hits(&b), 30);
    assert!(hits(&a) > 0 && hits(&b) > 0);
    let addr = gateway.addr;
    drop(gateway);
    // Every worker stops accepting once shut down.
    let closed = async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, closed)
        .await
        .expect("a worker still accepts after shutdown");
}

#[tokio::test(flavor = "current_thread")]
async fn upstream_connections_are_reused() {
    let upstream = TestUpstream::start("a").await;
    let mut config = config(&[&upstream], Balance::RoundRobin);
    // Probes open connections of their own: off, to count the proxy's.
    for pool in config.pools.values_mut() {
        pool.health.enabled = false;
    }
    let gateway = TestGateway::start(config).await;
    let http = support::client();
    for index in 0..20 {
        let response = http
            .get(gateway.url(&format!("/keep{index}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    // HEAD answers have no body to read to the end: their connection is
    // given back all the same.
    for _ in 0..5 {
        let response = http.head(gateway.url("/head")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let keep: usize = (0..20)
        .map(|index| upstream.hits(&format!("/keep{index}")))
        .sum();
    assert_eq!(keep + upstream.hits("/head"), 25);
    assert_eq!(
        upstream.seen.connections.load(Ordering::Relaxed),
        1,
        "sequential requests share one upstream connection"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_http10_request_gets_a_host_for_the_upstream() {
    let upstream = TestUpstream::start("a").await;
    let gateway = TestGateway::start(config(&[&upstream], Balance::RoundRobin)).await;
    let answer = raw(gateway.addr, b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(upstream.hits("/old"), 1);
    let expected = upstream.addr.to_string();
    assert_eq!(header_of(&answer, "x-seen-host"), Some(expected.as_str()));
}
