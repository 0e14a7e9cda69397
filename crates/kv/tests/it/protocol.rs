//! Protocol edge cases over raw sockets: inline commands, RESP3, garbage,
//! limits, half-closed sockets, many idle connections.

use crate::common;

use common::{TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands_and_pipelining_work() {
    let server = TestServer::start().await;
    let mut raw = server.raw().await;
    raw.send(b"PING\r\nSET k \"hello world\"\r\nGET k\r\n\r\nECHO 'it''s'\n")
        .await;
    raw.expect(b"+PONG\r\n+OK\r\n$11\r\nhello world\r\n").await;
    raw.expect(b"-ERR Protocol error: unbalanced quotes in request\r\n")
        .await;
    raw.expect_closed().await;
    // A pipeline of 1000 commands in one write gets 1000 replies in order.
    let mut raw = server.raw().await;
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend(kv::protocol::encode_request(&[b"INCR", b"n"]));
        let _ = i;
    }
    raw.send(&batch).await;
    let expected: String = (1..=1000).map(|i| format!(":{i}\r\n")).collect();
    raw.expect(expected.as_bytes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_commands_and_arity_errors_keep_the_connection() {
    let server = TestServer::start().await;
    let mut raw = server.raw().await;
    raw.roundtrip(
        &["FOO"],
        "-ERR unknown command 'FOO', with args beginning with: \r\n",
    )
    .await;
    raw.roundtrip(
        &["foo", "a", "b"],
        "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
    )
    .await;
    raw.roundtrip(
        &["SET", "k"],
        "-ERR wrong number of arguments for 'set' command\r\n",
    )
    .await;
    raw.roundtrip(&["CLIENT", "SETINFO", "LIB-NAME", "x"], "+OK\r\n")
        .await;
    raw.roundtrip(&["PING"], "+PONG\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_resp_closes_only_that_connection() {
    let server = TestServer::with(|c| c.proto_max_bulk_len = 1024 * 1024).await;
    let mut good = server.raw().await;
    good.roundtrip(&["SET", "safe", "value"], "+OK\r\n").await;
    let cases: &[(&[u8], &str)] = &[
        (
            b"*2\r\n$3\r\nGET\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*99999999\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$2000000\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
    ];
    for (input, expected) in cases {
        let mut bad = server.raw().await;
        bad.send(input).await;
        bad.expect(expected.as_bytes()).await;
        bad.expect_closed().await;
    }
    // Binary garbage with no newline for over 64 KiB: too big inline request.
    let mut bad = server.raw().await;
    bad.send(&vec![0xAB; 70_000]).await;
    bad.expect(b"-ERR Protocol error: too big inline request\r\n")
        .await;
    bad.expect_closed().await;
    good.roundtrip(&["GET", "safe"], "$5\r\nvalue\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_socket_still_gets_its_replies() {
    let server = TestServer::start().await;
    let mut raw = server.raw().await;
    raw.send(&kv::protocol::encode_request(&[b"SET", b"k", b"v"]))
        .await;
    raw.send(&kv::protocol::encode_request(&[b"GET", b"k"]))
        .await;
    raw.stream.shutdown().await.unwrap();
    raw.expect(b"+OK\r\n$1\r\nv\r\n").await;
    raw.expect_closed().await;
    // A half-sent command followed by a hang-up leaves the data unchanged.
    let mut raw = server.raw().await;
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\npartial")
        .await;
    drop(raw);
    let mut check = server.raw().await;
    check.roundtrip(&["GET", "k"], "$1\r\nv\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_replies_and_push_messages() {
    let server = TestServer::start().await;
    let mut sub = server.raw().await;
    sub.send(&kv::protocol::encode_request(&[b"HELLO", b"3"]))
        .await;
    let hello = String::from_utf8(sub.read_until(b"$7\r\nmodules\r\n*0\r\n").await).unwrap();
    assert!(
        hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{hello}"
    );
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello}");
    sub.roundtrip(&["GET", "missing"], "_\r\n").await;
    sub.roundtrip(
        &["SUBSCRIBE", "ch"],
        ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    )
    .await;
    // RESP3 clients may run any command while subscribed.
    sub.roundtrip(&["SET", "k", "v"], "+OK\r\n").await;
    let mut publisher = server.raw().await;
    publisher
        .roundtrip(&["PUBLISH", "ch", "hi"], ":1\r\n")
        .await;
    sub.expect(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n")
        .await;
    // RESP2 subscribers get arrays and a restricted command set.
    let mut old = server.raw().await;
    old.roundtrip(
        &["PSUBSCRIBE", "c*"],
        "*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:1\r\n",
    )
    .await;
    old.roundtrip(&["PING"], "*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
    old.roundtrip(
        &["GET", "k"],
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    )
    .await;
    publisher
        .roundtrip(&["PUBLISH", "ch", "again"], ":2\r\n")
        .await;
    old.expect(b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$5\r\nagain\r\n")
        .await;
    old.roundtrip(
        &["PUNSUBSCRIBE"],
        "*3\r\n$12\r\npunsubscribe\r\n$2\r\nc*\r\n:0\r\n",
    )
    .await;
    old.roundtrip(&["GET", "k"], "$1\r\nv\r\n").await;
    publisher
        .roundtrip(
            &["PUBSUB", "NUMSUB", "ch", "none"],
            "*4\r\n$2\r\nch\r\n:1\r\n$4\r\nnone\r\n:0\r\n",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_refuses_the_extra_client() {
    let server = TestServer::with(|c| c.maxclients = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut raw = server.raw().await;
        raw.roundtrip(&["PING"], "+PONG\r\n").await;
        held.push(raw);
    }
    let mut extra = server.raw().await;
    extra
        .expect(b"-ERR max number of clients reached\r\n")
        .await;
    extra.expect_closed().await;
    drop(held.pop());
    common::eventually(|| async {
        let mut raw = server.raw().await;
        raw.send(b"PING\r\n").await;
        let mut reply = [0u8; 7];
        matches!(
            tokio::time::timeout(WAIT, raw.stream.read_exact(&mut reply)).await,
            Ok(Ok(_))
        ) && &reply == b"+PONG\r\n"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_closed_after_timeout() {
    let server = TestServer::with(|c| c.timeout = 1).await;
    let mut raw = server.raw().await;
    raw.roundtrip(&["PING"], "+PONG\r\n").await;
    raw.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_do_not_disturb_service() {
    let server = TestServer::start().await;
    let count = std::env::var("KV_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut idle = Vec::with_capacity(count);
    for _ in 0..count {
        idle.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    let mut con = server.client().await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    common::eventually(|| {
        let mut con = con.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut con)
                .await
                .unwrap();
            info.contains(&format!("connected_clients:{}\r", count + 1))
        }
    })
    .await;
    drop(idle);
    let value: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_is_cut_off_at_its_output_limit() {
    let server =
        TestServer::with(|c| c.client_output_buffer_limit_pubsub.hard_bytes = 64 * 1024).await;
    let mut sub = server.raw().await;
    sub.roundtrip(
        &["SUBSCRIBE", "firehose"],
        "*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n",
    )
    .await;
    // The subscriber never reads; publish far more than the limit plus what
    // the kernel's socket buffers can absorb.
    let mut con = server.client().await;
    let payload = "x".repeat(64 * 1024);
    common::eventually(|| {
        let mut con = con.clone();
        let payload = payload.clone();
        async move {
            let _: i64 = redis::cmd("PUBLISH")
                .arg("firehose")
                .arg(&payload)
                .query_async(&mut con)
                .await
                .unwrap();
            let subs: (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("firehose")
                .query_async(&mut con)
                .await
                .unwrap();
            subs.1 == 0
        }
    })
    .await;
    let _: () = redis::cmd("SET")
        .arg("still")
        .arg("fine")
        .query_async(&mut con)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_returns_and_closes_clients() {
    let server = TestServer::start().await;
    let mut raw = server.raw().await;
    raw.roundtrip(&["PING"], "+PONG\r\n").await;
    let _ = raw.stream.write_all(b"").await;
    server.stop().await.unwrap();
    raw.expect_closed().await;
}

/// A subscriber that stops reading fills the socket first; the server then
/// blocks writing to it. It must still be cut off at the hard limit, and
/// PUBLISH must stop counting it (before the fix it was neither
/// disconnected nor skipped: the connection waited on the write forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_blocked_in_a_write_is_cut_off_and_not_counted() {
    let server = TestServer::with(|c| {
        c.client_output_buffer_limit_pubsub = kv::config::OutputLimits {
            hard_bytes: 2 * 1024 * 1024,
            soft_bytes: 0,
            soft_seconds: 0,
        }
    })
    .await;
    let mut sub = server.raw().await;
    sub.roundtrip(
        &["SUBSCRIBE", "firehose"],
        "*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n",
    )
    .await;
    let mut con = server.client().await;
    let payload = "x".repeat(256 * 1024);
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let mut published = 0u64;
    loop {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("firehose")
            .arg(&payload)
            .query_async(&mut con)
            .await
            .unwrap();
        published += 1;
        if receivers == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still counted after {published} messages of 256 KiB"
        );
    }
    // PUBLISH skips it at once; the hub forgets it when its connection has
    // closed (before the fix it never did: the write blocked forever).
    common::eventually(|| {
        let mut con = con.clone();
        async move {
            let subs: (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("firehose")
                .query_async(&mut con)
                .await
                .expect("PUBSUB NUMSUB replies");
            subs.1 == 0
        }
    })
    .await;
    // Its socket is closed: reading drains what was sent, then EOF.
    let mut sink = vec![0u8; 1 << 20];
    loop {
        match tokio::time::timeout_at(deadline, sub.stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the condemned subscriber was never closed"),
        }
    }
}
