//! Blocking list commands over real sockets (see `kv::state::blocking`'s
//! design notes): FIFO wake-ups across clients, timeouts, writes from
//! `MULTI`/`EXEC`, `BLMOVE`, pipelining behind a blocked command, `CLIENT
//! UNBLOCK` and disconnect clean-up, on both engines.

use crate::common;

use std::time::{Duration, Instant};

use common::{Raw, TestServer};
use kv::config::EngineKind;

/// A server on `engine` (lsm in a temp dir kept alive by the returned guard).
async fn server(engine: EngineKind) -> (TestServer, Option<tempfile::TempDir>) {
    let dir = (engine == EngineKind::Lsm).then(|| tempfile::tempdir().expect("tempdir"));
    let data_dir = dir.as_ref().map(|d| d.path().to_path_buf());
    let server = TestServer::with(|config| {
        config.engine = engine;
        if let Some(data_dir) = data_dir {
            config.data_dir = data_dir;
            config.fsync = kv::config::FsyncPolicy::No;
        }
    })
    .await;
    (server, dir)
}

fn engines() -> Vec<EngineKind> {
    vec![EngineKind::Memory, EngineKind::Lsm]
}

async fn send(raw: &mut Raw, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    raw.send(&kv::protocol::encode_request(&args)).await;
}

/// Waits until `n` clients are blocked (`INFO clients`), bounded.
async fn blocked(admin: &mut Raw, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let deadline = Instant::now() + common::WAIT;
    loop {
        send(admin, &["INFO", "clients"]).await;
        let text = admin.read_until(b"\r\n\r\n").await;
        if String::from_utf8_lossy(&text).contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} blocked clients");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A bulk string reply.
fn bulk(text: &str) -> String {
    format!("${}\r\n{text}\r\n", text.len())
}

/// BLPOP's reply `[key, value]`.
fn popped(key: &str, value: &str) -> String {
    format!("*2\r\n{}{}", bulk(key), bulk(value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_fifo_order_across_three_clients() {
    for engine in engines() {
        let (server, _dir) = server(engine).await;
        let mut admin = server.raw().await;
        let mut waiters = Vec::new();
        for i in 0..3 {
            let mut c = server.raw().await;
            send(&mut c, &["BLPOP", "q", "0"]).await;
            blocked(&mut admin, i + 1).await;
            waiters.push(c);
        }
        // One push of three elements serves all three, first come first served.
        admin
            .roundtrip(&["RPUSH", "q", "a", "b", "c"], ":3\r\n")
            .await;
        for (c, value) in waiters.iter_mut().zip(["a", "b", "c"]) {
            c.expect(popped("q", value).as_bytes()).await;
        }
        blocked(&mut admin, 0).await;
        admin.roundtrip(&["EXISTS", "q"], ":0\r\n").await;

        // Again with one push per element, and the waiters in another order.
        for (i, c) in waiters.iter_mut().rev().enumerate() {
            send(c, &["BRPOP", "q", "other", "0"]).await;
            blocked(&mut admin, i + 1).await;
        }
        for (served, value) in ["x", "y", "z"].into_iter().enumerate() {
            admin.roundtrip(&["LPUSH", "q", value], ":1\r\n").await;
            blocked(&mut admin, 2 - served).await;
        }
        for (c, value) in waiters.iter_mut().rev().zip(["x", "y", "z"]) {
            c.expect(popped("q", value).as_bytes()).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_honoured_including_fractions() {
    for engine in engines() {
        let (server, _dir) = server(engine).await;
        let mut c = server.raw().await;
        let started = Instant::now();
        c.roundtrip(&["BLPOP", "k", "0.25"], "*-1\r\n").await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(240) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        let started = Instant::now();
        c.roundtrip(&["BLMOVE", "k", "d", "LEFT", "RIGHT", "0.05"], "*-1\r\n")
            .await;
        c.roundtrip(&["BLMPOP", "0.05", "2", "k", "j", "LEFT"], "*-1\r\n")
            .await;
        c.roundtrip(&["BRPOPLPUSH", "k", "d", "0.05"], "*-1\r\n")
            .await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        // RESP3's null.
        send(&mut c, &["HELLO", "3"]).await;
        c.read_until(b"modules\r\n*0\r\n").await;
        c.roundtrip(&["BRPOP", "k", "0.01"], "_\r\n").await;
        // Bad timeouts are errors, not waits.
        c.roundtrip(&["BLPOP", "k", "-0.5"], "-ERR timeout is negative\r\n")
            .await;
        c.roundtrip(
            &["BLPOP", "k", "soon"],
            "-ERR timeout is not a float or out of range\r\n",
        )
        .await;
        // A command pipelined after a timed-out one runs after it.
        send(&mut c, &["BLPOP", "k", "0.05"]).await;
        send(&mut c, &["PING"]).await;
        c.expect(b"_\r\n+PONG\r\n").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_exec_pushes_serve_waiters_and_never_block_inside() {
    for engine in engines() {
        let (server, _dir) = server(engine).await;
        let mut admin = server.raw().await;
        let mut waiter = server.raw().await;
        send(&mut waiter, &["BLPOP", "k", "0"]).await;
        blocked(&mut admin, 1).await;
        admin.roundtrip(&["MULTI"], "+OK\r\n").await;
        admin
            .roundtrip(&["RPUSH", "k", "x", "y"], "+QUEUED\r\n")
            .await;
        admin.roundtrip(&["SET", "other", "1"], "+QUEUED\r\n").await;
        admin.roundtrip(&["EXEC"], "*2\r\n:2\r\n+OK\r\n").await;
        waiter.expect(popped("k", "x").as_bytes()).await;
        // Inside MULTI a blocking command answers at once, as on timeout.
        admin.roundtrip(&["MULTI"], "+OK\r\n").await;
        admin
            .roundtrip(&["BLPOP", "empty", "0"], "+QUEUED\r\n")
            .await;
        admin
            .roundtrip(
                &["BLMOVE", "empty", "d", "LEFT", "LEFT", "0"],
                "+QUEUED\r\n",
            )
            .await;
        admin.roundtrip(&["BLPOP", "k", "0"], "+QUEUED\r\n").await;
        admin
            .roundtrip(
                &["EXEC"],
                &format!("*3\r\n*-1\r\n$-1\r\n{}", popped("k", "y")),
            )
            .await;
        blocked(&mut admin, 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blmove_waits_then_moves_and_wakes_the_destination_waiters() {
    for engine in engines() {
        let (server, _dir) = server(engine).await;
        let mut admin = server.raw().await;
        let mut mover = server.raw().await;
        let mut reader = server.raw().await;
        send(&mut mover, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]).await;
        blocked(&mut admin, 1).await;
        send(&mut reader, &["BRPOP", "dst", "5"]).await;
        blocked(&mut admin, 2).await;
        admin.roundtrip(&["RPUSH", "src", "job"], ":1\r\n").await;
        mover.expect(bulk("job").as_bytes()).await;
        // The move's push to dst served the reader in turn.
        reader.expect(popped("dst", "job").as_bytes()).await;
        admin.roundtrip(&["EXISTS", "src", "dst"], ":0\r\n").await;
        // A destination of another type: the waiter gets WRONGTYPE and the
        // element stays where it was (Redis 7.0).
        admin.roundtrip(&["SET", "str", "x"], "+OK\r\n").await;
        send(&mut mover, &["BRPOPLPUSH", "src", "str", "0"]).await;
        blocked(&mut admin, 1).await;
        admin.roundtrip(&["RPUSH", "src", "kept"], ":1\r\n").await;
        mover
            .expect(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
            .await;
        admin.roundtrip(&["LLEN", "src"], ":1\r\n").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_type_keeps_the_waiter_blocked() {
    for engine in engines() {
        let (server, _dir) = server(engine).await;
        let mut admin = server.raw().await;
        let mut waiter = server.raw().await;
        send(&mut waiter, &["BLPOP", "k", "0"]).await;
        blocked(&mut admin, 1).await;
        admin.roundtrip(&["SET", "k", "string"], "+OK\r\n").await;
        admin.roundtrip(&["DEL", "k"], ":1\r\n").await;
        blocked(&mut admin, 1).await;
        admin.roundtrip(&["LPUSH", "k", "v"], ":1\r\n").await;
        waiter.expect(popped("k", "v").as_bytes()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_and_client_unblock_leave_nothing_behind() {
    for engine in engines() {
        let (server, _dir) = server(engine).await;
        let mut admin = server.raw().await;
        let mut gone = server.raw().await;
        send(&mut gone, &["BLPOP", "k", "0"]).await;
        blocked(&mut admin, 1).await;
        drop(gone);
        blocked(&mut admin, 0).await;
        // Nobody takes the element on the gone client's behalf.
        admin.roundtrip(&["RPUSH", "k", "v"], ":1\r\n").await;
        admin.roundtrip(&["LLEN", "k"], ":1\r\n").await;

        let mut waiter = server.raw().await;
        send(&mut waiter, &["CLIENT", "ID"]).await;
        let id = String::from_utf8(waiter.read_until(b"\r\n").await).expect("utf-8");
        let id = id.trim_start_matches(':').trim_end().to_string();
        // A timeout of 292 thousand years is a long wait, not a panic.
        send(&mut waiter, &["BLPOP", "none", "9223372036854.775"]).await;
        blocked(&mut admin, 1).await;
        admin.roundtrip(&["CLIENT", "UNBLOCK", &id], ":1\r\n").await;
        waiter.expect(b"*-1\r\n").await;
        send(&mut waiter, &["BLMPOP", "0", "1", "none", "LEFT"]).await;
        blocked(&mut admin, 1).await;
        admin
            .roundtrip(&["CLIENT", "UNBLOCK", &id, "ERROR"], ":1\r\n")
            .await;
        waiter
            .expect(b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")
            .await;
        admin.roundtrip(&["CLIENT", "UNBLOCK", &id], ":0\r\n").await;
        blocked(&mut admin, 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_behind_a_blocked_one_wait_for_it() {
    for engine in engines() {
        let (server, _dir) = server(engine).await;
        let mut admin = server.raw().await;
        let mut c = server.raw().await;
        let mut pipeline = Vec::new();
        for args in [
            &["PING"][..],
            &["BLPOP", "k", "0"],
            &["LLEN", "k"],
            &["PING"],
        ] {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            pipeline.extend(kv::protocol::encode_request(&args));
        }
        c.send(&pipeline).await;
        c.expect(b"+PONG\r\n").await;
        blocked(&mut admin, 1).await;
        admin.roundtrip(&["RPUSH", "k", "a", "b"], ":2\r\n").await;
        c.expect(format!("{}:1\r\n+PONG\r\n", popped("k", "a")).as_bytes())
            .await;
    }
}

/// Under `--fsync always` a served waiter's pop is committed (and its fsync
/// awaited) like any write before the reply goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_served_under_fsync_always() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_path_buf();
    let server = TestServer::with(|config| {
        config.engine = EngineKind::Lsm;
        config.data_dir = data_dir;
        config.fsync = kv::config::FsyncPolicy::Always;
    })
    .await;
    let mut admin = server.raw().await;
    let mut waiter = server.raw().await;
    send(
        &mut waiter,
        &["BLMOVE", "jobs", "taken", "RIGHT", "LEFT", "0"],
    )
    .await;
    blocked(&mut admin, 1).await;
    admin
        .roundtrip(&["LPUSH", "jobs", "j1", "j2"], ":2\r\n")
        .await;
    waiter.expect(bulk("j1").as_bytes()).await;
    admin
        .roundtrip(
            &["LRANGE", "taken", "0", "-1"],
            &format!("*1\r\n{}", bulk("j1")),
        )
        .await;
    admin
        .roundtrip(
            &["LRANGE", "jobs", "0", "-1"],
            &format!("*1\r\n{}", bulk("j2")),
        )
        .await;
}
