//! Hybrid logical clocks: timestamps that follow wall-clock time but never
//! go backwards and never repeat on one node, for last-writer-wins.
//!
//! Why it exists: when siblings must be collapsed without asking the client
//! (plain `GET`, LWW registers in a map), "the latest write wins" needs a
//! timestamp order every replica agrees on. Raw wall clocks can step back
//! (NTP) and two writes in one millisecond tie. A hybrid logical clock
//! (Kulkarni et al., 2014; CockroachDB, MongoDB) keeps a 48-bit millisecond
//! part that tracks the wall clock and a 16-bit logical part that counts
//! events within a millisecond, and takes the maximum of what it has seen
//! from other nodes, so a reply written after reading a value always
//! stamps later than that value, even across skewed clocks.
//!
//! A timestamp from a peer more than `max_drift_ms` ahead of our wall clock
//! is refused ([`ClockSkew`]): adopting it would drag this node's clock
//! into the future and let that one peer win every LWW decision.
//! LWW by HLC is a policy, not magic: two truly concurrent writes are still
//! decided by clocks, so the loser is dropped (siblings keep it instead).

/// A hybrid timestamp: milliseconds in the high 48 bits, a logical counter
/// in the low 16. Ordered as a plain `u64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc(pub u64);

const LOGICAL_BITS: u32 = 16;

impl Hlc {
    /// The first timestamp of wall-clock millisecond `ms`.
    pub fn from_ms(ms: u64) -> Hlc {
        Hlc(ms << LOGICAL_BITS)
    }

    /// The wall-clock milliseconds part.
    pub fn ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }
}

/// A peer's timestamp is too far ahead of our clock to be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a timestamp {ahead_ms} ms ahead of this node's clock (the limit is {max_drift_ms} ms)")]
pub struct ClockSkew {
    /// How far ahead it was.
    pub ahead_ms: u64,
    /// The limit in force.
    pub max_drift_ms: u64,
}

/// One node's hybrid clock.
#[derive(Debug, Clone)]
pub struct HlcClock {
    last: Hlc,
    max_drift_ms: u64,
}

impl HlcClock {
    /// A clock that refuses peers more than `max_drift_ms` ahead.
    pub fn new(max_drift_ms: u64) -> HlcClock {
        HlcClock {
            last: Hlc(0),
            max_drift_ms,
        }
    }

    /// A timestamp for a local event at wall-clock `wall_ms`: later than
    /// every timestamp this clock has issued or observed.
    pub fn now(&mut self, wall_ms: u64) -> Hlc {
        let wall = Hlc::from_ms(wall_ms);
        self.last = if wall > self.last {
            wall
        } else {
            Hlc(self.last.0.saturating_add(1))
        };
        self.last
    }

    /// Takes a peer's timestamp into account, unless it is too far ahead of
    /// `wall_ms`.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Result<(), ClockSkew> {
        let ahead_ms = remote.ms().saturating_sub(wall_ms);
        if ahead_ms > self.max_drift_ms {
            return Err(ClockSkew {
                ahead_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        self.last = self.last.max(remote);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_backwards_never_repeats() {
        let mut clock = HlcClock::new(1_000);
        let a = clock.now(100);
        let b = clock.now(100);
        let c = clock.now(90); // the wall clock stepped back
        assert!(a < b && b < c);
        assert_eq!(c.ms(), 100);
        assert_eq!(clock.now(200), Hlc::from_ms(200));
    }

    #[test]
    fn observing_a_peer_orders_later_events_after_it() {
        let mut clock = HlcClock::new(1_000);
        let remote = Hlc::from_ms(600);
        clock.observe(remote, 100).unwrap();
        assert!(clock.now(100) > remote);
        let far = Hlc::from_ms(5_000);
        assert_eq!(
            clock.observe(far, 100),
            Err(ClockSkew {
                ahead_ms: 4_900,
                max_drift_ms: 1_000
            })
        );
        assert!(clock.now(100) < far);
    }
}
