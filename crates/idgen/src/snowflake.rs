//! The snowflake generator: lock-free, strictly increasing, never a duplicate.
//!
//! All mutable state is one `AtomicU64` holding the last issued
//! `(elapsed_ms, sequence)` pair packed as `elapsed_ms << sequence_bits |
//! sequence` — which is exactly the ID with the constant datacenter/machine
//! bits cut out. Issuing an ID is: load the state, read the clock, compute the
//! next pair, compare-exchange. Because the state only ever moves to a strictly
//! greater value, and the ID is a monotone function of the state, every ID a
//! generator returns is strictly greater than every ID it returned before, on
//! any thread. No mutex, so a thread descheduled mid-call never blocks others.
//!
//! Three cases per call, by comparing the clock with the stored millisecond:
//! - later: start the new millisecond at sequence 0;
//! - same: take the next sequence number; if all `2^sequence_bits` are used
//!   (4,096 with the book's layout), wait for the next millisecond;
//! - earlier (the clock stepped back): if the step is at most
//!   `backward_wait_ms_max`, wait until the clock is back where it was;
//!   otherwise refuse with [`GenerateError::ClockMovedBackwards`]. Issuing with
//!   the earlier time would repeat IDs, the classic snowflake bug.
//!
//! The state is loaded *before* the clock is read. That order matters: the
//! stored millisecond then always comes from a clock reading that happened
//! earlier, so a thread that lost a race never mistakes another thread's newer
//! millisecond for the clock going backwards.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::layout::{Layout, LayoutError, Parts};
use crate::lease::{Lease, LeaseError};

/// 2024-01-01T00:00:00Z: a recent epoch leaves the whole 69.7 years of a
/// 41-bit timestamp ahead of us (Twitter's 2010 epoch already spent 14).
pub const EPOCH_MS_DEFAULT: u64 = 1_704_067_200_000;

/// Twitter's own epoch (2010-11-04T01:42:54.657Z), to decode real tweet IDs.
pub const EPOCH_MS_TWITTER: u64 = 1_288_834_974_657;

/// How a generator is set up. Every field has a default; a TOML file or flags
/// override them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Ms since the Unix epoch that timestamp 0 stands for. Never change it
    /// for a running system: IDs made with another epoch would not sort.
    pub epoch_ms: u64,
    /// Section widths (the notes' "optimize each section's length").
    pub layout: Layout,
    /// This generator's datacenter id; must fit `layout.datacenter_bits`.
    pub datacenter: u64,
    /// This generator's machine id; must fit `layout.machine_bits`. Ignored
    /// when a lease assigns the machine id.
    pub machine: u64,
    /// Largest backward clock step we wait out instead of failing. NTP slews
    /// small errors but steps large ones; waiting a few ms is invisible to
    /// callers, waiting seconds is an outage better reported as an error.
    pub backward_wait_ms_max: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            epoch_ms: EPOCH_MS_DEFAULT,
            layout: Layout::TWITTER,
            datacenter: 0,
            machine: 0,
            backward_wait_ms_max: 5,
        }
    }
}

/// Why no ID was issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// The configuration does not fit the layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The clock reads earlier than the configured epoch.
    #[error(
        "clock reads {now_ms} ms since 1970, before the configured epoch {epoch_ms}; \
         fix the host clock or choose an earlier epoch_ms"
    )]
    ClockBeforeEpoch {
        /// The clock reading.
        now_ms: u64,
        /// The configured epoch.
        epoch_ms: u64,
    },
    /// The timestamp section is full: the layout's lifetime has run out.
    #[error(
        "timestamp section exhausted: {elapsed_ms} ms since the epoch does not fit {bits} bits; \
         choose a later epoch_ms or more timestamp bits (changing either breaks sort order)"
    )]
    TimestampExhausted {
        /// Ms since the epoch now.
        elapsed_ms: u64,
        /// The timestamp width.
        bits: u8,
    },
    /// The clock stepped back further than we are willing to wait.
    #[error(
        "clock moved backwards by {behind_ms} ms (we wait out at most {max_ms} ms); \
         refusing to issue IDs that could repeat: fix the host clock (NTP) or raise backward_wait_ms_max"
    )]
    ClockMovedBackwards {
        /// How far behind the last issued millisecond the clock reads.
        behind_ms: u64,
        /// The configured bound.
        max_ms: u64,
    },
    /// The machine-id lease is gone: another generator may now own the id.
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

/// A snowflake ID generator for one (datacenter, machine) pair.
///
/// Share it between threads with `Arc` (it is `Sync`); do not make two for the
/// same pair in one process — they would issue the same IDs.
#[derive(Debug)]
pub struct Generator<C: Clock = SystemClock> {
    /// Section widths; fixed for the generator's life.
    layout: Layout,
    /// Timestamp 0 in Unix ms.
    epoch_ms: u64,
    /// Datacenter and machine ids, pre-shifted: ORed into every ID.
    node_bits: u64,
    /// The datacenter id, for reporting.
    datacenter: u64,
    /// The machine id, for reporting.
    machine: u64,
    /// Last issued `(elapsed_ms << sequence_bits) | sequence`. Starts at 0, so
    /// ID 0 (and sequence 0 of the epoch's first ms) is never issued: callers
    /// may use 0 as "no ID".
    state: AtomicU64,
    /// Where time comes from.
    clock: C,
    /// See [`GeneratorConfig::backward_wait_ms_max`].
    backward_wait_ms_max: u64,
    /// When the machine id is leased: checked before every issue so a lost
    /// lease stops the generator instead of colliding with the new owner.
    lease: Option<Lease>,
}

impl Generator<SystemClock> {
    /// A generator on the system clock.
    pub fn new(config: &GeneratorConfig) -> Result<Self, GenerateError> {
        Self::with_clock(config, SystemClock)
    }
}

impl<C: Clock> Generator<C> {
    /// A generator reading time from `clock`.
    pub fn with_clock(config: &GeneratorConfig, clock: C) -> Result<Self, GenerateError> {
        let layout = config.layout;
        // Checks both ids fit their sections.
        layout.encode(Parts {
            elapsed_ms: 0,
            datacenter: config.datacenter,
            machine: config.machine,
            sequence: 0,
        })?;
        Ok(Generator {
            layout,
            epoch_ms: config.epoch_ms,
            node_bits: layout.node_bits(config.datacenter, config.machine),
            datacenter: config.datacenter,
            machine: config.machine,
            state: AtomicU64::new(0),
            clock,
            backward_wait_ms_max: config.backward_wait_ms_max,
            lease: None,
        })
    }

    /// A generator whose datacenter and machine ids come from `lease` (the
    /// config's `datacenter` and `machine` are ignored).
    pub fn with_lease(
        config: &GeneratorConfig,
        clock: C,
        lease: Lease,
    ) -> Result<Self, GenerateError> {
        let leased = GeneratorConfig {
            datacenter: lease.datacenter(),
            machine: lease.machine(),
            ..config.clone()
        };
        let mut generator = Self::with_clock(&leased, clock)?;
        generator.lease = Some(lease);
        Ok(generator)
    }

    /// The next ID: strictly greater than every ID this generator issued.
    pub fn next_id(&self) -> Result<u64, GenerateError> {
        let (first, count) = self.reserve(1)?;
        debug_assert_eq!(count, 1);
        Ok(self.layout.id_from_state(first, self.node_bits))
    }

    /// Appends `count` IDs to `out`, increasing. Takes whole runs of sequence
    /// numbers per compare-exchange, so a batch costs one atomic per
    /// millisecond rather than one per ID. On error, `out` keeps the IDs
    /// issued before it (they are valid and unique).
    pub fn next_ids(&self, count: usize, out: &mut Vec<u64>) -> Result<(), GenerateError> {
        out.reserve(count);
        let mut remaining = count as u64;
        while remaining > 0 {
            let (first, got) = self.reserve(remaining)?;
            debug_assert!(got >= 1 && got <= remaining);
            out.extend((first..first + got).map(|s| self.layout.id_from_state(s, self.node_bits)));
            remaining -= got;
        }
        Ok(())
    }

    /// Reserves up to `want` consecutive sequence numbers in one millisecond;
    /// returns the first state word and how many were reserved (>= 1).
    fn reserve(&self, want: u64) -> Result<(u64, u64), GenerateError> {
        debug_assert!(want >= 1);
        if let Some(lease) = &self.lease {
            lease.check()?;
        }
        let sequence_bits = self.layout.sequence_bits();
        let sequence_max = self.layout.sequence_max();
        loop {
            // Load before reading the clock: see the module docs.
            let current = self.state.load(Ordering::Acquire);
            let elapsed_ms = self.elapsed_ms(self.clock.now_ms())?;
            let last_ms = current >> sequence_bits;
            let last_sequence = current & sequence_max;
            let (first, count) = if elapsed_ms > last_ms {
                (elapsed_ms << sequence_bits, want.min(sequence_max + 1))
            } else if elapsed_ms == last_ms && last_sequence < sequence_max {
                (current + 1, want.min(sequence_max - last_sequence))
            } else if elapsed_ms == last_ms {
                // All sequence numbers of this millisecond are used.
                self.clock.wait_until(self.epoch_ms + last_ms + 1);
                continue;
            } else {
                let behind_ms = last_ms - elapsed_ms;
                if behind_ms > self.backward_wait_ms_max {
                    return Err(GenerateError::ClockMovedBackwards {
                        behind_ms,
                        max_ms: self.backward_wait_ms_max,
                    });
                }
                self.clock.wait_until(self.epoch_ms + last_ms);
                continue;
            };
            let last = first + count - 1;
            debug_assert!(last > current, "state must only grow");
            if self
                .state
                .compare_exchange_weak(current, last, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok((first, count));
            }
        }
    }

    /// Ms since the epoch, or why the clock reading is unusable.
    fn elapsed_ms(&self, now_ms: u64) -> Result<u64, GenerateError> {
        let elapsed_ms =
            now_ms
                .checked_sub(self.epoch_ms)
                .ok_or(GenerateError::ClockBeforeEpoch {
                    now_ms,
                    epoch_ms: self.epoch_ms,
                })?;
        if elapsed_ms > self.layout.timestamp_max() {
            return Err(GenerateError::TimestampExhausted {
                elapsed_ms,
                bits: self.layout.timestamp_bits(),
            });
        }
        Ok(elapsed_ms)
    }

    /// The section widths.
    pub fn layout(&self) -> Layout {
        self.layout
    }
    /// Timestamp 0 in Unix ms.
    pub fn epoch_ms(&self) -> u64 {
        self.epoch_ms
    }
    /// This generator's datacenter id.
    pub fn datacenter(&self) -> u64 {
        self.datacenter
    }
    /// This generator's machine id (leased or configured).
    pub fn machine(&self) -> u64 {
        self.machine
    }
    /// The clock, e.g. to move a [`crate::ManualClock`] in tests.
    pub fn clock(&self) -> &C {
        &self.clock
    }
    /// The lease holding the machine id, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }
}

#[cfg(test)]
#[path = "snowflake_tests.rs"]
mod tests;
