//! Machine-id leases and the ticket server against a real `redis-server`
//! (apt package `redis-server`). Skipped with a note when it is not installed.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idgen::compare::{CompareOptions, compare};
use idgen::http::{ServerConfig, build_generator};
use idgen::{Layout, Lease, LeaseConfig, LeaseError, LeaseStore, RespLeaseStore};

/// A redis-server child on a free loopback port, killed on drop (also on panic).
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    /// Starts one, or `None` when redis-server is not installed.
    fn start(extra: &[&str]) -> Option<Redis> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let spawned = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        };
        let redis = Redis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let client = redis::Client::open(redis.url.as_str()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return Some(redis);
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn store(redis: &Redis) -> Arc<dyn LeaseStore> {
    Arc::new(RespLeaseStore::open(&redis.url, Duration::from_secs(2)).unwrap())
}

fn no_renewal(ttl_ms: u64) -> LeaseConfig {
    LeaseConfig {
        ttl_ms,
        ..LeaseConfig::default()
    }
}

/// The whole lease life cycle on one server: distinct ids, exhaustion,
/// renewal, release, and takeover after expiry.
fn lease_life_cycle(redis: &Redis) {
    let layout = Layout::new(41, 10, 1, 11).unwrap(); // 2 machine ids
    let a = Lease::acquire_manual(store(redis), &no_renewal(60_000), layout, 1).unwrap();
    let b = Lease::acquire_manual(store(redis), &no_renewal(60_000), layout, 1).unwrap();
    assert_ne!(
        a.machine(),
        b.machine(),
        "two live generators, two machine ids"
    );
    let full = Lease::acquire_manual(store(redis), &no_renewal(60_000), layout, 1).unwrap_err();
    assert!(
        matches!(full, LeaseError::AllTaken { count: 2, .. }),
        "{full}"
    );
    a.renew_now().unwrap();
    drop(a); // Releases its key.
    let c = Lease::acquire_manual(store(redis), &no_renewal(60_000), layout, 1).unwrap();
    assert_ne!(c.machine(), b.machine());

    // Takeover: a short-lived lease that is never renewed expires in Redis.
    let single = Layout::new(41, 10, 0, 12).unwrap();
    let old = Lease::acquire_manual(store(redis), &no_renewal(200), single, 2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = loop {
        match Lease::acquire_manual(store(redis), &no_renewal(60_000), single, 2) {
            Ok(lease) => break lease,
            Err(LeaseError::AllTaken { .. }) => {
                assert!(Instant::now() < deadline, "lease never expired");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(new.key(), old.key());
    assert!(matches!(old.renew_now(), Err(LeaseError::Lost { .. })));
    drop(old); // Must not delete the new owner's key.
    new.renew_now().unwrap();
}

#[test]
fn leases_on_redis_with_lua() {
    let Some(redis) = Redis::start(&[]) else {
        return;
    };
    lease_life_cycle(&redis);
}

#[test]
fn leases_on_a_server_without_eval_use_the_fallback() {
    // Our own kv server may lack EVAL: rename it away to prove the fallback.
    let Some(redis) = Redis::start(&["--rename-command", "EVAL", ""]) else {
        return;
    };
    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let refused = redis::cmd("EVAL")
        .arg("return 1")
        .arg(0)
        .query::<i64>(&mut conn);
    assert!(refused.is_err(), "EVAL should be disabled");
    lease_life_cycle(&redis);
}

#[test]
fn an_unreachable_store_fails_fast_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Arc::new(
        RespLeaseStore::open(&format!("redis://127.0.0.1:{port}"), Duration::from_secs(1)).unwrap(),
    );
    let err = Lease::acquire(store, &LeaseConfig::default(), Layout::TWITTER, 0).unwrap_err();
    assert!(matches!(err, LeaseError::Store(_)), "{err}");
}

#[test]
fn the_id_service_leases_its_machine_id() {
    let Some(redis) = Redis::start(&[]) else {
        return;
    };
    let config = ServerConfig {
        lease_store: Some(redis.url.clone()),
        ..ServerConfig::default()
    };
    let first = build_generator(&config).unwrap();
    let second = build_generator(&config).unwrap();
    assert_ne!(first.machine(), second.machine());
    assert!(first.next_id().unwrap() != second.next_id().unwrap());
    assert!(first.lease().is_some());
}

#[test]
fn compare_measures_the_ticket_server() {
    let Some(redis) = Redis::start(&[]) else {
        return;
    };
    let options = CompareOptions {
        duration: Duration::from_millis(50),
        ticket_server: Some(redis.url.clone()),
        ..CompareOptions::default()
    };
    let rows = compare(&options);
    let ticket = rows.iter().find(|r| r.name.starts_with("ticket")).unwrap();
    assert!(ticket.ids_per_sec.unwrap() > 0.0, "{ticket:?}");
    assert!(ticket.sorts_by_time && ticket.numeric);
    assert!(ticket.sample.parse::<u64>().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_the_service_and_turns_health_down() {
    let Some(redis) = Redis::start(&[]) else {
        return;
    };
    let config = ServerConfig {
        lease_store: Some(redis.url.clone()),
        lease: LeaseConfig {
            ttl_ms: 600,
            ..LeaseConfig::default()
        },
        ..ServerConfig::default()
    };
    let mut registry = service::metrics::Registry::default();
    let metrics = idgen::system::Metrics::register(&mut registry);
    let shutdown = service::Shutdown::new();
    let ctx = service::SystemContext::new(shutdown.clone());
    let health = ctx.health.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(idgen::system::run(listener, config, metrics, ctx));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("http://{addr}/api/v1/ids");
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .get(&url)
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "service never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health.status(), service::Status::Up);

    // Someone deletes the lease (an operator, a failover that lost the key).
    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("hyperscale:idgen:machine:*")
        .query(&mut conn)
        .unwrap();
    assert_eq!(keys.len(), 1);
    let _: i64 = redis::cmd("DEL").arg(&keys[0]).query(&mut conn).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = client.get(&url).send().await.unwrap();
        if reply.status() == 503 {
            let body: serde_json::Value = reply.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("lost"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the generator kept issuing after losing its lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while health.status() == service::Status::Up {
        assert!(Instant::now() < deadline, "health stayed up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
