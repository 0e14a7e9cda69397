//! `kv::sentinel`: three sentinels watch our kv primary (a real process,
//! killed with SIGKILL) and two kv replicas; a replica is promoted, the
//! other follows it, `+switch-master` is published, redis-py's `Sentinel`
//! client and a Rust writer keep writing through the switch, no write
//! acknowledged by `WAIT 1` is lost, and the old primary, restarted,
//! rejoins as a replica of the new one.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kv::config::EngineKind;
use kv::sentinel::SentinelConfig;
use tokio_util::sync::CancellationToken;

use crate::common::TestServer;
use crate::common::dataset::connect;

const PRIMARY_PORT_ENV: &str = "KV_SENTINEL_PRIMARY_PORT";

/// The primary, when re-executed as a child (does nothing otherwise).
#[test]
fn sentinel_primary_child() {
    let Ok(port) = std::env::var(PRIMARY_PORT_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let port: u16 = port.parse().unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let config = kv::Config {
            engine: EngineKind::Memory,
            ..kv::Config::default()
        };
        println!("ready");
        let ctx = service::SystemContext::new(CancellationToken::new());
        kv::serve(listener, config, kv::new_metrics(), ctx)
            .await
            .unwrap();
    });
}

fn start_primary(port: u16) -> testkit::ChildGuard {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "--exact",
            "sentinel::sentinel_primary_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PRIMARY_PORT_ENV, port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = testkit::ChildGuard(child);
    testkit::wait_for_port(port, Duration::from_secs(20), "kv primary child");
    guard
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn master_addr(sentinel: SocketAddr) -> Option<String> {
    let client = redis::Client::open(format!("redis://{sentinel}/")).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let reply: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg("mymaster")
        .query(&mut con)
        .ok()?;
    reply.map(|(h, p)| format!("{h}:{p}"))
}

fn role(addr: &str) -> Option<Vec<redis::Value>> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    redis::cmd("ROLE").query(&mut con).ok()
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// Writes `rust:{i}` with SET + WAIT 1 through whatever primary the
/// sentinels name, until `stop`; returns the acknowledged keys and how
/// many were acknowledged after the first failure.
fn rust_writer(
    sentinels: Vec<SocketAddr>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<String>, usize) {
    let (mut acked, mut after_failure, mut failed) = (Vec::new(), 0, false);
    let mut con: Option<redis::Connection> = None;
    let mut i = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if con.is_none() {
            let addr = sentinels.iter().find_map(|s| master_addr(*s));
            con = addr.and_then(|a| {
                let client = redis::Client::open(format!("redis://{a}/")).ok()?;
                let c = client
                    .get_connection_with_timeout(Duration::from_millis(500))
                    .ok()?;
                c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                Some(c)
            });
            if con.is_none() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let c = con.as_mut().unwrap();
        let key = format!("rust:{i}");
        i += 1;
        let written: redis::RedisResult<i64> = redis::cmd("SET")
            .arg(&key)
            .arg(&key)
            .query::<()>(c)
            .and_then(|()| redis::cmd("WAIT").arg(1).arg(1000).query(c));
        match written {
            Ok(n) if n >= 1 => {
                acked.push(key);
                after_failure += usize::from(failed);
            }
            Ok(_) => {}
            Err(_) => {
                failed = true;
                con = None;
            }
        }
    }
    (acked, after_failure)
}

#[test]
fn three_sentinels_fail_over_when_the_primary_is_killed() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let primary_port = testkit::free_port();
    let mut primary = Some(start_primary(primary_port));
    let primary_addr = format!("127.0.0.1:{primary_port}");
    let replicas: Vec<TestServer> = (0..2)
        .map(|_| {
            runtime.block_on(TestServer::with(|c| {
                c.engine = EngineKind::Memory;
                c.replicaof = format!("127.0.0.1 {primary_port}");
            }))
        })
        .collect();
    let replica_addrs: Vec<String> = replicas.iter().map(|r| r.addr.to_string()).collect();

    // Three sentinels, each knowing the other two; quorum 2.
    let stop = CancellationToken::new();
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let sentinels: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    for (i, listener) in listeners.into_iter().enumerate() {
        listener.set_nonblocking(true).unwrap();
        let config = SentinelConfig {
            master_name: "mymaster".into(),
            master_addr: primary_addr.clone(),
            quorum: 2,
            down_after_ms: 2000,
            failover_timeout_ms: 5000,
            peers: sentinels
                .iter()
                .filter(|s| **s != sentinels[i])
                .map(|s| s.to_string())
                .collect(),
            announce: sentinels[i].to_string(),
        };
        let stop = stop.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            kv::sentinel::serve(listener, config, stop).await.unwrap();
        });
    }

    // Every sentinel knows both replicas, the quorum is reachable.
    eventually("sentinels to discover the replicas", || {
        sentinels.iter().all(|s| {
            let mut con = connect(*s);
            let found: Vec<redis::Value> = redis::cmd("SENTINEL")
                .arg("replicas")
                .arg("mymaster")
                .query(&mut con)
                .unwrap();
            found.len() == 2
        })
    });
    let mut con = connect(sentinels[0]);
    let quorum: String = redis::cmd("SENTINEL")
        .arg("ckquorum")
        .arg("mymaster")
        .query(&mut con)
        .unwrap();
    assert!(quorum.starts_with("OK 3 usable"), "{quorum}");

    // Subscribers to +switch-master, then writers: redis-py and ours.
    let mut pubsub_con = connect(sentinels[1]);
    pubsub_con
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut pubsub = pubsub_con.as_pubsub();
    pubsub.subscribe("+switch-master").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/sentinel_writer.py");
    let mut py_args = vec![script.to_string(), "12".into()];
    py_args.extend(sentinels.iter().map(|s| s.port().to_string()));
    let python = Command::new("python3")
        .args(&py_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stop_writer = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (sentinels, stop) = (sentinels.clone(), stop_writer.clone());
        std::thread::spawn(move || rust_writer(sentinels, stop))
    };
    std::thread::sleep(Duration::from_secs(2));

    // kill -9 the primary.
    let killed_at = Instant::now();
    drop(primary.take());
    let message = pubsub.get_message().unwrap();
    let payload: String = message.get_payload().unwrap();
    let words: Vec<&str> = payload.split(' ').collect();
    assert_eq!(
        &words[..3],
        ["mymaster", "127.0.0.1", &primary_port.to_string()[..]],
        "{payload}"
    );
    let new_primary = format!("{}:{}", words[3], words[4]);
    assert!(
        replica_addrs.contains(&new_primary),
        "{new_primary} is one of the replicas"
    );
    eprintln!("failover took {:?}", killed_at.elapsed());
    drop(pubsub);
    eventually("every sentinel to name the new primary", || {
        sentinels
            .iter()
            .all(|s| master_addr(*s).as_deref() == Some(new_primary.as_str()))
    });
    let other = replica_addrs
        .iter()
        .find(|a| **a != new_primary)
        .unwrap()
        .clone();
    eventually("the other replica to follow the new primary", || {
        role(&other).is_some_and(|r| {
            text(&r[0]) == "slave"
                && format!("{}:{}", text(&r[1]), text(&r[2])) == new_primary
                && text(&r[3]) == "connected"
        })
    });

    // Both writers went on after the switch, and nothing WAIT acknowledged is lost.
    let py = python.wait_with_output().unwrap();
    assert!(py.status.success());
    let report: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    stop_writer.store(true, std::sync::atomic::Ordering::Relaxed);
    let (rust_acked, rust_after) = writer.join().unwrap();
    assert!(
        report["after_failure"].as_u64().unwrap() > 0,
        "redis-py wrote after the switch: {report}"
    );
    assert!(rust_after > 0, "the Rust writer wrote after the switch");
    let mut con = connect(new_primary.parse().unwrap());
    let py_acked: Vec<String> = report["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    for key in py_acked.iter().chain(&rust_acked) {
        let value: Option<String> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
        assert_eq!(
            value.as_deref(),
            Some(key.as_str()),
            "acknowledged write {key} lost"
        );
    }

    // The old primary comes back (empty) and is made a replica of the new one.
    let _back = start_primary(primary_port);
    eventually("the old primary to rejoin as a replica", || {
        role(&primary_addr).is_some_and(|r| {
            text(&r[0]) == "slave"
                && format!("{}:{}", text(&r[1]), text(&r[2])) == new_primary
                && text(&r[3]) == "connected"
        })
    });
    let mut old = connect(primary_addr.parse().unwrap());
    let last = rust_acked.last().unwrap();
    let value: Option<String> = redis::cmd("GET").arg(last).query(&mut old).unwrap();
    assert_eq!(
        value.as_deref(),
        Some(last.as_str()),
        "the rejoined replica has the data"
    );
    stop.cancel();
}
