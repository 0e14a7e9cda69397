//! The remote client against a real `redis-server` (Debian's), started by the
//! test on a free port and killed at the end. The same suite of operations is
//! what the embedded client is tested with, so both honour one contract.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kvclient::remote::{Remote, RemoteOptions};
use kvclient::{Error, KvClient};

struct RedisServer {
    child: Child,
    port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_redis() -> RedisServer {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test installs it: apt-get install redis-server)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    RedisServer { child, port }
}

#[tokio::test]
async fn remote_honours_the_contract() {
    let redis = start_redis();
    let url = format!("redis://127.0.0.1:{}", redis.port);
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
    let redis = start_redis();
    let url = format!("redis://127.0.0.1:{}", redis.port);
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
