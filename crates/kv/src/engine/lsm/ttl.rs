//! The lsm engine's index of keys with a TTL, in memory.
//!
//! Why it exists: active expiry and `volatile-*` sampling need random keys
//! that have a deadline, and the LSM cannot pick one. The index holds only
//! keys *with* a TTL (deadline by key, and a dense list to sample from); it
//! is rebuilt by the scan at open.

use std::collections::HashMap;

use bytes::Bytes;

/// Keys with a TTL: deadline by key, and a dense list for sampling.
#[derive(Debug, Default)]
pub(super) struct TtlIndex {
    /// Deadline and position in `keys`, by key.
    pub by_key: HashMap<Bytes, (u64, usize)>,
    /// Every key with a deadline, densely.
    pub keys: Vec<Bytes>,
}

impl TtlIndex {
    /// The deadline of `key`, if it has one.
    pub fn get(&self, key: &[u8]) -> Option<u64> {
        self.by_key.get(key).map(|(at, _)| *at)
    }

    /// Sets or (with `None`) clears the deadline of `key`.
    pub fn set(&mut self, key: &[u8], at: Option<u64>) {
        match (self.by_key.get_mut(key), at) {
            (Some(slot), Some(at)) => slot.0 = at,
            (None, Some(at)) => {
                let key = Bytes::copy_from_slice(key);
                self.by_key.insert(key.clone(), (at, self.keys.len()));
                self.keys.push(key);
            }
            (Some(_), None) => {
                let (_, pos) = self.by_key.remove(key).expect("present");
                self.keys.swap_remove(pos);
                if let Some(moved) = self.keys.get(pos) {
                    self.by_key.get_mut(moved).expect("indexed").1 = pos;
                }
            }
            (None, None) => {}
        }
    }
}
