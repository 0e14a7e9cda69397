//! Bad clients are bounded: oversized bodies get 413, slowloris connections
//! are cut off, connections over the limit get 503, unknown paths 404, and
//! the gateway keeps serving everyone else.

use crate::support;

use gateway::config::Balance;
use support::{TestGateway, TestUpstream, WAIT, client, config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut received))
        .await
        .expect("the gateway never closed the connection")
        .ok();
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_chunked() {
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.limits.body_bytes_max = 1024;
    let gateway = TestGateway::start(config).await;
    let http = client();
    let ok = http
        .post(gateway.url("/up"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-seen-body-bytes"], "1024");
    let big = http
        .post(gateway.url("/up"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let body: serde_json::Value = big.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("1024 bytes"),
        "{body}"
    );

    // Chunked: no Content-Length to refuse up front; the limit still holds.
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let chunk = "x".repeat(1000);
    let mut request = String::from(
        "POST /up HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A POST is streamed: the upstream may see the start of the body, but
    // the request is aborted before it is complete.
    assert_eq!(
        a.completed("/up"),
        1,
        "an oversized body reached the upstream"
    );
}

#[tokio::test]
async fn slowloris_is_cut_off_and_others_are_served() {
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.timeouts.header_read_ms = 300;
    let gateway = TestGateway::start(config).await;
    let mut slow = TcpStream::connect(gateway.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: t\r\nx-slow: ")
        .await
        .unwrap();
    // Meanwhile a normal client is served.
    let response = client().get(gateway.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // The slow client never finishes its headers; the gateway hangs up.
    read_to_close(&mut slow).await;
    assert_eq!(
        a.hits("/"),
        1,
        "the incomplete request reached the upstream"
    );
}

#[tokio::test]
async fn connections_over_the_limit_get_503() {
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.limits.connections_max = 2;
    let gateway = TestGateway::start(config).await;
    let held: Vec<TcpStream> = vec![
        TcpStream::connect(gateway.addr).await.unwrap(),
        TcpStream::connect(gateway.addr).await.unwrap(),
    ];
    // The two held connections are accepted before the third (one accept loop,
    // FIFO backlog), so the third is over the limit.
    let mut third = TcpStream::connect(gateway.addr).await.unwrap();
    let answer = read_to_close(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("connection limit"), "{answer}");
    drop(held);
    gateway.wait_for_metric("reason=\"connections_max\"").await;
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.routes[0].prefix = "/api".into();
    config.routes[0].strip_prefix = true;
    let gateway = TestGateway::start(config).await;
    let http = client();
    let response = http.get(gateway.url("/elsewhere")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("/elsewhere"),
        "{body}"
    );
    let response = http.get(gateway.url("/api/users")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(a.hits("/users"), 1, "the prefix was not stripped");
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("hyperscale_gateway_requests_total{route=\"/api\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hyperscale_gateway_requests_total{route=\"none\",status=\"404\"} 1"),
        "{metrics}"
    );
}
