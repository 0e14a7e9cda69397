//! The server driven by the `redis` crate, a real third-party client: the
//! keyspace (strings, errors, TTLs, keys and SCAN). Transactions, pub/sub,
//! AUTH, eviction and introspection are in `redis_client_session.rs`.

use crate::common;

use common::{TestServer, cmd, error_text, eventually};
use redis::AsyncCommands;

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
