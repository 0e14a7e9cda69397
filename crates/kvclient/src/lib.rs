//! The key-value client applications use, with two implementations.
//!
//! The blueprint's third layer (applications such as the URL shortener) never
//! touches an engine directly: it talks to this small trait, [`KvClient`].
//! Two implementations exist:
//!
//! - [`embedded::Embedded`]: the `lsm` engine in this process, the default.
//!   No network hop, durable on disk, one process owns the data directory.
//! - [`remote::Remote`]: RESP over TCP, to our `kv` server or to real Redis,
//!   when several application servers must share one store (the book's
//!   stateless web tier) or a user outgrows one machine.
//! - [`replicated::Replicated`]: a primary and its replicas (fixed, or
//!   found through sentinels): writes to the primary, reads where
//!   [`replicated::ReadFrom`] says (`primary | replica | nearest`; see its
//!   docs for the stale-read risk), following a failover by itself.
//!
//! The trait is deliberately small: the operations the applications of the
//! book need (get, set with optional TTL, set-if-absent, increment, scan a
//! prefix, delete), each atomic on its own. Set-if-absent and increment are
//! the two read-modify-write steps the book's designs rely on (claiming a
//! short code, counting clicks); everything else is a plain read or write.
//!
//! Errors distinguish "the store is unreachable or too slow"
//! ([`Error::Unavailable`], an application answers 503) from everything else,
//! so callers can degrade instead of hanging.
#![warn(missing_docs)]

pub mod cached;
pub mod embedded;
pub mod remote;
pub mod replicated;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so [`KvClient`] can be used as `Arc<dyn KvClient>` and an
/// application can pick the implementation at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store did not answer in time or cannot be reached; try later.
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with an error (wrong type, corrupt data...).
    #[error("key-value store error: {0}")]
    Store(String),
}

/// Result of a store operation.
pub type Result<T> = std::result::Result<T, Error>;

/// A key and its value, as returned by [`KvClient::scan_prefix`].
pub type Pair = (Vec<u8>, Vec<u8>);

/// The operations applications need from a key-value store. See the crate doc.
pub trait KvClient: Send + Sync {
    /// The value of `key`, if present and not expired.
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;

    /// Stores `value` under `key`, replacing any value; expires after `ttl`.
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Stores `value` only if `key` is absent; returns whether it did.
    fn set_nx<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Adds `delta` to the integer at `key` (absent counts as 0) and returns
    /// the new value.
    fn incr_by<'a>(&'a self, key: &'a [u8], delta: i64) -> BoxFuture<'a, Result<i64>>;

    /// Up to `limit` pairs whose key starts with `prefix`. Embedded stores
    /// return them in key order; remote ones in the server's scan order.
    fn scan_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Pair>>>;

    /// Removes `key`; returns whether it existed.
    fn delete<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>>;
}
