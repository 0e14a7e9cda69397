//! A synthetic web on 127.0.0.1 for tests, demos and benchmarks
//! (`hyperscale crawler testweb`): `hosts` servers, one port each, with
//! `pages` pages between them, built to exercise every part of the crawler:
//!
//! * a binary tree of pages per host (`/p/0` reaches all of them) and links
//!   to the same page number on the next two hosts (host 0's `/p/0` reaches
//!   the whole web, even with a host missing);
//! * `/private/*` disallowed by every robots.txt, `/nf/*` linked only with
//!   `rel=nofollow`: neither may ever be requested;
//! * exact duplicates (`/dup/i`, byte-identical to `/p/i`) and near
//!   duplicates (`/near/i`, one word changed) for every fifth page;
//! * `/r/i` → 301 → `/moved/i` (reachable only through the redirect);
//! * host 0: spider traps (`/trap/...`, ever-deeper paths of new segments;
//!   `/loop/a/a/...`, one segment repeated) and a calendar
//!   (`/cal?d=YYYY-MM` linking the next month forever);
//! * host 1 slow (each answer waits `slow_ms`), host 2 failing (every page
//!   `i % 10 == 3` answers 500) with no robots.txt (404: allow all), host 3's
//!   robots.txt answers 503 (RFC 9309: disallow all), host 4 asks for
//!   `Crawl-delay` (0.1 s by default);
//! * validators on every page (`ETag`: a hash of the body; `Last-Modified`)
//!   answered with `304 Not Modified` to a conditional GET that matches;
//!   with `change_ms` > 0 every fourth page (`/p/i`, `i % 4 == 1`) changes
//!   every `change_ms` (a version in its title), the others never do;
//! * a request log (host, target, arrival time, conditional or not, status)
//!   to check politeness and "fetched once" from the server's side.
//!
//! [`TestWeb::expected`] walks the same link graph (from the structured
//! links, not by parsing HTML) to give the set a correct crawl must fetch.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

/// Which host plays which part.
pub const TRAP_HOST: usize = 0;
/// Answers slowly.
pub const SLOW_HOST: usize = 1;
/// Some pages answer 500; no robots.txt.
pub const FAILING_HOST: usize = 2;
/// robots.txt answers 503.
pub const ROBOTS_5XX_HOST: usize = 3;
/// `Crawl-delay: 0.1`.
pub const CRAWL_DELAY_HOST: usize = 4;

/// The web's shape.
#[derive(Debug, Clone, Copy)]
pub struct WebSpec {
    /// Servers (at least 5 for every role).
    pub hosts: usize,
    /// Regular pages in all (`/p/i`), split evenly.
    pub pages: usize,
    /// Delay of the slow host.
    pub slow_ms: u64,
    /// First port (hosts on consecutive ports); 0 = any free ports.
    pub base_port: u16,
    /// `Crawl-delay` the crawl-delay host asks for, in ms (0: none, for
    /// benchmarks against crawlers that ignore it).
    pub crawl_delay_ms: u64,
    /// Period of the changing pages (0: nothing changes).
    pub change_ms: u64,
}

/// One request the web saw.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Host index.
    pub host: usize,
    /// Path and query.
    pub target: String,
    /// Arrival, microseconds since the web started.
    pub at_us: u64,
    /// The request carried `If-None-Match` or `If-Modified-Since`.
    pub conditional: bool,
    /// The answer's status.
    pub status: u16,
}

/// What the web answers for one target.
pub struct Served {
    /// Status.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
    /// `Location`.
    pub location: Option<String>,
    /// Links on the page: absolute URL and nofollow.
    pub links: Vec<(String, bool)>,
}

struct Web {
    spec: WebSpec,
    bases: Vec<String>,
    log: Mutex<Vec<LogEntry>>,
    started: Instant,
    /// Wall-clock start, whole seconds (the `Last-Modified` of static pages).
    started_at: SystemTime,
}

/// A running test web.
pub struct TestWeb {
    web: Arc<Web>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestWeb {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

const WORDS: usize = 3000;

fn word(i: u32) -> String {
    const SYL: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "an", "el", "or", "us", "ix", "em", "ob",
        "ud",
    ];
    let mut w = String::new();
    let mut n = i as usize;
    loop {
        w.push_str(SYL[n % 16]);
        n /= 16;
        if n == 0 {
            break;
        }
    }
    w
}

impl Web {
    fn pages_per_host(&self) -> usize {
        (self.spec.pages / self.spec.hosts.max(1)).max(1)
    }

    fn text(&self, h: usize, i: usize) -> Vec<String> {
        let mut rng = fastrand::Rng::with_seed((h as u64) << 32 | i as u64);
        (0..150).map(|_| word(rng.u32(0..WORDS as u32))).collect()
    }

    fn page(&self, title: &str, words: &[String], links: &[(String, bool)]) -> String {
        let mut html = format!(
            "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>"
        );
        html.push_str(&words.join(" "));
        html.push_str("</p><ul>");
        for (href, nofollow) in links {
            let rel = if *nofollow { " rel=\"nofollow\"" } else { "" };
            html.push_str(&format!("<li><a href=\"{href}\"{rel}>{href}</a></li>"));
        }
        html.push_str("</ul></body></html>");
        html
    }

    fn html(&self, title: &str, words: &[String], links: Vec<(String, bool)>) -> Served {
        Served {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: self.page(title, words, &links),
            location: None,
            links,
        }
    }

    fn status(status: u16) -> Served {
        Served {
            status,
            content_type: "text/plain",
            body: format!("status {status}\n"),
            location: None,
            links: Vec::new(),
        }
    }

    fn links_of(&self, h: usize, i: usize) -> Vec<(String, bool)> {
        let n = self.pages_per_host();
        let hosts = self.spec.hosts;
        let base = &self.bases[h];
        let mut links = Vec::new();
        for child in [2 * i + 1, 2 * i + 2] {
            if child < n {
                links.push((format!("{base}/p/{child}"), false));
            }
        }
        for step in [1, 2] {
            if hosts > step {
                links.push((format!("{}/p/{i}", self.bases[(h + step) % hosts]), false));
            }
        }
        links.push((format!("{base}/private/{i}"), false));
        links.push((format!("{base}/nf/{i}"), true));
        if i.is_multiple_of(5) {
            links.push((format!("{base}/dup/{i}"), false));
            links.push((format!("{base}/near/{i}"), false));
        }
        if i.is_multiple_of(7) {
            links.push((format!("{base}/r/{i}"), false));
        }
        if h == TRAP_HOST && i == 0 {
            links.push((format!("{base}/trap/x"), false));
            links.push((format!("{base}/loop/a"), false));
            links.push((format!("{base}/cal?d=2026-01"), false));
        }
        links
    }

    /// Whether page `i` is one of the changing ones.
    fn changes(&self, i: usize) -> bool {
        self.spec.change_ms > 0 && i % 4 == 1
    }

    /// The current version of page `i` (0 for pages that never change).
    fn version(&self, i: usize) -> u64 {
        if self.changes(i) {
            self.started.elapsed().as_millis() as u64 / self.spec.change_ms
        } else {
            0
        }
    }

    /// `Last-Modified` of a page at `version`.
    fn modified_at(&self, version: u64) -> SystemTime {
        self.started_at + Duration::from_millis(version.saturating_mul(self.spec.change_ms))
    }

    /// The answer for `target` (path and query) on host `h`.
    fn answer(&self, h: usize, target: &str) -> Served {
        let n = self.pages_per_host();
        let base = &self.bases[h];
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let num = |prefix: &str| {
            path.strip_prefix(prefix)
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|i| *i < n)
        };
        if path == "/robots.txt" {
            return match h {
                FAILING_HOST => Self::status(404),
                ROBOTS_5XX_HOST => Self::status(503),
                CRAWL_DELAY_HOST if self.spec.crawl_delay_ms > 0 => Served {
                    body: format!(
                        "User-agent: *\nDisallow: /private/\nCrawl-delay: {}\n",
                        self.spec.crawl_delay_ms as f64 / 1000.0
                    ),
                    ..Self::status(200)
                },
                _ => Served {
                    body: "User-agent: *\nDisallow: /private/\n".into(),
                    ..Self::status(200)
                },
            };
        }
        if let Some(i) = num("/p/") {
            if h == FAILING_HOST && i % 10 == 3 {
                return Self::status(500);
            }
            let version = self.version(i);
            let title = if version > 0 {
                format!("host {h} page {i} v{version}")
            } else {
                format!("host {h} page {i}")
            };
            return self.html(&title, &self.text(h, i), self.links_of(h, i));
        }
        if let Some(i) = num("/dup/") {
            return self.html(
                &format!("host {h} page {i}"),
                &self.text(h, i),
                self.links_of(h, i),
            );
        }
        if let Some(i) = num("/near/") {
            let mut words = self.text(h, i);
            words[75] = "different".into();
            return self.html(&format!("host {h} page {i}"), &words, self.links_of(h, i));
        }
        if let Some(i) = num("/r/") {
            return Served {
                location: Some(format!("{base}/moved/{i}")),
                ..Self::status(301)
            };
        }
        if let Some(i) = num("/moved/") {
            let words = self.text(h, i + 1_000_000);
            return self.html("moved", &words, vec![(format!("{base}/p/{i}"), false)]);
        }
        if let Some(i) = num("/private/").or_else(|| num("/nf/")) {
            return self.html("hidden", &self.text(h, i + 2_000_000), Vec::new());
        }
        if h == TRAP_HOST && path.starts_with("/trap/") {
            // A chain of ever-new segments (a session id in the path).
            let depth = path.matches('/').count();
            let links = vec![(format!("{base}{path}/x{depth}"), false)];
            return self.html("trap", &self.text(h, 3_000_000 + depth), links);
        }
        if h == TRAP_HOST && path.starts_with("/loop/") {
            // A relative link that repeats the last segment forever.
            let depth = path.matches('/').count();
            let links = vec![(format!("{base}{path}/a"), false)];
            return self.html("loop", &self.text(h, 3_500_000 + depth), links);
        }
        if h == TRAP_HOST && path == "/cal" {
            let d = query.strip_prefix("d=").unwrap_or("2026-01");
            let (y, m) = d.split_once('-').unwrap_or(("2026", "01"));
            let (y, m): (u32, u32) = (y.parse().unwrap_or(2026), m.parse().unwrap_or(1));
            let (ny, nm) = if m >= 12 { (y + 1, 1) } else { (y, m + 1) };
            let links = vec![(format!("{base}/cal?d={ny}-{nm:02}"), false)];
            return self.html(
                &format!("calendar {d}"),
                &self.text(h, 4_000_000 + (y * 12 + m) as usize),
                links,
            );
        }
        Self::status(404)
    }
}

/// Whether a conditional GET's validators match the current `etag` and
/// `modified` (RFC 9110 §13.2.2: `If-None-Match` wins over `If-Modified-Since`).
fn not_modified(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = headers.get(header::IF_NONE_MATCH) {
        let tags = tags.to_str().unwrap_or("");
        return tags.split(',').any(|t| t.trim() == etag || t.trim() == "*");
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok())
        .is_some_and(|since| modified <= since)
}

async fn serve(
    State((web, h)): State<(Arc<Web>, usize)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let target = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let at_us = web.started.elapsed().as_micros() as u64;
    if h == SLOW_HOST && web.spec.slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(web.spec.slow_ms)).await;
    }
    let served = web.answer(h, &target);
    let conditional = headers.contains_key(header::IF_NONE_MATCH)
        || headers.contains_key(header::IF_MODIFIED_SINCE);
    let validators = (served.status == 200).then(|| {
        let etag = format!(
            "\"{:016x}\"",
            xxhash_rust::xxh3::xxh3_64(served.body.as_bytes())
        );
        let version = target
            .strip_prefix("/p/")
            .and_then(|i| i.parse::<usize>().ok())
            .map_or(0, |i| web.version(i));
        (etag, web.modified_at(version))
    });
    let unchanged = validators
        .as_ref()
        .is_some_and(|(etag, modified)| not_modified(&headers, etag, *modified));
    let status = if unchanged { 304 } else { served.status };
    web.log.lock().push(LogEntry {
        host: h,
        target: target.clone(),
        at_us,
        conditional,
        status,
    });
    let body = if unchanged {
        String::new()
    } else {
        served.body
    };
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(served.content_type),
    );
    if let Some((etag, modified)) = validators {
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            response.headers_mut().insert(header::LAST_MODIFIED, value);
        }
    }
    if let Some(location) = served.location
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Whether `target` is one of host 0's trap pages.
pub fn is_trap(target: &str) -> bool {
    target.starts_with("/trap/") || target.starts_with("/loop/") || target.starts_with("/cal")
}

/// What a correct crawl of the web fetches.
#[derive(Debug, Default)]
pub struct Expected {
    /// `(host, target)` of every page a crawl must request exactly once
    /// (trap and calendar pages excluded: how many of those is the limits' business).
    pub pages: BTreeSet<(usize, String)>,
}

impl TestWeb {
    /// Binds every host and starts serving.
    pub async fn start(spec: WebSpec) -> std::io::Result<Self> {
        assert!(spec.hosts >= 1, "a web has at least one host");
        let mut listeners = Vec::new();
        for h in 0..spec.hosts {
            let port = if spec.base_port == 0 {
                0
            } else {
                spec.base_port.saturating_add(h as u16)
            };
            listeners.push(tokio::net::TcpListener::bind(("127.0.0.1", port)).await?);
        }
        let bases = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| format!("http://{a}")))
            .collect::<std::io::Result<Vec<_>>>()?;
        let web = Arc::new(Web {
            spec,
            bases,
            log: Mutex::new(Vec::new()),
            started: Instant::now(),
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(clock::now_ms() / 1000),
        });
        let mut tasks = Vec::new();
        for (h, listener) in listeners.into_iter().enumerate() {
            let app = Router::new().fallback(serve).with_state((web.clone(), h));
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        Ok(Self { web, tasks })
    }

    /// Base URLs of the hosts.
    pub fn bases(&self) -> &[String] {
        &self.web.bases
    }

    /// Addresses of the hosts.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.web
            .bases
            .iter()
            .filter_map(|b| b.trim_start_matches("http://").parse().ok())
            .collect()
    }

    /// The seed: host 0's first page.
    pub fn seed(&self) -> String {
        format!("{}/p/0", self.web.bases[0])
    }

    /// The status the web answers `target` on host `h` with.
    pub fn status_of(&self, h: usize, target: &str) -> u16 {
        self.web.answer(h, target).status
    }

    /// The request log so far.
    pub fn log(&self) -> Vec<LogEntry> {
        self.web.log.lock().clone()
    }

    /// The page set a correct crawl fetches (breadth-first over the link graph).
    pub fn expected(&self) -> Expected {
        let web = &self.web;
        let host_of = |url: &str| {
            web.bases
                .iter()
                .position(|b| url.starts_with(b.as_str()) && url[b.len()..].starts_with('/'))
        };
        let mut expected = Expected::default();
        let mut queue = VecDeque::from([self.seed()]);
        let mut seen: BTreeSet<String> = BTreeSet::from([self.seed()]);
        while let Some(url) = queue.pop_front() {
            let Some(h) = host_of(&url) else { continue };
            let target = url[web.bases[h].len()..].to_string();
            // Host 2 has no robots.txt (404): its /private/ is allowed.
            if h == ROBOTS_5XX_HOST || (target.starts_with("/private/") && h != FAILING_HOST) {
                continue;
            }
            if is_trap(&target) {
                continue;
            }
            expected.pages.insert((h, target.clone()));
            let served = web.answer(h, &target);
            let mut next: Vec<String> = served
                .links
                .iter()
                .filter(|(_, nf)| !nf)
                .map(|(u, _)| u.clone())
                .collect();
            next.extend(served.location);
            for link in next {
                if seen.insert(link.clone()) {
                    queue.push_back(link);
                }
            }
        }
        expected
    }
}
