//! A crawler node of a cluster (`hyperscale crawler serve --node-id ID
//! --peers ID=ADDR,...`): the chapter's distributed crawl. Each node owns
//! the hosts the ring ([`crate::route`]) gives it and crawls only those, so
//! a host is fetched by one node and its politeness delay holds across the
//! cluster. A link to another node's host goes to that node's outbox in the
//! page's own write batch ([`crate::state`]), and a forwarder sends each
//! outbox in batches (`POST /urls`, JSON) and deletes what the peer
//! acknowledged — so a forward is never lost to a crash of either side (a
//! peer that is down is retried; duplicates are absorbed by its URL-seen
//! set). Every node keeps its own LSM store: restarting a node resumes its
//! frontier, seen set and outboxes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router as Http;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::crawl::{CrawlConfig, Crawler};
use crate::frontier::QueuedUrl;
use crate::route::Router;
use crate::stats::Snapshot;

/// URLs per forwarded batch (and the most a node accepts in one).
pub const BATCH_URLS_MAX: usize = 1000;
/// Request body limit of `POST /urls`.
const BODY_BYTES_MAX: usize = 4 << 20;
/// Pause of the forwarder when every outbox is empty or a peer is down.
const FORWARD_IDLE_MS: u64 = 50;

/// One node's settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (one of `peers`).
    pub node_id: String,
    /// Every node of the cluster, this one too: id and address.
    pub peers: Vec<(String, SocketAddr)>,
    /// Seeds (every node may get the same file: each keeps its own hosts'
    /// seeds and forwards the rest; the seeds also set the scope).
    pub seeds: Vec<String>,
    /// The crawl.
    pub crawl: CrawlConfig,
    /// Shared secret every node sends (`Authorization: Bearer`) and requires
    /// on `POST /urls`; `None` accepts any sender (bind to 127.0.0.1 then).
    pub token: Option<String>,
}

/// A forwarded batch.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forward {
    /// Sending node.
    pub from: String,
    /// The URLs (their hosts belong to the receiver).
    pub urls: Vec<QueuedUrl>,
}

/// Parses `--peers`: `id=host:port,id=host:port`.
pub fn parse_peers(text: &str) -> anyhow::Result<Vec<(String, SocketAddr)>> {
    let mut peers = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("peer {part:?}: write ID=HOST:PORT"))?;
        let addr = addr
            .parse()
            .map_err(|e| anyhow::anyhow!("peer {part:?}: bad address ({e})"))?;
        if id.is_empty() || peers.iter().any(|(p, _): &(String, SocketAddr)| p == id) {
            anyhow::bail!("peer ids must be non-empty and distinct: {part:?}");
        }
        peers.push((id.to_string(), addr));
    }
    Ok(peers)
}

/// A running node.
pub struct Node {
    crawler: Arc<Crawler>,
    id: String,
    token: Option<Arc<str>>,
}

impl Node {
    /// Opens the node's store and queues the seeds it owns (forwarding the rest).
    pub fn open(cfg: &NodeConfig) -> anyhow::Result<Self> {
        let ids: Vec<String> = cfg.peers.iter().map(|(id, _)| id.clone()).collect();
        let router = Router::new(&cfg.node_id, &ids)?;
        let crawler = Crawler::open(cfg.crawl.clone())?;
        crawler.state().lock().set_router(router);
        crawler.add_seeds(&cfg.seeds)?;
        Ok(Self {
            crawler: Arc::new(crawler),
            id: cfg.node_id.clone(),
            token: cfg.token.as_deref().map(Arc::from),
        })
    }

    /// The crawl.
    pub fn crawler(&self) -> &Arc<Crawler> {
        &self.crawler
    }

    /// Serves `POST /urls`, `GET /status` and the console page (`/`) on `listener`, forwards the
    /// outboxes and crawls, until `stop` is set.
    pub async fn run(
        &self,
        listener: tokio::net::TcpListener,
        peers: &[(String, SocketAddr)],
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        let app = Http::new()
            .route("/urls", post(receive))
            .route("/status", get(status))
            .route(
                "/",
                get(|| async { axum::response::Html(crate::console::CONSOLE_HTML) }),
            )
            .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
            .with_state((self.crawler.clone(), self.token.clone()));
        let server_stop = stop.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    while !server_stop.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(FORWARD_IDLE_MS)).await;
                    }
                })
                .await
        });
        let others: Vec<(String, SocketAddr)> = peers
            .iter()
            .filter(|(id, _)| *id != self.id)
            .cloned()
            .collect();
        let forwarder = tokio::spawn(forward_loop(
            self.crawler.clone(),
            self.id.clone(),
            self.token.clone(),
            others,
            stop.clone(),
        ));
        // Link the crawler's stop flag to ours; a finished frontier is not
        // the end of a node's work (peers may send more).
        let crawl_stop = self.crawler.stop_flag();
        let result = async {
            while !stop.load(Ordering::SeqCst) {
                let watch = {
                    let (stop, crawl_stop) = (stop.clone(), crawl_stop.clone());
                    tokio::spawn(async move {
                        while !stop.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(FORWARD_IDLE_MS)).await;
                        }
                        crawl_stop.store(true, Ordering::SeqCst);
                    })
                };
                self.crawler.run().await?;
                watch.abort();
                tokio::time::sleep(Duration::from_millis(FORWARD_IDLE_MS)).await;
            }
            anyhow::Ok(())
        }
        .await;
        stop.store(true, Ordering::SeqCst);
        let _ = forwarder.await;
        let _ = server.await;
        result
    }
}

type AppState = (Arc<Crawler>, Option<Arc<str>>);

async fn receive(
    State((crawler, token)): State<AppState>,
    headers: HeaderMap,
    Json(batch): Json<Forward>,
) -> (StatusCode, String) {
    if let Some(token) = &token
        && !service::auth::bearer_matches(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            "this node requires the cluster's token (Authorization: Bearer)\n".into(),
        );
    }
    if batch.urls.len() > BATCH_URLS_MAX {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {BATCH_URLS_MAX} URLs per batch\n"),
        );
    }
    let state = crawler.state().clone();
    match tokio::task::spawn_blocking(move || state.lock().receive(&batch.urls)).await {
        Ok(Ok(added)) => (StatusCode::OK, format!("{added}\n")),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

async fn status(State((crawler, _)): State<AppState>) -> Json<Snapshot> {
    Json(crawler.stats().snapshot())
}

async fn forward_loop(
    crawler: Arc<Crawler>,
    me: String,
    token: Option<Arc<str>>,
    peers: Vec<(String, SocketAddr)>,
    stop: Arc<AtomicBool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client builds");
    // One last pass after the stop flag, so a clean stop leaves nothing behind.
    let mut last_pass = false;
    loop {
        let mut sent_any = false;
        for (peer, addr) in &peers {
            let state = crawler.state().clone();
            let peer_id = peer.clone();
            let Ok(Ok(batch)) =
                tokio::task::spawn_blocking(move || state.lock().outbox(&peer_id, BATCH_URLS_MAX))
                    .await
            else {
                continue;
            };
            if batch.is_empty() {
                continue;
            }
            let (keys, urls): (Vec<Vec<u8>>, Vec<QueuedUrl>) = batch.into_iter().unzip();
            let body = Forward {
                from: me.clone(),
                urls,
            };
            let mut request = client.post(format!("http://{addr}/urls")).json(&body);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let sent = request.send().await.is_ok_and(|r| r.status().is_success());
            if !sent {
                tracing::debug!(peer = %peer, "forward failed; retrying later");
                continue;
            }
            let state = crawler.state().clone();
            let _ = tokio::task::spawn_blocking(move || state.lock().forwarded(&keys)).await;
            sent_any = true;
        }
        if last_pass {
            return;
        }
        if stop.load(Ordering::SeqCst) {
            last_pass = true;
            continue;
        }
        if !sent_any {
            tokio::time::sleep(Duration::from_millis(FORWARD_IDLE_MS)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_bad_ones_say_why() {
        let peers = parse_peers("a=127.0.0.1:1, b=127.0.0.1:2").expect("peers");
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[1].0, "b");
        assert!(parse_peers("a").is_err());
        assert!(parse_peers("a=x").is_err());
        assert!(parse_peers("a=127.0.0.1:1,a=127.0.0.1:2").is_err());
    }
}
