//! The server driven by the `redis` crate, a real third-party client.

mod common;

use common::{TestServer, eventually};
use redis::AsyncCommands;

async fn cmd<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query_async(con).await
}

fn error_text(err: redis::RedisError) -> String {
    // The client splits "ERR text" into a kind and a detail; join them back.
    format!(
        "{} {}",
        err.code().unwrap_or("?"),
        err.detail().unwrap_or("")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_behave_like_redis() {
    let server = TestServer::start().await;
    let mut con = server.client().await;
    let _: () = con.set("k", "v").await.unwrap();
    assert_eq!(con.get::<_, String>("k").await.unwrap(), "v");
    assert_eq!(
        cmd::<Option<String>>(&mut con, &["SET", "k", "w", "NX"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cmd::<Option<String>>(&mut con, &["SET", "k", "w", "XX", "GET"])
            .await
            .unwrap()
            .as_deref(),
        Some("v")
    );
    assert_eq!(
        cmd::<Option<String>>(&mut con, &["SET", "new", "x", "XX"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(cmd::<i64>(&mut con, &["INCR", "n"]).await.unwrap(), 1);
    assert_eq!(
        cmd::<i64>(&mut con, &["INCRBY", "n", "41"]).await.unwrap(),
        42
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["DECRBY", "n", "2"]).await.unwrap(),
        40
    );
    assert_eq!(
        cmd::<String>(&mut con, &["INCRBYFLOAT", "f", "10.5"])
            .await
            .unwrap(),
        "10.5"
    );
    assert_eq!(
        cmd::<String>(&mut con, &["INCRBYFLOAT", "f", "0.1"])
            .await
            .unwrap(),
        "10.6"
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["APPEND", "s", "Hello "])
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["APPEND", "s", "World"])
            .await
            .unwrap(),
        11
    );
    assert_eq!(
        cmd::<String>(&mut con, &["GETRANGE", "s", "-5", "-1"])
            .await
            .unwrap(),
        "World"
    );
    assert_eq!(
        cmd::<String>(&mut con, &["GETRANGE", "s", "0", "100"])
            .await
            .unwrap(),
        "Hello World"
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["SETRANGE", "s", "6", "Redis"])
            .await
            .unwrap(),
        11
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["SETRANGE", "pad", "3", "x"])
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        cmd::<Vec<u8>>(&mut con, &["GET", "pad"]).await.unwrap(),
        b"\0\0\0x"
    );
    assert_eq!(cmd::<i64>(&mut con, &["STRLEN", "s"]).await.unwrap(), 11);
    let _: () = cmd(&mut con, &["MSET", "a", "1", "b", "2"]).await.unwrap();
    let values: Vec<Option<String>> = cmd(&mut con, &["MGET", "a", "b", "nope"]).await.unwrap();
    assert_eq!(values, vec![Some("1".into()), Some("2".into()), None]);
    assert_eq!(
        cmd::<i64>(&mut con, &["MSETNX", "a", "9", "c", "3"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        cmd::<Option<String>>(&mut con, &["GETDEL", "a"])
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["EXISTS", "a", "b", "b"])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        cmd::<String>(&mut con, &["GETSET", "b", "3"])
            .await
            .unwrap(),
        "2"
    );
    assert_eq!(cmd::<i64>(&mut con, &["SETNX", "b", "4"]).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_redis_shapes() {
    let server = TestServer::start().await;
    let mut con = server.client().await;
    let _: () = con.set("s", "abc").await.unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["INCR", "s"],
            "ERR value is not an integer or out of range",
        ),
        (&["GET"], "ERR wrong number of arguments for 'get' command"),
        (
            &["NOPE", "a"],
            "ERR unknown command 'NOPE', with args beginning with: 'a' ",
        ),
        (
            &["SET", "k", "v", "EX", "0"],
            "ERR invalid expire time in 'set' command",
        ),
        (&["SET", "k", "v", "NX", "XX"], "ERR syntax error"),
        (&["INCRBYFLOAT", "s", "1"], "ERR value is not a valid float"),
        (&["RENAME", "missing", "x"], "ERR no such key"),
        (&["SELECT", "1"], "ERR DB index is out of range"),
        (
            &["EXPIRE", "s", "10", "NX", "XX"],
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ),
        (&["EXEC"], "ERR EXEC without MULTI"),
    ];
    for (args, expected) in cases {
        let err = cmd::<redis::Value>(&mut con, args).await.unwrap_err();
        assert_eq!(error_text(err).trim_end(), expected.trim_end(), "{args:?}");
    }
    let _: () = cmd(&mut con, &["SET", "big", "9223372036854775807"])
        .await
        .unwrap();
    let err = cmd::<i64>(&mut con, &["INCR", "big"]).await.unwrap_err();
    assert_eq!(error_text(err), "ERR increment or decrement would overflow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_expire_lazily_and_actively() {
    let server = TestServer::start().await;
    let mut con = server.client().await;
    let _: () = cmd(&mut con, &["SET", "k", "v", "EX", "100"])
        .await
        .unwrap();
    let ttl: i64 = cmd(&mut con, &["TTL", "k"]).await.unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(
        cmd::<i64>(&mut con, &["EXPIRE", "k", "50", "GT"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["EXPIRE", "k", "50", "LT"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(cmd::<i64>(&mut con, &["PERSIST", "k"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut con, &["TTL", "k"]).await.unwrap(), -1);
    assert_eq!(cmd::<i64>(&mut con, &["TTL", "missing"]).await.unwrap(), -2);
    let _: () = cmd(&mut con, &["SET", "k", "v", "KEEPTTL"]).await.unwrap();
    assert_eq!(
        cmd::<i64>(&mut con, &["EXPIRE", "k", "-1"]).await.unwrap(),
        1,
        "past expiry deletes"
    );
    assert_eq!(cmd::<i64>(&mut con, &["EXISTS", "k"]).await.unwrap(), 0);
    // Lazy: a read after the deadline never sees the key.
    let _: () = cmd(&mut con, &["SET", "short", "v", "PX", "30"])
        .await
        .unwrap();
    eventually(|| {
        let mut con = con.clone();
        async move {
            cmd::<Option<String>>(&mut con, &["GET", "short"])
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;
    // Active: keys nobody reads disappear from DBSIZE on their own.
    for i in 0..200 {
        let _: () = cmd(&mut con, &["SET", &format!("t{i}"), "v", "PX", "20"])
            .await
            .unwrap();
    }
    let _: () = cmd(&mut con, &["SET", "keep", "v"]).await.unwrap();
    eventually(|| {
        let mut con = con.clone();
        async move { cmd::<i64>(&mut con, &["DBSIZE"]).await.unwrap() == 1 }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_scan_rename_type() {
    let server = TestServer::start().await;
    let mut con = server.client().await;
    for i in 0..250 {
        let _: () = con.set(format!("user:{i}"), i).await.unwrap();
    }
    let _: () = con.set("other", 1).await.unwrap();
    let mut keys: Vec<String> = cmd(&mut con, &["KEYS", "user:1?"]).await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 10);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, batch): (String, Vec<String>) = cmd(
            &mut con,
            &["SCAN", &cursor, "MATCH", "user:*", "COUNT", "20"],
        )
        .await
        .unwrap();
        seen.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(
        cmd::<String>(&mut con, &["TYPE", "other"]).await.unwrap(),
        "string"
    );
    assert_eq!(
        cmd::<String>(&mut con, &["TYPE", "nope"]).await.unwrap(),
        "none"
    );
    let _: () = cmd(&mut con, &["EXPIRE", "other", "100"]).await.unwrap();
    let _: () = cmd(&mut con, &["RENAME", "other", "moved"]).await.unwrap();
    assert!(
        cmd::<i64>(&mut con, &["TTL", "moved"]).await.unwrap() > 0,
        "RENAME keeps the TTL"
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["RENAMENX", "moved", "user:1"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        cmd::<i64>(&mut con, &["DEL", "moved", "user:1", "nope"])
            .await
            .unwrap(),
        2
    );
    assert!(
        cmd::<Option<String>>(&mut con, &["RANDOMKEY"])
            .await
            .unwrap()
            .is_some()
    );
    let _: () = cmd(&mut con, &["FLUSHALL"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut con, &["DBSIZE"]).await.unwrap(), 0);
    assert_eq!(
        cmd::<Option<String>>(&mut con, &["RANDOMKEY"])
            .await
            .unwrap(),
        None
    );
}

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
