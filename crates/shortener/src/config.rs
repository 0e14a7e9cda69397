//! The shortener's settings: one struct, loaded from file, environment
//! (`HYPERSCALE_SHORTENER_*`) and flags by `service::config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::code::Strategy;

/// Every setting of `hyperscale shortener serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// Base of the short URLs we hand out, e.g. `https://sho.rt`; defaults to
    /// `http://{bind}`. Its host also counts as "ourselves" for loop checks.
    pub public_url: Option<String>,
    /// `301` (permanent: browsers cache it, less load, no analytics after the
    /// first click) or `302` (temporary: every click reaches us). Unset means
    /// 302 when analytics are on, else 301: the chapter's trade-off.
    pub redirect: Option<u16>,
    /// Whether clicks are counted.
    pub analytics: bool,
    /// How codes are made: `snowflake` (default) or `hash`.
    pub strategy: Strategy,
    /// `embedded` (the LSM engine in this process) or a RESP URL
    /// (`redis://127.0.0.1:6379`: our kv server or real Redis).
    pub store: String,
    /// Round-trip bound for a remote store, in ms.
    pub store_timeout_ms: u64,
    /// Links kept in the in-process read cache (hot links).
    pub cache_entries: usize,
    /// Longest long URL accepted, in bytes.
    pub url_bytes_max: usize,
    /// Largest request body accepted, in bytes.
    pub body_bytes_max: usize,
    /// Snowflake datacenter ID of this server.
    pub datacenter: u64,
    /// Snowflake machine ID of this server; must differ between servers.
    pub machine: u64,
    /// Shorten requests admitted per client IP per minute (0: no limit). The
    /// chapter's wrap-up names a flood of shorten requests as the main abuse.
    pub shorten_per_minute: u32,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the real client for the
    /// rate limit, e.g. the gateway in front of us. Empty: the peer address
    /// is the client, whatever the header says.
    pub trusted_proxies: Vec<String>,
    /// Threads serving HTTP under `hyperscale shortener serve`, each a
    /// single-threaded runtime on its own `SO_REUSEPORT` listener (see
    /// [`crate::server`]): 0 = one per CPU the process may run on.
    pub workers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
            data_dir: PathBuf::from("./data/shortener"),
            public_url: None,
            redirect: None,
            analytics: true,
            strategy: Strategy::Snowflake,
            store: "embedded".into(),
            store_timeout_ms: 1_000,
            cache_entries: 100_000,
            url_bytes_max: 2_048,
            body_bytes_max: 16 * 1024,
            datacenter: 0,
            machine: 0,
            shorten_per_minute: 60,
            trusted_proxies: Vec::new(),
            workers: 0,
        }
    }
}

impl Config {
    /// The redirect status to send, after validating the setting.
    pub fn redirect_status(&self) -> Result<u16, String> {
        match self.redirect {
            None if self.analytics => Ok(302),
            None => Ok(301),
            Some(code @ (301 | 302 | 307 | 308)) => Ok(code),
            Some(other) => Err(format!(
                "redirect must be 301 or 302 (or 307/308), not {other}"
            )),
        }
    }

    /// The base of short URLs, without a trailing slash.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.bind),
        }
    }
}
