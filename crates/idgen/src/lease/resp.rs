//! Leases in Redis, or anything that speaks RESP (our `kv` server).
//!
//! `acquire` is plain `SET key token NX PX ttl`. `renew` and `release` must
//! be compare-and-act (only if the key still holds our token), which Redis
//! does atomically with a tiny Lua script. A server without `EVAL` (our own
//! `kv` may not have it) gets a `GET` then `PEXPIRE`/`DEL` fallback: not
//! atomic, but safe here because we renew at `ttl/3` with a command timeout of
//! `ttl/6`, so the key we just read cannot expire before the `PEXPIRE` lands.
//!
//! Uses the `redis` crate's blocking connection (the generator is not async);
//! every command has a timeout so a dead store fails fast instead of hanging
//! the renewal thread past the lease's deadline.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{LeaseStore, StoreError};

/// Compare-and-extend, atomic on the server.
const RENEW_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// Compare-and-delete, atomic on the server.
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) else return 0 end";

/// A lease store over one RESP connection, reconnecting on failure.
pub struct RespLeaseStore {
    client: redis::Client,
    /// The live connection; `None` after an I/O error until the next call.
    conn: Mutex<Option<redis::Connection>>,
    /// Connect, read and write timeout of every command.
    timeout: Duration,
    /// The server refused `EVAL`: use the GET-then-act fallback from now on.
    no_scripts: AtomicBool,
}

impl std::fmt::Debug for RespLeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RespLeaseStore")
            .field("server", &self.client.get_connection_info().addr)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RespLeaseStore {
    /// A store at `url` (`redis://[:password@]host:port[/db]`). Connects
    /// lazily; `timeout` bounds every command (use ttl/6 or less).
    pub fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError(format!("bad lease store url {url:?}: {e}")))?;
        Ok(RespLeaseStore {
            client,
            conn: Mutex::new(None),
            timeout,
            no_scripts: AtomicBool::new(false),
        })
    }

    /// Runs `cmd`, connecting first if needed and dropping the connection
    /// after an I/O error so the next call reconnects.
    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, redis::RedisError> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let conn = self.client.get_connection_with_timeout(self.timeout)?;
            conn.set_read_timeout(Some(self.timeout))?;
            conn.set_write_timeout(Some(self.timeout))?;
            *slot = Some(conn);
        }
        let conn = slot.as_mut().expect("connection was just set");
        let result = cmd.query(conn);
        if let Err(err) = &result
            && (err.is_io_error() || err.is_timeout() || err.is_connection_dropped())
        {
            *slot = None;
        }
        result
    }

    /// Runs a compare-and-act script, or its non-atomic fallback.
    /// `ttl_ms` is passed to the script (renew) when present.
    fn compare_and(
        &self,
        script: &str,
        key: &str,
        token: &str,
        ttl_ms: Option<u64>,
        act: redis::Cmd,
    ) -> Result<bool, StoreError> {
        if !self.no_scripts.load(Ordering::Relaxed) {
            let mut eval = redis::cmd("EVAL");
            eval.arg(script).arg(1).arg(key).arg(token);
            if let Some(ttl_ms) = ttl_ms {
                eval.arg(ttl_ms);
            }
            match self.query::<i64>(&eval) {
                Ok(n) => return Ok(n == 1),
                Err(err) if refused_command(&err) => {
                    tracing::info!("lease store has no EVAL; using GET then act");
                    self.no_scripts.store(true, Ordering::Relaxed);
                }
                Err(err) => return Err(store_error(err)),
            }
        }
        let mut get = redis::cmd("GET");
        get.arg(key);
        let held: Option<String> = self.query(&get).map_err(store_error)?;
        if held.as_deref() != Some(token) {
            return Ok(false);
        }
        self.query::<i64>(&act).map(|n| n == 1).map_err(store_error)
    }
}

/// The server does not know or allow the command (no Lua).
fn refused_command(err: &redis::RedisError) -> bool {
    let text = err.to_string().to_ascii_lowercase();
    text.contains("unknown command") || text.contains("unknown or disabled")
}

fn store_error(err: redis::RedisError) -> StoreError {
    StoreError(err.to_string())
}

impl LeaseStore for RespLeaseStore {
    fn acquire(&self, key: &str, token: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(key).arg(token).arg("NX").arg("PX").arg(ttl_ms);
        let reply: Option<String> = self.query(&set).map_err(store_error)?;
        Ok(reply.as_deref() == Some("OK"))
    }

    fn renew(&self, key: &str, token: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let mut pexpire = redis::cmd("PEXPIRE");
        pexpire.arg(key).arg(ttl_ms);
        self.compare_and(RENEW_SCRIPT, key, token, Some(ttl_ms), pexpire)
    }

    fn release(&self, key: &str, token: &str) -> Result<(), StoreError> {
        let mut del = redis::cmd("DEL");
        del.arg(key);
        self.compare_and(RELEASE_SCRIPT, key, token, None, del)
            .map(|_| ())
    }
}
