//! The server driven by the `redis` crate, a real third-party client: what
//! spans a connection or the server (MULTI/EXEC and WATCH, pub/sub, AUTH,
//! eviction, CONFIG/CLIENT/COMMAND introspection). The keyspace commands are
//! in `redis_client.rs`.

use crate::common;

use common::{TestServer, cmd, error_text};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_exec_is_atomic_and_watch_detects_races() {
    let server = TestServer::start().await;
    let mut con = server.client().await;
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("x", 1)
        .incr("x", 10)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 11));
    // Runtime errors inside EXEC do not roll back the rest.
    let _: () = con.set("s", "abc").await.unwrap();
    let results: Vec<redis::Value> = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("s")
        .cmd("SET")
        .arg("y")
        .arg("1")
        .query_async(&mut con)
        .await
        .unwrap_or_default();
    let _ = results;
    assert_eq!(con.get::<_, String>("y").await.unwrap(), "1");

    // WATCH: 20 clients race to increment with check-and-set; every
    // increment that EXEC reports as done must be counted exactly once.
    let _: () = con.set("counter", 0).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let url = server.url();
        tasks.push(tokio::spawn(async move {
            let client = redis::Client::open(url).unwrap();
            let mut con = client.get_multiplexed_async_connection().await.unwrap();
            let mut done = 0;
            let mut tries = 0;
            while done < 5 && tries < 10_000 {
                tries += 1;
                let _: () = redis::cmd("WATCH")
                    .arg("counter")
                    .query_async(&mut con)
                    .await
                    .unwrap();
                let value: i64 = con.get("counter").await.unwrap();
                let result: Option<(String,)> = redis::pipe()
                    .atomic()
                    .set("counter", value + 1)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                if result.is_some() {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += tokio::time::timeout(common::WAIT * 3, task)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(total, 100);
    assert_eq!(con.get::<_, i64>("counter").await.unwrap(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_key_touched_by_another_client_aborts_exec() {
    let server = TestServer::start().await;
    let mut a = server.raw().await;
    let mut b = server.client().await;
    a.roundtrip(&["WATCH", "k"], "+OK\r\n").await;
    let _: () = b.set("k", "changed").await.unwrap();
    a.roundtrip(&["MULTI"], "+OK\r\n").await;
    a.roundtrip(&["SET", "k", "mine"], "+QUEUED\r\n").await;
    a.roundtrip(&["EXEC"], "*-1\r\n").await;
    assert_eq!(b.get::<_, String>("k").await.unwrap(), "changed");
    // A queued command with wrong arity aborts the whole transaction.
    a.roundtrip(&["MULTI"], "+OK\r\n").await;
    a.roundtrip(
        &["SET", "k"],
        "-ERR wrong number of arguments for 'set' command\r\n",
    )
    .await;
    a.roundtrip(&["SET", "k", "x"], "+QUEUED\r\n").await;
    a.roundtrip(
        &["EXEC"],
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
    )
    .await;
    a.roundtrip(&["GET", "k"], "$7\r\nchanged\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_with_the_redis_crate() {
    use futures::StreamExt;
    let server = TestServer::start().await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("news").await.unwrap();
    pubsub.psubscribe("sport.*").await.unwrap();
    let mut con = server.client().await;
    assert_eq!(
        cmd::<i64>(&mut con, &["PUBLISH", "news", "hello"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["PUBLISH", "sport.f1", "go"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["PUBLISH", "nobody", "x"])
            .await
            .unwrap(),
        0
    );
    let channels: Vec<String> = cmd(&mut con, &["PUBSUB", "CHANNELS"]).await.unwrap();
    assert_eq!(channels, vec!["news".to_string()]);
    assert_eq!(
        cmd::<i64>(&mut con, &["PUBSUB", "NUMPAT"]).await.unwrap(),
        1
    );
    let mut stream = pubsub.on_message();
    let first = tokio::time::timeout(common::WAIT, stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            first.get_channel_name(),
            first.get_payload::<String>().unwrap()
        ),
        ("news", "hello".into())
    );
    let second = tokio::time::timeout(common::WAIT, stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.get_pattern::<String>().unwrap(), "sport.*");
    assert_eq!(second.get_payload::<String>().unwrap(), "go");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_keeps_memory_under_maxmemory_during_a_write_flood() {
    let maxmemory = 2 * 1024 * 1024;
    for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-fifo"] {
        let server = TestServer::with(|c| {
            c.maxmemory = maxmemory;
            c.maxmemory_policy = policy.parse().unwrap();
        })
        .await;
        let mut con = server.client().await;
        let value = "x".repeat(1000);
        for batch in 0..20 {
            let mut pipe = redis::pipe();
            for i in 0..500 {
                pipe.set(format!("k{batch}:{i}"), &value).ignore();
            }
            let _: () = pipe.query_async(&mut con).await.unwrap();
            let info: String = cmd(&mut con, &["INFO", "memory"]).await.unwrap();
            let used: u64 = info
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!(used <= maxmemory, "{policy}: used {used} > {maxmemory}");
        }
        let info: String = cmd(&mut con, &["INFO", "stats"]).await.unwrap();
        assert!(
            !info.contains("evicted_keys:0\r"),
            "{policy} evicted nothing"
        );
    }
    // noeviction refuses writes instead.
    let server = TestServer::with(|c| c.maxmemory = 64 * 1024).await;
    let mut con = server.client().await;
    let mut refused = None;
    for i in 0..200 {
        if let Err(err) = cmd::<()>(&mut con, &["SET", &format!("k{i}"), &"x".repeat(1000)]).await {
            refused = Some(error_text(err));
            break;
        }
    }
    assert_eq!(
        refused.as_deref(),
        Some("OOM command not allowed when used memory > 'maxmemory'.")
    );
    assert_eq!(
        cmd::<String>(&mut con, &["GET", "k0"]).await.unwrap().len(),
        1000,
        "reads still work"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirepass_gates_every_command_but_auth() {
    let server = TestServer::with(|c| c.requirepass = "s3cret".into()).await;
    let mut raw = server.raw().await;
    raw.roundtrip(&["GET", "k"], "-NOAUTH Authentication required.\r\n")
        .await;
    raw.roundtrip(
        &["AUTH", "wrong"],
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    raw.roundtrip(&["AUTH", "s3cret"], "+OK\r\n").await;
    raw.roundtrip(&["GET", "k"], "$-1\r\n").await;
    let client = redis::Client::open(format!("redis://:s3cret@{}/", server.addr)).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = con.set("k", "v").await.unwrap();
    let bad = redis::Client::open(format!("redis://:nope@{}/", server.addr)).unwrap();
    assert!(bad.get_multiplexed_async_connection().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_client_info_and_command_introspection() {
    let server = TestServer::start().await;
    let mut con = server.client().await;
    let save: Vec<String> = cmd(&mut con, &["CONFIG", "GET", "save"]).await.unwrap();
    assert_eq!(save, vec!["save".to_string(), String::new()]);
    let _: () = cmd(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10mb",
            "maxmemory-policy",
            "allkeys-lru",
        ],
    )
    .await
    .unwrap();
    let got: Vec<String> = cmd(&mut con, &["CONFIG", "GET", "maxmemory*"])
        .await
        .unwrap();
    assert!(
        got.windows(2).any(|w| w == ["maxmemory", "10485760"]),
        "{got:?}"
    );
    assert!(
        got.windows(2)
            .any(|w| w == ["maxmemory-policy", "allkeys-lru"]),
        "{got:?}"
    );
    let err = cmd::<()>(&mut con, &["CONFIG", "SET", "maxmemory-policy", "bogus"])
        .await
        .unwrap_err();
    assert!(
        error_text(err)
            .starts_with("ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy')")
    );
    let _: () = cmd(&mut con, &["CLIENT", "SETNAME", "tester"])
        .await
        .unwrap();
    assert_eq!(
        cmd::<String>(&mut con, &["CLIENT", "GETNAME"])
            .await
            .unwrap(),
        "tester"
    );
    let list: String = cmd(&mut con, &["CLIENT", "LIST"]).await.unwrap();
    assert!(
        list.contains("name=tester") && list.contains("lib-name=redis-rs"),
        "{list}"
    );
    let count: i64 = cmd(&mut con, &["COMMAND", "COUNT"]).await.unwrap();
    assert!(count > 60);
    let info: String = cmd(&mut con, &["INFO"]).await.unwrap();
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
    ] {
        assert!(info.contains(section), "{section} missing");
    }
}
