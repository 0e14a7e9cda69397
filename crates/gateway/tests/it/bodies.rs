//! Request bodies through the real gateway: uploads that will not be
//! replayed are streamed, replayable ones are buffered within a bound (and
//! spilled to disk beyond the memory threshold), and a spilled body reaches
//! a second upstream byte-identical when the first one fails.

use crate::support;

use gateway::config::Balance;
use support::{TestGateway, TestUpstream, client, config};

/// The value of the metric line starting with `series`.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index % 251) as u8 ^ seed)
        .collect()
}

#[tokio::test]
async fn thirty_concurrent_large_uploads_stay_under_the_buffer_bound() {
    const UPLOAD_BYTES: usize = 1 << 20;
    const MEMORY_BYTES_MAX: u64 = 64 << 10;
    const TOTAL_BYTES_MAX: u64 = 4 << 20;
    let spill = tempfile::tempdir().unwrap();
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.limits.body_bytes_max = 2 << 20;
    config.limits.body_memory_bytes_max = MEMORY_BYTES_MAX;
    config.limits.body_buffer_total_bytes_max = TOTAL_BYTES_MAX;
    config.limits.body_spill_dir = Some(spill.path().to_path_buf());
    let gateway = TestGateway::start(config).await;
    let http = client();

    // 30 PUTs (replayable: buffered) and 30 POSTs (not: streamed) at once.
    let mut uploads = tokio::task::JoinSet::new();
    for index in 0..60u8 {
        let http = http.clone();
        let url = gateway.url("/upload");
        uploads.spawn(async move {
            let body = pattern(UPLOAD_BYTES, index);
            let request = if index % 2 == 0 {
                http.put(url)
            } else {
                http.post(url)
            };
            let response = request.body(body).send().await.unwrap();
            (
                response.status(),
                response.headers()["x-seen-body-bytes"].clone(),
            )
        });
    }
    while let Some(done) = uploads.join_next().await {
        let (status, seen) = done.unwrap();
        assert_eq!(status, 200);
        assert_eq!(seen, UPLOAD_BYTES.to_string().as_str());
    }
    let received = a.seen.bodies.lock().unwrap().clone();
    assert_eq!(received.len(), 60);
    for body in &received {
        let seed = body[0];
        assert!(*body == pattern(UPLOAD_BYTES, seed), "a body was corrupted");
    }

    let text = gateway.metrics().await;
    let memory_peak = metric(
        &text,
        "hyperscale_gateway_request_body_buffered_peak_bytes{storage=\"memory\"}",
    );
    let total_peak = metric(
        &text,
        "hyperscale_gateway_request_body_buffered_peak_bytes{storage=\"total\"}",
    );
    assert!(total_peak > 0, "nothing was buffered:\n{text}");
    assert!(total_peak <= TOTAL_BYTES_MAX, "{total_peak}\n{text}");
    assert!(
        memory_peak <= 30 * MEMORY_BYTES_MAX,
        "{memory_peak}\n{text}"
    );
    let handled = |handling: &str| {
        metric(
            &text,
            &format!("hyperscale_gateway_request_bodies_total{{handling=\"{handling}\"}}"),
        )
    };
    assert_eq!(handled("streamed"), 30, "{text}");
    assert!(handled("disk") >= 1, "{text}");
    assert_eq!(
        handled("disk") + handled("memory") + handled("over_budget"),
        30
    );
    // Nothing is held once the uploads are done.
    for storage in ["memory", "disk"] {
        let series =
            format!("hyperscale_gateway_request_body_buffered_bytes{{storage=\"{storage}\"}}");
        assert!(text.contains(&series), "{text}");
        assert_eq!(metric(&text, &series), 0, "{text}");
    }
}

#[tokio::test]
async fn a_spilled_body_is_replayed_byte_identical_on_retry() {
    let spill = tempfile::tempdir().unwrap();
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    a.seen.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut config = config(&[&a, &b], Balance::RoundRobin);
    config.limits.body_memory_bytes_max = 1024;
    config.limits.body_spill_dir = Some(spill.path().to_path_buf());
    let gateway = TestGateway::start(config).await;
    let http = client();
    let body = pattern(300_000, 7);
    // Round robin: one of two requests tries `a` first.
    for _ in 0..2 {
        let response = http
            .put(gateway.url("/object"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-upstream"], "b");
    }
    assert!(
        a.hits("/object") >= 1,
        "no request tried the failing upstream"
    );
    let at_b = b.seen.bodies.lock().unwrap().clone();
    assert_eq!(at_b.len(), 2);
    assert!(
        at_b.iter().all(|seen| *seen == body),
        "a replayed body differs"
    );
    let text = gateway.metrics().await;
    assert!(
        text.contains("hyperscale_gateway_request_bodies_total{handling=\"disk\"} 2"),
        "{text}"
    );
    assert!(
        metric(&text, "hyperscale_gateway_retries_total") >= 1,
        "{text}"
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_streamed_or_buffered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.timeouts.body_read_ms = 300;
    let gateway = TestGateway::start(config).await;
    for method in ["POST", "PUT"] {
        let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
        let head = format!(
            "{method} /slow-body HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n0123456789"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The rest of the body never comes; the connection stays open.
        let mut answer = vec![0; 1024];
        let read = tokio::time::timeout(support::WAIT, stream.read(&mut answer))
            .await
            .expect("no answer to a stalled body")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 408"), "{method}: {answer}");
    }
    assert_eq!(a.completed("/slow-body"), 0);
}

#[tokio::test]
async fn a_client_breaking_a_streamed_body_limit_does_not_count_against_the_upstream() {
    let a = TestUpstream::start("a").await;
    let mut config = config(&[&a], Balance::RoundRobin);
    config.limits.body_bytes_max = 1024;
    let gateway = TestGateway::start(config).await;
    let chunk = "x".repeat(1000);
    let mut request = String::from(
        "POST /up HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    for _ in 0..3 {
        let answer = support::raw(gateway.addr, request.as_bytes()).await;
        assert_eq!(support::status_of(&answer), 413, "{answer}");
    }
    let text = gateway.metrics().await;
    let series = format!(
        "hyperscale_gateway_upstream_failures_total{{pool=\"web\",upstream=\"{}\"}}",
        a.addr
    );
    assert!(text.contains(&series), "{text}");
    assert_eq!(metric(&text, &series), 0, "{text}");
    assert!(
        text.contains(&format!(
            "hyperscale_gateway_upstream_up{{pool=\"web\",upstream=\"{}\"}} 1",
            a.addr
        )),
        "{text}"
    );
}
