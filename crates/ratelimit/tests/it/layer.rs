//! The tower layer in front of a small axum app, driven by `oneshot`.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use http::{Request, StatusCode};
use ratelimit::layer::QueueConfig;
use ratelimit::metrics::{Metrics, Outcome};
use ratelimit::store::Store;
use ratelimit::store::memory::{MemoryConfig, MemoryStore};
use ratelimit::{
    FailurePolicy, LayerConfig, RateLimitLayer, RateLimiter, Rules, RulesHandle, RulesWatcher,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

const RULES: &str = include_str!("../../../../examples/gateway/ratelimit.yaml");

fn limiter(rules: RulesHandle) -> Arc<RateLimiter> {
    let store = Store::Memory(Arc::new(MemoryStore::new(&MemoryConfig::default())));
    Arc::new(RateLimiter::new(
        rules,
        store,
        Metrics::new(),
        FailurePolicy::Open,
    ))
}

fn app(limiter: Arc<RateLimiter>, config: &LayerConfig) -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route("/limited/{item}", get(|| async { "limited" }))
        .layer(RateLimitLayer::new(limiter, config).expect("a valid layer config"))
}

fn request(path: &str, client: &str) -> Request<Body> {
    let mut request = Request::get(path)
        .body(Body::empty())
        .expect("a valid request");
    let addr: SocketAddr = format!("{client}:40000").parse().expect("an IP address");
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

fn header(response: &http::Response<impl Sized>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("an ASCII header").to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn ten_per_minute_then_429_with_the_notes_headers() {
    let limiter = limiter(RulesHandle::new(Rules::parse(RULES, "example").unwrap()));
    let app = app(limiter.clone(), &LayerConfig::default());
    for i in 0..10 {
        let response = app
            .clone()
            .oneshot(request("/limited/a", "192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            (9 - i).to_string()
        );
        assert_eq!(header(&response, "x-ratelimit-limit"), "10");
    }
    let response = app
        .clone()
        .oneshot(request("/limited/b", "192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        header(&response, "x-ratelimit-retry-after"),
        retry.to_string()
    );
    assert_eq!(header(&response, "x-ratelimit-remaining"), "0");
    assert!(header(&response, "ratelimit-policy").ends_with(";q=10;w=60"));
    assert!(header(&response, "ratelimit").contains(";r=0;t="));
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("\"error\""));

    // Another client has its own counter; "/" is never limited.
    let other = app
        .clone()
        .oneshot(request("/limited/a", "192.0.2.2"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    for _ in 0..30 {
        let home = app
            .clone()
            .oneshot(request("/", "192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(home.status(), StatusCode::OK);
        assert!(home.headers().get("x-ratelimit-limit").is_none());
    }
    let metrics = limiter.metrics();
    let rule = "path=/limited/remote_address";
    assert_eq!(metrics.decisions_of(rule, Outcome::Allowed), 11);
    assert_eq!(metrics.decisions_of(rule, Outcome::Rejected), 1);
}

#[tokio::test]
async fn forwarded_for_counts_per_client_only_behind_a_trusted_proxy() {
    let rules = RulesHandle::new(Rules::parse(RULES, "example").unwrap());
    let trusting = LayerConfig {
        trusted_proxies: vec!["127.0.0.0/8".into()],
        ..LayerConfig::default()
    };
    let app = app(limiter(rules), &trusting);
    for client in 0..15 {
        let mut req = request("/limited/a", "127.0.0.1");
        req.headers_mut().insert(
            "x-forwarded-for",
            format!("203.0.113.{client}").parse().unwrap(),
        );
        assert_eq!(
            app.clone().oneshot(req).await.unwrap().status(),
            StatusCode::OK
        );
    }
    // From an untrusted peer the header is ignored: one counter.
    let rules = RulesHandle::new(Rules::parse(RULES, "example").unwrap());
    let app = self::app(limiter(rules), &LayerConfig::default());
    let mut statuses = Vec::new();
    for client in 0..11 {
        let mut req = request("/limited/a", "198.51.100.9");
        req.headers_mut().insert(
            "x-forwarded-for",
            format!("203.0.113.{client}").parse().unwrap(),
        );
        statuses.push(app.clone().oneshot(req).await.unwrap().status());
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
}

#[tokio::test]
async fn editing_the_rules_file_raises_the_limit_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratelimit.yaml");
    std::fs::write(&path, RULES).unwrap();
    let (handle, mut watcher) = RulesWatcher::open(&path, None).unwrap();
    let app = app(limiter(handle), &LayerConfig::default());
    for _ in 0..10 {
        app.clone()
            .oneshot(request("/limited/a", "192.0.2.1"))
            .await
            .unwrap();
    }
    let blocked = app
        .clone()
        .oneshot(request("/limited/a", "192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    let tmp = dir.path().join("new.yaml");
    std::fs::write(
        &tmp,
        RULES.replace("requests_per_unit: 10", "requests_per_unit: 20"),
    )
    .unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(matches!(
        watcher.poll(),
        ratelimit::rules::reload::ReloadOutcome::Reloaded
    ));
    let allowed = app
        .clone()
        .oneshot(request("/limited/a", "192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(header(&allowed, "x-ratelimit-limit"), "20");
}

const BUCKET: &str = "\
domain: queue
descriptors:
  - key: path
    rate_limit: { unit: second, requests_per_unit: 5, algorithm: token_bucket, burst: 1 }
";

#[tokio::test]
async fn a_bounded_queue_parks_rejected_requests_instead_of_429() {
    let without = app(
        limiter(RulesHandle::new(Rules::parse(BUCKET, "b").unwrap())),
        &LayerConfig::default(),
    );
    let (a, b) = tokio::join!(
        without.clone().oneshot(request("/", "192.0.2.1")),
        without.clone().oneshot(request("/", "192.0.2.1"))
    );
    let mut statuses = [a.unwrap().status(), b.unwrap().status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);

    let queue = LayerConfig {
        queue: Some(QueueConfig {
            waiting_max: 4,
            wait_ms_max: 5_000,
        }),
        ..LayerConfig::default()
    };
    let with = app(
        limiter(RulesHandle::new(Rules::parse(BUCKET, "b").unwrap())),
        &queue,
    );
    let (a, b) = tokio::join!(
        with.clone().oneshot(request("/", "192.0.2.1")),
        with.clone().oneshot(request("/", "192.0.2.1"))
    );
    assert_eq!(
        (a.unwrap().status(), b.unwrap().status()),
        (StatusCode::OK, StatusCode::OK)
    );
}

#[tokio::test]
async fn shadow_mode_counts_but_never_blocks() {
    let shadow = BUCKET.replace("burst: 1 }", "burst: 1, shadow_mode: true }");
    let limiter = limiter(RulesHandle::new(Rules::parse(&shadow, "s").unwrap()));
    let app = app(limiter.clone(), &LayerConfig::default());
    for _ in 0..5 {
        assert_eq!(
            app.clone()
                .oneshot(request("/", "192.0.2.1"))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    assert!(
        limiter
            .metrics()
            .decisions_of("path", Outcome::ShadowRejected)
            >= 3
    );
}

const LEAKING: &str = "\
domain: steady
descriptors:
  - key: path
    rate_limit: { unit: second, requests_per_unit: 20, algorithm: leaking_bucket, burst: 2 }
";

#[tokio::test]
async fn a_leaking_bucket_holds_requests_to_a_steady_outflow() {
    let app = app(
        limiter(RulesHandle::new(Rules::parse(LEAKING, "l").unwrap())),
        &LayerConfig::default(),
    );
    let started = std::time::Instant::now();
    let (a, b, c, d) = tokio::join!(
        app.clone().oneshot(request("/", "192.0.2.1")),
        app.clone().oneshot(request("/", "192.0.2.1")),
        app.clone().oneshot(request("/", "192.0.2.1")),
        app.clone().oneshot(request("/", "192.0.2.1")),
    );
    let mut statuses: Vec<_> = [a, b, c, d]
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    statuses.sort();
    // One released at once, two wait their turn (50 ms apart), the queue is full for the fourth.
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(90),
        "the queued ones waited"
    );
}

#[tokio::test]
async fn config_starts_watched_rules_and_exports_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, RULES).unwrap();
    let config: ratelimit::RateLimitConfig = serde_json::from_value(serde_json::json!({
        "rules": path, "reload_interval_ms": 100, "failure_policy": "open",
    }))
    .unwrap();
    let metrics = Metrics::new();
    let running = config.start(metrics.clone()).unwrap();
    let app = Router::new()
        .route("/limited/{x}", get(|| async { "ok" }))
        .layer(running.layer.clone());
    for _ in 0..11 {
        app.clone()
            .oneshot(request("/limited/a", "192.0.2.1"))
            .await
            .unwrap();
    }
    let mut registry = prometheus_client::registry::Registry::with_prefix("ratelimit");
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            r#"ratelimit_decisions_total{rule="path=/limited/remote_address",outcome="rejected"} 1"#
        ),
        "{text}"
    );
    assert_eq!(running.limiter.sweep_idle(), 0, "the live key is not idle");
    let bad = ratelimit::RateLimitConfig {
        rules: Some(dir.path().join("missing.yaml")),
        ..Default::default()
    };
    assert!(
        bad.start(Metrics::new())
            .unwrap_err()
            .to_string()
            .contains("missing.yaml")
    );
}
