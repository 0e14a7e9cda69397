//! Invalidation (the notes' "콘텐츠 무효화"): removing objects before they
//! expire, by URL, by path prefix, or by `Surrogate-Key` tag (the origin
//! labels responses with tags such as `product-42 catalog`; one purge of
//! `product-42` removes every page that showed it).
//!
//! The endpoint is `POST cache.purge_path` with a JSON body holding exactly
//! one of `{"url": "http://host/path?q"}` (or a bare `/path?q`),
//! `{"prefix": "/static/"}`, `{"tag": "product-42"}`, and
//! `Authorization: Bearer <cache.admin_token>`; it answers
//! `{"purged": <keys removed>}`. Without the token (or with no token
//! configured) it answers 403: purging is an attack on the origin when
//! anyone may do it. A purge scans the index (O(keys), rare and admin-only).

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde::Deserialize;

use super::key::Key;
use crate::error;

/// Largest purge request body.
pub const BODY_BYTES_MAX: usize = 4096;

/// A purge request's body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// A URL (`http://host/path?query`) or a path with its query.
    pub url: Option<String>,
    /// A path prefix.
    pub prefix: Option<String>,
    /// A `Surrogate-Key` tag.
    pub tag: Option<String>,
}

/// What to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One URL: its path and query (sorted), and its host when given.
    Url {
        /// Lowercase host, if the URL named one.
        host: Option<String>,
        /// The path.
        path: String,
        /// The query's parameters, sorted.
        query: Vec<String>,
    },
    /// Every key whose path starts with this.
    Prefix(String),
    /// Every key tagged with this.
    Tag(String),
}

/// A query's parameters, sorted (how URL purges compare queries).
pub fn sorted_query(query: &str) -> Vec<String> {
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    pairs.sort();
    pairs
}

impl Target {
    /// The one target of a request; an error names what is wrong.
    pub fn from_request(request: PurgeRequest) -> Result<Self, String> {
        match (request.url, request.prefix, request.tag) {
            (Some(url), None, None) => Self::url(&url),
            (None, Some(prefix), None) if prefix.starts_with('/') => Ok(Self::Prefix(prefix)),
            (None, Some(prefix), None) => Err(format!("prefix `{prefix}` must start with `/`")),
            (None, None, Some(tag)) if !tag.trim().is_empty() => Ok(Self::Tag(tag.trim().into())),
            _ => Err("give exactly one of `url`, `prefix` or a non-empty `tag`".into()),
        }
    }

    /// Parses `http://host/path?q` or `/path?q`.
    pub fn url(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
        if uri.scheme().is_some_and(|s| s != "http" && s != "https") {
            return Err(format!("`{url}`: only http(s) URLs are cached"));
        }
        if !uri.path().starts_with('/') {
            return Err(format!("`{url}` needs a path starting with `/`"));
        }
        Ok(Self::Url {
            host: uri.authority().map(|a| a.as_str().to_ascii_lowercase()),
            path: uri.path().to_string(),
            query: sorted_query(uri.query().unwrap_or("")),
        })
    }

    /// Whether a key with `tags` is removed.
    pub fn matches(&self, key: &Key, tags: &[String]) -> bool {
        match self {
            Self::Url { host, path, query } => {
                key.path == *path
                    && host
                        .as_ref()
                        .is_none_or(|host| key.host.is_empty() || key.host == *host)
                    && sorted_query(&key.query) == *query
            }
            Self::Prefix(prefix) => key.path.starts_with(prefix.as_str()),
            Self::Tag(tag) => tags.iter().any(|t| t == tag),
        }
    }
}

/// Checks method and token and reads the body; the purge itself is
/// `purge(target) -> removed`.
pub async fn handle<B>(
    request: Request<B>,
    token: Option<&str>,
    purge: impl FnOnce(&Target) -> usize,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if request.method() != Method::POST {
        let mut response = error::json(
            StatusCode::METHOD_NOT_ALLOWED,
            "purge with POST and a JSON body: {\"url\"|\"prefix\"|\"tag\": ...}",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
        return response;
    }
    let Some(token) = token else {
        return error::json(
            StatusCode::FORBIDDEN,
            "purging is disabled: set cache.admin_token in the gateway config",
        );
    };
    if !service::auth::bearer_matches(request.headers(), token) {
        return error::json(
            StatusCode::FORBIDDEN,
            "missing or wrong admin token: send `Authorization: Bearer <cache.admin_token>`",
        );
    }
    let limited = http_body_util::Limited::new(request.into_body(), BODY_BYTES_MAX);
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), limited.collect());
    let body = match read.await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(_)) => {
            let message = format!("purge body larger than {BODY_BYTES_MAX} bytes or broken");
            return error::json(StatusCode::PAYLOAD_TOO_LARGE, &message);
        }
        Err(_) => return error::json(StatusCode::REQUEST_TIMEOUT, "purge body not sent in time"),
    };
    let parsed: PurgeRequest = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(err) => return error::json(StatusCode::BAD_REQUEST, &format!("bad purge body: {err}")),
    };
    let target = match Target::from_request(parsed) {
        Ok(target) => target,
        Err(message) => return error::json(StatusCode::BAD_REQUEST, &message),
    };
    let removed = purge(&target);
    let mut response = Response::new(Body::from(format!("{{\"purged\":{removed}}}")));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str, path: &str, query: &str) -> Key {
        Key {
            host: host.into(),
            path: path.into(),
            query: query.into(),
            full: format!("{host}{path}?{query}"),
        }
    }

    #[test]
    fn targets_match_by_url_prefix_and_tag() {
        let url = Target::url("http://Example.com/a?y=2&x=1").unwrap();
        assert!(url.matches(&key("example.com", "/a", "x=1&y=2"), &[]));
        assert!(!url.matches(&key("other.com", "/a", "x=1&y=2"), &[]));
        assert!(!url.matches(&key("example.com", "/a", ""), &[]));
        let bare = Target::url("/a").unwrap();
        assert!(bare.matches(&key("any.host", "/a", ""), &[]));
        let prefix = Target::Prefix("/static/".into());
        assert!(prefix.matches(&key("", "/static/x.css", ""), &[]));
        assert!(!prefix.matches(&key("", "/api", ""), &[]));
        let tag = Target::Tag("p1".into());
        assert!(tag.matches(&key("", "/x", ""), &["p0".into(), "p1".into()]));
        assert!(!tag.matches(&key("", "/x", ""), &[]));
    }

    #[test]
    fn requests_need_exactly_one_target() {
        let both = PurgeRequest {
            url: Some("/a".into()),
            tag: Some("t".into()),
            ..PurgeRequest::default()
        };
        assert!(Target::from_request(both).is_err());
        assert!(Target::from_request(PurgeRequest::default()).is_err());
        assert!(Target::url("ftp://x/y").is_err());
    }
}
