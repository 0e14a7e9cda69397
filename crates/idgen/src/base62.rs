//! Base-62 text for IDs: the URL shortener's short codes.
//!
//! The URL shortener chapter turns a unique number into a short code by
//! writing it in base 62 (`0-9`, `a-z`, `A-Z`: 0 is `0`, 10 is `a`, 61 is
//! `Z`, the notes' mapping). Seven characters cover 62^7 ≈ 3.5 trillion
//! codes; a full 64-bit snowflake ID takes at most 11. Unlike hashing, the
//! mapping is a bijection, so distinct IDs give distinct codes and no
//! collision check is needed.
//!
//! Decoding accepts leading zeros (`"007"` is 7) but refuses empty input,
//! other characters and values above `u64::MAX`, naming the problem.

/// The digits, in value order.
pub const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Longest encoding of a `u64` (62^11 > 2^64 > 62^10).
pub const ENCODED_LEN_MAX: usize = 11;

/// Why a string is not a base-62 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base62Error {
    /// Nothing to decode.
    #[error("empty base-62 code")]
    Empty,
    /// A character outside `0-9a-zA-Z`.
    #[error("{character:?} at position {position} is not a base-62 digit (0-9, a-z, A-Z)")]
    BadDigit {
        /// The offending character.
        character: char,
        /// Its character index.
        position: usize,
    },
    /// More than 64 bits.
    #[error("base-62 code {0:?} is larger than the largest 64-bit number (lYGhA16ahyf)")]
    Overflow(String),
}

/// Value of each ASCII byte, or 255 if it is not a digit.
const DIGIT_VALUE: [u8; 256] = {
    let mut table = [255u8; 256];
    let mut i = 0;
    while i < 62 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// `n` in base 62, shortest form (`0` for zero).
pub fn encode(n: u64) -> String {
    let mut buf = [0u8; ENCODED_LEN_MAX];
    let start = encode_into(n, &mut buf);
    // Every byte comes from ALPHABET, which is ASCII.
    String::from_utf8_lossy(&buf[start..]).into_owned()
}

/// `n` in base 62, left-padded with `0` to at least `width` characters.
/// (Padded codes do not sort like their numbers byte-wise: with the notes'
/// alphabet `a-z` comes before `A-Z`, but ASCII puts uppercase first.)
pub fn encode_padded(n: u64, width: usize) -> String {
    let code = encode(n);
    let pad = width.saturating_sub(code.len());
    let mut padded = "0".repeat(pad);
    padded.push_str(&code);
    padded
}

/// Writes digits right-aligned into `buf`; returns where they start.
fn encode_into(mut n: u64, buf: &mut [u8; ENCODED_LEN_MAX]) -> usize {
    let mut i = ENCODED_LEN_MAX;
    loop {
        i -= 1;
        buf[i] = ALPHABET[(n % 62) as usize];
        n /= 62;
        if n == 0 {
            return i;
        }
    }
}

/// Parses a base-62 code.
pub fn decode(code: &str) -> Result<u64, Base62Error> {
    if code.is_empty() {
        return Err(Base62Error::Empty);
    }
    let mut n: u64 = 0;
    for (position, character) in code.chars().enumerate() {
        let digit = u32::from(character)
            .try_into()
            .ok()
            .map(|b: u8| DIGIT_VALUE[b as usize])
            .filter(|&d| d != 255)
            .ok_or(Base62Error::BadDigit {
                character,
                position,
            })?;
        n = n
            .checked_mul(62)
            .and_then(|n| n.checked_add(u64::from(digit)))
            .ok_or_else(|| Base62Error::Overflow(code.to_owned()))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips_any_u64(n in any::<u64>()) {
            let code = encode(n);
            prop_assert!(code.len() <= ENCODED_LEN_MAX);
            prop_assert_eq!(decode(&code).unwrap(), n);
        }

        #[test]
        fn padded_round_trips(a in any::<u64>(), width in 0usize..16) {
            let code = encode_padded(a, width);
            prop_assert!(code.len() >= width);
            prop_assert_eq!(decode(&code).unwrap(), a);
        }

        #[test]
        fn never_panics_on_text(s in ".{0,16}") {
            let _ = decode(&s);
        }
    }

    #[test]
    fn matches_the_notes_mapping() {
        assert_eq!(encode(0), "0");
        assert_eq!(encode(9), "9");
        assert_eq!(encode(10), "a");
        assert_eq!(encode(61), "Z");
        assert_eq!(encode(62), "10");
        // The book's worked example: 11157 = 2*62^2 + 55*62 + 59 = "2TX".
        assert_eq!(encode(11157), "2TX");
        assert_eq!(encode(u64::MAX), "lYGhA16ahyf");
        assert_eq!(
            62u64.pow(7),
            3_521_614_606_208,
            "7 chars ≈ 3.5 trillion codes"
        );
    }

    #[test]
    fn refuses_bad_codes() {
        assert_eq!(decode(""), Err(Base62Error::Empty));
        assert_eq!(
            decode("ab-c"),
            Err(Base62Error::BadDigit {
                character: '-',
                position: 2
            })
        );
        assert!(matches!(decode("é"), Err(Base62Error::BadDigit { .. })));
        assert!(matches!(
            decode("lYGhA16ahyg"),
            Err(Base62Error::Overflow(_))
        ));
        assert_eq!(decode("007"), Ok(7));
    }
}
