//! Test fixtures: small upstream servers that can be killed and restarted on
//! the same port, and a gateway running in-process on port 0.
#![allow(dead_code)]
// Fixtures, not code under test: a failed setup should panic the test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Bound on every wait in the tests: a bug fails fast instead of hanging CI.
pub const WAIT: Duration = Duration::from_secs(20);

/// What an upstream saw, shared with the test.
#[derive(Default)]
pub struct Seen {
    /// Requests per path.
    pub hits: Mutex<HashMap<String, usize>>,
    /// Requests currently parked on `/slow`.
    pub parked: Mutex<usize>,
    /// Wakes the `/slow` requests.
    pub release: Notify,
    /// Requests per path whose whole body arrived.
    pub completed: Mutex<HashMap<String, usize>>,
    /// Every non-empty body received whole.
    pub bodies: Mutex<Vec<Bytes>>,
    /// When set, every request but `/health` is answered 503.
    pub fail: std::sync::atomic::AtomicBool,
    /// TCP connections accepted.
    pub connections: std::sync::atomic::AtomicUsize,
}

/// A test upstream: answers with its name in `x-upstream` and echoes what
/// the gateway forwarded. `/slow` parks until released, `/hang` never
/// answers, `/fail` answers 503.
pub struct TestUpstream {
    pub name: String,
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    task: Option<JoinHandle<()>>,
}

impl TestUpstream {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(name, listener, Arc::new(Seen::default()))
    }

    fn on(name: &str, listener: TcpListener, seen: Arc<Seen>) -> Self {
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(accept_loop(name.to_string(), listener, seen.clone()));
        Self {
            name: name.to_string(),
            addr,
            seen,
            task: Some(task),
        }
    }

    /// Kills the server and every open connection (like a crashed process).
    pub async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Starts again on the same port.
    pub async fn restart(&mut self) {
        self.kill().await;
        let listener = TcpListener::bind(self.addr).await.unwrap();
        let again = Self::on(&self.name, listener, self.seen.clone());
        self.task = again.into_task();
    }

    fn into_task(mut self) -> Option<JoinHandle<()>> {
        self.task.take()
    }

    pub fn hits(&self, path: &str) -> usize {
        *self.seen.hits.lock().unwrap().get(path).unwrap_or(&0)
    }

    /// Requests to `path` whose body arrived whole.
    pub fn completed(&self, path: &str) -> usize {
        *self.seen.completed.lock().unwrap().get(path).unwrap_or(&0)
    }

    pub fn total_hits(&self) -> usize {
        self.seen.hits.lock().unwrap().values().sum()
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(name: String, listener: TcpListener, seen: Arc<Seen>) {
    // Connection tasks live in this set: aborting the loop drops the set,
    // which aborts them and closes their sockets.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        seen.connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = name.clone();
        let seen = seen.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| answer(name.clone(), seen.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn answer(
    name: String,
    seen: Arc<Seen>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_string();
    let request_path = request
        .uri()
        .path_and_query()
        .map(|target| target.as_str().to_string())
        .unwrap_or_default();
    *seen.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let echo = |header: &str| {
        request
            .headers()
            .get(header)
            .map(|v| v.to_str().unwrap_or("?").to_string())
            .unwrap_or_default()
    };
    let forwarded_for = echo("x-forwarded-for");
    let secret = echo("x-secret");
    let via = echo("via");
    let host = echo("host");
    let hosts = request.headers().get_all("host").iter().count();
    let mut status = 200;
    match path.as_str() {
        "/slow" => {
            let released = seen.release.notified();
            *seen.parked.lock().unwrap() += 1;
            released.await;
            *seen.parked.lock().unwrap() -= 1;
        }
        "/hang" => std::future::pending::<()>().await,
        "/fail" => status = 503,
        _ => {}
    }
    let body = request.into_body().collect().await?.to_bytes();
    *seen
        .completed
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default() += 1;
    if !body.is_empty() {
        seen.bodies.lock().unwrap().push(body.clone());
    }
    if path != "/health" && seen.fail.load(std::sync::atomic::Ordering::SeqCst) {
        status = 503;
    }
    Ok(Response::builder()
        .status(status)
        .header("x-upstream", &name)
        .header("x-seen-forwarded-for", forwarded_for)
        .header("x-seen-secret", secret)
        .header("x-seen-via", via)
        .header("x-seen-host", host)
        .header("x-seen-host-count", hosts.to_string())
        .header("x-seen-path", request_path)
        .header("x-seen-body-bytes", body.len().to_string())
        .body(Full::new(Bytes::from(name)))
        .unwrap())
}

/// A gateway running in this process; stops when dropped.
pub struct TestGateway {
    pub addr: SocketAddr,
    shutdown: service::Shutdown,
}

impl TestGateway {
    /// A gateway on `workers` single-threaded runtimes (thread per core),
    /// as `hyperscale gateway serve` runs it; call from a current-thread
    /// runtime.
    pub async fn start_workers(config: gateway::Config, workers: usize) -> Self {
        let listener =
            service::net::bind_reuseport("127.0.0.1:0".parse().unwrap(), "gateway").unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = service::Shutdown::new();
        let ctx = service::SystemContext::new(shutdown.clone());
        let mut registry = service::metrics::Registry::default();
        let gateway = gateway::Gateway::new(config, &mut registry).unwrap();
        tokio::spawn(async move {
            if let Err(err) = gateway.serve_workers(listener, workers, ctx).await {
                panic!("gateway failed: {err:#}");
            }
        });
        Self { addr, shutdown }
    }

    pub async fn start(config: gateway::Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = service::Shutdown::new();
        let ctx = service::SystemContext::new(shutdown.clone());
        tokio::spawn(async move {
            if let Err(err) = gateway::serve(listener, config, ctx).await {
                panic!("gateway failed: {err:#}");
            }
        });
        Self { addr, shutdown }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The metrics text.
    pub async fn metrics(&self) -> String {
        self.try_metrics().await.expect("cannot fetch /metrics")
    }

    async fn try_metrics(&self) -> Option<String> {
        let response = client().get(self.url("/metrics")).send().await.ok()?;
        response.text().await.ok()
    }

    /// Waits until the metrics contain `needle`.
    pub async fn wait_for_metric(&self, needle: &str) {
        let wait = async {
            while !self
                .try_metrics()
                .await
                .unwrap_or_default()
                .contains(needle)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(WAIT, wait).await.is_err() {
            panic!(
                "metric `{needle}` never appeared:\n{}",
                self.metrics().await
            );
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Sends raw `request` bytes on a fresh connection (so no client library
/// rewrites the target) and returns everything the gateway answers until it
/// closes the connection. The request should say `connection: close`.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received).await;
        String::from_utf8_lossy(&received).into_owned()
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("the gateway never closed the connection")
}

/// The status code of a raw HTTP/1.1 answer.
pub fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// A header of a raw HTTP/1.1 answer (lowercase `name`).
pub fn header_of<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let (head, _) = answer.split_once("\r\n\r\n")?;
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// A reqwest client that ignores proxy variables and bounds every request.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap()
}

/// A config with one pool `web` of `upstreams` on route `/`, fast health
/// checks, quiet logs.
pub fn config(upstreams: &[&TestUpstream], balance: gateway::config::Balance) -> gateway::Config {
    let mut config = gateway::Config {
        access_log: false,
        ..Default::default()
    };
    let mut pool = gateway::config::Pool {
        upstreams: upstreams.iter().map(|u| u.addr.to_string()).collect(),
        balance,
        ..Default::default()
    };
    pool.health.interval_ms = 100;
    pool.health.timeout_ms = 500;
    pool.health.path = "/health".into();
    config.pools.insert("web".into(), pool);
    config.routes.push(gateway::config::Route {
        prefix: "/".into(),
        pool: "web".into(),
        strip_prefix: false,
        ..Default::default()
    });
    config
}

/// The `up` gauge line for an upstream.
pub fn up_line(upstream: &TestUpstream, value: u8) -> String {
    format!(
        "hyperscale_gateway_upstream_up{{pool=\"web\",upstream=\"{}\"}} {value}",
        upstream.addr
    )
}
