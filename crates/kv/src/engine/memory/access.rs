//! Access clocks for `OBJECT IDLETIME`, kept as Redis keeps them.
//!
//! Redis stamps every object with its 24-bit LRU clock (Unix seconds modulo
//! 2^24, read once per command) when it is created and whenever a command
//! reads or writes its key (`TYPE`, `EXISTS`, `TTL` and `OBJECT` excepted,
//! and every read under `CLIENT NO-TOUCH`). `OBJECT IDLETIME` is the clock
//! now minus the stamp, in seconds. Each slot keeps that stamp here (4
//! bytes); the clock is the command's own time, handed over once per command
//! ([`crate::engine::Engine::set_clock`]), so a read costs one store.
//!
//! One Redis detail matters for what clients see: a string that is a small
//! integer (`0` to `9999`) is stored as one of 10,000 objects shared by every
//! key holding that number, unless a `maxmemory` limit is set under an LRU or
//! LFU policy. Their stamp is shared too: `SET k 5` reports the idle time of
//! the shared `5` (the server's age if no key holding 5 was read since it
//! started), and reading one key holding 5 makes them all look just used.
//! That is emulated: such a slot points to a shared stamp instead of its own.
//! Redis decides sharing by how a value was written (`SET`, `MSET`, `INCR`
//! share; `APPEND`, `SETRANGE`, `INCRBYFLOAT` make a private copy); this
//! engine sees only the value, so it shares every small integer it stores.

use super::MemoryEngine;
use crate::config::EvictionPolicy;
use crate::value::Value;

/// Redis's `LRU_CLOCK_MAX`: the clock wraps at 2^24 seconds (194 days).
const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// Redis's `OBJ_SHARED_INTEGERS`.
const SHARED_INTEGERS: u16 = 10_000;
/// A slot whose value is not a shared integer.
pub(super) const NOT_SHARED: u16 = u16::MAX;

/// The LRU clock at `now_ms` (Redis's `getLRUClock`).
pub(super) fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) & u64::from(LRU_CLOCK_MAX)) as u32
}

/// Seconds between stamp `then` and clock `now`, across one wrap (Redis's
/// `estimateObjectIdleTime`, its off-by-one on a wrap included).
pub(super) fn idle_seconds(now: u32, then: u32) -> u64 {
    if now >= then {
        u64::from(now - then)
    } else {
        u64::from(now) + u64::from(LRU_CLOCK_MAX - then)
    }
}

/// Whether Redis shares small integers under this memory configuration
/// (not with a `maxmemory` limit under an LRU or LFU policy).
pub(super) fn shares_integers(maxmemory: u64, policy: EvictionPolicy) -> bool {
    maxmemory == 0
        || matches!(
            policy,
            EvictionPolicy::NoEviction | EvictionPolicy::AllKeysFifo | EvictionPolicy::VolatileTtl
        )
}

/// The shared integer Redis would store `value` as, or [`NOT_SHARED`].
pub(super) fn shared_integer(value: &Value) -> u16 {
    let Value::String(bytes) = value else {
        return NOT_SHARED;
    };
    let canonical = match bytes.as_ref() {
        [b'0'] => true,
        [first, rest @ ..] => {
            rest.len() < 4 && (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit)
        }
        [] => false,
    };
    if !canonical {
        return NOT_SHARED;
    }
    let number = bytes.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if number < SHARED_INTEGERS {
        number
    } else {
        NOT_SHARED
    }
}

/// The engine's clock and the stamps of the shared integers.
#[derive(Debug)]
pub(super) struct AccessClock {
    /// The running command's LRU clock.
    pub(super) now: u32,
    /// When the shared integers were made (the engine's start).
    started: u32,
    /// The shared integers' stamps, allocated when one is first read.
    shared: Vec<u32>,
}

impl AccessClock {
    pub(super) fn new() -> Self {
        let now = lru_clock(clock::now_ms());
        AccessClock {
            now,
            started: now,
            shared: Vec::new(),
        }
    }

    /// Stamps shared integer `n` as read now.
    pub(super) fn touch_shared(&mut self, n: u16) {
        if self.shared.is_empty() {
            self.shared = vec![self.started; usize::from(SHARED_INTEGERS)];
        }
        if let Some(stamp) = self.shared.get_mut(usize::from(n)) {
            *stamp = self.now;
        }
    }

    /// Shared integer `n`'s stamp.
    pub(super) fn shared_stamp(&self, n: u16) -> u32 {
        self.shared
            .get(usize::from(n))
            .copied()
            .unwrap_or(self.started)
    }
}

impl MemoryEngine {
    /// Stamps a slot as accessed now (its own stamp, or its shared integer's).
    pub(super) fn stamp_access(&mut self, slot_id: u32) {
        let slot = self.slots[slot_id as usize].as_mut().expect("occupied");
        if slot.shared == NOT_SHARED {
            slot.access_stamp = self.access.now;
        } else {
            let shared = slot.shared;
            self.access.touch_shared(shared);
        }
    }

    /// The shared integer a new value is stored as, under the engine's
    /// memory configuration.
    pub(super) fn shared_integer(&self, value: &Value) -> u16 {
        if shares_integers(self.limit.maxmemory, self.limit.policy) {
            shared_integer(value)
        } else {
            NOT_SHARED
        }
    }

    /// A slot's value was replaced: a new object, stamped now, or shared.
    pub(super) fn restamp(&mut self, slot_id: u32) {
        let now = self.access.now;
        let shared = {
            let slot = self.slots[slot_id as usize].as_ref().expect("occupied");
            self.shared_integer(&slot.entry.value)
        };
        let slot = self.slots[slot_id as usize].as_mut().expect("occupied");
        slot.access_stamp = now;
        slot.shared = shared;
    }

    /// Seconds since the slot's last access.
    pub(super) fn idle_seconds_of(&self, slot_id: u32) -> u64 {
        let Some(slot) = self.slots[slot_id as usize].as_ref() else {
            return 0;
        };
        let stamp = if slot.shared == NOT_SHARED {
            slot.access_stamp
        } else {
            self.access.shared_stamp(slot.shared)
        };
        idle_seconds(self.access.now, stamp)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn small_canonical_integers_are_shared() {
        let shared = |text: &'static str| shared_integer(&Value::String(Bytes::from(text)));
        assert_eq!(shared("0"), 0);
        assert_eq!(shared("5"), 5);
        assert_eq!(shared("9999"), 9999);
        for text in ["10000", "-1", "05", "+5", "", "5 ", "abc", "00"] {
            assert_eq!(shared(text), NOT_SHARED, "{text:?}");
        }
    }

    #[test]
    fn idle_time_crosses_a_clock_wrap_as_redis_computes_it() {
        assert_eq!(idle_seconds(10, 4), 6);
        assert_eq!(idle_seconds(4, 4), 0);
        assert_eq!(idle_seconds(2, LRU_CLOCK_MAX - 1), 3);
        assert_eq!(lru_clock(u64::from(LRU_CLOCK_MAX + 5) * 1000 + 999), 4);
    }
}
