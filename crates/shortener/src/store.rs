//! Links in the key-value store: the chapter's data model on [`KvClient`].
//!
//! The chapter stores `<id, shortURL, longURL>` in a relational table; on a
//! key-value store the same model is two keys per link:
//!
//! - `s:code:{code}` → the [`Link`] as JSON (with the link's TTL, if any), read
//!   on every redirect;
//! - `s:url:{hash of the long URL}` → the URL's permanent code, read on every
//!   permanent shorten request so the same long URL gets its existing code
//!   back (the chapter's "lookup first" flow). Expiring links are not indexed:
//!   a code is only shared by requests with the same expiry (see `app`). The
//!   key holds a hash because long URLs may be 2 KB.
//!
//! Both writes use set-if-absent, so two servers racing to shorten the same
//! URL or to claim the same alias cannot both win.

use std::sync::Arc;
use std::time::Duration;

use kvclient::KvClient;
use serde::{Deserialize, Serialize};

/// One short link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// The short code, the path of the short URL.
    pub code: String,
    /// Where the code redirects.
    pub long_url: String,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: u64,
    /// When the link stops resolving, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    /// Whether the user chose the code (a custom alias).
    #[serde(default)]
    pub custom: bool,
}

impl Link {
    /// Whether the link no longer resolves at `now_ms`.
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|expires| expires <= now_ms)
    }

    /// Time left to live at `now_ms`, for the store's TTL.
    pub fn ttl_at(&self, now_ms: u64) -> Option<Duration> {
        self.expires_ms
            .map(|expires| Duration::from_millis(expires.saturating_sub(now_ms).max(1)))
    }
}

/// Links over any key-value client.
#[derive(Clone)]
pub struct LinkStore {
    kv: Arc<dyn KvClient>,
}

fn code_key(code: &str) -> Vec<u8> {
    format!("s:code:{code}").into_bytes()
}

fn url_key(long_url: &str) -> Vec<u8> {
    let digest = xxhash_rust::xxh3::xxh3_128(long_url.as_bytes());
    format!("s:url:{digest:032x}").into_bytes()
}

impl LinkStore {
    /// Links stored through `kv`.
    pub fn new(kv: Arc<dyn KvClient>) -> Self {
        Self { kv }
    }

    /// The underlying client, shared with analytics.
    pub fn kv(&self) -> &Arc<dyn KvClient> {
        &self.kv
    }

    /// The link for `code`, if stored (expired or not: callers decide).
    pub async fn by_code(&self, code: &str) -> kvclient::Result<Option<Link>> {
        let Some(bytes) = self.kv.get(&code_key(code)).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| kvclient::Error::Store(format!("link {code} is corrupt: {err}")))
    }

    /// The code previously given to `long_url`, if any.
    pub async fn code_for_url(&self, long_url: &str) -> kvclient::Result<Option<String>> {
        let code = self.kv.get(&url_key(long_url)).await?;
        Ok(code.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Stores `link` under its code unless the code is taken; returns whether
    /// it was stored.
    pub async fn insert_if_absent(&self, link: &Link, now_ms: u64) -> kvclient::Result<bool> {
        let json = serde_json::to_vec(link).expect("a Link always serializes");
        self.kv
            .set_nx(&code_key(&link.code), &json, link.ttl_at(now_ms))
            .await
    }

    /// Remembers `code` as the code of `long_url` unless another code already
    /// is; returns the code that won.
    pub async fn claim_url(
        &self,
        long_url: &str,
        code: &str,
        ttl: Option<Duration>,
    ) -> kvclient::Result<String> {
        let key = url_key(long_url);
        if self.kv.set_nx(&key, code.as_bytes(), ttl).await? {
            return Ok(code.to_string());
        }
        match self.kv.get(&key).await? {
            Some(winner) => Ok(String::from_utf8_lossy(&winner).into_owned()),
            // The other claim expired in between; ours is as good as any.
            None => {
                self.kv.set(&key, code.as_bytes(), ttl).await?;
                Ok(code.to_string())
            }
        }
    }

    /// Forgets the URL → code mapping (when it points at an expired link).
    pub async fn forget_url(&self, long_url: &str) -> kvclient::Result<()> {
        self.kv.delete(&url_key(long_url)).await.map(drop)
    }

    /// Removes a link that lost a race, so it does not linger.
    pub async fn remove(&self, code: &str) -> kvclient::Result<()> {
        self.kv.delete(&code_key(code)).await.map(drop)
    }
}
