//! `Replicated` against real redis-servers: reads go where `read_from`
//! says, writes to the primary, and in sentinel mode (our `kv::sentinel`)
//! the client follows a failover after the primary is killed, losing no
//! write that `WAIT 1` acknowledged.

use std::time::{Duration, Instant};

use kvclient::KvClient;
use kvclient::remote::RemoteOptions;
use kvclient::replicated::{ReadFrom, Replicated, Topology, wait_replicas};

fn addr(server: &testkit::RedisServer) -> String {
    format!("127.0.0.1:{}", server.port)
}

/// A replica of `primary` with its temporary files in `dir`.
fn replica_of(primary: &testkit::RedisServer, dir: &tempfile::TempDir) -> testkit::RedisServer {
    let port = primary.port.to_string();
    testkit::RedisServer::start_with(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--dir",
        dir.path().to_str().unwrap(),
    ])
}

fn until_synced(replica: &testkit::RedisServer) {
    let client = redis::Client::open(format!("redis://{}/", addr(replica))).unwrap();
    let mut con = client.get_connection().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut con)
            .unwrap();
        if info.contains("master_link_status:up") {
            return;
        }
        assert!(Instant::now() < deadline, "replica never synced");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_go_where_read_from_says() {
    let primary = testkit::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let replica = replica_of(&primary, &dir);
    until_synced(&replica);
    // A key only the replica has tells where a read went.
    let client = redis::Client::open(format!("redis://{}/", addr(&replica))).unwrap();
    let mut con = client.get_connection().unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("replica-read-only")
        .arg("no")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("SET")
        .arg("only-on-replica")
        .arg("r")
        .query::<()>(&mut con)
        .unwrap();
    let topology = Topology::Static {
        primary: addr(&primary),
        replicas: vec![addr(&replica)],
    };
    let options = RemoteOptions::default();
    let on_replica = Replicated::connect(topology.clone(), ReadFrom::Replica, options.clone())
        .await
        .unwrap();
    let on_primary = Replicated::connect(topology.clone(), ReadFrom::Primary, options.clone())
        .await
        .unwrap();
    let nearest = Replicated::connect(topology, ReadFrom::Nearest, options)
        .await
        .unwrap();
    assert_eq!(
        on_replica.get(b"only-on-replica").await.unwrap(),
        Some(b"r".to_vec())
    );
    assert_eq!(on_primary.get(b"only-on-replica").await.unwrap(), None);
    // Writes go to the primary whatever read_from says, and replicate.
    on_replica.set(b"w", b"1", None).await.unwrap();
    assert_eq!(wait_replicas(&on_replica, 1, 2000).await.unwrap(), 1);
    assert_eq!(on_primary.get(b"w").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(on_replica.get(b"w").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(nearest.get(b"w").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(on_replica.incr_by(b"n", 2).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sentinel_mode_follows_a_failover() {
    let primary = testkit::RedisServer::start();
    let primary_addr = addr(&primary);
    let dir = tempfile::tempdir().unwrap();
    let replica = replica_of(&primary, &dir);
    until_synced(&replica);
    let stop = tokio_util::sync::CancellationToken::new();
    let listeners: Vec<tokio::net::TcpListener> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        v
    };
    let sentinels: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    for listener in listeners {
        let me = listener.local_addr().unwrap().to_string();
        let config = kv::sentinel::SentinelConfig {
            master_name: "mymaster".into(),
            master_addr: primary_addr.clone(),
            quorum: 2,
            down_after_ms: 2000,
            failover_timeout_ms: 5000,
            peers: sentinels.iter().filter(|s| **s != me).cloned().collect(),
            announce: me,
        };
        tokio::spawn(kv::sentinel::serve(listener, config, stop.clone()));
    }
    let topology = Topology::Sentinel {
        sentinels: sentinels.clone(),
        name: "mymaster".into(),
    };
    let client = Replicated::connect(topology, ReadFrom::Primary, RemoteOptions::default())
        .await
        .unwrap();
    assert_eq!(client.primary_addr(), Some(primary_addr.clone()));
    // Let the sentinels find the replica before the primary dies.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let key = format!("k{i}");
        client.set(key.as_bytes(), b"v", None).await.unwrap();
        if wait_replicas(&client, 1, 1000).await.unwrap() >= 1 {
            acked.push(key);
        }
    }
    assert!(!acked.is_empty());
    drop(primary); // SIGKILL
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client.set(b"after", b"switch", None).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client never followed the failover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        client.primary_addr(),
        Some(addr(&replica)),
        "the replica was promoted"
    );
    for key in &acked {
        assert_eq!(
            client.get(key.as_bytes()).await.unwrap(),
            Some(b"v".to_vec()),
            "{key} lost"
        );
    }
    stop.cancel();
}
