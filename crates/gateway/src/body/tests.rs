use std::convert::Infallible;

use http_body_util::BodyExt;

use super::*;
use crate::metrics::Metrics;

fn budget(total_bytes_max: u64) -> Arc<Budget> {
    let mut registry = service::metrics::Registry::default();
    Budget::new(total_bytes_max, Metrics::register(&mut registry))
}

fn policy(memory_bytes_max: u64, dir: &std::path::Path) -> BodyPolicy {
    BodyPolicy {
        bytes_max: 1 << 20,
        read_timeout: Duration::from_secs(10),
        memory_bytes_max,
        spill_dir: dir.to_path_buf(),
    }
}

/// A client body of `chunks`, with a Content-Length when `declared`.
fn request(
    chunks: &[&'static [u8]],
    declared: bool,
) -> (
    Parts,
    impl http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
) {
    let total: usize = chunks.iter().map(|chunk| chunk.len()).sum();
    let mut builder = http::Request::builder().method("PUT");
    if declared {
        builder = builder.header(header::CONTENT_LENGTH, total);
    }
    let (parts, ()) = builder.body(()).unwrap().into_parts();
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = chunks
        .iter()
        .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk))))
        .collect();
    (parts, StreamBody::new(stream::iter(frames)))
}

/// Prepares `chunks` as a PUT body (a Content-Length when `declared`).
async fn take(
    chunks: &[&'static [u8]],
    declared: bool,
    replayable: bool,
    memory_bytes_max: u64,
    budget: &Arc<Budget>,
    dir: &std::path::Path,
) -> Payload {
    let (parts, body) = request(chunks, declared);
    let policy = policy(memory_bytes_max, dir);
    prepare(&parts, body, replayable, &policy, budget)
        .await
        .unwrap()
}

async fn read_all(body: UpstreamBody) -> Vec<u8> {
    body.collect().await.unwrap().to_bytes().to_vec()
}

#[tokio::test]
async fn a_small_replayable_body_is_kept_in_memory_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let budget = budget(1000);
    let payload = take(&[b"hello ", b"world"], true, true, 100, &budget, dir.path()).await;
    assert_eq!(payload.buffered_length(), Some(11));
    for _ in 0..2 {
        assert_eq!(
            read_all(payload.attempt_body().unwrap()).await,
            b"hello world"
        );
    }
    assert_eq!(budget.memory_bytes(), 11);
    drop(payload);
    assert_eq!(budget.memory_bytes(), 0);
    assert_eq!(budget.reserved_bytes(), 0);
}

#[tokio::test]
async fn a_large_replayable_body_spills_to_disk_and_replays_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let budget = budget(1 << 20);
    static BIG: [u8; 200_000] = {
        let mut bytes = [0u8; 200_000];
        let mut index = 0;
        while index < bytes.len() {
            bytes[index] = (index % 251) as u8;
            index += 1;
        }
        bytes
    };
    let (parts, body) = request(&[&BIG[..1000], &BIG[1000..150_000], &BIG[150_000..]], false);
    let payload = prepare(&parts, body, true, &policy(4096, dir.path()), &budget)
        .await
        .unwrap();
    assert_eq!(payload.buffered_length(), Some(200_000));
    assert_eq!(budget.memory_bytes(), 0, "spilled bodies leave memory");
    assert_eq!(budget.disk_bytes(), 200_000);
    assert!(budget.memory_peak_bytes() <= 4096);
    // Two attempts read concurrently: each has its own position.
    let (first, second) = tokio::join!(
        read_all(payload.attempt_body().unwrap()),
        read_all(payload.attempt_body().unwrap())
    );
    assert_eq!(first, BIG);
    assert_eq!(second, BIG);
    drop(payload);
    assert_eq!(budget.disk_bytes(), 0);
    assert_eq!(budget.reserved_bytes(), 0);
}

#[tokio::test]
async fn a_body_that_will_not_be_replayed_is_streamed_and_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let budget = budget(1000);
    let payload = take(&[b"abc", b"def"], true, false, 100, &budget, dir.path()).await;
    assert_eq!(payload.buffered_length(), None);
    assert_eq!(budget.reserved_peak_bytes(), 0, "nothing was buffered");
    // An attempt that never read it (a connect error) leaves it whole.
    drop(payload.attempt_body().unwrap());
    assert_eq!(read_all(payload.attempt_body().unwrap()).await, b"abcdef");
    assert!(
        payload.attempt_body().is_none(),
        "a read body cannot be sent again"
    );
    payload.read_to_end().await;
}

#[tokio::test]
async fn over_budget_bodies_are_streamed_whole_without_replay() {
    let dir = tempfile::tempdir().unwrap();
    let budget = budget(8);
    // Declared: refused by the budget before reading.
    let payload = take(&[b"0123456789"], true, true, 4, &budget, dir.path()).await;
    assert_eq!(payload.buffered_length(), None);
    assert_eq!(
        read_all(payload.attempt_body().unwrap()).await,
        b"0123456789"
    );
    // Chunked: the budget runs out midway; what was held goes first.
    let payload = take(
        &[b"abc", b"def", b"ghi", b"jkl"],
        false,
        true,
        4,
        &budget,
        dir.path(),
    )
    .await;
    assert_eq!(payload.buffered_length(), None);
    assert_eq!(
        read_all(payload.attempt_body().unwrap()).await,
        b"abcdefghijkl"
    );
    assert!(payload.attempt_body().is_none());
    drop(payload);
    assert!(budget.reserved_peak_bytes() <= 8);
    assert_eq!(budget.reserved_bytes(), 0);
}

#[tokio::test]
async fn limits_hold_for_buffered_and_streamed_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let budget = budget(1 << 20);
    let mut small = policy(100, dir.path());
    small.bytes_max = 5;
    let (parts, body) = request(&[b"abc", b"def"], false);
    let fault = prepare(&parts, body, true, &small, &budget).await.err();
    assert_eq!(fault, Some(BodyFault::TooLarge(5)));
    let (parts, body) = request(&[b"abcdef"], true);
    let fault = prepare(&parts, body, false, &small, &budget).await.err();
    assert_eq!(
        fault,
        Some(BodyFault::TooLarge(5)),
        "declared: refused up front"
    );

    let (parts, body) = request(&[b"abc", b"def"], false);
    let payload = prepare(&parts, body, false, &small, &budget).await.unwrap();
    let sent = payload.attempt_body().unwrap().collect().await;
    assert!(
        sent.is_err(),
        "a streamed body over the limit must not end cleanly"
    );
    assert_eq!(payload.fault(), Some(BodyFault::TooLarge(5)));
}
