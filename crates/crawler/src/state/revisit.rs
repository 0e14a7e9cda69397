//! Revisits ([`crate::freshness`]) in the state: scheduling a fetched
//! page's next visit in its write batch, and moving due revisits into the
//! frontier.

use lsm::WriteBatch;
use url::Url;

use super::CrawlState;
use crate::freshness::{Change, REVISIT_PREFIX, Revisit, due_of, next_interval_ms, revisit_key};
use crate::frontier::{Lease, QueuedUrl};
use crate::normalize::host_key;
use crate::stats::Stats;
use crate::store::PageMeta;

impl CrawlState {
    pub(super) fn first_revisit_due(&self) -> lsm::Result<Option<u64>> {
        match self.db.scan_prefix(REVISIT_PREFIX)?.next() {
            Some(kv) => Ok(due_of(&kv?.key)),
            None => Ok(None),
        }
    }

    /// Moves the revisits due by `now_ms` (a bounded number per call) into
    /// the frontier, each in the batch that deletes its schedule key.
    pub(super) fn promote_revisits(&mut self, now_ms: u64) -> anyhow::Result<()> {
        const PROMOTE_MAX: usize = 256;
        let end = revisit_key(now_ms.saturating_add(1), "");
        let due: Vec<(Vec<u8>, Vec<u8>)> = self
            .db
            .scan((
                std::ops::Bound::Included(REVISIT_PREFIX),
                std::ops::Bound::Excluded(end.as_slice()),
            ))?
            .take(PROMOTE_MAX)
            .map(|kv| kv.map(|kv| (kv.key, kv.value)))
            .collect::<lsm::Result<_>>()?;
        let mut batch = WriteBatch::new();
        for (key, value) in due {
            batch.delete(&key);
            let Ok(entry) = serde_json::from_slice::<QueuedUrl>(&value) else {
                continue;
            };
            let Ok(url) = Url::parse(&entry.url) else {
                continue;
            };
            // Revisits go first among a host's URLs; politeness still spaces them.
            self.frontier
                .push(&mut batch, &host_key(&url), 0, entry, now_ms);
        }
        self.write(batch)?;
        self.next_revisit_ms = self.first_revisit_due()?;
        Ok(())
    }

    /// Schedules the next visit of a page answered 2xx or 304 (in `batch`).
    pub(super) fn schedule_revisit(
        &mut self,
        batch: &mut WriteBatch,
        lease: &Lease,
        meta: &PageMeta,
        now_ms: u64,
    ) {
        let last = lease.entry.revisit.as_ref().map(|r| {
            let change = Change::of(meta.status, meta.content_hash, r);
            Stats::inc(&self.stats.revisits, change.name());
            (r.interval_ms, change)
        });
        let interval_ms = next_interval_ms(last, &self.cfg.freshness);
        let due = now_ms.saturating_add(interval_ms);
        let entry = QueuedUrl {
            url: lease.entry.url.clone(),
            depth: lease.entry.depth,
            redirects: 0,
            revisit: Some(Revisit {
                etag: meta.etag.clone(),
                last_modified: meta.last_modified.clone(),
                content_hash: meta.content_hash,
                interval_ms,
            }),
        };
        batch.put(
            &revisit_key(due, &entry.url),
            &serde_json::to_vec(&entry).expect("a queued URL serializes"),
        );
        self.next_revisit_ms = Some(self.next_revisit_ms.map_or(due, |d| d.min(due)));
    }
}
