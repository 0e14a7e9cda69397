//! An in-process lease store, so lease logic is tested without a server.
//!
//! It keeps the same contract as Redis (`SET NX PX`, compare-and-extend,
//! compare-and-delete) and reads time from a [`Clock`], so tests expire a
//! lease by moving a [`crate::ManualClock`] instead of sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{LeaseStore, StoreError};
use crate::clock::{Clock, SystemClock};

/// Leases in a `HashMap` behind a mutex.
#[derive(Debug)]
pub struct MemoryLeaseStore {
    /// key → (token, expiry in the clock's ms).
    entries: Mutex<HashMap<String, (String, u64)>>,
    /// Decides when entries expire.
    clock: Arc<dyn Clock>,
}

impl Default for MemoryLeaseStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLeaseStore {
    /// A store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A store whose entries expire by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryLeaseStore {
            entries: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Runs `f` on the live (unexpired) entry of `key`, if any.
    fn with_entry<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut HashMap<String, (String, u64)>, Option<&str>, u64) -> T,
    ) -> Result<T, StoreError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| StoreError("memory store poisoned by a panic".to_owned()))?;
        let now_ms = self.clock.now_ms();
        let live = match entries.get(key) {
            Some((token, expiry_ms)) if *expiry_ms > now_ms => Some(token.clone()),
            _ => None,
        };
        Ok(f(&mut entries, live.as_deref(), now_ms))
    }
}

impl LeaseStore for MemoryLeaseStore {
    fn acquire(&self, key: &str, token: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        self.with_entry(key, |entries, live, now_ms| {
            if live.is_some() {
                return false;
            }
            entries.insert(key.to_owned(), (token.to_owned(), now_ms + ttl_ms));
            true
        })
    }

    fn renew(&self, key: &str, token: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        self.with_entry(key, |entries, live, now_ms| {
            if live != Some(token) {
                return false;
            }
            entries.insert(key.to_owned(), (token.to_owned(), now_ms + ttl_ms));
            true
        })
    }

    fn release(&self, key: &str, token: &str) -> Result<(), StoreError> {
        self.with_entry(key, |entries, live, _| {
            if live == Some(token) {
                entries.remove(key);
            }
        })
    }
}
