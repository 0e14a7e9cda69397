//! [`Remote`]: the [`KvClient`] over RESP, for our `kv` server or real Redis.
//!
//! Built on the `redis` crate's `ConnectionManager`, which reconnects by
//! itself after the server restarts. Every call is bounded by a timeout: a
//! store that hangs must turn into [`Error::Unavailable`] quickly, so the
//! application answers 503 instead of holding its own clients hostage.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::{BoxFuture, Error, KvClient, Pair, Result};

/// Limits of the remote client.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Upper bound on one command's round trip, connect included.
    pub timeout_ms: u64,
    /// Keys fetched per SCAN step; bounds the server's work per call.
    pub scan_batch: usize,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            timeout_ms: 1_000,
            scan_batch: 256,
        }
    }
}

/// A RESP-speaking store. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Remote {
    connection: ConnectionManager,
    options: RemoteOptions,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`).
    pub async fn connect(url: &str, options: RemoteOptions) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|err| Error::Store(format!("bad store URL `{url}`: {err}")))?;
        let timeout = Duration::from_millis(options.timeout_ms);
        let connection = tokio::time::timeout(timeout, ConnectionManager::new(client))
            .await
            .map_err(|_| Error::Unavailable(format!("connecting to {url} timed out")))?
            .map_err(|err| Error::Unavailable(format!("cannot connect to {url}: {err}")))?;
        Ok(Self {
            connection,
            options,
        })
    }

    /// The shared connection (clones share it), for commands the trait
    /// does not cover (`WAIT`, `SENTINEL ...`).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    async fn bounded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        let timeout = Duration::from_millis(self.options.timeout_ms);
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Err(Error::Unavailable("store did not answer in time".into())),
            Ok(Err(err)) if is_unavailable(&err) => Err(Error::Unavailable(err.to_string())),
            Ok(Err(err)) => Err(Error::Store(err.to_string())),
            Ok(Ok(value)) => Ok(value),
        }
    }
}

fn is_unavailable(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
}

/// Escapes glob metacharacters so a prefix matches literally in SCAN MATCH.
fn glob_literal(prefix: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 1);
    for &byte in prefix {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    // Redis rejects PX 0; a sub-millisecond TTL rounds up to 1 ms.
    ttl.map(|ttl| (ttl.as_millis() as u64).max(1))
}

impl KvClient for Remote {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            self.bounded(connection.get(key)).await
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let mut command = redis::cmd("SET");
            command.arg(key).arg(value);
            if let Some(ms) = ttl_ms(ttl) {
                command.arg("PX").arg(ms);
            }
            self.bounded(command.query_async::<()>(&mut connection))
                .await
        })
    }

    fn set_nx<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let mut command = redis::cmd("SET");
            command.arg(key).arg(value).arg("NX");
            if let Some(ms) = ttl_ms(ttl) {
                command.arg("PX").arg(ms);
            }
            // SET NX answers OK when it set and nil when the key existed.
            let reply: Option<String> = self.bounded(command.query_async(&mut connection)).await?;
            Ok(reply.is_some())
        })
    }

    fn incr_by<'a>(&'a self, key: &'a [u8], delta: i64) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            self.bounded(connection.incr(key, delta)).await
        })
    }

    fn scan_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Pair>>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let pattern = glob_literal(prefix);
            let mut keys: Vec<Vec<u8>> = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let command = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(self.options.scan_batch)
                    .clone();
                let (next, batch): (u64, Vec<Vec<u8>>) =
                    self.bounded(command.query_async(&mut connection)).await?;
                keys.extend(batch);
                if next == 0 || keys.len() >= limit {
                    break;
                }
                cursor = next;
            }
            keys.sort();
            keys.dedup();
            keys.truncate(limit);
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let values: Vec<Option<Vec<u8>>> = self
                .bounded(redis::cmd("MGET").arg(&keys).query_async(&mut connection))
                .await?;
            // A key may expire between SCAN and MGET; drop it rather than invent a value.
            Ok(keys
                .into_iter()
                .zip(values)
                .filter_map(|(key, value)| Some((key, value?)))
                .collect())
        })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let removed: i64 = self.bounded(connection.del(key)).await?;
            Ok(removed > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(
            super::glob_literal(b"a*b?[c]\\"),
            b"a\\*b\\?\\[c\\]\\\\*".to_vec()
        );
    }
}
