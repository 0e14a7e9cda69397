//! Freshness (콘텐츠 갱신): pages are revisited, sooner when they changed.
//!
//! Each fetched page gets a revisit interval. A revisit sends the validators
//! of the last answer (`If-None-Match`, `If-Modified-Since`): a `304 Not
//! Modified` or an identical body means "unchanged" and doubles the
//! interval; a changed body halves it, within `[min_ms, max_ms]` (the
//! adaptive policy of Cho & Garcia-Molina's "estimating frequency of
//! change", in its simplest form). A revisit goes through the frontier like
//! any URL, so per-host politeness bounds it too.
//!
//! On disk a scheduled revisit is the key `r/<due ms, big-endian><url>`, so
//! the due ones are the first keys of the prefix; it leaves that set in the
//! write batch that queues it, like a queued URL leaves the queue.

use serde::{Deserialize, Serialize};

/// Key prefix of scheduled revisits.
pub const REVISIT_PREFIX: &[u8] = b"r/";

/// The knobs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreshnessConfig {
    /// Revisit fetched pages at all (a crawl with it on never completes:
    /// it runs until stopped or `max_pages`).
    pub enabled: bool,
    /// First interval after a page is fetched.
    pub initial_ms: u64,
    /// Shortest interval (pages that change at every visit).
    pub min_ms: u64,
    /// Longest interval (pages that never change).
    pub max_ms: u64,
}

impl Default for FreshnessConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            initial_ms: 24 * 3600 * 1000,
            min_ms: 3600 * 1000,
            max_ms: 30 * 24 * 3600 * 1000,
        }
    }
}

/// What a page's last answer left for its next visit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revisit {
    /// `ETag` of the last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified` of the last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Hash of the last body (a server without validators is compared by content).
    pub content_hash: u64,
    /// The interval that led to this visit.
    pub interval_ms: u64,
}

/// How a revisit found the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `304 Not Modified`.
    NotModified,
    /// Fetched again, same body.
    Same,
    /// Fetched again, different body.
    Changed,
}

impl Change {
    /// From a revisit's status and body hash.
    pub fn of(status: u16, content_hash: u64, last: &Revisit) -> Self {
        if status == 304 {
            Self::NotModified
        } else if content_hash == last.content_hash {
            Self::Same
        } else {
            Self::Changed
        }
    }

    /// The counter label.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotModified => "not_modified",
            Self::Same => "same",
            Self::Changed => "changed",
        }
    }
}

/// The interval until the next visit: halved after a change, doubled
/// otherwise, within the bounds; `None` (a first visit) starts at `initial_ms`.
pub fn next_interval_ms(last: Option<(u64, Change)>, cfg: &FreshnessConfig) -> u64 {
    let lo = cfg.min_ms.max(1);
    let hi = cfg.max_ms.max(lo);
    let next = match last {
        None => cfg.initial_ms,
        Some((prev, Change::Changed)) => prev / 2,
        Some((prev, _)) => prev.saturating_mul(2),
    };
    next.clamp(lo, hi)
}

/// The key of a revisit of `url` due at `due_ms`.
pub fn revisit_key(due_ms: u64, url: &str) -> Vec<u8> {
    let mut key = REVISIT_PREFIX.to_vec();
    key.extend_from_slice(&due_ms.to_be_bytes());
    key.extend_from_slice(url.as_bytes());
    key
}

/// The due time of a revisit key.
pub fn due_of(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(REVISIT_PREFIX)?;
    Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FreshnessConfig {
        FreshnessConfig {
            enabled: true,
            initial_ms: 1000,
            min_ms: 100,
            max_ms: 8000,
        }
    }

    #[test]
    fn changes_shorten_and_stability_lengthens_within_bounds() {
        let c = cfg();
        assert_eq!(next_interval_ms(None, &c), 1000);
        assert_eq!(next_interval_ms(Some((1000, Change::Changed)), &c), 500);
        assert_eq!(
            next_interval_ms(Some((1000, Change::NotModified)), &c),
            2000
        );
        assert_eq!(next_interval_ms(Some((1000, Change::Same)), &c), 2000);
        assert_eq!(next_interval_ms(Some((150, Change::Changed)), &c), 100);
        assert_eq!(next_interval_ms(Some((6000, Change::Same)), &c), 8000);
        assert_eq!(next_interval_ms(Some((u64::MAX, Change::Same)), &c), 8000);
        // A page that always changes converges to min, one that never does to max.
        let (mut fast, mut slow) = (1000, 1000);
        for _ in 0..20 {
            fast = next_interval_ms(Some((fast, Change::Changed)), &c);
            slow = next_interval_ms(Some((slow, Change::NotModified)), &c);
        }
        assert_eq!((fast, slow), (100, 8000));
    }

    #[test]
    fn change_kinds_and_keys() {
        let last = Revisit {
            content_hash: 7,
            ..Default::default()
        };
        assert_eq!(Change::of(304, 0, &last), Change::NotModified);
        assert_eq!(Change::of(200, 7, &last), Change::Same);
        assert_eq!(Change::of(200, 8, &last), Change::Changed);
        let early = revisit_key(5, "http://z/");
        let late = revisit_key(6, "http://a/");
        assert!(early < late, "keys sort by due time first");
        assert_eq!(due_of(&late), Some(6));
        assert_eq!(due_of(b"r/x"), None);
    }
}
