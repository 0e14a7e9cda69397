//! What long URLs the shortener refuses, over real HTTP: every spelling of
//! its own address (redirect loops), credentials; how it stores what it
//! accepts (punycode hosts) and how far it lets links expire.
// Test code: a failed unwrap is the failure report (clippy.toml's
// allow-unwrap-in-tests does not reach helper functions outside #[test]).
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::json;
use shortener::Config;
use support::{Server, config, get, get_text, shorten};

use crate::support;

/// Each form a browser or `curl` resolves to this server, on its port.
fn own_address_forms(port: u16) -> Vec<String> {
    [
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "127.0.0.1.",
        "127.0.0.2",
        "localhost.",
        "LOCALHOST",
        "app.localhost",
        "0.0.0.0",
        "0",
        "[::]",
        "[::1]",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/abc"))
    .collect()
}

#[tokio::test]
async fn every_spelling_of_our_address_is_refused_as_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Config {
        public_url: Some("https://sho.rt".into()),
        ..config(&dir)
    })
    .await;
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut forms = own_address_forms(port);
    forms.extend([
        "https://sho.rt./x".to_string(),
        "https://SHO.RT:8443/x".to_string(),
        format!("http://127.1:{port}"),
    ]);
    for long_url in forms {
        let (status, error) = shorten(&server.base, json!({"longUrl": long_url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{long_url} → {error}");
        assert!(
            error["error"].as_str().unwrap().contains("loop"),
            "{long_url} → {error}"
        );
        // The loop: two aliases pointing at each other.
        let (status, error) = shorten(
            &server.base,
            json!({"longUrl": long_url, "alias": "loop-a"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{long_url} → {error}");
    }
    let other_port = if port == 9 { 10 } else { 9 };
    for other_service in [
        format!("http://127.1:{other_port}/x"),
        format!("http://localhost:{other_port}/x"),
        "https://example.com/x".to_string(),
    ] {
        let (status, reply) = shorten(&server.base, json!({"longUrl": other_service})).await;
        assert_eq!(status, StatusCode::CREATED, "{other_service} → {reply}");
    }
    server.stop().await;
}

#[tokio::test]
async fn urls_with_credentials_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    for long_url in [
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "http://:secret@example.com/",
        "https://paypal.com@evil.example/login",
    ] {
        let (status, error) = shorten(&server.base, json!({"longUrl": long_url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{long_url} → {error}");
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("user name or password"),
            "{long_url} → {error}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn internationalized_hosts_are_stored_and_sent_as_punycode() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    let (status, short) = shorten(
        &server.base,
        json!({"longUrl": "http://bücher.example/straße?q=ü"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{short}");
    let ascii = "http://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC";
    assert_eq!(short["longUrl"], ascii);
    let code = short["code"].as_str().unwrap();
    let redirect = get(&format!("{}/{code}", server.base)).await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    assert_eq!(redirect.headers()["location"], ascii);
    let (status, again) = shorten(
        &server.base,
        json!({"longUrl": "http://XN--BCHER-KVA.example/stra%C3%9Fe?q=%C3%BC"}),
    )
    .await;
    assert_eq!(
        (status, &again["code"]),
        (StatusCode::OK, &short["code"]),
        "both spellings are one URL: {again}"
    );
    let page = get_text(&format!("{}/stats/{code}", server.base)).await;
    assert!(
        page.contains("xn--bcher-kva.example") && page.contains("bücher.example"),
        "the stats page shows both forms: {page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn expiry_is_capped_so_timestamps_fit_a_javascript_number() {
    const JS_SAFE_INTEGER_MAX: u64 = (1 << 53) - 1;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    // The documented cap: 100 Julian years.
    let cap: u64 = 100 * 365 * 86_400 + 25 * 86_400;
    for too_long in [cap + 1, u64::MAX / 1000 + 1, u64::MAX] {
        let (status, error) = shorten(
            &server.base,
            json!({"longUrl": "https://example.com/far", "expiresInSeconds": too_long}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{too_long} → {error}");
        assert!(
            error["error"].as_str().unwrap().contains("at most"),
            "{error}"
        );
    }
    let (status, short) = shorten(
        &server.base,
        json!({"longUrl": "https://example.com/far", "expiresInSeconds": cap}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{short}");
    for field in ["createdMs", "expiresMs"] {
        let value = short[field].as_u64().unwrap();
        assert!(value <= JS_SAFE_INTEGER_MAX, "{field} = {value}");
    }
    server.stop().await;
}
