//! The state's side of a cluster ([`crate::cluster`]): new URLs of hosts
//! another node owns go to that node's outbox in the same write batch; the
//! forwarder reads and acknowledges outboxes; URLs a peer forwards are
//! queued here.

use lsm::WriteBatch;
use url::Url;

use super::CrawlState;
use crate::frontier::QueuedUrl;
use crate::normalize::{NormalizeOptions, host_key};
use crate::route::Router;
use crate::stats::Stats;

/// Key prefix of URLs waiting to be forwarded to another node.
const OUTBOX_PREFIX: &[u8] = b"o/";

fn outbox_key(node: &str, url: &str) -> Vec<u8> {
    let mut key = OUTBOX_PREFIX.to_vec();
    key.extend_from_slice(node.as_bytes());
    key.push(0);
    key.extend_from_slice(url.as_bytes());
    key
}

impl CrawlState {
    /// Queues a new URL: into the frontier, or, when another node of the
    /// cluster owns its host, into that node's outbox (`o/<node>\0<url>`,
    /// in the same batch, so a forward survives a crash like a queued URL).
    pub(super) fn enqueue(
        &mut self,
        batch: &mut WriteBatch,
        url: &Url,
        depth: u32,
        redirects: u32,
        now_ms: u64,
    ) {
        let host = host_key(url);
        let entry = QueuedUrl {
            url: url.to_string(),
            depth,
            redirects,
            revisit: None,
        };
        if let Some(owner) = self.router.as_ref().and_then(|r| r.remote_owner(&host)) {
            batch.put(
                &outbox_key(owner, &entry.url),
                &serde_json::to_vec(&entry).expect("a queued URL serializes"),
            );
            self.stats.forwarded.inc();
            return;
        }
        let prio = self.prioritizer.priority(url, depth);
        self.frontier.push(batch, &host, prio, entry, now_ms);
        self.stats.queued.inc();
    }

    /// Routes new URLs of other nodes' hosts to their outboxes from now on.
    pub fn set_router(&mut self, router: Router) {
        self.router = Some(router);
    }

    /// Up to `max` URLs waiting to be forwarded to `node`, with their keys.
    pub fn outbox(&self, node: &str, max: usize) -> anyhow::Result<Vec<(Vec<u8>, QueuedUrl)>> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(&outbox_key(node, ""))?.take(max) {
            let kv = kv?;
            if let Ok(entry) = serde_json::from_slice::<QueuedUrl>(&kv.value) {
                out.push((kv.key, entry));
            }
        }
        Ok(out)
    }

    /// Drops outbox entries the peer acknowledged.
    pub fn forwarded(&mut self, keys: &[Vec<u8>]) -> anyhow::Result<()> {
        let mut batch = WriteBatch::new();
        for key in keys {
            batch.delete(key);
        }
        self.write(batch)?;
        Ok(())
    }

    /// Queues URLs a peer forwarded (its hosts are ours): the URL-seen test,
    /// then the frontier, never forwarded again (two nodes that disagree on
    /// the ring cannot bounce a URL between them).
    pub fn receive(&mut self, entries: &[QueuedUrl]) -> anyhow::Result<usize> {
        let opts = NormalizeOptions {
            sort_query: self.cfg.sort_query,
        };
        let mut batch = WriteBatch::new();
        let mut added = 0;
        let now_ms = clock::now_ms();
        for entry in entries {
            let Ok(url) = crate::normalize::normalize_str(&entry.url, opts) else {
                Stats::inc(&self.stats.skipped, "bad_url");
                continue;
            };
            if !self.url_seen.insert_if_new(&mut batch, url.as_str())? {
                continue;
            }
            let prio = self.prioritizer.priority(&url, entry.depth);
            let queued = QueuedUrl {
                url: url.to_string(),
                depth: entry.depth,
                redirects: entry.redirects,
                revisit: None,
            };
            self.frontier
                .push(&mut batch, &host_key(&url), prio, queued, now_ms);
            self.stats.queued.inc();
            added += 1;
        }
        self.write(batch)?;
        self.update_gauges();
        Ok(added)
    }
}
