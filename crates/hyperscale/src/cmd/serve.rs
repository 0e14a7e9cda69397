//! What the single-system `serve` verbs (`kv`, `mq`, `shortener`) share.
//!
//! Each verb's setup differs in order and in what it opens (a custom runtime
//! for kv, a recovered data directory for mq), so only the identical step
//! lives here rather than a generic `serve` wrapper.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds `--admin-bind` (`/metrics` and `/healthz`) when given; `None`
/// leaves the admin endpoint off.
pub async fn bind_admin(addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(service::net::bind(addr, "the admin endpoint").await?)),
        None => Ok(None),
    }
}
