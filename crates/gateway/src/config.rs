//! The gateway's settings, as read from `gateway.toml` (plus
//! `HYPERSCALE_GATEWAY_*` variables and flags, layered by `service::config`).
//!
//! Why a separate validation step: serde can check types, but not that a
//! route names an existing pool, that an upstream address parses, or that a
//! timeout is not zero. [`Config::validate`] checks all of that once at start
//! and names the offending key, so a typo fails the start instead of the
//! first request that hits it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything `hyperscale gateway serve` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where clients connect. Loopback by default: exposing a proxy to the
    /// network is a decision the operator makes explicitly.
    pub bind: SocketAddr,
    /// Path answered by the gateway itself with Prometheus metrics; empty
    /// disables it (do that when the port is public and `hyperscale up`'s
    /// admin endpoint serves the metrics instead).
    pub metrics_path: String,
    /// One tracing line per request at target `gateway::access`.
    pub access_log: bool,
    /// Threads serving traffic (used by `hyperscale gateway serve`), each a
    /// single-threaded runtime with its own `SO_REUSEPORT` listener (thread
    /// per core, see [`crate::server`]): 0 = one per CPU the process may
    /// run on, 1 = one thread. A single-threaded runtime proxies ~40% more
    /// requests per second on a core than tokio's work-stealing scheduler
    /// (no cross-thread wakeups or stealing bookkeeping; BENCHMARKS.md).
    pub workers: usize,
    /// Forward plain requests (bodiless `GET`/`HEAD` on routes without a
    /// cache, when no rate limits are set) with the gateway's own HTTP/1.1
    /// loop instead of hyper ([`crate::relay`]); the other requests go
    /// through hyper either way. On by default.
    pub relay: bool,
    /// Bounds on what one client can make the gateway hold.
    pub limits: Limits,
    /// Every wait the gateway does is bounded by one of these.
    pub timeouts: Timeouts,
    /// When a failed request is tried on another upstream.
    pub retry: Retry,
    /// The rate-limit rules file.
    pub ratelimit: RateLimit,
    /// Path-prefix routes, longest prefix wins.
    pub routes: Vec<Route>,
    /// Upstream pools by name.
    pub pools: BTreeMap<String, Pool>,
    /// The edge cache's node-wide settings (used by routes with a
    /// `[routes.cache]` table).
    pub cache: crate::cache::config::CacheConfig,
    /// Data centers, nearest first for the clients of their networks (see
    /// [`crate::datacenter`]); routes use them through `datacenter_pools`.
    pub datacenters: Vec<DataCenter>,
    /// When a data center counts as down, and as up again.
    pub datacenter_failover: Hysteresis,
}

/// The most serving threads `workers` may ask for.
pub const WORKERS_MAX: usize = 1024;

/// A data center: a name and the client networks it is nearest to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataCenter {
    /// Its name, as `datacenter_pools` keys use it.
    pub name: String,
    /// Client networks (CIDR) routed here first.
    pub networks: Vec<String>,
}

/// Hysteresis of data-center failover (see [`crate::datacenter::step`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hysteresis {
    /// A data center with no healthy upstream for this long is down.
    pub down_after_ms: u64,
    /// A down data center healthy for this long without a break is up again.
    pub up_after_ms: u64,
    /// How often the pools' health is looked at.
    pub check_interval_ms: u64,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self {
            down_after_ms: 1_000,
            up_after_ms: 10_000,
            check_interval_ms: 100,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            metrics_path: "/metrics".into(),
            access_log: true,
            workers: 0,
            relay: true,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            retry: Retry::default(),
            ratelimit: RateLimit::default(),
            routes: Vec::new(),
            pools: BTreeMap::new(),
            cache: Default::default(),
            datacenters: Vec::new(),
            datacenter_failover: Hysteresis::default(),
        }
    }
}

/// Size and count limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Client connections held at once; the next one gets a 503 and is
    /// closed, so a flood cannot exhaust file descriptors or memory.
    pub connections_max: usize,
    /// Largest request body (413 beyond), streamed or buffered.
    pub body_bytes_max: u64,
    /// A body that may be replayed on another upstream (see `[retry]`) is
    /// buffered in memory up to this many bytes, then in a temporary file
    /// in `body_spill_dir`. Bodies that will not be replayed are streamed
    /// to the upstream as they arrive and never buffered.
    pub body_memory_bytes_max: u64,
    /// Bytes all buffered bodies together may hold, in memory and on disk.
    /// A replayable body that does not fit is streamed without replay (it
    /// loses failover, not service); 0 never buffers.
    pub body_buffer_total_bytes_max: u64,
    /// Where bodies over `body_memory_bytes_max` are spilled (anonymous
    /// files, deleted by the OS when the request ends). Unset: the OS
    /// temp dir (`$TMPDIR`, else `/tmp`). Relative to the config file.
    pub body_spill_dir: Option<PathBuf>,
    /// Largest request head (request line + headers); hyper's minimum is 8 KiB.
    pub header_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_max: 10_000,
            body_bytes_max: 10 << 20,
            body_memory_bytes_max: 1 << 20,
            body_buffer_total_bytes_max: 64 << 20,
            body_spill_dir: None,
            header_bytes_max: 64 << 10,
        }
    }
}

/// Timeouts, all in milliseconds and all non-zero.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP connect to an upstream. Short: a healthy upstream on a LAN
    /// accepts in well under a millisecond, and failing fast lets the retry
    /// reach another upstream while the client still waits.
    pub connect_ms: u64,
    /// From the start of a request head (or of an idle keep-alive period) to
    /// its last header byte. This is the slowloris defence: a client that
    /// trickles headers is cut off and its connection freed.
    pub header_read_ms: u64,
    /// Reading the whole request body.
    pub body_read_ms: u64,
    /// From sending a request upstream to receiving its response head (504).
    pub upstream_response_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: 1_000,
            header_read_ms: 10_000,
            body_read_ms: 30_000,
            upstream_response_ms: 30_000,
        }
    }
}

/// Failover policy: at most one retry, on another upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// Off: every failure goes back to the client.
    pub enabled: bool,
    /// A request carrying this header is retried whatever its method (the
    /// client vouches it is idempotent); empty disables.
    pub idempotent_header: String,
    /// Upstream statuses treated as "this upstream is broken": retried and
    /// counted as a passive failure.
    pub statuses: Vec<u16>,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            enabled: true,
            idempotent_header: "idempotency-key".into(),
            statuses: vec![502, 503],
        }
    }
}

/// Rate limiting (ch. 4), driven by a rules file in the `ratelimit` crate's
/// format and enforced by its tower layer before a request is forwarded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    /// The YAML rules file; relative paths are relative to the config
    /// file's directory. Unset: no rate limiting.
    pub rules: Option<PathBuf>,
    /// How often the rules file is checked for changes; a changed, valid
    /// file replaces the rules without a restart, an invalid one is logged
    /// and ignored.
    pub reload_ms: u64,
    /// Where counters live: `memory` (this process) or `redis` (shared by
    /// every gateway; see `redis`).
    pub store: String,
    /// The in-process store's bounds.
    pub memory: ratelimit::store::memory::MemoryConfig,
    /// The Redis store: URL, timeout, circuit breaker.
    pub redis: ratelimit::store::redis::RedisConfig,
    /// When the store cannot answer: `open` admits (the default: the
    /// limiter must never take the API down), `closed` rejects.
    pub failure_policy: ratelimit::FailurePolicy,
    /// Proxies (CIDRs) in front of the gateway whose `X-Forwarded-For` is
    /// believed for `remote_address`; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Header carrying the `api_key` descriptor.
    pub api_key_header: String,
    /// Park rejected requests until their retry-after instead of answering
    /// 429 at once (bounded); unset: reject at once.
    pub queue: Option<ratelimit::layer::QueueConfig>,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            rules: None,
            reload_ms: 1_000,
            store: "memory".into(),
            memory: Default::default(),
            redis: Default::default(),
            failure_policy: Default::default(),
            trusted_proxies: Vec::new(),
            api_key_header: "x-api-key".into(),
            queue: None,
        }
    }
}

/// A path-prefix route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// Requests whose path starts with this (at a `/` boundary) match.
    pub prefix: String,
    /// The pool that serves them.
    pub pool: String,
    /// Remove the prefix before forwarding (`/api/users` → `/users`).
    pub strip_prefix: bool,
    /// Cache this route's `GET`/`HEAD` responses at the edge.
    pub cache: Option<crate::cache::config::RouteCache>,
    /// One pool per data center (data center name → pool name); set, the
    /// client's nearest healthy data center serves and `pool` may be empty.
    pub datacenter_pools: BTreeMap<String, String>,
}

/// How a pool picks an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each upstream in turn: even spread for even requests.
    #[default]
    RoundRobin,
    /// The upstream with the fewest requests in flight: adapts to slow
    /// requests and slow upstreams.
    LeastConnections,
    /// The owner of the request key on a hash ring: the same key sticks to
    /// the same upstream (sticky sessions, cache affinity).
    ConsistentHash,
}

/// A group of interchangeable upstream servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pool {
    /// `host:port` or `http://host:port` of each upstream.
    pub upstreams: Vec<String>,
    /// The load-balancing policy.
    pub balance: Balance,
    /// For `consistent_hash`: `client_ip`, `path` or `header:<name>`.
    pub hash_key: String,
    /// Virtual nodes per upstream on the hash ring.
    pub vnodes: u32,
    /// Active health checks.
    pub health: HealthCheck,
    /// Consecutive failed requests that eject an upstream until a health
    /// check re-admits it; 0 disables passive ejection.
    pub eject_after_failures: u32,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            balance: Balance::RoundRobin,
            hash_key: "client_ip".into(),
            vnodes: 160,
            health: HealthCheck::default(),
            eject_after_failures: 3,
        }
    }
}

/// Periodic `GET` of a path on every upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    /// Off: upstreams ejected passively come back after `interval_ms` × 5.
    pub enabled: bool,
    /// The path probed; any 2xx or 3xx answer is healthy.
    pub path: String,
    /// Time between probes of one upstream.
    pub interval_ms: u64,
    /// A probe not answered in time failed.
    pub timeout_ms: u64,
    /// Consecutive failed probes that mark an upstream down.
    pub unhealthy_threshold: u32,
    /// Consecutive good probes that bring it back.
    pub healthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/".into(),
            interval_ms: 2_000,
            timeout_ms: 1_000,
            unhealthy_threshold: 2,
            healthy_threshold: 1,
        }
    }
}

/// A config that parses but cannot work; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("gateway config: {0}")]
pub struct ConfigError(pub String);

/// What a request key for consistent hashing is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The client's IP address (the TCP peer, not `X-Forwarded-For`, which
    /// clients can forge).
    ClientIp,
    /// The request path without the query.
    Path,
    /// A request header; requests without it fall back to round robin.
    Header(http::HeaderName),
}

impl HashKey {
    /// Parses `client_ip`, `path` or `header:<name>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "client_ip" => Ok(Self::ClientIp),
            "path" => Ok(Self::Path),
            _ => match text.strip_prefix("header:") {
                Some(name) => http::HeaderName::try_from(name)
                    .map(Self::Header)
                    .map_err(|_| format!("`{name}` is not a valid header name")),
                None => Err(format!(
                    "unknown hash key `{text}`: use `client_ip`, `path` or `header:<name>`"
                )),
            },
        }
    }
}

/// Turns `host:port` or `http://host:port` into an authority (`host:port`).
pub fn parse_upstream(text: &str) -> Result<http::uri::Authority, String> {
    let bare = text.strip_prefix("http://").unwrap_or(text);
    let bare = bare.strip_suffix('/').unwrap_or(bare);
    if text.starts_with("https://") {
        return Err(format!(
            "upstream `{text}`: TLS to upstreams is not supported; use http://"
        ));
    }
    let authority: http::uri::Authority = bare
        .parse()
        .map_err(|_| format!("upstream `{text}` is not `host:port`"))?;
    if authority.port_u16().is_none() {
        return Err(format!("upstream `{text}` needs a port (`host:port`)"));
    }
    Ok(authority)
}

impl Config {
    /// Makes a relative rules path relative to `dir` (the config file's
    /// directory), so the example runs from any working directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        if let Some(rules) = &self.ratelimit.rules
            && rules.is_relative()
        {
            self.ratelimit.rules = Some(dir.join(rules));
        }
        if let Some(spill) = &self.limits.body_spill_dir
            && spill.is_relative()
        {
            self.limits.body_spill_dir = Some(dir.join(spill));
        }
        if let Some(disk) = &self.cache.disk_dir
            && disk.is_relative()
        {
            self.cache.disk_dir = Some(dir.join(disk));
        }
    }

    /// Checks what serde cannot: references, addresses, non-zero values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if self.routes.is_empty() {
            return fail("no routes: add a `[[routes]]` table with `prefix` and `pool`".into());
        }
        if self.workers > WORKERS_MAX {
            return fail(format!(
                "workers = {} is more than {WORKERS_MAX}: use 0 for one per CPU",
                self.workers
            ));
        }
        for (index, route) in self.routes.iter().enumerate() {
            if !route.prefix.starts_with('/') {
                return fail(format!(
                    "routes[{index}].prefix `{}` must start with `/`",
                    route.prefix
                ));
            }
            if let Some(cache) = &route.cache {
                cache
                    .validate(&format!("routes[{index}].cache"), &self.cache)
                    .map_err(ConfigError)?;
            }
            for (dc, pool) in &route.datacenter_pools {
                if !self.datacenters.iter().any(|known| known.name == *dc) {
                    return fail(format!(
                        "routes[{index}].datacenter_pools: `{dc}` is not a data center: add a `[[datacenters]]` with name = \"{dc}\""
                    ));
                }
                if !self.pools.contains_key(pool) {
                    return fail(format!(
                        "routes[{index}].datacenter_pools.{dc}: `{pool}` is not a pool: define `[pools.{pool}]`"
                    ));
                }
            }
            if !route.datacenter_pools.is_empty() && route.pool.is_empty() {
                continue;
            }
            if !self.pools.contains_key(&route.pool) {
                return fail(format!(
                    "routes[{index}].pool `{}` is not a pool: define `[pools.{}]`",
                    route.pool, route.pool
                ));
            }
        }
        if !self.metrics_path.is_empty() && !self.metrics_path.starts_with('/') {
            return fail(format!(
                "metrics_path `{}` must start with `/`",
                self.metrics_path
            ));
        }
        self.validate_numbers()?;
        self.cache.validate().map_err(ConfigError)?;
        for (index, dc) in self.datacenters.iter().enumerate() {
            if dc.name.is_empty() || self.datacenters[..index].iter().any(|d| d.name == dc.name) {
                return fail(format!(
                    "datacenters[{index}].name `{}` must be non-empty and unique",
                    dc.name
                ));
            }
            for network in &dc.networks {
                if let Err(err) = network.parse::<ratelimit::layer::extract::Cidr>() {
                    return fail(format!("datacenters[{index}].networks: {err}"));
                }
            }
        }
        if self.datacenter_failover.check_interval_ms == 0 {
            return fail("datacenter_failover.check_interval_ms must not be 0".into());
        }
        if !matches!(self.ratelimit.store.as_str(), "memory" | "redis") {
            return fail(format!(
                "ratelimit.store `{}` is unknown: use `memory` or `redis`",
                self.ratelimit.store
            ));
        }
        for (name, pool) in &self.pools {
            validate_pool(name, pool).map_err(ConfigError)?;
        }
        for status in &self.retry.statuses {
            if !(500..=599).contains(status) {
                return fail(format!(
                    "retry.statuses: {status} is not a 5xx status; only server errors may trigger a retry"
                ));
            }
        }
        Ok(())
    }

    fn validate_numbers(&self) -> Result<(), ConfigError> {
        let timeouts = &self.timeouts;
        let named = [
            ("timeouts.connect_ms", timeouts.connect_ms),
            ("timeouts.header_read_ms", timeouts.header_read_ms),
            ("timeouts.body_read_ms", timeouts.body_read_ms),
            (
                "timeouts.upstream_response_ms",
                timeouts.upstream_response_ms,
            ),
            ("limits.connections_max", self.limits.connections_max as u64),
        ];
        for (key, value) in named {
            if value == 0 {
                return Err(ConfigError(format!("{key} must be greater than 0")));
            }
        }
        if self.limits.header_bytes_max < 8192 {
            return Err(ConfigError(
                "limits.header_bytes_max must be at least 8192".into(),
            ));
        }
        Ok(())
    }
}

fn validate_pool(name: &str, pool: &Pool) -> Result<(), String> {
    if pool.upstreams.is_empty() {
        return Err(format!(
            "pools.{name}.upstreams is empty: list at least one `host:port`"
        ));
    }
    for upstream in &pool.upstreams {
        parse_upstream(upstream).map_err(|err| format!("pools.{name}.upstreams: {err}"))?;
    }
    HashKey::parse(&pool.hash_key).map_err(|err| format!("pools.{name}.hash_key: {err}"))?;
    if pool.vnodes == 0 || pool.vnodes > 4096 {
        return Err(format!("pools.{name}.vnodes must be between 1 and 4096"));
    }
    let health = &pool.health;
    if !health.path.starts_with('/') {
        return Err(format!("pools.{name}.health.path must start with `/`"));
    }
    let named = [
        ("interval_ms", health.interval_ms),
        ("timeout_ms", health.timeout_ms),
        ("unhealthy_threshold", u64::from(health.unhealthy_threshold)),
        ("healthy_threshold", u64::from(health.healthy_threshold)),
    ];
    for (key, value) in named {
        if value == 0 {
            return Err(format!("pools.{name}.health.{key} must be greater than 0"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
