//! The shortener over real HTTP (reqwest), on the embedded store in a temp
//! directory: the chapter's flow end to end, bad input, expiry, restarts.
// Test code: a failed unwrap is the failure report (clippy.toml's
// allow-unwrap-in-tests does not reach helper functions outside #[test]).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shortener::Config;
use shortener::code::Strategy;
use support::{Server, client, config, shorten};

use crate::support;

#[tokio::test]
async fn shorten_redirect_dedup_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    let (status, first) = shorten(&server.base, json!({"longUrl": "https://example.com/a"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let code = first["code"].as_str().unwrap().to_string();
    assert_eq!(first["shortUrl"], format!("{}/{code}", server.base));
    let (status, again) = shorten(&server.base, json!({"longUrl": "https://example.com/a"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["code"],
        code.as_str(),
        "the same long URL keeps its code"
    );

    let http = client();
    let redirect = http
        .get(format!("{}/{code}", server.base))
        .header("user-agent", "curl/8")
        .header("referer", "https://news.example.org/x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        redirect.status(),
        StatusCode::FOUND,
        "302 by default: analytics are on"
    );
    assert_eq!(redirect.headers()["location"], "https://example.com/a");
    let bot = http
        .get(format!("{}/{code}", server.base))
        .header("user-agent", "Slackbot-LinkExpanding 1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(bot.status(), StatusCode::FOUND);
    let info: Value = http
        .get(format!("{}/api/v1/{code}", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["longUrl"], "https://example.com/a");

    // Clicks are flushed once a second, off the redirect path.
    let mut stats = Value::Null;
    for _ in 0..50 {
        stats = http
            .get(format!("{}/api/v1/{code}/stats", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["clicks"] == 1
            && stats["bots"]
                .as_array()
                .is_some_and(|bots| !bots.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stats["clicks"], 1, "the bot is not a click: {stats}");
    assert_eq!(stats["bots"][0], json!(["slack", 1]));
    assert_eq!(stats["referrers"][0], json!(["news.example.org", 1]));
    assert_eq!(stats["userAgents"][0], json!(["curl", 1]));
    let missing = http
        .get(format!("{}/nope123", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    for (body, needle) in [
        (json!({"longUrl": "ftp://example.com"}), "http"),
        (
            json!({"longUrl": format!("https://a.com/{}", "x".repeat(2100))}),
            "limit",
        ),
        (json!({"longUrl": format!("{}/loop", server.base)}), "loop"),
        (
            json!({"longUrl": "https://a.com", "extra": 1}),
            "unknown field",
        ),
        (
            json!({"longUrl": "https://a.com", "alias": "bad/alias"}),
            "alias",
        ),
        (
            json!({"longUrl": "https://a.com", "expiresInSeconds": 0}),
            "positive",
        ),
    ] {
        let (status, error) = shorten(&server.base, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {error}");
        assert!(
            error["error"].as_str().unwrap().contains(needle),
            "{body} → {error}"
        );
    }
    let malformed = client()
        .post(format!("{}/api/v1/data/shorten", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let huge = client()
        .post(format!("{}/api/v1/data/shorten", server.base))
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test]
async fn custom_alias_conflict_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    let (status, _) = shorten(
        &server.base,
        json!({"longUrl": "https://a.com", "alias": "mine"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = shorten(
        &server.base,
        json!({"longUrl": "https://a.com", "alias": "mine"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "same alias, same URL: a harmless repeat"
    );
    let (status, error) = shorten(
        &server.base,
        json!({"longUrl": "https://b.com", "alias": "mine"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");

    let (status, short) = shorten(
        &server.base,
        json!({"longUrl": "https://c.com", "expiresInSeconds": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let code = short["code"].as_str().unwrap();
    let url = format!("{}/{code}", server.base);
    assert_eq!(
        client().get(&url).send().await.unwrap().status(),
        StatusCode::FOUND
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        client().get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (status, renewed) = shorten(&server.base, json!({"longUrl": "https://c.com"})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an expired link's URL gets a new code"
    );
    assert_ne!(renewed["code"], code);
    server.stop().await;
}

#[tokio::test]
async fn restart_keeps_every_link_and_301_by_config() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    let mut codes = Vec::new();
    for n in 0..20 {
        let (_, short) = shorten(
            &server.base,
            json!({"longUrl": format!("https://example.com/{n}")}),
        )
        .await;
        codes.push(short["code"].as_str().unwrap().to_string());
    }
    server.stop().await;
    let permanent = Config {
        redirect: Some(301),
        ..config(&dir)
    };
    let server = Server::start(permanent).await;
    for (n, code) in codes.iter().enumerate() {
        let response = client()
            .get(format!("{}/{code}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            response.headers()["location"],
            format!("https://example.com/{n}").as_str()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn hash_strategy_makes_seven_char_stable_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Config {
        strategy: Strategy::Hash,
        ..config(&dir)
    })
    .await;
    let (status, short) =
        shorten(&server.base, json!({"longUrl": "https://example.com/hash"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let code = short["code"].as_str().unwrap();
    assert_eq!(
        code,
        shortener::code::hash_code("https://example.com/hash", 0)
    );
    assert_eq!(code.len(), 7);
    let (status, again) =
        shorten(&server.base, json!({"longUrl": "https://example.com/hash"})).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (StatusCode::OK, Some(code))
    );
    server.stop().await;
}

#[tokio::test]
async fn web_page_shortens_through_its_form() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    let page = client()
        .get(&server.base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<form") && page.contains("name=\"url\""));
    let result = client()
        .post(&server.base)
        .form(&[
            ("url", "https://example.com/<script>?a=1&b=2"),
            ("alias", ""),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        result.contains("Copy")
            && result.contains("%3Cscript%3E?a=1&amp;b=2")
            && !result.contains("<script>"),
        "{result}"
    );
    server.stop().await;
}

#[tokio::test]
async fn shorten_is_rate_limited_per_client_but_redirects_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Config {
        shorten_per_minute: 3,
        ..config(&dir)
    })
    .await;
    let mut code = String::new();
    for n in 0..3 {
        let (status, short) = shorten(
            &server.base,
            json!({"longUrl": format!("https://r.com/{n}")}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        code = short["code"].as_str().unwrap().to_string();
    }
    let limited = client()
        .post(format!("{}/api/v1/data/shorten", server.base))
        .json(&json!({"longUrl": "https://r.com/4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["x-ratelimit-limit"], "3");
    assert!(limited.headers().contains_key("retry-after"));
    for _ in 0..10 {
        let response = client()
            .get(format!("{}/{code}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "redirects are never limited"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_store_outage_is_a_503_not_a_hang() {
    let redis = testkit::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let remote = Config {
        store: redis.url(),
        store_timeout_ms: 300,
        ..config(&dir)
    };
    let server = Server::start(remote).await;
    let (status, short) =
        shorten(&server.base, json!({"longUrl": "https://shared.example/x"})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "works on a remote RESP store: {short}"
    );
    drop(redis);
    let started = std::time::Instant::now();
    let (status, error) =
        shorten(&server.base, json!({"longUrl": "https://shared.example/y"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}

#[tokio::test]
async fn curl_style_body_without_json_content_type_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    // What `curl -d '{...}'` sends: JSON labelled as a form.
    let response = client()
        .post(format!("{}/api/v1/data/shorten", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"longUrl":"https://example.com/a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert!(body["code"].as_str().is_some_and(|code| !code.is_empty()));
    server.stop().await;
}

#[tokio::test]
async fn forwarded_clients_get_their_own_limit_only_behind_a_trusted_proxy() {
    async fn statuses(base: &str, client_ip: &str) -> Vec<u16> {
        let mut out = Vec::new();
        for n in 0..3 {
            let response = client()
                .post(format!("{base}/api/v1/data/shorten"))
                .header("x-forwarded-for", client_ip)
                .json(&json!({"longUrl": format!("https://f.com/{client_ip}/{n}")}))
                .send()
                .await
                .unwrap();
            out.push(response.status().as_u16());
        }
        out
    }
    let dir = tempfile::tempdir().unwrap();
    let trusted = Config {
        shorten_per_minute: 2,
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..config(&dir)
    };
    let server = Server::start(trusted).await;
    assert_eq!(statuses(&server.base, "203.0.113.1").await, [201, 201, 429]);
    assert_eq!(
        statuses(&server.base, "203.0.113.2").await,
        [201, 201, 429],
        "own bucket"
    );
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let untrusted = Config {
        shorten_per_minute: 2,
        ..config(&dir)
    };
    let server = Server::start(untrusted).await;
    assert_eq!(statuses(&server.base, "203.0.113.1").await, [201, 201, 429]);
    assert_eq!(
        statuses(&server.base, "203.0.113.2").await,
        [429, 429, 429],
        "a spoofed header buys nothing"
    );
    server.stop().await;
}
