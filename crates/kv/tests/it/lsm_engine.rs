//! The durable engine: Redis semantics on the LSM, restarts, and `kill -9`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, WAIT};
use kv::config::{EngineKind, FsyncPolicy};
use redis::AsyncCommands;

async fn lsm_server(dir: &Path, fsync: FsyncPolicy) -> TestServer {
    let dir = dir.to_path_buf();
    TestServer::with(move |c| {
        c.engine = EngineKind::Lsm;
        c.data_dir = dir;
        c.fsync = fsync;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_work_on_the_lsm_engine_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = lsm_server(dir.path(), FsyncPolicy::Everysec).await;
    let mut con = server.client().await;
    for i in 0..300 {
        let _: () = con.set(format!("k{i:03}"), i).await.unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg("ttl")
        .arg("v")
        .arg("EX")
        .arg(1000)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("gone")
        .arg("v")
        .arg("PX")
        .arg(30)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(con.incr::<_, _, i64>("k001", 5).await.unwrap(), 6);
    assert_eq!(con.append::<_, _, i64>("k002", "x").await.unwrap(), 2);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("k*")
            .arg("COUNT")
            .arg(50)
            .query_async(&mut con)
            .await
            .unwrap();
        seen.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 300);
    common::eventually(|| {
        let mut con = con.clone();
        async move {
            redis::cmd("DBSIZE")
                .query_async::<i64>(&mut con)
                .await
                .unwrap()
                == 301
        }
    })
    .await;
    assert_eq!(con.del::<_, i64>("k299").await.unwrap(), 1);
    server.stop().await.unwrap();

    let server = lsm_server(dir.path(), FsyncPolicy::Everysec).await;
    let mut con = server.client().await;
    assert_eq!(
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut con)
            .await
            .unwrap(),
        300
    );
    assert_eq!(con.get::<_, i64>("k001").await.unwrap(), 6);
    assert_eq!(con.get::<_, String>("k002").await.unwrap(), "2x");
    assert_eq!(con.get::<_, Option<String>>("k299").await.unwrap(), None);
    let ttl: i64 = con.ttl("ttl").await.unwrap();
    assert!((990..=1000).contains(&ttl), "TTL survives restart: {ttl}");
    let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
    assert_eq!(
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut con)
            .await
            .unwrap(),
        0
    );
    assert_eq!(con.get::<_, Option<String>>("k001").await.unwrap(), None);
}

/// The lsm engine stores values up to 64 MiB; `proto-max-bulk-len` said
/// 512 MB, so a client learned the limit from a storage error naming the
/// wrong size. Now the setting is the engine's limit, and writes over it get
/// Redis's own errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proto_max_bulk_len_is_the_lsm_engines_value_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = lsm_server(dir.path(), FsyncPolicy::No).await;
    let mut con = server.client().await;
    let limit: (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg("proto-max-bulk-len")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(limit.1, (64 << 20).to_string());
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("proto-max-bulk-len")
        .arg("512mb")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "argument must be between 1048576 and 67108864 inclusive (the largest value this engine stores)"
        ),
        "{err}"
    );
    let err = redis::cmd("SETRANGE")
        .arg("k")
        .arg(64 << 20)
        .arg("x")
        .query_async::<i64>(&mut con)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("string exceeds maximum allowed size (proto-max-bulk-len)"),
        "{err}"
    );
    server.stop().await.unwrap();

    // Asking for more than the engine stores is refused at start.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = kv::Config {
        engine: EngineKind::Lsm,
        data_dir: dir.path().to_path_buf(),
        proto_max_bulk_len: 100 << 20,
        ..kv::Config::default()
    };
    let ctx = service::SystemContext::new(tokio_util::sync::CancellationToken::new());
    let err = kv::serve(listener, config, kv::new_metrics(), ctx)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("stores values of at most 67108864 bytes"),
        "{err}"
    );
}

/// When `serve` returns, the engine is closed: a server restarted on the
/// same directory at once opens it. (A connection left the client list a
/// moment before its task dropped the state, so the directory's lock was
/// sometimes still held: "locked by another process".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_releases_its_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..10 {
        let server = lsm_server(dir.path(), FsyncPolicy::Always).await;
        let mut con = server.client().await; // still open during the stop
        let _: () = con.set(format!("k{round}"), round).await.unwrap();
        server.stop().await.unwrap();
        let config = kv::Config {
            engine: EngineKind::Lsm,
            data_dir: dir.path().to_path_buf(),
            ..kv::Config::default()
        };
        let reopened = tokio::task::spawn_blocking(move || kv::Server::open(config).map(drop))
            .await
            .unwrap();
        assert!(reopened.is_ok(), "round {round}: {reopened:?}");
    }
}

/// Kills the child process on drop, so a failing test leaves nothing behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this test binary again as a server process on `dir` (see
/// `lsm_child_server`) and waits for it to announce its port.
fn spawn_child(dir: &Path) -> (ChildGuard, u16) {
    let port_file = dir.join("port");
    let _ = std::fs::remove_file(&port_file);
    let child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "lsm_engine::lsm_child_server",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KV_CHILD_DATA_DIR", dir.join("data"))
        .env("KV_CHILD_PORT_FILE", &port_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child server");
    let guard = ChildGuard(child);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return (guard, port);
        }
        assert!(Instant::now() < deadline, "child server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9_with_fsync_always() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn_child(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut acknowledged = Vec::new();
    for i in 0..200 {
        let key = format!("key:{i}");
        let _: () = con.set(&key, format!("value:{i}")).await.unwrap();
        acknowledged.push(key);
    }
    let _: i64 = con.incr("counter", 7).await.unwrap();
    child.0.kill().unwrap(); // SIGKILL: no shutdown code runs
    child.0.wait().unwrap();

    let (_child, port) = spawn_child(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for (i, key) in acknowledged.iter().enumerate() {
        let value: Option<String> = con.get(key).await.unwrap();
        assert_eq!(
            value,
            Some(format!("value:{i}")),
            "{key} lost after kill -9"
        );
    }
    assert_eq!(con.get::<_, i64>("counter").await.unwrap(), 7);
    assert_eq!(
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut con)
            .await
            .unwrap(),
        201
    );
}

/// Twenty clients write at once, so their commits share group fsyncs after
/// the keyspace lock is released; SIGKILL lands mid-load. Every write any
/// client saw acknowledged is there after the restart, with its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_acknowledged_writes_survive_kill_9() {
    const CLIENTS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn_child(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for c in 0..CLIENTS {
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let (key, value) = (format!("c{c}:{i}"), format!("v{c}:{i}"));
                let reply: redis::RedisResult<()> = con.set(&key, &value).await;
                if reply.is_err() {
                    break; // the server is gone; this write's outcome is unknown
                }
                acknowledged.push((key, value));
                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            acknowledged
        }));
    }
    // Kill once the load is well under way (bounded wait, not a timing).
    let deadline = Instant::now() + WAIT;
    while acked.load(std::sync::atomic::Ordering::Relaxed) < 20 * CLIENTS {
        assert!(Instant::now() < deadline, "the clients made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(tokio::time::timeout(WAIT, writer).await.unwrap().unwrap());
    }
    assert!(acknowledged.len() >= 20 * CLIENTS);

    let (_child, port) = spawn_child(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for chunk in acknowledged.chunks(500) {
        let keys: Vec<&String> = chunk.iter().map(|(k, _)| k).collect();
        let values: Vec<Option<String>> = con.mget(&keys).await.unwrap();
        for ((key, value), found) in chunk.iter().zip(values) {
            assert_eq!(found.as_ref(), Some(value), "{key} lost after kill -9");
        }
    }
}

/// A stream is a durable work queue: every `XADD` acknowledged before a
/// SIGKILL (landing mid-load) is there after the restart with its fields,
/// in order, and so is the consumer group's acknowledged state (what
/// `XREADGROUP` delivered and `XACK` confirmed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_stream_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn_child(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let x = |words: &str| {
        let mut c = redis::cmd(words.split(' ').next().unwrap());
        c.arg(words.split(' ').skip(1).collect::<Vec<_>>());
        c
    };
    x("XGROUP CREATE q g $ MKSTREAM")
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let mut acked: Vec<(String, String)> = Vec::new();
    for i in 0..10 {
        let id: String = x(&format!("XADD q * n {i}"))
            .query_async(&mut con)
            .await
            .unwrap();
        acked.push((id, i.to_string()));
    }
    let read: redis::Value = x("XREADGROUP GROUP g c COUNT 10 STREAMS q >")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(matches!(read, redis::Value::Array(_)));
    let done: i64 = x(&format!("XACK q g {} {}", acked[0].0, acked[1].0))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(done, 2);
    let writer = tokio::spawn(async move {
        for i in 10.. {
            let reply: redis::RedisResult<String> =
                x(&format!("XADD q * n {i}")).query_async(&mut con).await;
            match reply {
                Ok(id) => acked.push((id, i.to_string())),
                Err(_) => break, // the server is gone; this write's outcome is unknown
            }
        }
        acked
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let acked = tokio::time::timeout(WAIT, writer).await.unwrap().unwrap();
    assert!(acked.len() > 10, "no XADD finished during the load");

    let (_child, port) = spawn_child(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let found: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("q")
        .arg("-")
        .arg(&acked.last().unwrap().0)
        .query_async(&mut con)
        .await
        .unwrap();
    let found: Vec<(String, String)> = found
        .into_iter()
        .map(|(id, mut fields)| (id, fields.pop().map(|(_, v)| v).unwrap_or_default()))
        .collect();
    assert_eq!(
        found, acked,
        "acknowledged entries lost or changed after kill -9"
    );
    let pending: (i64, String, String, redis::Value) =
        x("XPENDING q g").query_async(&mut con).await.unwrap();
    assert_eq!(
        (pending.0, &pending.1, &pending.2),
        (8, &acked[2].0, &acked[9].0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mset_cut_by_kill_9_leaves_all_or_none_of_its_keys() {
    const KEYS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn_child(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    // Each MSET writes generation `g` to every key; the kill lands while the
    // next one is being written (one commit-log record per key would let it
    // land between two keys).
    let writer = tokio::spawn(async move {
        let mut acknowledged = 0u64;
        for g in 1u64.. {
            let mut cmd = redis::cmd("MSET");
            for k in 0..KEYS {
                cmd.arg(format!("gen:{k}")).arg(g);
            }
            if cmd.query_async::<()>(&mut con).await.is_err() {
                break;
            }
            acknowledged = g;
        }
        acknowledged
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let acknowledged = tokio::time::timeout(WAIT, writer).await.unwrap().unwrap();
    assert!(acknowledged > 0, "no MSET finished before the kill");

    let (_child, port) = spawn_child(dir.path());
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = (0..KEYS).map(|k| format!("gen:{k}")).collect();
    let values: Vec<u64> = con.mget(&keys).await.unwrap();
    assert!(
        values.iter().all(|v| *v == values[0]),
        "a torn MSET survived: {values:?}"
    );
    assert!(
        values[0] >= acknowledged,
        "acknowledged generation {acknowledged} lost: {}",
        values[0]
    );
    assert_eq!(
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut con)
            .await
            .unwrap(),
        KEYS as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_is_one_batch_that_sees_its_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = lsm_server(dir.path(), FsyncPolicy::Always).await;
    let mut con = server.client().await;
    let _: () = con.set("old", "1").await.unwrap();
    type Replies = (
        String,
        i64,
        i64,
        i64,
        i64,
        (u64, Vec<String>),
        (String, i64),
    );
    let (get, incr, deleted, exists, size, scan, exec): Replies = redis::pipe()
        .cmd("SET")
        .arg("a")
        .arg("1")
        .ignore()
        .cmd("GET")
        .arg("a")
        .cmd("INCRBY")
        .arg("a")
        .arg(41)
        .cmd("DEL")
        .arg("old")
        .arg("a")
        .arg("missing")
        .cmd("MSET")
        .arg("b")
        .arg("2")
        .arg("c")
        .arg("3")
        .ignore()
        .cmd("EXISTS")
        .arg("a")
        .arg("b")
        .arg("c")
        .arg("old")
        .cmd("DBSIZE")
        .cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(100)
        .cmd("MULTI")
        .ignore()
        .cmd("SET")
        .arg("d")
        .arg("4")
        .ignore()
        .cmd("INCR")
        .arg("b")
        .ignore()
        .cmd("EXEC")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        (get.as_str(), incr, deleted, exists, size),
        ("1", 42, 2, 2, 2)
    );
    let mut scanned = scan.1;
    scanned.sort();
    assert_eq!(
        (scan.0, scanned),
        (0, vec!["b".to_string(), "c".to_string()])
    );
    assert_eq!(exec, ("OK".to_string(), 3));
    // A command that fails halfway writes nothing (the second key is over
    // the LSM's 64 KiB key limit).
    let huge_key = "k".repeat((64 << 10) + 1);
    let err = redis::cmd("MSET")
        .arg("e")
        .arg("5")
        .arg(&huge_key)
        .arg("6")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeds the lsm engine's key limit of 65536 bytes"),
        "{err}"
    );
    server.stop().await.unwrap();

    let server = lsm_server(dir.path(), FsyncPolicy::Always).await;
    let mut con = server.client().await;
    let keys: Vec<Option<String>> = con
        .mget(vec!["a", "b", "c", "d", "e", "old"])
        .await
        .unwrap();
    let expected = [None, Some("3"), Some("3"), Some("4"), None, None];
    assert_eq!(keys, expected.map(|v| v.map(String::from)).to_vec());
    assert_eq!(
        redis::cmd("DBSIZE")
            .query_async::<i64>(&mut con)
            .await
            .unwrap(),
        3
    );
}

/// Not a test: the server process `every_acknowledged_write_survives_kill_9`
/// starts and kills. Runs only when `KV_CHILD_DATA_DIR` is set.
#[test]
#[ignore = "helper process for the kill -9 test"]
fn lsm_child_server() {
    let Some(data_dir) = std::env::var_os("KV_CHILD_DATA_DIR").map(PathBuf::from) else {
        return;
    };
    let port_file = PathBuf::from(std::env::var_os("KV_CHILD_PORT_FILE").unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = kv::Config {
            engine: EngineKind::Lsm,
            data_dir,
            fsync: FsyncPolicy::Always,
            ..kv::Config::default()
        };
        let ctx = service::SystemContext::new(Default::default());
        let server = tokio::spawn(kv::serve(listener, config, kv::new_metrics(), ctx));
        // Announce the port only once the engine has had a moment to open.
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::write(&port_file, port.to_string()).unwrap();
        // Exit if the parent test process is gone (bounded life either way).
        let _ = tokio::time::timeout(Duration::from_secs(120), server).await;
    });
}
