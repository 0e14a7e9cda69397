//! Replication against real redis-servers, both ways: our replica of a
//! Redis primary and a `redis-server --replicaof` of ours converge under a
//! write load (every key and type compared), a dropped link resumes from
//! the backlog (partial resync, no second full sync), a corrupt snapshot is
//! refused, and the primary's rules (`WAIT`, read-only replicas,
//! `min-replicas-to-write`) hold.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use kv::config::EngineKind;

use crate::common::TestServer;
use crate::common::dataset::{assert_same, connect, fill_every_type, fill_streams, snapshot};

/// Our server in its own runtime (the tests below are blocking).
struct Ours {
    server: TestServer,
    _runtime: tokio::runtime::Runtime,
}

impl Ours {
    fn start(tweak: impl FnOnce(&mut kv::Config)) -> Ours {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(TestServer::with(|c| {
            c.engine = EngineKind::Memory;
            tweak(c);
        }));
        Ours {
            server,
            _runtime: runtime,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

fn redis_addr(redis: &testkit::RedisServer) -> SocketAddr {
    format!("127.0.0.1:{}", redis.port).parse().unwrap()
}

/// One field of `INFO <section>`.
fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let text: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
}

/// Waits (bounded) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the replica's link is up and its offset is the primary's.
fn converge(primary: &mut redis::Connection, replica: &mut redis::Connection) {
    eventually("the replica to catch up", || {
        let up = info_field(replica, "replication", "master_link_status").as_deref() == Some("up");
        let want = info_field(primary, "replication", "master_repl_offset");
        let got = info_field(replica, "replication", "slave_repl_offset");
        up && want.is_some() && want == got
    });
}

/// A seeded mix of writes of every type over a small key space (so keys
/// are overwritten, popped, expired, deleted and hit WRONGTYPE).
fn write_load(con: &mut redis::Connection, seed: u64, commands: usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pipe = redis::pipe();
    for i in 0..commands {
        let k = format!("load:{}", rng.usize(..40));
        let n = rng.u32(..1000).to_string();
        let c = match rng.usize(..16) {
            0 => redis::cmd("SET").arg(&k).arg(&n).clone(),
            1 => redis::cmd("INCR").arg(&k).clone(),
            2 => redis::cmd("RPUSH").arg(&k).arg(&n).arg("x").clone(),
            3 => redis::cmd("LPOP").arg(&k).clone(),
            4 => redis::cmd("HSET").arg(&k).arg(&n).arg(i).clone(),
            5 => redis::cmd("HDEL").arg(&k).arg(&n).clone(),
            6 => redis::cmd("SADD").arg(&k).arg(&n).arg(i).clone(),
            7 => redis::cmd("SPOP").arg(&k).clone(),
            8 => redis::cmd("ZADD")
                .arg(&k)
                .arg(rng.f64() * 100.0)
                .arg(&n)
                .clone(),
            9 => redis::cmd("ZINCRBY").arg(&k).arg("1.5").arg(&n).clone(),
            10 => redis::cmd("DEL").arg(&k).clone(),
            11 => redis::cmd("EXPIRE").arg(&k).arg(1000).clone(),
            12 => redis::cmd("SET").arg(&k).arg(&n).arg("EX").arg(500).clone(),
            13 => redis::cmd("APPEND").arg(&k).arg(&n).clone(),
            14 => redis::cmd("LTRIM").arg(&k).arg(0).arg(3).clone(),
            _ => redis::cmd("ZREM").arg(&k).arg(&n).clone(),
        };
        pipe.add_command(c).ignore();
        if i % 100 == 99 {
            // Errors (WRONGTYPE) are part of the load; they replicate as nothing.
            let _ = pipe.query::<()>(con);
            pipe = redis::pipe();
        }
    }
    let _ = pipe.query::<()>(con);
}

/// What the primary holds before a replica's full sync: every type,
/// streams included. Streams go through the full sync's RDB only: a
/// stream's times (delivery, seen) do not yet replicate exactly by command.
fn fill_before_sync(primary: &mut redis::Connection) {
    fill_every_type(primary, "before:");
    fill_streams(primary, "before:");
}

/// Writes every type and a load (`seed`) through the live link, then
/// compares the two servers key by key.
fn write_after_sync_and_compare(
    primary: &mut redis::Connection,
    replica: &mut redis::Connection,
    seed: u64,
    what: &str,
) {
    fill_every_type(primary, "after:");
    write_load(primary, seed, 3000);
    converge(primary, replica);
    assert_same(&snapshot(replica), &snapshot(primary), what);
}

/// Which end of a replication link drops it.
enum Side {
    Primary,
    Replica,
}

/// Drops the link (`CLIENT KILL TYPE replica` on the primary, or `TYPE
/// master` on the replica), writes more (`seed`), and checks the replica
/// came back by a partial resync alone and holds the primary's data.
fn drop_link_and_resume(
    primary: &mut redis::Connection,
    replica: &mut redis::Connection,
    side: Side,
    seed: u64,
) {
    let full_before = info_field(primary, "stats", "sync_full");
    let (con, kind) = match side {
        Side::Primary => (&mut *primary, "replica"),
        Side::Replica => (&mut *replica, "master"),
    };
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg(kind)
        .query::<()>(con)
        .unwrap();
    write_load(primary, seed, 500);
    converge(primary, replica);
    assert_eq!(
        info_field(primary, "stats", "sync_full"),
        full_before,
        "no second full sync"
    );
    assert_eq!(
        info_field(primary, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_same(
        &snapshot(replica),
        &snapshot(primary),
        "after the partial resync",
    );
}

#[test]
fn our_replica_of_redis_converges_and_resumes_partially() {
    let redis = testkit::RedisServer::start();
    let mut primary = connect(redis_addr(&redis));
    fill_before_sync(&mut primary);
    let ours = Ours::start(|c| c.replicaof = format!("127.0.0.1 {}", redis.port));
    let mut replica = connect(ours.addr());
    write_load(&mut primary, 1, 3000);
    converge(&mut primary, &mut replica);
    write_after_sync_and_compare(&mut primary, &mut replica, 2, "our replica of Redis");

    // Reads work, writes are refused on a read-only replica.
    let refused: redis::RedisResult<()> = redis::cmd("SET").arg("x").arg("1").query(&mut replica);
    assert_eq!(refused.unwrap_err().kind(), redis::ErrorKind::ReadOnly);
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut replica).unwrap();
    assert_eq!(role[0], redis::Value::BulkString(b"slave".to_vec()));

    // Drop the link from Redis's side: we come back with PSYNC and Redis
    // sends only what we missed.
    drop_link_and_resume(&mut primary, &mut replica, Side::Primary, 3);

    // REPLICAOF NO ONE: a primary again, writable, keeping the data.
    redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query::<()>(&mut replica)
        .unwrap();
    redis::cmd("SET")
        .arg("x")
        .arg("1")
        .query::<()>(&mut replica)
        .unwrap();
    assert_eq!(
        info_field(&mut replica, "replication", "role").as_deref(),
        Some("master")
    );
}

#[test]
fn redis_replica_of_ours_converges_and_resumes_partially() {
    let ours = Ours::start(|_| {});
    let mut primary = connect(ours.addr());
    fill_before_sync(&mut primary);
    write_load(&mut primary, 4, 2000);
    let port = ours.addr().port().to_string();
    // A disk-based full sync writes a temporary file: keep it out of the repo.
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let redis =
        testkit::RedisServer::start_with(&["--replicaof", "127.0.0.1", &port, "--dir", dir_arg]);
    let mut replica = connect(redis_addr(&redis));
    converge(&mut primary, &mut replica);
    write_after_sync_and_compare(&mut primary, &mut replica, 5, "Redis replica of ours");

    // WAIT counts the Redis replica's acknowledgement.
    redis::cmd("SET")
        .arg("acked")
        .arg("1")
        .query::<()>(&mut primary)
        .unwrap();
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut primary)
        .unwrap();
    assert_eq!(acked, 1);
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut primary).unwrap();
    assert_eq!(role[0], redis::Value::BulkString(b"master".to_vec()));
    assert_eq!(
        info_field(&mut primary, "replication", "connected_slaves").as_deref(),
        Some("1")
    );

    // A dropped link resumes from our backlog.
    drop_link_and_resume(&mut primary, &mut replica, Side::Replica, 6);

    // min-replicas-to-write: one good replica is enough, two are not.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(2)
        .query::<()>(&mut primary)
        .unwrap();
    let refused: redis::RedisResult<()> = redis::cmd("SET").arg("k").arg("v").query(&mut primary);
    assert!(refused.unwrap_err().to_string().contains("NOREPLICAS"));
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(1)
        .query::<()>(&mut primary)
        .unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut primary)
        .unwrap();
}

#[test]
fn a_corrupt_snapshot_is_refused_and_the_data_kept() {
    // A fake primary that completes the handshake and sends a damaged RDB.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    let mut writer = kv::rdb::file::FileWriter::new(&[], 2, 0);
    writer.entry(b"a", &kv::rdb::RdbValue::String("1".into()), None);
    let members = (0..100)
        .map(|i| bytes::Bytes::from(format!("m{i}")))
        .collect();
    writer.entry(b"s", &kv::rdb::RdbValue::Set(members), None);
    let good = writer.finish();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x5a;
    let feeder = std::thread::spawn(move || {
        let (stream, _) = fake.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        for reply in ["+PONG\r\n", "+OK\r\n", "+OK\r\n"] {
            let mut line = String::new();
            // Each command is one RESP array: read its lines until the last argument.
            reader.read_line(&mut line).unwrap();
            let args: usize = line.trim().trim_start_matches('*').parse().unwrap();
            for _ in 0..args * 2 {
                line.clear();
                reader.read_line(&mut line).unwrap();
            }
            writer.write_all(reply.as_bytes()).unwrap();
        }
        writer
            .write_all(format!("+FULLRESYNC {} 0\r\n${}\r\n", "a".repeat(40), bad.len()).as_bytes())
            .unwrap();
        writer.write_all(&bad).unwrap();
        // Hold the socket open a moment; the replica must drop it itself.
        std::thread::sleep(Duration::from_millis(500));
    });
    let ours = Ours::start(|_| {});
    let mut con = connect(ours.addr());
    redis::cmd("SET")
        .arg("mine")
        .arg("kept")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(fake_port)
        .query::<()>(&mut con)
        .unwrap();
    feeder.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let kept: Option<String> = redis::cmd("GET").arg("mine").query(&mut con).unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("kept"),
        "a refused snapshot leaves the data alone"
    );
    assert_eq!(
        info_field(&mut con, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 1);
}
