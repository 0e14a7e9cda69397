//! An HTTP/1.1 reverse proxy and API gateway: the load balancer of *System
//! Design Interview* vol. 1, ch. 1 ("사용자 수에 따른 규모 확장": load
//! balancer, failover, stateless web tier) with the rate limiter of ch. 4
//! ("처리율 제한 장치의 설계") in front, where the notes say it usually lives
//! ("클라우드 마이크로서비스의 경우 처리율 제한 장치는 보통 API 게이트웨이라
//! 불리는 컴포넌트에 구현됨").
//!
//! # The design
//!
//! Clients connect to the gateway's one public address; it forwards each
//! request to one server of an upstream *pool* (the notes' load-balancing
//! set, reached on private addresses) and streams the answer back:
//!
//! - [`head`] and [`normalize`]: a strict look at the request head first
//!   (one `Host`, required on HTTP/1.1, absolute-form target wins; only
//!   `chunked` transfer coding, else 501) and one canonical path (decoded,
//!   dot segments removed, slashes merged, `..` above the root refused), so
//!   routes, rate limits and upstreams all see the same path.
//! - [`routes`]: path prefixes choose the pool (longest prefix wins).
//! - [`balance`]: round robin, least connections, or consistent hashing of
//!   a request key on the `ring` crate's hash ring (sticky sessions).
//! - [`upstream`] and [`health`]: upstreams leave rotation after
//!   consecutive failed requests (passive) or failed probes (active), and
//!   come back only when probes succeed again.
//! - [`proxy`]: the forwarding itself, with **failover**: a replayable
//!   request that fails on one upstream is retried once on another, so
//!   "server 1 goes down, traffic moves to server 2" costs clients nothing.
//! - [`relay`]: the fast path, nginx's design: plain `GET`/`HEAD`
//!   requests forwarded by our own HTTP/1.1 loop, one task per client
//!   connection owning its upstream sockets; every other request goes
//!   through hyper and [`proxy`] ([`hyper_conn`]).
//! - [`client`]: the upstream connections, kept alive in a pool per
//!   serving thread ([`idle`]).
//! - [`headers`]: hop-by-hop removal, `X-Forwarded-For/Proto/Host`, `Via`.
//! - [`server`]: connection limit, slowloris timeout, graceful drain, and
//!   thread-per-core serving (one single-threaded runtime and one
//!   `SO_REUSEPORT` listener per worker).
//! - [`limit`]: the `ratelimit` crate's rules file, store and tower layer
//!   (429 with `X-Ratelimit-*` headers), reloaded when the file changes.
//! - [`metrics`]: requests by route and status, 429s by rule, upstream
//!   health and latency.
//! - [`datacenter`]: pools grouped into data centers, clients routed to
//!   their nearest (a client-network map) with failover to the next data
//!   center, with hysteresis.
//! - [`cache`]: the edge cache, one node of the notes' CDN: RFC 9111
//!   caching of a route's `GET`s (freshness, validation, `Vary`, stale
//!   serving when the origin fails), request collapsing, a bounded memory
//!   tier and optional disk tier, purges by URL, prefix and tag.
//!
//! # Trade-offs and knobs (`gateway.toml`, see [`config`])
//!
//! - Request bodies ([`body`]) are streamed unless the request may be
//!   retried; those are buffered (memory up to `limits.body_memory_bytes_max`,
//!   then a temporary file) so a failed attempt can be replayed, with all
//!   buffered bodies bounded by `limits.body_buffer_total_bytes_max` (beyond
//!   it, streamed without replay). Responses are always streamed.
//! - One retry at most, only for replayable requests (idempotent methods,
//!   `retry.idempotent_header`, or a request that never left: connect
//!   errors), which bounds the extra load a failing pool receives.
//! - Upstreams start in rotation: the gateway serves at once, and a dead
//!   upstream costs at most `eject_after_failures` failed attempts, each
//!   retried elsewhere.
//! - When no upstream is in rotation, requests get a 503 at once instead of
//!   hammering servers known to be down.
//! - Not supported: TLS (terminate in front or behind), HTTP/2, WebSocket
//!   upgrades (the `Upgrade` header is hop-by-hop and is dropped).
//!
//! # Use
//!
//! [`serve`] runs a standalone gateway on a bound listener; [`Gateway::new`]
//! plus [`Gateway::serve`] lets `hyperscale up` register the metrics in the
//! process-wide registry and put a gateway in front of other HTTP systems.
#![warn(missing_docs)]

pub mod balance;
pub mod body;
pub mod cache;
pub mod client;
pub mod config;
pub mod datacenter;
pub mod error;
pub mod handler;
pub mod head;
pub mod headers;
pub mod health;
pub mod hyper_conn;
pub mod idle;
pub mod limit;
pub mod metrics;
pub mod normalize;
pub mod proxy;
pub mod relay;
pub mod routes;
pub mod server;
pub mod upstream;

pub use config::Config;
pub use handler::{Gateway, MetricsSource};
pub use server::serve;

/// How `hyperscale up` and the console describe a gateway at `endpoint`.
pub fn info(endpoint: &str) -> service::SystemInfo {
    service::SystemInfo {
        name: "gateway".into(),
        title: "API gateway (reverse proxy, load balancer, rate limits)".into(),
        chapter: "ch. 1 load balancer, ch. 4 rate limiter".into(),
        protocol: "HTTP".into(),
        endpoint: endpoint.into(),
        link: Some(format!("http://{endpoint}/")),
    }
}
