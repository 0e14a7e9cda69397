//! Object ids: what a data node hands back for a stored object.
//!
//! Why a module: the chapter's data node returns a UUID for every object it stores,
//! and the metadata service keeps that UUID in its object table. The id must be unique
//! without asking anyone (several data nodes issue ids at once, and a replica stores a
//! copy under its primary's id), and it is the key of the object-mapping table.
//!
//! The layout is UUID version 7: 48 bits of Unix milliseconds, then random bits (from
//! the workspace's `fastrand`, the time from the `clock` crate). Time first makes ids
//! of one period neighbours in the mapping table's key order, so the LSM under it
//! appends rather than scatters. With 74 random bits, two ids of the same millisecond
//! collide with a probability of about 2^-74 per pair.

use std::fmt;
use std::str::FromStr;

/// A 128-bit object id (UUID v7 layout), printed as a standard UUID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(u128);

impl ObjectId {
    /// A fresh id: the current Unix milliseconds, then random bits.
    pub fn generate() -> Self {
        Self::from_parts(clock::now_ms(), fastrand::u128(..))
    }

    /// The id with `unix_ms` (low 48 bits) in front and `random` filling the rest,
    /// with the UUID version (7) and variant bits set.
    pub fn from_parts(unix_ms: u64, random: u128) -> Self {
        let ms = u128::from(unix_ms & ((1 << 48) - 1)) << 80;
        let rand_a = (random >> 64) & 0xFFF; // 12 bits
        let rand_b = random & ((1 << 62) - 1); // 62 bits
        Self(ms | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
    }

    /// The id as 16 big-endian bytes (its on-disk form; the byte order sorts by time).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The id from its 16-byte form.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }

    /// The Unix milliseconds in the id (for ids made by [`ObjectId::generate`]).
    pub fn unix_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        let hex = |r: std::ops::Range<usize>| -> String {
            b[r].iter().map(|x| format!("{x:02x}")).collect()
        };
        write!(
            f,
            "{}-{}-{}-{}-{}",
            hex(0..4),
            hex(4..6),
            hex(6..8),
            hex(8..10),
            hex(10..16)
        )
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// Why a string is not an object id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an object id (want 32 hex digits, dashes allowed as in a UUID): {0:?}")]
pub struct ParseIdError(String);

impl FromStr for ObjectId {
    type Err = ParseIdError;

    /// Parses the UUID form (`8-4-4-4-12` hex digits) or 32 bare hex digits.
    fn from_str(s: &str) -> Result<Self, ParseIdError> {
        let bad = || ParseIdError(s.chars().take(64).collect());
        if s.len() > 36 {
            return Err(bad());
        }
        let digits: String = s.chars().filter(|&c| c != '-').collect();
        let dashes = s.len() - digits.len();
        if digits.len() != 32
            || !digits.bytes().all(|c| c.is_ascii_hexdigit())
            || !(dashes == 0 || dashes == 4)
        {
            return Err(bad());
        }
        if dashes == 4 && [8, 13, 18, 23].iter().any(|&i| s.as_bytes()[i] != b'-') {
            return Err(bad());
        }
        u128::from_str_radix(&digits, 16)
            .map(Self)
            .map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_are_uuid_v7_and_time_ordered() {
        let a = ObjectId::from_parts(1_700_000_000_000, u128::MAX);
        let b = ObjectId::from_parts(1_700_000_000_001, 0);
        assert!(
            a < b,
            "a later millisecond sorts after, whatever the random bits"
        );
        let s = a.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "7", "version nibble");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "variant bits");
        assert_eq!(a.unix_ms(), 1_700_000_000_000);
        let now = ObjectId::generate();
        assert!(now.unix_ms() >= 1_700_000_000_000);
        assert_ne!(now, ObjectId::generate());
    }

    #[test]
    fn parses_only_well_formed_ids() {
        let id = ObjectId::generate();
        assert_eq!(id.to_string().parse::<ObjectId>(), Ok(id));
        assert_eq!(id.to_string().replace('-', "").parse::<ObjectId>(), Ok(id));
        for bad in [
            "",
            "xyz",
            "0123456789abcdef0123456789abcdef0",
            "01234567-89ab-cdef-0123-456789abcdeg",
            "0123456789ab-cdef-0123-456789abcdef",
            "-01234567-89ab-cdef-0123-456789abcde",
            "+123456789abcdef0123456789abcdef",
        ] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn display_parse_and_bytes_round_trip(ms: u64, r: u128) {
            let id = ObjectId::from_parts(ms, r);
            prop_assert_eq!(id.to_string().parse::<ObjectId>(), Ok(id));
            prop_assert_eq!(ObjectId::from_bytes(id.to_bytes()), id);
        }
    }
}
