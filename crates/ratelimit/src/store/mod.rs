//! Where counters live: in this process, or in Redis shared by every gateway.
//!
//! The notes put counters in an in-memory cache with expiry, not a database
//! (disk is too slow), and name Redis. [`memory::MemoryStore`] is the fast,
//! local choice; [`redis::RedisStore`] is the shared one that solves the
//! notes' synchronization problem between several limiter processes. The
//! [`Store`] enum lets the limiter hold either without dynamic dispatch on the
//! in-process fast path.

pub mod breaker;
pub mod memory;
pub mod redis;

use crate::algorithm::{Algorithm, Decision, Nanos, Quota};
use std::sync::Arc;

pub use self::redis::StoreError;

/// A counter store.
#[derive(Clone, Debug)]
pub enum Store {
    /// Counters in this process.
    Memory(Arc<memory::MemoryStore>),
    /// Counters in Redis.
    Redis(Arc<self::redis::RedisStore>),
}

impl Store {
    /// Decides one request for `key`. `now_ns` is the local monotonic clock;
    /// the Redis store uses Redis's clock instead.
    pub async fn check(
        &self,
        key: &str,
        algorithm: Algorithm,
        quota: &Quota,
        now_ns: Nanos,
    ) -> Result<Decision, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.check(key, algorithm, quota, now_ns)),
            Store::Redis(store) => store.check(key, algorithm, quota).await,
        }
    }

    /// The store's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}
