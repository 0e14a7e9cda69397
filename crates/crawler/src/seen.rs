//! "Already seen?" — for URLs and for contents.
//!
//! **URL seen** (이미 방문한 URL?): a bloom filter (`sketch::bloom`) in front of
//! a persistent set in the LSM engine (`s/<xxh3-128 of the URL>`). A bloom
//! "no" is certain and costs no I/O, which is the common case for new links;
//! a "maybe" is confirmed on disk, so a false positive never loses a page. The
//! filter is rebuilt from the set at open (one key scan), so it is never
//! persisted and never disagrees with the set.
//!
//! **Content seen** (중복 콘텐츠?): exact duplicates by xxh3-64 of the
//! normalized body (`c/<hash>` → first URL), near duplicates by SimHash within
//! [`crate::simhash::HAMMING_NEAR`] bits, indexed by the four 16-bit bands
//! (`n/<band><value><fingerprint>` → URL) so a lookup reads four short key
//! ranges instead of every page.

use std::sync::Arc;

use lsm::{Db, WriteBatch};
use sketch::bloom::BloomFilter;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::simhash::{HAMMING_NEAR, bands, hamming};

const SEEN_PREFIX: &[u8] = b"s/";
const EXACT_PREFIX: &[u8] = b"c/";
const NEAR_PREFIX: &[u8] = b"n/";
/// Fingerprints compared per band bucket (a bucket of boilerplate pages can
/// be large; comparing them all would make each page cost O(pages)).
const BUCKET_SCAN_MAX: usize = 256;

/// The URL-seen test.
pub struct UrlSeen {
    bloom: BloomFilter,
    db: Arc<Db>,
    /// Bloom "maybe" answers that the set said no to (false positives).
    pub false_positives: u64,
    /// URLs in the set.
    pub len: u64,
    /// Keys marked in the batch being built (cleared by [`UrlSeen::written`]).
    pending: std::collections::HashSet<Vec<u8>>,
}

fn seen_key(url: &str) -> Vec<u8> {
    let mut key = SEEN_PREFIX.to_vec();
    key.extend_from_slice(&xxh3_128(url.as_bytes()).to_be_bytes());
    key
}

impl UrlSeen {
    /// Opens the set and fills the filter from it. `expected` sizes the filter
    /// (1% false positives at that many URLs).
    pub fn open(db: Arc<Db>, expected: usize) -> lsm::Result<Self> {
        let mut bloom = BloomFilter::with_rate(expected.max(1024), 0.01);
        let mut len = 0;
        for kv in db.scan_prefix(SEEN_PREFIX)? {
            let kv = kv?;
            bloom.insert(&kv.key);
            len += 1;
        }
        Ok(Self {
            bloom,
            db,
            false_positives: 0,
            len,
            pending: Default::default(),
        })
    }

    /// True if `url` was never seen; then marks it seen in `batch` (the
    /// filter at once, so one batch cannot add a URL twice).
    pub fn insert_if_new(&mut self, batch: &mut WriteBatch, url: &str) -> lsm::Result<bool> {
        let key = seen_key(url);
        if self.bloom.may_contain(&key) {
            if self.db.get(&key)?.is_some() {
                return Ok(false);
            }
            // A "maybe" the set does not hold: a false positive, or a URL
            // marked earlier in this same unwritten batch.
            if self.pending.contains(&key) {
                return Ok(false);
            }
            self.false_positives += 1;
        }
        self.bloom.insert(&key);
        batch.put(&key, b"");
        self.pending.insert(key);
        self.len += 1;
        Ok(true)
    }

    /// The batch holding the marks was written (or dropped): forget them.
    pub fn written(&mut self) {
        self.pending.clear();
    }
}

/// What the content-seen test found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContentMatch {
    /// Never seen.
    New,
    /// The same bytes as this URL.
    Exact {
        /// The first URL with this content.
        of: String,
    },
    /// Within a few bits of this URL's fingerprint.
    Near {
        /// The URL it resembles.
        of: String,
        /// Differing bits.
        distance: u32,
    },
}

/// The content-seen test.
pub struct ContentSeen {
    db: Arc<Db>,
}

/// xxh3-64 of a body with whitespace runs collapsed (so a re-indented copy is
/// an exact duplicate).
pub fn content_hash(body: &[u8]) -> u64 {
    let mut normalized = Vec::with_capacity(body.len());
    let mut space = false;
    for &b in body {
        if b.is_ascii_whitespace() {
            space = true;
        } else {
            if space && !normalized.is_empty() {
                normalized.push(b' ');
            }
            space = false;
            normalized.push(b);
        }
    }
    xxh3_64(&normalized)
}

impl ContentSeen {
    /// Over `db`.
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// Looks `hash` and `fingerprint` up; a new content is recorded in `batch`
    /// as `url`'s.
    pub fn check(
        &self,
        batch: &mut WriteBatch,
        url: &str,
        hash: u64,
        fingerprint: u64,
    ) -> lsm::Result<ContentMatch> {
        let mut exact_key = EXACT_PREFIX.to_vec();
        exact_key.extend_from_slice(&hash.to_be_bytes());
        if let Some(of) = self.db.get(&exact_key)? {
            return Ok(ContentMatch::Exact {
                of: String::from_utf8_lossy(&of).into_owned(),
            });
        }
        let mut best: Option<(u32, String)> = None;
        for (band, value) in bands(fingerprint) {
            let prefix = near_prefix(band, value);
            for kv in self.db.scan_prefix(&prefix)?.take(BUCKET_SCAN_MAX) {
                let kv = kv?;
                let Some(bytes) = kv.key.get(prefix.len()..prefix.len() + 8) else {
                    continue;
                };
                let other = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
                let distance = hamming(fingerprint, other);
                if distance <= HAMMING_NEAR && best.as_ref().is_none_or(|(d, _)| distance < *d) {
                    best = Some((distance, String::from_utf8_lossy(&kv.value).into_owned()));
                }
            }
        }
        batch.put(&exact_key, url.as_bytes());
        if let Some((distance, of)) = best {
            return Ok(ContentMatch::Near { of, distance });
        }
        for (band, value) in bands(fingerprint) {
            let mut key = near_prefix(band, value);
            key.extend_from_slice(&fingerprint.to_be_bytes());
            batch.put(&key, url.as_bytes());
        }
        Ok(ContentMatch::New)
    }
}

fn near_prefix(band: u8, value: u16) -> Vec<u8> {
    let mut key = NEAR_PREFIX.to_vec();
    key.push(band);
    key.extend_from_slice(&value.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &std::path::Path) -> Arc<Db> {
        let opts = lsm::Options {
            create_if_missing: true,
            sync: lsm::SyncPolicy::No,
            ..Default::default()
        };
        Arc::new(Db::open(dir, opts).expect("open"))
    }

    #[test]
    fn url_seen_survives_reopen_and_never_admits_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut seen = UrlSeen::open(db(dir.path()), 10).expect("open");
            let mut batch = WriteBatch::new();
            for i in 0..5000 {
                assert!(
                    seen.insert_if_new(&mut batch, &format!("http://a/{i}"))
                        .expect("io")
                );
                assert!(
                    !seen
                        .insert_if_new(&mut batch, &format!("http://a/{i}"))
                        .expect("io")
                );
            }
            seen.db.write(&batch).expect("write");
        }
        let mut seen = UrlSeen::open(db(dir.path()), 10).expect("open");
        assert_eq!(seen.len, 5000);
        let mut batch = WriteBatch::new();
        for i in 0..5000 {
            assert!(
                !seen
                    .insert_if_new(&mut batch, &format!("http://a/{i}"))
                    .expect("io")
            );
        }
        assert!(seen.insert_if_new(&mut batch, "http://b/").expect("io"));
    }

    #[test]
    fn exact_and_near_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(dir.path());
        let seen = ContentSeen::new(db.clone());
        let text: Vec<String> = (0..300).map(|i| format!("word{}", i * 7 % 1000)).collect();
        let body = text.join(" ");
        let mut edited = text.clone();
        edited[150] = "different".into();
        let edited = edited.join(" ");
        let fp = crate::simhash::simhash;
        let mut batch = WriteBatch::new();
        assert_eq!(
            seen.check(&mut batch, "u1", content_hash(body.as_bytes()), fp(&body))
                .expect("io"),
            ContentMatch::New
        );
        db.write(&batch).expect("write");
        let mut batch = WriteBatch::new();
        let spaced = body.replace(' ', "  \n");
        assert_eq!(
            seen.check(
                &mut batch,
                "u2",
                content_hash(spaced.as_bytes()),
                fp(&spaced)
            )
            .expect("io"),
            ContentMatch::Exact { of: "u1".into() }
        );
        let near = seen
            .check(
                &mut batch,
                "u3",
                content_hash(edited.as_bytes()),
                fp(&edited),
            )
            .expect("io");
        assert!(
            matches!(near, ContentMatch::Near { ref of, .. } if of == "u1"),
            "{near:?}"
        );
        let other = "completely unrelated text about crawling the web politely and fast";
        assert_eq!(
            seen.check(&mut batch, "u4", content_hash(other.as_bytes()), fp(other))
                .expect("io"),
            ContentMatch::New
        );
    }
}
