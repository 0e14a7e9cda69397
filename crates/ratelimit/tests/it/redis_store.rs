//! The Redis store against a real `redis-server` this test starts and kills,
//! and the same suites against our own `hyperscale kv` (an embedded server,
//! memory engine): the store's Lua scripts must behave identically on both.
//!
//! Needs `redis-server` on PATH (Debian: `apt-get install redis-server`).

use ratelimit::algorithm::{Algorithm, Quota};
use ratelimit::metrics::{Metrics, Outcome};
use ratelimit::store::Store;
use ratelimit::store::redis::{RedisConfig, RedisStore, StoreError};
use ratelimit::{Descriptors, FailurePolicy, RateLimiter, Rules, RulesHandle};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A redis-server on a free port in a temp dir, killed on drop (also on panic).
struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind port 0")
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        RedisServer::start_on(port)
    }

    fn start_on(port: u16) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temp dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): these tests need it on PATH; install it with `apt-get install redis-server`")
            });
        let server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(server.url()).expect("a valid URL");
        while client
            .get_connection()
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn store(url: String, metrics: Metrics) -> Arc<RedisStore> {
    let config = RedisConfig {
        url,
        timeout_ms: 500,
        breaker_failures: 3,
        breaker_cooldown_ms: 200,
    };
    Arc::new(RedisStore::new(config, metrics).expect("a valid store config"))
}

/// Our kv server, memory engine, on a free port.
fn hyperscale_kv() -> kv::EmbeddedServer {
    let config = kv::Config {
        engine: kv::config::EngineKind::Memory,
        ..kv::Config::default()
    };
    kv::EmbeddedServer::start(config).expect("start the embedded kv server")
}

#[tokio::test]
async fn every_algorithm_runs_atomically_in_redis() {
    let server = RedisServer::start();
    every_algorithm_runs_atomically(server.url()).await;
}

#[tokio::test]
async fn every_algorithm_runs_atomically_in_hyperscale_kv() {
    let server = hyperscale_kv();
    every_algorithm_runs_atomically(server.url()).await;
}

#[allow(clippy::unwrap_used)] // a test body shared by two #[tokio::test]s
async fn every_algorithm_runs_atomically(url: String) {
    let store = store(url.clone(), Metrics::new());
    let quota = Quota::with_burst(3, 60_000_000_000, 2).unwrap();
    for algorithm in Algorithm::ALL {
        let key = format!("test:{algorithm}");
        let mut admitted = 0;
        let mut last = None;
        for _ in 0..6 {
            let decision = store.check(&key, algorithm, &quota).await.unwrap();
            admitted += u32::from(decision.allowed);
            last = Some(decision);
        }
        let expected = match algorithm {
            Algorithm::TokenBucket => 2,   // burst
            Algorithm::LeakingBucket => 3, // one released at once + 2 waiting
            _ => 3,
        };
        assert_eq!(admitted, expected, "{algorithm}");
        let last = last.unwrap();
        assert!(
            !last.allowed && last.retry_after_ns > 0,
            "{algorithm}: {last:?}"
        );
    }
    // SCRIPT FLUSH: EVALSHA answers NOSCRIPT and the store falls back to EVAL.
    let client = redis::Client::open(url).unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut client.get_connection().unwrap())
        .unwrap();
    let decision = store
        .check("test:after-flush", Algorithm::FixedWindow, &quota)
        .await
        .unwrap();
    assert!(decision.allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_racing_on_one_key_never_exceed_a_hard_limit() {
    let server = RedisServer::start();
    racing_clients_never_exceed_a_hard_limit(server.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_racing_on_one_key_never_exceed_a_hard_limit_in_hyperscale_kv() {
    let server = hyperscale_kv();
    racing_clients_never_exceed_a_hard_limit(server.url()).await;
}

#[allow(clippy::unwrap_used)] // a test body shared by two #[tokio::test]s
async fn racing_clients_never_exceed_a_hard_limit(url: String) {
    let hour = 3_600_000_000_000;
    for algorithm in Algorithm::ALL {
        let quota = Quota::new(40, hour).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            // Separate stores = separate connections, like separate gateways.
            let store = store(url.clone(), Metrics::new());
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0u64;
                for _ in 0..20 {
                    admitted += u64::from(
                        store
                            .check("race", algorithm, &quota)
                            .await
                            .unwrap()
                            .allowed,
                    );
                }
                admitted
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        // 160 attempts on a limit of 40: exactly 40 admitted, never 41.
        // The leaking bucket admits one into service plus 40 waiting; the
        // token bucket may earn a token during the test (40 per hour).
        match algorithm {
            Algorithm::LeakingBucket => assert_eq!(total, 41, "{algorithm}"),
            Algorithm::TokenBucket => assert!((40..=41).contains(&total), "{algorithm}: {total}"),
            _ => assert_eq!(total, 40, "{algorithm}"),
        }
        let client = redis::Client::open(url.clone()).unwrap();
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut client.get_connection().unwrap())
            .unwrap();
    }
}

const RULES: &str = "\
domain: failover
descriptors:
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 2, algorithm: fixed_window }
";

fn request() -> Descriptors {
    let mut d = Descriptors::new();
    d.parse_pair("remote_address=192.0.2.1")
        .expect("a valid descriptor");
    d
}

#[tokio::test]
async fn the_store_going_away_fails_open_trips_the_breaker_and_recovers() {
    let server = RedisServer::start();
    let port = server.port;
    let metrics = Metrics::new();
    let redis = store(server.url(), metrics.clone());
    let rules = RulesHandle::new(Rules::parse(RULES, "t").unwrap());
    let limiter = RateLimiter::new(
        rules.clone(),
        Store::Redis(redis.clone()),
        metrics.clone(),
        FailurePolicy::Open,
    );
    assert!(limiter.check(&request()).await.allowed);
    drop(server); // kill -9 equivalent: the store is gone

    for _ in 0..10 {
        let verdict = limiter.check(&request()).await;
        assert!(verdict.allowed, "fail open");
        assert_eq!(verdict.limits[0].outcome, Outcome::FailedOpen);
    }
    assert!(metrics.store_errors() >= 3);
    assert!(matches!(
        redis
            .check(
                "x",
                Algorithm::FixedWindow,
                &Quota::new(1, 1_000_000_000).unwrap()
            )
            .await,
        Err(StoreError::BreakerOpen)
    ));

    let closed = RateLimiter::new(
        rules,
        Store::Redis(redis.clone()),
        metrics.clone(),
        FailurePolicy::Closed,
    );
    let verdict = closed.check(&request()).await;
    assert!(!verdict.allowed);
    assert_eq!(verdict.limits[0].outcome, Outcome::FailedClosed);

    // The store comes back on the same port: after the cooldown a probe
    // succeeds, the breaker closes and limits apply again.
    let _server = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let verdict = limiter.check(&request()).await;
        if verdict.limits[0].outcome == Outcome::Allowed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store never recovered: {verdict:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(limiter.check(&request()).await.allowed);
    let third = limiter.check(&request()).await;
    assert!(!third.allowed, "limits apply again: {third:?}");
}
