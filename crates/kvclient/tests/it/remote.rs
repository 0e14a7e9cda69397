//! The remote client against a real `redis-server` (Debian's), started by the
//! test on a free port and killed at the end. The same suite of operations is
//! what the embedded client is tested with, so both honour one contract.

use std::time::{Duration, Instant};

use kvclient::remote::{Remote, RemoteOptions};
use kvclient::{Error, KvClient};
use testkit::{RedisServer, free_port};

#[tokio::test]
async fn remote_honours_the_contract() {
    let redis = RedisServer::start();
    let url = redis.url();
    let store = Remote::connect(&url, RemoteOptions::default())
        .await
        .unwrap();
    assert!(store.set_nx(b"k", b"1", None).await.unwrap());
    assert!(!store.set_nx(b"k", b"2", None).await.unwrap());
    assert_eq!(store.get(b"k").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(store.incr_by(b"n", 5).await.unwrap(), 5);
    assert_eq!(store.incr_by(b"n", -2).await.unwrap(), 3);
    assert!(matches!(store.incr_by(b"k2", 1).await, Ok(1)));
    store.set(b"p:a*", b"x", None).await.unwrap();
    store.set(b"p:b", b"y", None).await.unwrap();
    store.set(b"q:c", b"z", None).await.unwrap();
    let pairs = store.scan_prefix(b"p:", 10).await.unwrap();
    assert_eq!(
        pairs,
        vec![
            (b"p:a*".to_vec(), b"x".to_vec()),
            (b"p:b".to_vec(), b"y".to_vec())
        ]
    );
    let literal = store.scan_prefix(b"p:a*", 10).await.unwrap();
    assert_eq!(
        literal.len(),
        1,
        "glob characters in a prefix match literally"
    );
    store
        .set(b"t", b"v", Some(Duration::from_millis(30)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(store.get(b"t").await.unwrap(), None);
    assert!(store.delete(b"k").await.unwrap());
    assert!(!store.delete(b"k").await.unwrap());
}

#[tokio::test]
async fn a_dead_store_is_unavailable_quickly_not_a_hang() {
    let redis = RedisServer::start();
    let url = redis.url();
    let options = RemoteOptions {
        timeout_ms: 300,
        ..Default::default()
    };
    let store = Remote::connect(&url, options).await.unwrap();
    drop(redis);
    let started = Instant::now();
    let result = store.get(b"k").await;
    assert!(matches!(result, Err(Error::Unavailable(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let refused = Remote::connect(
        &format!("redis://127.0.0.1:{}", free_port()),
        RemoteOptions::default(),
    )
    .await;
    assert!(matches!(refused, Err(Error::Unavailable(_))));
}
