//! An HTTP answer committed: the content parser's output through "content
//! seen?" (exact and near duplicates) into storage, and its links through
//! the URL filter (scope, traps) and "URL seen?" into the frontier — the
//! chapter's steps 5 to 10, all into the page's one write batch.

use std::collections::HashSet;

use lsm::WriteBatch;
use url::Url;

use super::{CrawlState, Scope, scope_value};
use crate::fetch::Response;
use crate::frontier::Lease;
use crate::normalize::{NormalizeOptions, resolve};
use crate::parse::Extracted;
use crate::seen::{ContentMatch, content_hash};
use crate::simhash::simhash;
use crate::stats::Stats;
use crate::store::{PageMeta, WarcResponse};
use crate::traps;

impl CrawlState {
    pub(super) fn answered(
        &mut self,
        batch: &mut WriteBatch,
        lease: &Lease,
        meta: &mut PageMeta,
        response: Response,
        extracted: Option<Extracted>,
        now_ms: u64,
    ) -> anyhow::Result<()> {
        let status = response.status;
        Stats::inc(&self.stats.statuses, &format!("{}xx", status / 100));
        self.stats.pages.inc();
        self.stats.bytes.inc_by(response.body.len() as u64);
        meta.status = status;
        meta.content_type = response.media_type();
        meta.length = response.body.len() as u64;
        meta.etag = response.header("etag").map(str::to_string);
        meta.last_modified = response.header("last-modified").map(str::to_string);
        if status == 304
            && let Some(last) = &lease.entry.revisit
        {
            // Not modified: the page is what the last visit saw.
            meta.content_hash = last.content_hash;
            meta.etag = meta.etag.take().or_else(|| last.etag.clone());
            meta.last_modified = meta
                .last_modified
                .take()
                .or_else(|| last.last_modified.clone());
        }
        if response.type_skipped {
            Stats::inc(&self.stats.skipped, "type");
        }
        let base = Url::parse(&lease.entry.url)?;
        let depth = lease.entry.depth;
        if (300..400).contains(&status)
            && let Some(location) = response.header("location")
        {
            meta.redirect_to = Some(location.to_string());
            if lease.entry.redirects >= self.cfg.redirects_max {
                Stats::inc(&self.stats.skipped, "redirect_limit");
            } else {
                self.stats.redirects.inc();
                // A redirect is the same page under another name: same depth.
                self.discover(
                    batch,
                    &base,
                    location,
                    depth,
                    lease.entry.redirects + 1,
                    now_ms,
                );
            }
        }
        if let Some(extracted) = extracted {
            let hash = content_hash(&response.body);
            let fingerprint = simhash(&extracted.text);
            meta.content_hash = hash;
            meta.simhash = fingerprint;
            meta.canonical = extracted.canonical.clone();
            meta.links_found = extracted.links.len() as u32;
            let mut novel = true;
            // A revisit is the same URL again: it is not a duplicate of itself.
            if (200..300).contains(&status) && lease.entry.revisit.is_none() {
                match self
                    .content_seen
                    .check(batch, &lease.entry.url, hash, fingerprint)?
                {
                    ContentMatch::New => {}
                    ContentMatch::Exact { of } => {
                        Stats::inc(&self.stats.duplicates, "exact");
                        meta.duplicate_of = Some(of);
                        meta.duplicate_kind = Some("exact".into());
                        novel = false;
                    }
                    ContentMatch::Near { of, .. } => {
                        Stats::inc(&self.stats.duplicates, "near");
                        meta.duplicate_of = Some(of);
                        meta.duplicate_kind = Some("near".into());
                    }
                }
            }
            let link_base = extracted.base.clone().unwrap_or_else(|| base.clone());
            let mut queued = 0;
            let mut on_page = HashSet::new();
            for link in &extracted.links {
                if link.nofollow {
                    Stats::inc(&self.stats.skipped, "nofollow");
                    continue;
                }
                if !on_page.insert(link.href.as_str()) {
                    continue;
                }
                queued +=
                    u32::from(self.discover(batch, &link_base, &link.href, depth + 1, 0, now_ms));
            }
            meta.outlinks = queued;
            if novel
                && !extracted.noindex
                && (200..300).contains(&status)
                && let Some(bodies) = &self.bodies
            {
                meta.body_file = Some(bodies.put(&lease.entry.url, &response.body)?);
            }
        }
        if (200..300).contains(&status)
            && let Some(warc) = &mut self.warc
        {
            warc.response(&WarcResponse {
                url: &lease.entry.url,
                fetched_at_ms: now_ms,
                status,
                headers: &response.headers,
                body: &response.body,
            })?;
        }
        Ok(())
    }

    /// The URL filter and URL-seen test for one link; true if it was queued.
    pub(super) fn discover(
        &mut self,
        batch: &mut WriteBatch,
        base: &Url,
        href: &str,
        depth: u32,
        redirects: u32,
        now_ms: u64,
    ) -> bool {
        let opts = NormalizeOptions {
            sort_query: self.cfg.sort_query,
        };
        let url = match resolve(base, href, opts) {
            Ok(url) => url,
            Err(crate::normalize::UrlError::Scheme(_)) => return false,
            Err(_) => {
                Stats::inc(&self.stats.skipped, "bad_url");
                return false;
            }
        };
        if self.cfg.scope != Scope::Any
            && !self.scope_set.contains(&scope_value(self.cfg.scope, &url))
        {
            Stats::inc(&self.stats.skipped, "scope");
            return false;
        }
        if let Err(trap) = traps::check(&url, depth, &self.cfg.traps, self.now_year) {
            Stats::inc(&self.stats.traps, trap.name());
            return false;
        }
        match self.url_seen.insert_if_new(batch, url.as_str()) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(err) => {
                tracing::warn!("URL-seen lookup failed: {err}");
                return false;
            }
        }
        self.enqueue(batch, &url, depth, redirects, now_ms);
        true
    }
}
