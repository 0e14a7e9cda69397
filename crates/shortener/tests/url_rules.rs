//! What long URLs the shortener refuses, over real HTTP: every spelling of
//! its own address (redirect loops).

use reqwest::StatusCode;
use serde_json::json;
use shortener::Config;
use support::{Server, config, shorten};

mod support;

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
