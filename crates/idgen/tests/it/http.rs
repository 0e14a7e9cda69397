//! The HTTP endpoint: in-process through the router, and over a real socket
//! with reqwest against `serve`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use idgen::http::{ServerConfig, router, serve};
use idgen::machine::MachineClaim;
use idgen::{Clock, Generator, GeneratorConfig, ManualClock};
use serde_json::Value;
use tower::ServiceExt;

async fn get_with(app: &axum::Router, uri: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::get(uri);
    if let Some(token) = auth {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("a valid request"))
        .await
        .expect("the router always answers");
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("read the body")
        .to_bytes();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{uri}: every reply is JSON"
    );
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    get_with(app, uri, None).await
}

fn app() -> axum::Router {
    let config = ServerConfig::default();
    let generator = Generator::new(&config.generator).expect("default generator");
    router(Arc::new(generator), &config)
}

fn ids(body: &Value) -> Vec<u64> {
    body["ids"]
        .as_array()
        .expect("an ids array")
        .iter()
        .map(|v| {
            let id = v.as_str().expect("ids are strings");
            id.parse().expect("ids are decimal numbers")
        })
        .collect()
}

#[tokio::test]
async fn issues_one_id_by_default_and_n_on_request() {
    let app = app();
    let (status, body) = get(&app, "/api/v1/ids").await;
    assert_eq!(status, StatusCode::OK);
    let first = ids(&body);
    assert_eq!(first.len(), 1);

    let (status, body) = get(&app, "/api/v1/ids?count=1000").await;
    assert_eq!(status, StatusCode::OK);
    let many = ids(&body);
    assert_eq!(many.len(), 1000);
    assert!(many[0] > first[0]);
    assert!(
        many.windows(2).all(|w| w[0] < w[1]),
        "increasing, so unique"
    );
}

#[tokio::test]
async fn bad_counts_get_400_with_a_reason() {
    let app = app();
    for query in [
        "count=0",
        "count=1001",
        "count=abc",
        "count=-1",
        "count=",
        "size=3",
        "count=1&x=2",
    ] {
        let (status, body) = get(&app, &format!("/api/v1/ids?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            body["error"].as_str().unwrap().len() > 10,
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn a_repeated_count_is_refused_not_last_one_wins() {
    let app = app();
    for query in ["count=1&count=2", "count=5&count=5"] {
        let (status, body) = get(&app, &format!("/api/v1/ids?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains("count") && message.contains("more than once"),
            "{query}: the error names the parameter: {message}"
        );
    }
}

#[tokio::test]
async fn count_max_out_of_range_is_refused_at_startup() {
    for count_max in [0, idgen::http::COUNT_MAX_LIMIT + 1] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = ServerConfig {
            count_max,
            ..ServerConfig::default()
        };
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            serve(listener, config, std::future::pending()),
        )
        .await
        .expect("refuses at once instead of serving requests that all fail");
        let message = outcome.expect_err("count_max {count_max}").to_string();
        assert!(message.contains("count_max"), "{message}");
    }
}

#[tokio::test]
async fn decodes_ids() {
    let app = app();
    let (_, body) = get(&app, "/api/v1/ids").await;
    let id = ids(&body)[0];
    let (status, decoded) = get(&app, &format!("/api/v1/ids/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decoded["id"], id.to_string());
    assert!(decoded["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        (decoded["datacenter"].as_u64(), decoded["machine"].as_u64()),
        (Some(0), Some(0))
    );
    for bad in ["abc", "-5", "18446744073709551616", "18446744073709551615"] {
        let (status, body) = get(&app, &format!("/api/v1/ids/{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let app = app();
    let (status, body) = get(&app, "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    let response = app
        .oneshot(Request::post("/api/v1/ids").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_clock_far_behind_gets_503_not_a_duplicate() {
    let clock = Arc::new(ManualClock::new(idgen::EPOCH_MS_DEFAULT + 10_000));
    let generator = Generator::with_clock(&GeneratorConfig::default(), clock.clone()).unwrap();
    let app = router(Arc::new(generator), &ServerConfig::default());
    let (_, body) = get(&app, "/api/v1/ids").await;
    let before = ids(&body)[0];
    clock.rewind_ms(1000);
    let (status, body) = get(&app, "/api/v1/ids").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("clock moved backwards")
    );
    clock.set_ms(clock.now_ms() + 1001);
    let (status, body) = get(&app, "/api/v1/ids").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ids(&body)[0] > before);
}

#[tokio::test]
async fn a_configured_token_is_required() {
    let config = ServerConfig {
        auth_token: Some("s3cret".to_owned()),
        ..ServerConfig::default()
    };
    let app = router(
        Arc::new(Generator::new(&config.generator).unwrap()),
        &config,
    );
    assert_eq!(get(&app, "/api/v1/ids").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get_with(&app, "/api/v1/ids", Some("wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(&app, "/api/v1/ids", Some("s3cret")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn serves_over_a_real_socket_and_shuts_down() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        generator: GeneratorConfig {
            datacenter: 3,
            machine: 9,
            ..Default::default()
        },
        machine_claim: MachineClaim::Fixed,
        ..ServerConfig::default()
    };
    let server = tokio::spawn(serve(listener, config, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let body: Value = client
        .get(format!("http://{addr}/api/v1/ids?count=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got = ids(&body);
    assert_eq!(got.len(), 5);
    let decoded: Value = client
        .get(format!("http://{addr}/api/v1/ids/{}", got[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (decoded["datacenter"].as_u64(), decoded["machine"].as_u64()),
        (Some(3), Some(9))
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops on shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn runs_as_a_system_with_metrics_and_health() {
    let mut registry = service::metrics::Registry::default();
    let metrics = idgen::system::Metrics::register(&mut registry);
    let shutdown = service::Shutdown::new();
    let ctx = service::SystemContext::new(shutdown.clone());
    let health = ctx.health.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let info = idgen::system::info(&addr.to_string());
    assert_eq!(info.name, "id");
    let locks = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        lock_dir: Some(locks.path().to_path_buf()),
        ..ServerConfig::default()
    };
    let claimed = idgen::machine::claim_async(&config).await.unwrap();
    let server = tokio::spawn(idgen::system::run(listener, claimed, config, metrics, ctx));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let reply = client
        .get(format!("http://{addr}/api/v1/ids?count=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(health.status(), service::Status::Up);
    let text = service::metrics::render(&registry);
    assert!(text.contains("id_issued_total 5"), "{text}");
    assert!(text.contains("id_refused_total 0"), "{text}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops on shutdown")
        .unwrap()
        .unwrap();
}
