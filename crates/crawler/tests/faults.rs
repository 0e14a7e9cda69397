//! Bad input and faults: enormous pages, a gzip bomb, invalid UTF-8 and
//! broken HTML, an endless redirect chain, a server that accepts and never
//! answers, a name that does not resolve, a binary robots.txt. The crawl
//! goes on, counts each failure by kind, and ends.

use std::io::Write;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use crawler::crawl::{CrawlConfig, Crawler, End};
use crawler::state::Scope;
use crawler::store::Outcome;

const CAP: usize = 64 * 1024;

fn gzip_bomb() -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..50 {
        gz.write_all(&zeros).expect("gzip");
    }
    gz.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crawl_survives_hostile_servers() {
    // A server that accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let index = format!(
        "<html><body><a href=/big>big</a><a href=/bomb>bomb</a><a href=/bad>bad</a>\
         <a href=/chain/0>chain</a><a href=http://{silent_addr}/x>silent</a>\
         <a href=http://no-such-host.invalid/>dns</a><a href='javascript:alert(1)'>js</a>\
         <a href='http://[::1'>broken</a></body></html>"
    );
    let bomb = gzip_bomb();
    let app = Router::new()
        .route(
            "/robots.txt",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain")],
                    vec![0u8, 159, 146, 150, 255],
                )
            }),
        )
        .route(
            "/",
            get(move || async move { ([(header::CONTENT_TYPE, "text/html")], index) }),
        )
        .route(
            "/big",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<p>x</p>".repeat(300_000),
                )
            }),
        )
        .route(
            "/bomb",
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "text/html"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    bomb,
                )
                    .into_response()
            }),
        )
        .route(
            "/bad",
            get(|| async {
                let mut body =
                    b"<html><body><p>\xff\xfe broken <b><i></b> <a href=/after>after</a> <div"
                        .to_vec();
                body.extend_from_slice(&[0xc3, 0x28, 0xa0, 0xa1]);
                ([(header::CONTENT_TYPE, "text/html")], body)
            }),
        )
        .route(
            "/after",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<p>made it</p>") }),
        )
        .route(
            "/chain/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u64>| async move {
                    (
                        axum::http::StatusCode::FOUND,
                        [(header::LOCATION, format!("/chain/{}", n + 1))],
                    )
                },
            ),
        );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = CrawlConfig {
        data_dir: dir.path().to_path_buf(),
        concurrency: 4,
        ..CrawlConfig::default()
    };
    cfg.state.scope = Scope::Any;
    cfg.state.politeness.delay_ms = 5;
    cfg.state.expected_urls = 1000;
    cfg.fetch.body_bytes_max = CAP;
    cfg.fetch.connect_timeout_ms = 500;
    cfg.fetch.first_byte_timeout_ms = 500;
    cfg.fetch.total_timeout_ms = 2000;
    let crawler = Crawler::open(cfg).expect("open");
    crawler.add_seeds(&[format!("{base}/")]).expect("seeds");
    let end = tokio::time::timeout(Duration::from_secs(60), crawler.run())
        .await
        .expect("ends")
        .expect("crawl");
    assert_eq!(end, End::Complete);

    let pages = crawler.state().lock().pages().expect("pages");
    let page = |path: &str| {
        pages
            .iter()
            .find(|p| p.url == format!("{base}{path}"))
            .unwrap_or_else(|| panic!("{path} not crawled: {pages:?}"))
    };
    assert!(page("/big").length as usize <= CAP && page("/big").length > 0);
    assert!(
        page("/bomb").length as usize <= CAP,
        "the bomb was not capped"
    );
    assert_eq!(
        page("/after").status,
        200,
        "the link in the broken page was not followed"
    );
    let chain = pages.iter().filter(|p| p.url.contains("/chain/")).count();
    assert_eq!(chain, 6, "redirects followed: {chain}");
    let stats = crawler.stats().snapshot();
    assert!(
        stats.errors.get("timeout").copied().unwrap_or(0) >= 1,
        "{:?}",
        stats.errors
    );
    assert!(
        stats.errors.get("dns").copied().unwrap_or(0) >= 1,
        "{:?}",
        stats.errors
    );
    assert_eq!(stats.skipped.get("redirect_limit").copied(), Some(1));
    // The unreachable hosts' robots.txt failed: RFC 9309 says disallow.
    assert!(
        pages
            .iter()
            .any(|p| p.url.contains("no-such-host") && p.outcome == Outcome::Robots)
    );
    hold.abort();
    server.abort();
}
