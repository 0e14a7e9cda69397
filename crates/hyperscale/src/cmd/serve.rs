//! What the single-system `serve` verbs (`kv`, `mq`, `shortener`) share.
//!
//! Each verb's setup differs in order and in what it opens (a custom runtime
//! for kv, a recovered data directory for mq), so only the identical step
//! lives here rather than a generic `serve` wrapper.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

/// Binds `--admin-bind` (`/metrics` and `/healthz`) when given; `None`
/// leaves the admin endpoint off.
pub async fn bind_admin(addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(service::net::bind(addr, "the admin endpoint").await?)),
        None => Ok(None),
    }
}

/// Parses the `bind` setting (a string, as TOML and env give it) into the
/// address to listen on, naming the bad value when it is not `IP:PORT`.
pub fn parse_bind(bind: &str) -> anyhow::Result<SocketAddr> {
    bind.parse()
        .with_context(|| format!("bind address {bind:?} is not IP:PORT"))
}
