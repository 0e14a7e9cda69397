//! The bit layout of an ID: how many bits each section gets.
//!
//! The book's snowflake splits 64 bits into sign (1, always 0 so the ID is a
//! positive `i64` in every language), timestamp (41), datacenter (5), machine
//! (5) and sequence (12). The notes' wrap-up asks to "optimize each section's
//! length": a low-concurrency, long-lived system trades sequence bits for
//! timestamp bits; a system with many workers trades timestamp for machine
//! bits. This module makes that a value ([`Layout`]) instead of constants, checks
//! it once ([`Layout::new`]), and packs/unpacks [`Parts`] with plain shifts.
//!
//! From most to least significant bit: `0 | timestamp | datacenter | machine |
//! sequence`. Timestamp first is what makes IDs sort by time.

use serde::{Deserialize, Serialize};

/// Fewest timestamp bits we accept: 2^30 ms is 12.4 days of IDs. Anything
/// shorter wraps so fast it is surely a typo, not a design.
pub const TIMESTAMP_BITS_MIN: u8 = 30;

/// Bits available below the sign bit.
pub const PAYLOAD_BITS: u8 = 63;

/// Why a layout or a field value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The sections do not add up to the 63 bits below the sign bit.
    #[error(
        "bit layout {timestamp}+{datacenter}+{machine}+{sequence} = {sum} bits, \
         but the sections must add up to exactly 63 (64 minus the sign bit)"
    )]
    WrongSum {
        /// Timestamp bits asked for.
        timestamp: u8,
        /// Datacenter bits asked for.
        datacenter: u8,
        /// Machine bits asked for.
        machine: u8,
        /// Sequence bits asked for.
        sequence: u8,
        /// Their sum.
        sum: u32,
    },
    /// Too few timestamp bits: IDs would wrap within days.
    #[error("timestamp needs at least {TIMESTAMP_BITS_MIN} bits (12 days of IDs), got {0}")]
    TimestampTooShort(u8),
    /// A sequence of 0 bits allows one ID per millisecond; refuse it as a typo.
    #[error("sequence needs at least 1 bit, got 0")]
    NoSequence,
    /// A field value does not fit its section.
    #[error(
        "{field} {value} does not fit in {bits} bits (max {max}); pick a smaller value or widen the section"
    )]
    FieldTooLarge {
        /// Which section.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The section's width.
        bits: u8,
        /// The largest value that fits.
        max: u64,
    },
    /// The ID has the sign bit set, so no generator made it.
    #[error(
        "ID {0} has the sign bit set (it is negative as an i64); no snowflake generator makes such IDs"
    )]
    SignBitSet(u64),
}

/// Widths of the four sections; they always sum to 63 once built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawLayout", into = "RawLayout")]
pub struct Layout {
    /// Milliseconds since the epoch: 41 bits last 69.7 years.
    timestamp_bits: u8,
    /// Datacenter id: 5 bits = 32 datacenters.
    datacenter_bits: u8,
    /// Machine id within the datacenter: 5 bits = 32 machines each.
    machine_bits: u8,
    /// Per-millisecond counter: 12 bits = 4,096 IDs per ms per generator.
    sequence_bits: u8,
}

/// The unchecked form serde reads; [`Layout`] is built from it via [`Layout::new`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    timestamp_bits: u8,
    datacenter_bits: u8,
    machine_bits: u8,
    sequence_bits: u8,
}

impl TryFrom<RawLayout> for Layout {
    type Error = LayoutError;
    fn try_from(raw: RawLayout) -> Result<Self, LayoutError> {
        Layout::new(
            raw.timestamp_bits,
            raw.datacenter_bits,
            raw.machine_bits,
            raw.sequence_bits,
        )
    }
}

impl From<Layout> for RawLayout {
    fn from(l: Layout) -> Self {
        RawLayout {
            timestamp_bits: l.timestamp_bits,
            datacenter_bits: l.datacenter_bits,
            machine_bits: l.machine_bits,
            sequence_bits: l.sequence_bits,
        }
    }
}

impl Default for Layout {
    /// Twitter's layout, the book's: 41 + 5 + 5 + 12.
    fn default() -> Self {
        Self::TWITTER
    }
}

/// The sections of one ID, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parts {
    /// Milliseconds since the generator's epoch (not since 1970).
    pub elapsed_ms: u64,
    /// Datacenter id.
    pub datacenter: u64,
    /// Machine id.
    pub machine: u64,
    /// Position within the millisecond.
    pub sequence: u64,
}

impl Layout {
    /// The book's layout: 41 timestamp, 5 datacenter, 5 machine, 12 sequence bits.
    pub const TWITTER: Layout = Layout {
        timestamp_bits: 41,
        datacenter_bits: 5,
        machine_bits: 5,
        sequence_bits: 12,
    };

    /// Checks and builds a layout. The widths must sum to 63.
    pub fn new(
        timestamp_bits: u8,
        datacenter_bits: u8,
        machine_bits: u8,
        sequence_bits: u8,
    ) -> Result<Self, LayoutError> {
        let sum = u32::from(timestamp_bits)
            + u32::from(datacenter_bits)
            + u32::from(machine_bits)
            + u32::from(sequence_bits);
        if sum != u32::from(PAYLOAD_BITS) {
            return Err(LayoutError::WrongSum {
                timestamp: timestamp_bits,
                datacenter: datacenter_bits,
                machine: machine_bits,
                sequence: sequence_bits,
                sum,
            });
        }
        if timestamp_bits < TIMESTAMP_BITS_MIN {
            return Err(LayoutError::TimestampTooShort(timestamp_bits));
        }
        if sequence_bits == 0 {
            return Err(LayoutError::NoSequence);
        }
        Ok(Layout {
            timestamp_bits,
            datacenter_bits,
            machine_bits,
            sequence_bits,
        })
    }

    /// Parses `"41,5,5,12"` (timestamp, datacenter, machine, sequence).
    pub fn parse(text: &str) -> Result<Self, String> {
        let widths: Vec<u8> = text
            .split(',')
            .map(|w| w.trim().parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("layout {text:?}: {e}; expected four numbers like 41,5,5,12"))?;
        match widths[..] {
            [t, d, m, s] => Layout::new(t, d, m, s).map_err(|e| e.to_string()),
            _ => Err(format!(
                "layout {text:?} has {} numbers; expected four: timestamp,datacenter,machine,sequence",
                widths.len()
            )),
        }
    }

    /// Timestamp width.
    pub fn timestamp_bits(&self) -> u8 {
        self.timestamp_bits
    }
    /// Datacenter width.
    pub fn datacenter_bits(&self) -> u8 {
        self.datacenter_bits
    }
    /// Machine width.
    pub fn machine_bits(&self) -> u8 {
        self.machine_bits
    }
    /// Sequence width.
    pub fn sequence_bits(&self) -> u8 {
        self.sequence_bits
    }

    /// Largest elapsed-ms value; one more and the generator has run out of time.
    pub fn timestamp_max(&self) -> u64 {
        mask(self.timestamp_bits)
    }
    /// Largest datacenter id.
    pub fn datacenter_max(&self) -> u64 {
        mask(self.datacenter_bits)
    }
    /// Largest machine id.
    pub fn machine_max(&self) -> u64 {
        mask(self.machine_bits)
    }
    /// Largest sequence number: IDs per millisecond minus one.
    pub fn sequence_max(&self) -> u64 {
        mask(self.sequence_bits)
    }

    /// How long the timestamp lasts from the epoch, in years of 365.25 days.
    pub fn lifetime_years(&self) -> f64 {
        (self.timestamp_max() as f64 + 1.0) / (365.25 * 24.0 * 3600.0 * 1000.0)
    }

    fn machine_shift(&self) -> u8 {
        self.sequence_bits
    }
    fn datacenter_shift(&self) -> u8 {
        self.sequence_bits + self.machine_bits
    }
    fn timestamp_shift(&self) -> u8 {
        self.sequence_bits + self.machine_bits + self.datacenter_bits
    }

    /// Packs parts into an ID, refusing any value wider than its section.
    pub fn encode(&self, parts: Parts) -> Result<u64, LayoutError> {
        check("timestamp", parts.elapsed_ms, self.timestamp_bits)?;
        check("datacenter", parts.datacenter, self.datacenter_bits)?;
        check("machine", parts.machine, self.machine_bits)?;
        check("sequence", parts.sequence, self.sequence_bits)?;
        Ok(self.node_bits(parts.datacenter, parts.machine)
            | (parts.elapsed_ms << self.timestamp_shift())
            | parts.sequence)
    }

    /// Splits an ID into its parts. Refuses IDs with the sign bit set.
    pub fn decode(&self, id: u64) -> Result<Parts, LayoutError> {
        if id >> PAYLOAD_BITS != 0 {
            return Err(LayoutError::SignBitSet(id));
        }
        Ok(Parts {
            elapsed_ms: id >> self.timestamp_shift(),
            datacenter: (id >> self.datacenter_shift()) & self.datacenter_max(),
            machine: (id >> self.machine_shift()) & self.machine_max(),
            sequence: id & self.sequence_max(),
        })
    }

    /// The constant middle of every ID a node makes: datacenter and machine
    /// already shifted into place, so the hot path only ORs it in.
    pub(crate) fn node_bits(&self, datacenter: u64, machine: u64) -> u64 {
        debug_assert!(datacenter <= self.datacenter_max() && machine <= self.machine_max());
        (datacenter << self.datacenter_shift()) | (machine << self.machine_shift())
    }

    /// Builds an ID from a packed `(elapsed_ms, sequence)` state word (see
    /// `snowflake`): the state is the ID with the node bits cut out.
    pub(crate) fn id_from_state(&self, state: u64, node_bits: u64) -> u64 {
        let elapsed_ms = state >> self.sequence_bits;
        let sequence = state & self.sequence_max();
        (elapsed_ms << self.timestamp_shift()) | node_bits | sequence
    }
}

/// All-ones in the low `bits` bits (`bits` <= 63 here).
fn mask(bits: u8) -> u64 {
    debug_assert!(bits <= PAYLOAD_BITS);
    (1u64 << bits) - 1
}

fn check(field: &'static str, value: u64, bits: u8) -> Result<(), LayoutError> {
    let max = mask(bits);
    if value > max {
        return Err(LayoutError::FieldTooLarge {
            field,
            value,
            bits,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any layout `Layout::new` accepts: widths summing to 63 with the minimums.
    pub(crate) fn any_layout() -> impl Strategy<Value = Layout> {
        (TIMESTAMP_BITS_MIN..=62u8)
            .prop_flat_map(|t| {
                let rest = PAYLOAD_BITS - t;
                (Just(t), 1..=rest)
            })
            .prop_flat_map(|(t, s)| {
                let rest = PAYLOAD_BITS - t - s;
                (Just(t), Just(s), 0..=rest)
            })
            .prop_map(|(t, s, d)| Layout::new(t, d, PAYLOAD_BITS - t - s - d, s).unwrap())
    }

    fn layout_and_parts() -> impl Strategy<Value = (Layout, Parts)> {
        any_layout().prop_flat_map(|l| {
            (
                Just(l),
                (
                    0..=l.timestamp_max(),
                    0..=l.datacenter_max(),
                    0..=l.machine_max(),
                    0..=l.sequence_max(),
                )
                    .prop_map(|(elapsed_ms, datacenter, machine, sequence)| {
                        Parts {
                            elapsed_ms,
                            datacenter,
                            machine,
                            sequence,
                        }
                    }),
            )
        })
    }

    proptest! {
        #[test]
        fn decode_encode_round_trips((layout, parts) in layout_and_parts()) {
            let id = layout.encode(parts).unwrap();
            prop_assert_eq!(id >> 63, 0, "sign bit must stay clear");
            prop_assert_eq!(layout.decode(id).unwrap(), parts);
        }

        #[test]
        fn encode_decode_round_trips(layout in any_layout(), id in 0..=i64::MAX as u64) {
            let parts = layout.decode(id).unwrap();
            prop_assert_eq!(layout.encode(parts).unwrap(), id);
        }

        #[test]
        fn later_timestamp_sorts_later((layout, a) in layout_and_parts(), b_seq in any::<u64>()) {
            prop_assume!(a.elapsed_ms < layout.timestamp_max());
            let b = Parts { elapsed_ms: a.elapsed_ms + 1, datacenter: 0, machine: 0,
                            sequence: b_seq & layout.sequence_max() };
            prop_assert!(layout.encode(a).unwrap() < layout.encode(b).unwrap());
        }
    }

    #[test]
    fn twitter_layout_matches_the_book() {
        let l = Layout::TWITTER;
        assert_eq!(l.sequence_max() + 1, 4096);
        assert_eq!(l.machine_max() + 1, 32);
        assert_eq!(l.datacenter_max() + 1, 32);
        assert!(
            (l.lifetime_years() - 69.7).abs() < 0.05,
            "{}",
            l.lifetime_years()
        );
        // A real tweet id (2024) decodes with Twitter's epoch to sane parts.
        let p = l.decode(1_750_000_000_000_000_000).unwrap();
        assert!(p.elapsed_ms > 400_000_000_000);
    }

    #[test]
    fn bad_layouts_are_refused_with_reasons() {
        assert!(matches!(
            Layout::new(41, 5, 5, 13),
            Err(LayoutError::WrongSum { sum: 64, .. })
        ));
        assert_eq!(
            Layout::new(29, 10, 12, 12),
            Err(LayoutError::TimestampTooShort(29))
        );
        assert_eq!(Layout::new(43, 10, 10, 0), Err(LayoutError::NoSequence));
        assert!(Layout::parse("41,5,5").is_err());
        assert!(Layout::parse("41,5,x,12").is_err());
        assert_eq!(Layout::parse(" 39, 0, 16, 8 ").unwrap().machine_bits(), 16);
        let too_big = Parts {
            elapsed_ms: 0,
            datacenter: 32,
            machine: 0,
            sequence: 0,
        };
        assert!(matches!(
            Layout::TWITTER.encode(too_big),
            Err(LayoutError::FieldTooLarge {
                field: "datacenter",
                max: 31,
                ..
            })
        ));
        assert_eq!(
            Layout::TWITTER.decode(u64::MAX),
            Err(LayoutError::SignBitSet(u64::MAX))
        );
    }

    #[test]
    fn layout_reads_from_toml_and_is_checked() {
        let ok: Layout = serde_json::from_str(
            r#"{"timestamp_bits":39,"datacenter_bits":0,"machine_bits":16,"sequence_bits":8}"#,
        )
        .unwrap();
        assert_eq!(ok.sequence_max(), 255);
        let bad = serde_json::from_str::<Layout>(
            r#"{"timestamp_bits":41,"datacenter_bits":5,"machine_bits":5,"sequence_bits":5}"#,
        );
        assert!(bad.unwrap_err().to_string().contains("exactly 63"));
    }
}
