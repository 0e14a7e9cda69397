//! The edge cache's settings: one `[cache]` table for the node (memory and
//! disk bounds, the purge endpoint and its token) and one `[routes.cache]`
//! table per route that caches (TTL overrides, object size, key options).
//!
//! Kept apart from [`crate::config`] so the cache's knobs are read in one
//! place; [`crate::config::Config::validate`] calls [`CacheConfig::validate`]
//! and [`RouteCache::validate`].

use std::path::PathBuf;

use serde::Deserialize;

/// The node-wide `[cache]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Bytes of objects (bodies, headers, keys) the memory tier holds; the
    /// least recently used objects leave first when it is full.
    pub memory_bytes_max: u64,
    /// The disk tier's directory; unset: no disk tier. Objects evicted from
    /// memory are written here and promoted back on a hit. The directory is
    /// the cache's own: its `*.hce` files are removed at start (the disk
    /// tier extends capacity, it is not a persistent store).
    pub disk_dir: Option<PathBuf>,
    /// Bytes the disk tier holds (0 with `disk_dir` set is refused).
    pub disk_bytes_max: u64,
    /// The purge endpoint (`POST` with a JSON body, see [`crate::cache::purge`]);
    /// empty disables it.
    pub purge_path: String,
    /// The bearer token the purge endpoint requires. Unset: every purge is
    /// refused with 403 (there is no unauthenticated purge).
    pub admin_token: Option<String>,
    /// Heuristic freshness (RFC 9111 §4.2.2: 10% of the time since
    /// `Last-Modified`) for responses without an explicit lifetime. Off by
    /// default: without it only what the origin (or a route's
    /// `default_ttl_ms`) says is fresh is served without asking.
    pub heuristic: bool,
    /// How long requests wait for another request's origin fetch of the
    /// same object (request collapsing) before going to the origin themselves.
    pub collapse_wait_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes_max: 256 << 20,
            disk_dir: None,
            disk_bytes_max: 0,
            purge_path: "/_cache/purge".into(),
            admin_token: None,
            heuristic: false,
            collapse_wait_ms: 10_000,
        }
    }
}

/// How the query string enters the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryMode {
    /// Parameters sorted by name (then value), empty ones kept: `?b=2&a=1`
    /// and `?a=1&b=2` are one object.
    #[default]
    Sorted,
    /// The query exactly as sent.
    Exact,
    /// Only the parameters named in `query_params`, sorted.
    Allow,
    /// No query in the key (`/img.png?v=1` and `?v=2` are one object).
    Ignore,
}

/// What identifies an object beyond its path (the notes: "요청 경로, 질의
/// 문자열, 쿠키, 요청 헤더").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyOptions {
    /// Whether the `Host` header is part of the key (off only when every
    /// host serves the same content).
    pub host: bool,
    /// How the query string is normalised.
    pub query: QueryMode,
    /// For `query = "allow"`: the parameters kept.
    pub query_params: Vec<String>,
    /// Request headers whose values are part of the key.
    pub headers: Vec<String>,
    /// Cookies whose values are part of the key.
    pub cookies: Vec<String>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        Self {
            host: true,
            query: QueryMode::Sorted,
            query_params: Vec::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
        }
    }
}

/// A route's `[routes.cache]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteCache {
    /// Whether `GET`/`HEAD` on this route go through the cache.
    pub enabled: bool,
    /// Lifetime of responses that state none (no `max-age`, `s-maxage` or
    /// `Expires`); unset: such responses are stored only to be revalidated.
    pub default_ttl_ms: Option<u64>,
    /// Upper bound on any lifetime the origin states (time-sensitive
    /// content: the notes' "적절한 만료 시한").
    pub max_ttl_ms: Option<u64>,
    /// Largest body stored; larger responses are streamed, not cached.
    pub object_bytes_max: u64,
    /// How long a stale object may be served when the origin fails or is
    /// unreachable, unless the origin forbids it (`must-revalidate`,
    /// `no-cache`); the origin's `stale-if-error` wins when larger.
    pub stale_if_error_ms: u64,
    /// Ignore the client's `Cache-Control: no-cache / max-age` (what CDNs
    /// do to protect the origin); the default honours them (RFC 9111 §5.2.1).
    pub ignore_request_cache_control: bool,
    /// The cache key.
    pub key: KeyOptions,
}

impl Default for RouteCache {
    fn default() -> Self {
        Self {
            enabled: true,
            default_ttl_ms: None,
            max_ttl_ms: None,
            object_bytes_max: 8 << 20,
            stale_if_error_ms: 86_400_000,
            ignore_request_cache_control: false,
            key: KeyOptions::default(),
        }
    }
}

impl CacheConfig {
    /// Checks the node-wide bounds.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_bytes_max == 0 {
            return Err("cache.memory_bytes_max must not be 0".into());
        }
        if self.disk_dir.is_some() && self.disk_bytes_max == 0 {
            return Err(
                "cache.disk_dir is set but cache.disk_bytes_max is 0: give it a size".into(),
            );
        }
        if !self.purge_path.is_empty() && !self.purge_path.starts_with('/') {
            return Err(format!(
                "cache.purge_path `{}` must start with `/`",
                self.purge_path
            ));
        }
        if self.admin_token.as_deref() == Some("") {
            return Err("cache.admin_token is empty: remove it or set a secret".into());
        }
        if self.collapse_wait_ms == 0 {
            return Err("cache.collapse_wait_ms must not be 0".into());
        }
        Ok(())
    }
}

impl RouteCache {
    /// Checks one route's table against the node's (`which` names it).
    pub fn validate(&self, which: &str, node: &CacheConfig) -> Result<(), String> {
        if self.object_bytes_max == 0 {
            return Err(format!("{which}.object_bytes_max must not be 0"));
        }
        if self.object_bytes_max > node.memory_bytes_max / 2 {
            return Err(format!(
                "{which}.object_bytes_max ({}) must be at most half of cache.memory_bytes_max ({})",
                self.object_bytes_max, node.memory_bytes_max
            ));
        }
        for name in &self.key.headers {
            if http::HeaderName::try_from(name.as_str()).is_err() {
                return Err(format!(
                    "{which}.key.headers: `{name}` is not a header name"
                ));
            }
        }
        if self.key.query == QueryMode::Allow && self.key.query_params.is_empty() {
            return Err(format!(
                "{which}.key.query = \"allow\" needs key.query_params (or use \"ignore\")"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_key() {
        let node = CacheConfig::default();
        let route = RouteCache {
            object_bytes_max: node.memory_bytes_max,
            ..RouteCache::default()
        };
        let text = route.validate("routes[0].cache", &node).unwrap_err();
        assert!(text.contains("routes[0].cache.object_bytes_max"), "{text}");
        let route = RouteCache {
            key: KeyOptions {
                headers: vec!["bad header".into()],
                ..KeyOptions::default()
            },
            ..RouteCache::default()
        };
        assert!(
            route
                .validate("r", &node)
                .unwrap_err()
                .contains("key.headers")
        );
        let disk = CacheConfig {
            disk_dir: Some("x".into()),
            ..CacheConfig::default()
        };
        assert!(disk.validate().unwrap_err().contains("disk_bytes_max"));
        let empty_token = CacheConfig {
            admin_token: Some(String::new()),
            ..CacheConfig::default()
        };
        assert!(empty_token.validate().unwrap_err().contains("admin_token"));
        assert!(node.validate().is_ok());
        assert!(RouteCache::default().validate("r", &node).is_ok());
    }
}
