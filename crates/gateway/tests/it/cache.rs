//! The edge cache against a local origin, RFC 9111 behaviour by behaviour:
//! freshness and `Age`, revalidation with 304, `Vary`, `no-store`,
//! `private`, request directives, invalid headers, huge objects,
//! `stale-while-revalidate`, `stale-if-error` with the origin killed,
//! request collapsing (100 misses → 1 origin request), purges by URL,
//! prefix and tag (403 without the token), the disk tier.
//!
//! The origin counts every request it answers by path, so "served from
//! the cache" is checked where it matters: at the origin.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::support::{TestGateway, WAIT, client};

const TOKEN: &str = "purge-secret";
const HUGE_BYTES: usize = 2 << 20;

/// What the origin answered, by path.
#[derive(Default)]
struct Counts {
    full: Mutex<HashMap<String, usize>>,
    not_modified: Mutex<HashMap<String, usize>>,
}

/// A killable origin whose answers depend on the path (see `answer`).
struct Origin {
    addr: SocketAddr,
    counts: Arc<Counts>,
    task: Option<JoinHandle<()>>,
}

impl Origin {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let task = Some(tokio::spawn(serve(listener, counts.clone())));
        Self { addr, counts, task }
    }

    async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    fn full(&self, path: &str) -> usize {
        *self.counts.full.lock().unwrap().get(path).unwrap_or(&0)
    }

    fn not_modified(&self, path: &str) -> usize {
        *self
            .counts
            .not_modified
            .lock()
            .unwrap()
            .get(path)
            .unwrap_or(&0)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener, counts: Arc<Counts>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let counts = counts.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| answer(counts.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

type OriginBody = Either<
    Full<Bytes>,
    StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, hyper::Error>>>>,
>;

/// The origin's behaviour, by path:
/// `/health` 200 · `/fresh/*` max-age=60 · `/etag` max-age=1 + ETag, 304
/// on match · `/vary` by Accept-Language · `/nostore` · `/private` ·
/// `/badage` max-age=abc · `/expires0` Expires: 0 · `/huge` and
/// `/huge-chunked` 2 MiB · `/sie` max-age=1 · `/mustreval` max-age=1,
/// must-revalidate · `/swr` max-age=1, stale-while-revalidate=30 ·
/// `/slow` 300 ms then max-age=60 · `/tag/<t>/*` max-age=60 with
/// `Surrogate-Key: <t>`. Bodies are `<path>#<n>`, n counting full answers.
async fn answer(
    counts: Arc<Counts>,
    request: Request<Incoming>,
) -> Result<Response<OriginBody>, hyper::Error> {
    let path = request.uri().path().to_string();
    if path == "/health" {
        return Ok(Response::new(Either::Left(Full::new(Bytes::from_static(
            b"ok",
        )))));
    }
    let mut response = Response::builder();
    let mut cache_control = "max-age=60";
    if path == "/etag" {
        cache_control = "max-age=1";
        response = response.header("etag", "\"v1\"");
        if request
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            *counts.not_modified.lock().unwrap().entry(path).or_default() += 1;
            let reply = response
                .status(304)
                .header("cache-control", "max-age=60")
                .body(Either::Left(Full::new(Bytes::new())))
                .unwrap();
            return Ok(reply);
        }
    }
    let n = {
        let mut full = counts.full.lock().unwrap();
        let n = full.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    let mut body = format!("{path}#{n}");
    match path.as_str() {
        "/vary" => {
            response = response.header("vary", "accept-language");
            let lang = request
                .headers()
                .get("accept-language")
                .map(|v| v.to_str().unwrap().to_string());
            body = format!("{body}:{}", lang.unwrap_or_default());
        }
        "/nostore" => cache_control = "no-store",
        "/private" => cache_control = "private, max-age=60",
        "/badage" => cache_control = "max-age=abc",
        "/expires0" => {
            cache_control = "";
            response = response.header("expires", "0");
        }
        "/sie" | "/swr-origin-down" => cache_control = "max-age=1",
        "/mustreval" => cache_control = "max-age=1, must-revalidate",
        "/swr" => cache_control = "max-age=1, stale-while-revalidate=30",
        "/slow" => tokio::time::sleep(Duration::from_millis(300)).await,
        "/huge" => body = "h".repeat(HUGE_BYTES),
        "/huge-chunked" => {
            let chunks: Vec<Result<Frame<Bytes>, hyper::Error>> = (0..32)
                .map(|_| Ok(Frame::data(Bytes::from(vec![b'c'; HUGE_BYTES / 32]))))
                .collect();
            let reply = response
                .header("cache-control", cache_control)
                .body(Either::Right(StreamBody::new(futures::stream::iter(
                    chunks,
                ))))
                .unwrap();
            return Ok(reply);
        }
        _ => {}
    }
    if let Some(tag) = path
        .strip_prefix("/tag/")
        .and_then(|rest| rest.split('/').next())
    {
        response = response.header("surrogate-key", format!("all {tag}"));
    }
    if !cache_control.is_empty() {
        response = response.header("cache-control", cache_control);
    }
    Ok(response
        .body(Either::Left(Full::new(Bytes::from(body))))
        .unwrap())
}

/// A gateway caching route `/` of `origin` (1 MiB objects, purge token).
async fn gateway(origin: &Origin, tweak: impl FnOnce(&mut gateway::Config)) -> TestGateway {
    let mut config = gateway::Config {
        access_log: false,
        ..Default::default()
    };
    let mut pool = gateway::config::Pool {
        upstreams: vec![origin.addr.to_string()],
        ..Default::default()
    };
    pool.health.interval_ms = 100;
    pool.health.path = "/health".into();
    config.pools.insert("origin".into(), pool);
    config.cache.admin_token = Some(TOKEN.into());
    config.cache.memory_bytes_max = 16 << 20;
    config.routes.push(gateway::config::Route {
        prefix: "/".into(),
        pool: "origin".into(),
        strip_prefix: false,
        cache: Some(gateway::cache::config::RouteCache {
            object_bytes_max: 1 << 20,
            ..Default::default()
        }),
        ..Default::default()
    });
    tweak(&mut config);
    TestGateway::start(config).await
}

/// Status, `X-Cache`, `Age` and body of a request.
struct Got {
    status: u16,
    x_cache: String,
    age: Option<u64>,
    body: Bytes,
}

async fn get(gateway: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Got {
    send(gateway, reqwest::Method::GET, path, headers).await
}

async fn send(
    gateway: &TestGateway,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut request = client().request(method, gateway.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let x_cache = header("x-cache").unwrap_or_default();
    let age = header("age").map(|v| v.parse().unwrap());
    let status = response.status().as_u16();
    assert!(
        header("surrogate-key").is_none(),
        "Surrogate-Key leaked to a client"
    );
    Got {
        status,
        x_cache,
        age,
        body: response.bytes().await.unwrap(),
    }
}

fn text(got: &Got) -> &str {
    std::str::from_utf8(&got.body).unwrap()
}

#[tokio::test]
async fn fresh_objects_are_hits_with_age_and_head_is_served_from_the_cache() {
    let origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    let first = get(&gateway, "/fresh/a?b=2&a=1", &[]).await;
    assert_eq!((first.status, first.x_cache.as_str()), (200, "MISS"));
    let second = get(&gateway, "/fresh/a?a=1&b=2", &[]).await;
    assert_eq!(second.x_cache, "HIT", "sorted queries are one object");
    assert_eq!(second.body, first.body);
    assert!(second.age.is_some_and(|age| age < 60), "no Age on a hit");
    let head = send(&gateway, reqwest::Method::HEAD, "/fresh/a?a=1&b=2", &[]).await;
    assert_eq!((head.x_cache.as_str(), head.body.len()), ("HIT", 0));
    assert_eq!(origin.full("/fresh/a"), 1);
    // A client's own no-cache makes the cache ask the origin (§5.2.1.4).
    let forced = get(
        &gateway,
        "/fresh/a?a=1&b=2",
        &[("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(
        origin.full("/fresh/a"),
        2,
        "no-cache was not honoured: {}",
        forced.x_cache
    );
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("hyperscale_gateway_cache_requests_total{outcome=\"hit\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hyperscale_gateway_cache_served_bytes_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn stale_objects_are_revalidated_with_304_and_clients_get_304s() {
    let origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    let first = get(&gateway, "/etag", &[]).await;
    assert_eq!(first.x_cache, "MISS");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let again = get(&gateway, "/etag", &[]).await;
    assert_eq!((again.status, again.x_cache.as_str()), (200, "HIT"));
    assert_eq!(again.body, first.body, "a 304 keeps the stored body");
    assert_eq!((origin.full("/etag"), origin.not_modified("/etag")), (1, 1));
    // The 304 renewed the object for 60 s: no further origin request.
    let renewed = get(&gateway, "/etag", &[]).await;
    assert_eq!(renewed.x_cache, "HIT");
    assert_eq!(origin.not_modified("/etag"), 1);
    let conditional = get(&gateway, "/etag", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((conditional.status, conditional.body.len()), (304, 0));
}

#[tokio::test]
async fn vary_keeps_one_variant_per_header_value() {
    let origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    let ko = get(&gateway, "/vary", &[("accept-language", "ko")]).await;
    let en = get(&gateway, "/vary", &[("accept-language", "en")]).await;
    assert_eq!((ko.x_cache.as_str(), en.x_cache.as_str()), ("MISS", "MISS"));
    let ko_again = get(&gateway, "/vary", &[("accept-language", "ko")]).await;
    let en_again = get(&gateway, "/vary", &[("accept-language", "en")]).await;
    assert_eq!(
        (ko_again.x_cache.as_str(), en_again.x_cache.as_str()),
        ("HIT", "HIT")
    );
    assert!(text(&ko_again).ends_with(":ko") && text(&en_again).ends_with(":en"));
    assert_eq!(origin.full("/vary"), 2);
}

#[tokio::test]
async fn no_store_private_and_invalid_lifetimes_are_not_served_from_the_cache() {
    let origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    for path in ["/nostore", "/private", "/badage", "/expires0"] {
        for _ in 0..2 {
            let got = get(&gateway, path, &[]).await;
            assert_eq!((got.status, got.x_cache.as_str()), (200, "MISS"), "{path}");
        }
        assert_eq!(origin.full(path), 2, "{path} was served from the cache");
    }
    // A client's no-store keeps even a cacheable answer out of the cache.
    get(&gateway, "/fresh/ns", &[("cache-control", "no-store")]).await;
    get(&gateway, "/fresh/ns", &[]).await;
    assert_eq!(origin.full("/fresh/ns"), 2);
}

#[tokio::test]
async fn huge_objects_are_streamed_whole_and_not_cached() {
    let origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    for path in ["/huge", "/huge-chunked"] {
        for _ in 0..2 {
            let got = get(&gateway, path, &[]).await;
            assert_eq!((got.status, got.body.len()), (200, HUGE_BYTES), "{path}");
            assert_eq!(got.x_cache, "MISS");
        }
        assert_eq!(
            origin.full(path),
            2,
            "{path} over object_bytes_max was cached"
        );
    }
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    get(&gateway, "/swr", &[]).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let stale = get(&gateway, "/swr", &[]).await;
    assert_eq!(stale.x_cache, "STALE");
    assert_eq!(text(&stale), "/swr#1");
    let refreshed = async {
        while origin.full("/swr") < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, refreshed)
        .await
        .expect("no background revalidation");
    // Stored once its body is read: poll (a STALE answer meanwhile starts
    // no second fetch while one is in flight).
    let renewed = async {
        loop {
            let got = get(&gateway, "/swr", &[]).await;
            if got.x_cache == "HIT" {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let fresh = tokio::time::timeout(WAIT, renewed)
        .await
        .expect("never renewed");
    assert_ne!(
        text(&fresh),
        "/swr#1",
        "the background fetch was not stored"
    );
}

#[tokio::test]
async fn a_dead_origin_gets_stale_content_served_unless_must_revalidate() {
    let mut origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    let first = get(&gateway, "/sie", &[]).await;
    get(&gateway, "/mustreval", &[]).await;
    origin.kill().await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for _ in 0..3 {
        let stale = get(&gateway, "/sie", &[]).await;
        assert_eq!((stale.status, stale.x_cache.as_str()), (200, "STALE"));
        assert_eq!(stale.body, first.body);
    }
    let refused = get(&gateway, "/mustreval", &[]).await;
    assert!(
        refused.status >= 500,
        "must-revalidate content was served stale"
    );
    let missing = get(&gateway, "/fresh/never-seen", &[]).await;
    assert!(missing.status >= 500);
}

#[tokio::test]
async fn a_hundred_concurrent_misses_make_one_origin_request() {
    let origin = Origin::start().await;
    let gateway = Arc::new(gateway(&origin, |_| {}).await);
    let mut requests = JoinSet::new();
    for _ in 0..100 {
        let gateway = gateway.clone();
        requests.spawn(async move { get(&gateway, "/slow", &[]).await });
    }
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    while let Some(got) = requests.join_next().await {
        let got = got.unwrap();
        assert_eq!((got.status, text(&got)), (200, "/slow#1"));
        *outcomes.entry(got.x_cache).or_default() += 1;
    }
    assert_eq!(origin.full("/slow"), 1, "collapsing failed: {outcomes:?}");
    assert_eq!(outcomes.get("MISS"), Some(&1), "{outcomes:?}");
}

async fn purge(gateway: &TestGateway, body: &str, token: Option<&str>) -> (u16, String) {
    let mut request = client()
        .post(gateway.url("/_cache/purge"))
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn purges_by_url_prefix_and_tag_need_the_token() {
    let origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    let paths = ["/tag/red/a", "/tag/blue/b", "/fresh/p/c", "/fresh/q?x=1"];
    for path in paths {
        assert_eq!(get(&gateway, path, &[]).await.x_cache, "MISS");
        assert_eq!(get(&gateway, path, &[]).await.x_cache, "HIT");
    }
    let url = r#"{"url": "/tag/red/a"}"#;
    assert_eq!(purge(&gateway, url, None).await.0, 403);
    assert_eq!(purge(&gateway, url, Some("wrong")).await.0, 403);
    let answer = client()
        .get(gateway.url("/_cache/purge"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 405);
    assert_eq!(purge(&gateway, r#"{"url": 1}"#, Some(TOKEN)).await.0, 400);
    assert_eq!(
        get(&gateway, "/tag/red/a", &[]).await.x_cache,
        "HIT",
        "a refused purge purged"
    );

    assert_eq!(
        purge(&gateway, url, Some(TOKEN)).await,
        (200, r#"{"purged":1}"#.into())
    );
    assert_eq!(get(&gateway, "/tag/red/a", &[]).await.x_cache, "MISS");
    assert_eq!(get(&gateway, "/tag/blue/b", &[]).await.x_cache, "HIT");
    let by_query = r#"{"url": "/fresh/q?x=1"}"#;
    assert_eq!(
        purge(&gateway, by_query, Some(TOKEN)).await.1,
        r#"{"purged":1}"#
    );
    assert_eq!(get(&gateway, "/fresh/q?x=1", &[]).await.x_cache, "MISS");

    let prefix = r#"{"prefix": "/fresh/p/"}"#;
    assert_eq!(
        purge(&gateway, prefix, Some(TOKEN)).await.1,
        r#"{"purged":1}"#
    );
    assert_eq!(get(&gateway, "/fresh/p/c", &[]).await.x_cache, "MISS");

    // Both /tag/ objects say `Surrogate-Key: all <colour>`.
    get(&gateway, "/tag/red/a", &[]).await;
    let tag = r#"{"tag": "all"}"#;
    assert_eq!(purge(&gateway, tag, Some(TOKEN)).await.1, r#"{"purged":2}"#);
    assert_eq!(get(&gateway, "/tag/blue/b", &[]).await.x_cache, "MISS");
    assert_eq!(get(&gateway, "/fresh/q?x=1", &[]).await.x_cache, "HIT");
}

#[tokio::test]
async fn a_successful_post_invalidates_the_url_and_bypasses() {
    let origin = Origin::start().await;
    let gateway = gateway(&origin, |_| {}).await;
    get(&gateway, "/fresh/u", &[]).await;
    assert_eq!(get(&gateway, "/fresh/u", &[]).await.x_cache, "HIT");
    let posted = send(&gateway, reqwest::Method::POST, "/fresh/u", &[]).await;
    assert_eq!(posted.x_cache, "BYPASS");
    assert_eq!(get(&gateway, "/fresh/u", &[]).await.x_cache, "MISS");
    let ranged = get(&gateway, "/fresh/u", &[("range", "bytes=0-1")]).await;
    assert_eq!(ranged.x_cache, "BYPASS");
}

#[tokio::test]
async fn the_disk_tier_catches_what_memory_evicts() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().to_path_buf();
    let gateway = gateway(&origin, move |config| {
        config.cache.memory_bytes_max = 4 << 10;
        config.cache.disk_dir = Some(disk);
        config.cache.disk_bytes_max = 1 << 20;
        config.routes[0].cache.as_mut().unwrap().object_bytes_max = 2 << 10;
    })
    .await;
    for n in 0..20 {
        get(&gateway, &format!("/fresh/d{n}"), &[]).await;
    }
    gateway
        .wait_for_metric("hyperscale_gateway_cache_objects{tier=\"disk\"}")
        .await;
    let files = || std::fs::read_dir(dir.path()).unwrap().count();
    let wait = async {
        while files() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("nothing reached the disk tier");
    let early = get(&gateway, "/fresh/d0", &[]).await;
    assert_eq!(
        (early.x_cache.as_str(), text(&early)),
        ("HIT", "/fresh/d0#1")
    );
    assert_eq!(origin.full("/fresh/d0"), 1);
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("hyperscale_gateway_cache_evictions_total{tier=\"memory\"}"),
        "{metrics}"
    );
}
