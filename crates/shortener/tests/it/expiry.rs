//! Lookup-first dedup and expiry: a code is only reused for a request with
//! the same expiry semantics, and the reply always carries the returned
//! code's real expiry. Driven through [`App`] with explicit clock values
//! (`now_ms`), so expiry is tested without sleeping.
// Test code: a failed unwrap is the failure report (clippy.toml's
// allow-unwrap-in-tests does not reach helper functions outside #[test]).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use shortener::Config;
use shortener::app::{App, ShortenRequest};
use shortener::code::Strategy;
use shortener::store::LinkStore;

const T0_MS: u64 = 1_700_000_000_000;

fn app(dir: &tempfile::TempDir, strategy: Strategy) -> App {
    let kv = kvclient::embedded::Embedded::open(dir.path()).unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        strategy,
        ..Config::default()
    };
    App::new(config, LinkStore::new(Arc::new(kv))).unwrap()
}

fn request(url: &str, expires_in_seconds: Option<u64>) -> ShortenRequest {
    ShortenRequest {
        long_url: url.into(),
        alias: None,
        expires_in_seconds,
    }
}

async fn permanent_after_expiring_gets_its_own_code(strategy: Strategy) {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir, strategy);
    let url = "https://example.com/both";
    let expiring = app.shorten(request(url, Some(60)), T0_MS).await.unwrap();
    assert_eq!(expiring.link.expires_ms, Some(T0_MS + 60_000));

    let permanent = app.shorten(request(url, None), T0_MS + 1).await.unwrap();
    assert_eq!(
        permanent.link.expires_ms, None,
        "a permanent request never gets an expiring code"
    );
    assert_ne!(permanent.link.code, expiring.link.code);

    let later_ms = T0_MS + 120_000;
    assert!(
        app.resolve(&expiring.link.code, later_ms)
            .await
            .unwrap()
            .is_none()
    );
    let resolved = app.resolve(&permanent.link.code, later_ms).await.unwrap();
    assert_eq!(
        resolved.map(|link| link.long_url),
        Some(url.to_string()),
        "the permanent code outlives the expiring one"
    );
    let again = app.shorten(request(url, None), later_ms).await.unwrap();
    assert_eq!(
        (again.link.code, again.created),
        (permanent.link.code, false),
        "permanent requests still share one code"
    );
}

async fn expiring_after_permanent_gets_its_own_expiry(strategy: Strategy) {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir, strategy);
    let url = "https://example.com/both";
    let permanent = app.shorten(request(url, None), T0_MS).await.unwrap();
    assert_eq!(permanent.link.expires_ms, None);

    let expiring = app
        .shorten(request(url, Some(60)), T0_MS + 1)
        .await
        .unwrap();
    assert_eq!(
        expiring.link.expires_ms,
        Some(T0_MS + 1 + 60_000),
        "the reply states the expiry the caller asked for"
    );
    assert_ne!(expiring.link.code, permanent.link.code);
    assert!(expiring.created);
    let stored = app
        .resolve(&expiring.link.code, T0_MS + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.expires_ms, expiring.link.expires_ms,
        "the reply is what is stored"
    );
    assert!(
        app.resolve(&expiring.link.code, T0_MS + 61_001)
            .await
            .unwrap()
            .is_none(),
        "the expiring link really expires"
    );
    assert!(
        app.resolve(&permanent.link.code, T0_MS + 61_001)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn permanent_after_expiring_gets_a_permanent_code() {
    for strategy in [Strategy::Snowflake, Strategy::Hash] {
        permanent_after_expiring_gets_its_own_code(strategy).await;
    }
}

#[tokio::test]
async fn expiring_after_permanent_gets_an_expiring_code() {
    for strategy in [Strategy::Snowflake, Strategy::Hash] {
        expiring_after_permanent_gets_its_own_expiry(strategy).await;
    }
}

#[tokio::test]
async fn two_expiring_requests_each_get_the_expiry_they_asked_for() {
    for strategy in [Strategy::Snowflake, Strategy::Hash] {
        let dir = tempfile::tempdir().unwrap();
        let app = app(&dir, strategy);
        let url = "https://example.com/twice";
        let long = app.shorten(request(url, Some(3600)), T0_MS).await.unwrap();
        let short = app.shorten(request(url, Some(60)), T0_MS).await.unwrap();
        assert_eq!(long.link.expires_ms, Some(T0_MS + 3_600_000));
        assert_eq!(
            short.link.expires_ms,
            Some(T0_MS + 60_000),
            "{strategy:?}: a shorter-lived request is not handed the longer-lived code"
        );
        assert_ne!(long.link.code, short.link.code);
        let same = app.shorten(request(url, Some(60)), T0_MS).await.unwrap();
        if strategy == Strategy::Hash {
            assert_eq!(
                same.link.code, short.link.code,
                "identical URL and expiry: the hash code is reused"
            );
        }
        assert_eq!(same.link.expires_ms, Some(T0_MS + 60_000));
    }
}
