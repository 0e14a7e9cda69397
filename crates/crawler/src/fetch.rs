//! The HTML downloader (HTML 다운로더): reqwest (HTTP/1.1 and HTTP/2 over
//! hyper, gzip and brotli bodies) behind the caching resolver, with the
//! chapter's short timeouts split in three (connect, first byte, total), a
//! cap on the decoded body (a gzip bomb stops at the cap), a content-type
//! filter that skips the body of types no handler reads, and conditional
//! GET headers for recrawls. Redirects are *not* followed here: a 3xx comes
//! back with its `Location` and the crawl queues the target as a new URL
//! (recorded, counted against a redirect limit, seen-checked and polite like
//! any other link).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::dns::CachingResolver;

/// The downloader's knobs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// `User-Agent` header (also the robots.txt agent name up to the first `/`).
    pub user_agent: String,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout_ms: u64,
    /// Until the response head arrives.
    pub first_byte_timeout_ms: u64,
    /// The whole exchange, body included.
    pub total_timeout_ms: u64,
    /// Largest decoded body read.
    pub body_bytes_max: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            user_agent: "hyperscale-crawler/0.1 (+https://github.com/hyperscale/hyperscale)".into(),
            connect_timeout_ms: 5_000,
            first_byte_timeout_ms: 10_000,
            total_timeout_ms: 30_000,
            body_bytes_max: 8 * 1024 * 1024,
        }
    }
}

impl FetchConfig {
    /// The product token robots.txt groups are matched against.
    pub fn robots_agent(&self) -> &str {
        self.user_agent.split('/').next().unwrap_or("*")
    }
}

/// Why a fetch gave no HTTP answer (the kinds errors are counted by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchErrorKind {
    /// Name did not resolve.
    Dns,
    /// Connection refused or reset before an answer.
    Connect,
    /// A timeout fired.
    Timeout,
    /// The body failed mid-way (reset, bad encoding).
    Body,
    /// Anything else the client reported.
    Other,
}

impl FetchErrorKind {
    /// The stat name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Body => "body",
            Self::Other => "other",
        }
    }
}

/// A failed fetch.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct FetchError {
    /// The kind.
    pub kind: FetchErrorKind,
    /// What the client said.
    pub message: String,
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Response headers in order (lowercase names).
    pub headers: Vec<(String, String)>,
    /// The decoded body (empty when the type was filtered or the status is 304).
    pub body: Bytes,
    /// The body hit the cap and was cut.
    pub truncated: bool,
    /// The body was skipped: no handler reads this type.
    pub type_skipped: bool,
    /// Time to the last byte.
    pub elapsed_ms: u64,
}

impl Response {
    /// First header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type without parameters, lowercase.
    pub fn media_type(&self) -> String {
        self.header("content-type")
            .and_then(|ct| ct.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default()
    }
}

/// Conditional GET validators from an earlier fetch.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    /// `ETag` seen last time.
    pub etag: Option<String>,
    /// `Last-Modified` seen last time.
    pub last_modified: Option<String>,
}

/// The downloader.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    cfg: FetchConfig,
    dns: CachingResolver,
}

impl Fetcher {
    /// Builds the client.
    pub fn new(cfg: FetchConfig, dns: CachingResolver) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .timeout(Duration::from_millis(cfg.total_timeout_ms))
            .dns_resolver(std::sync::Arc::new(dns.clone()))
            .pool_max_idle_per_host(2)
            .build()?;
        Ok(Self { client, cfg, dns })
    }

    /// The resolver (for its counters).
    pub fn dns(&self) -> &CachingResolver {
        &self.dns
    }

    /// The config.
    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// GETs `url`; reads the body only if `accept(media_type)`.
    pub async fn get(
        &self,
        url: &str,
        validators: &Validators,
        accept: impl Fn(&str) -> bool,
        body_bytes_max: usize,
    ) -> Result<Response, FetchError> {
        let started = Instant::now();
        let mut request = self.client.get(url);
        if let Some(etag) = &validators.etag {
            request = request.header("if-none-match", etag);
        }
        if let Some(date) = &validators.last_modified {
            request = request.header("if-modified-since", date);
        }
        let first_byte = Duration::from_millis(self.cfg.first_byte_timeout_ms);
        let mut response = match tokio::time::timeout(first_byte, request.send()).await {
            Err(_) => return Err(error(FetchErrorKind::Timeout, "no response head in time")),
            Ok(Err(err)) => return Err(classify(&err)),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut out = Response {
            status,
            headers,
            body: Bytes::new(),
            truncated: false,
            type_skipped: false,
            elapsed_ms: 0,
        };
        let media = out.media_type();
        let wants_body = (200..300).contains(&status) || status == 404 || status == 410;
        if wants_body && !accept(&media) {
            out.type_skipped = true;
        } else if wants_body {
            let mut body = BytesMut::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = body_bytes_max.saturating_sub(body.len());
                        if chunk.len() > room {
                            body.extend_from_slice(&chunk[..room]);
                            out.truncated = true;
                            break;
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(err) => {
                        let mut e = classify(&err);
                        if e.kind != FetchErrorKind::Timeout {
                            e.kind = FetchErrorKind::Body;
                        }
                        return Err(e);
                    }
                }
            }
            out.body = body.freeze();
        }
        out.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(out)
    }
}

fn error(kind: FetchErrorKind, message: &str) -> FetchError {
    FetchError {
        kind,
        message: message.to_string(),
    }
}

fn classify(err: &reqwest::Error) -> FetchError {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    let kind = if err.is_timeout() {
        FetchErrorKind::Timeout
    } else if text.contains("resolve") || text.contains("no addresses") {
        FetchErrorKind::Dns
    } else if err.is_connect() {
        FetchErrorKind::Connect
    } else if err.is_body() || err.is_decode() {
        FetchErrorKind::Body
    } else {
        FetchErrorKind::Other
    };
    FetchError {
        kind,
        message: text,
    }
}
