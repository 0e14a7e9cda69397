//! Machine-id leases and the ticket server against a real `redis-server`
//! (apt package `redis-server`, which scripts/test installs), started per test
//! by `testkit` on a free port and killed on drop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use idgen::compare::{CompareOptions, compare};
use idgen::http::ServerConfig;
use idgen::machine::claim;
use testkit::RedisServer;

use idgen::{Layout, Lease, LeaseConfig, LeaseError, LeaseStore, RespLeaseStore};

fn store(url: &str) -> Arc<dyn LeaseStore> {
    Arc::new(RespLeaseStore::open(url, Duration::from_secs(2)).expect("open the store"))
}

fn no_renewal(ttl_ms: u64) -> LeaseConfig {
    LeaseConfig {
        ttl_ms,
        ..LeaseConfig::default()
    }
}

/// The whole lease life cycle on one server: distinct ids, exhaustion,
/// renewal, release, and takeover after expiry.
fn lease_life_cycle(url: &str) {
    let layout = Layout::new(41, 10, 1, 11).expect("valid layout"); // 2 machine ids
    let lease = || Lease::acquire_manual(store(url), &no_renewal(60_000), layout, 1);
    let a = lease().expect("first lease");
    let b = lease().expect("second lease");
    assert_ne!(
        a.machine(),
        b.machine(),
        "two live generators, two machine ids"
    );
    let full = lease().expect_err("both ids are leased");
    assert!(
        matches!(full, LeaseError::AllTaken { count: 2, .. }),
        "{full}"
    );
    a.renew_now().expect("renew a live lease");
    drop(a); // Releases its key.
    let c = lease().expect("the released id");
    assert_ne!(c.machine(), b.machine());

    // Takeover: a short-lived lease that is never renewed expires in Redis.
    let single = Layout::new(41, 10, 0, 12).expect("valid layout");
    let old = Lease::acquire_manual(store(url), &no_renewal(200), single, 2).expect("lease");
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = loop {
        match Lease::acquire_manual(store(url), &no_renewal(60_000), single, 2) {
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
    new.renew_now().expect("the new owner renews");
}

#[test]
fn leases_on_redis_with_lua() {
    let redis = RedisServer::start_with(&[]);
    lease_life_cycle(&redis.url());
}

/// The same life cycle against our own `hyperscale kv` (embedded, memory
/// engine), which runs the lease scripts with its own Lua.
#[test]
fn leases_on_hyperscale_kv_with_lua() {
    let server = hyperscale_kv();
    let mut conn = redis::Client::open(server.url().as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let lua: i64 = redis::cmd("EVAL")
        .arg("return 1")
        .arg(0)
        .query(&mut conn)
        .expect("our server runs Lua");
    assert_eq!(lua, 1);
    lease_life_cycle(&server.url());
}

fn hyperscale_kv() -> kv::EmbeddedServer {
    let config = kv::Config {
        engine: kv::config::EngineKind::Memory,
        ..kv::Config::default()
    };
    kv::EmbeddedServer::start(config).expect("start the embedded kv server")
}

#[test]
fn leases_on_a_server_without_eval_use_the_fallback() {
    // Our own kv server may lack EVAL: rename it away to prove the fallback.
    let redis = RedisServer::start_with(&["--rename-command", "EVAL", ""]);
    let mut conn = redis::Client::open(redis.url().as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let refused = redis::cmd("EVAL")
        .arg("return 1")
        .arg(0)
        .query::<i64>(&mut conn);
    assert!(refused.is_err(), "EVAL should be disabled");
    lease_life_cycle(&redis.url());
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
    let redis = RedisServer::start_with(&[]);
    the_id_service_leases_from(redis.url());
}

#[test]
fn the_id_service_leases_its_machine_id_from_hyperscale_kv() {
    let server = hyperscale_kv();
    the_id_service_leases_from(server.url());
}

fn the_id_service_leases_from(url: String) {
    let config = ServerConfig {
        lease_store: Some(url),
        ..ServerConfig::default()
    };
    let first = claim(&config).expect("first claim");
    let second = claim(&config).expect("second claim");
    let (first_id, second_id) = (&first.generator, &second.generator);
    assert_ne!(first_id.machine(), second_id.machine());
    assert!(first_id.next_id().expect("an id") != second_id.next_id().expect("an id"));
    assert!(first_id.lease().is_some());
    let line = first.to_string();
    assert!(line.contains("from lease store redis://"), "{line}");
}

#[test]
fn compare_measures_the_ticket_server() {
    let redis = RedisServer::start_with(&[]);
    let options = CompareOptions {
        duration: Duration::from_millis(50),
        ticket_server: Some(redis.url()),
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
    let redis = RedisServer::start_with(&[]);
    let config = ServerConfig {
        lease_store: Some(redis.url()),
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
    let claimed = idgen::machine::claim_async(&config).await.unwrap();
    let server = tokio::spawn(idgen::system::run(listener, claimed, config, metrics, ctx));
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
    let mut conn = redis::Client::open(redis.url().as_str())
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
