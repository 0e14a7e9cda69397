//! Human units in and out: `300M` users, `1MB` objects, `54.75 PB`.
//!
//! Estimation is done in round numbers with unit suffixes, so both the
//! parsers (for the command line) and the printers speak them. Sizes are
//! **decimal** (1 KB = 1,000 bytes, 1 PB = 10^15), as the notes and the book
//! compute (`0.1KB × 10억 = 100GB`); binary `KiB`..`PiB` are accepted on
//! input for people who think in them. Counts use K, M, B (billion), T.

use crate::error::ParseError;

const COUNT_UNITS: [(&str, f64); 4] = [("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)];
const BYTE_UNITS: [(&str, f64); 6] = [
    ("EB", 1e18),
    ("PB", 1e15),
    ("TB", 1e12),
    ("GB", 1e9),
    ("MB", 1e6),
    ("KB", 1e3),
];
const BINARY_BYTE_UNITS: [(&str, f64); 5] = [
    ("KIB", 1024.0),
    ("MIB", 1_048_576.0),
    ("GIB", 1_073_741_824.0),
    ("TIB", 1_099_511_627_776.0),
    ("PIB", 1_125_899_906_842_624.0),
];

/// A scaled value with at most two decimals, trailing zeros dropped:
/// `3.47`, `30`, `54.75`. Values of 100 and more get no decimals.
fn trimmed(value: f64) -> String {
    if value.abs() >= 100.0 {
        return format!("{value:.0}");
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A count with a K/M/B/T suffix: `3.47K`, `150M`, `365B`.
pub fn count(value: f64) -> String {
    for (suffix, scale) in COUNT_UNITS {
        if value.abs() >= scale {
            return format!("{}{suffix}", trimmed(value / scale));
        }
    }
    trimmed(value)
}

/// A byte size in decimal units: `30 TB`, `54.75 PB`, `400 MB`.
pub fn bytes(value: f64) -> String {
    for (unit, scale) in BYTE_UNITS {
        if value.abs() >= scale {
            return format!("{} {unit}", trimmed(value / scale));
        }
    }
    format!("{} B", trimmed(value))
}

/// A number in full with thousands separators, rounded to an integer from
/// 100 up (`3,472`, `86,400`), with up to two decimals below (`2.5`).
pub fn exact(value: f64) -> String {
    if value.abs() < 100.0 {
        return trimmed(value);
    }
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0.0 {
        grouped.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Splits `text` into its longest numeric prefix and a unit suffix, parsing
/// the number (separators `_` and `,` allowed, scientific notation allowed:
/// `1e8` is a number, `1EB` is one exabyte).
fn split_number(text: &str) -> Result<(f64, String), ParseError> {
    const TEXT_LEN_MAX: usize = 64;
    let text = text.trim();
    if text.len() > TEXT_LEN_MAX {
        return Err(ParseError::OutOfRange {
            text: text.chars().take(TEXT_LEN_MAX).collect(),
            expected: "a value of at most 64 characters",
        });
    }
    let parse = |prefix: &str| {
        let cleaned: String = prefix.chars().filter(|c| !matches!(c, '_' | ',')).collect();
        cleaned.parse::<f64>().ok()
    };
    let (value, unit) = (1..=text.len())
        .rev()
        .filter(|&end| text.is_char_boundary(end))
        .find_map(|end| parse(&text[..end]).map(|value| (value, &text[end..])))
        .ok_or_else(|| ParseError::NotANumber {
            text: text.to_owned(),
        })?;
    if !value.is_finite() || value < 0.0 {
        return Err(ParseError::OutOfRange {
            text: text.to_owned(),
            expected: "a finite number of 0 or more",
        });
    }
    Ok((value, unit.trim().to_ascii_uppercase()))
}

/// Parses a count: `300M`, `1.5e8`, `100_000`, `10K`, `1B` (billion).
pub fn parse_count(text: &str) -> Result<f64, ParseError> {
    let (value, unit) = split_number(text)?;
    if unit.is_empty() {
        return Ok(value);
    }
    COUNT_UNITS
        .iter()
        .find(|(suffix, _)| *suffix == unit)
        .map(|(_, scale)| value * scale)
        .ok_or_else(|| ParseError::UnknownUnit {
            text: text.to_owned(),
            expected: "K, M, B (billion) or T",
        })
}

/// Parses a size: `100` or `100B` bytes, `0.1KB`, `500 KB`, `1MB`, `2GiB`.
pub fn parse_bytes(text: &str) -> Result<f64, ParseError> {
    let (value, unit) = split_number(text)?;
    if unit.is_empty() || unit == "B" {
        return Ok(value);
    }
    BYTE_UNITS
        .iter()
        .chain(BINARY_BYTE_UNITS.iter())
        .find(|(name, _)| *name == unit)
        .map(|(_, scale)| value * scale)
        .ok_or_else(|| ParseError::UnknownUnit {
            text: text.to_owned(),
            expected: "B, KB, MB, GB, TB, PB (decimal) or KiB..PiB",
        })
}

/// Parses a share of a whole: `50%` or `0.5`, between 0 and 1.
pub fn parse_share(text: &str) -> Result<f64, ParseError> {
    let (value, unit) = split_number(text)?;
    let share = match unit.as_str() {
        "%" => value / 100.0,
        "" => value,
        _ => {
            return Err(ParseError::UnknownUnit {
                text: text.to_owned(),
                expected: "a percentage like 50% or a fraction like 0.5",
            });
        }
    };
    if share > 1.0 {
        return Err(ParseError::OutOfRange {
            text: text.to_owned(),
            expected: "a share between 0% and 100%",
        });
    }
    Ok(share)
}

/// Parses a read:write ratio, `10:1` or `10` (reads per write).
pub fn parse_ratio(text: &str) -> Result<f64, ParseError> {
    let Some((reads, writes)) = text.split_once(':') else {
        return parse_count(text);
    };
    let (reads, writes) = (parse_count(reads)?, parse_count(writes)?);
    if writes == 0.0 {
        return Err(ParseError::OutOfRange {
            text: text.to_owned(),
            expected: "a ratio with a non-zero write side, like 10:1",
        });
    }
    Ok(reads / writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_counts_bytes_and_exact_numbers() {
        assert_eq!(count(3_472.2), "3.47K");
        assert_eq!(count(150e6), "150M");
        assert_eq!(count(365e9), "365B");
        assert_eq!(count(7.0), "7");
        assert_eq!(bytes(30e12), "30 TB");
        assert_eq!(bytes(54.75e15), "54.75 PB");
        assert_eq!(bytes(4e8), "400 MB");
        assert_eq!(bytes(100.0), "100 B");
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(exact(3_472.22), "3,472");
        assert_eq!(exact(86_400.0), "86,400");
        assert_eq!(exact(1_157.4), "1,157");
        assert_eq!(exact(123_456_789.0), "123,456,789");
        assert_eq!(exact(2.5), "2.5");
        assert_eq!(exact(100.0), "100");
    }

    #[test]
    fn parses_human_input() {
        assert_eq!(parse_count("300M").unwrap(), 300e6);
        assert_eq!(parse_count("1.5e8").unwrap(), 1.5e8);
        assert_eq!(parse_count("100_000").unwrap(), 1e5);
        assert_eq!(parse_count("1,000").unwrap(), 1e3);
        assert_eq!(parse_count("1b").unwrap(), 1e9);
        assert_eq!(parse_bytes("0.1KB").unwrap(), 100.0);
        assert_eq!(parse_bytes("500 KB").unwrap(), 500e3);
        assert_eq!(parse_bytes("1MB").unwrap(), 1e6);
        assert_eq!(parse_bytes("20").unwrap(), 20.0);
        assert_eq!(parse_bytes("1KiB").unwrap(), 1024.0);
        assert_eq!(parse_share("50%").unwrap(), 0.5);
        assert_eq!(parse_share("0.1").unwrap(), 0.1);
        assert_eq!(parse_ratio("10:1").unwrap(), 10.0);
        assert_eq!(parse_ratio("4").unwrap(), 4.0);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert!(matches!(
            parse_count("abc"),
            Err(ParseError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_count("5X"),
            Err(ParseError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_count("-5"),
            Err(ParseError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_count("inf"),
            Err(ParseError::NotANumber { .. } | ParseError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_share("150%"),
            Err(ParseError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_ratio("10:0"),
            Err(ParseError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_bytes("5 parsecs"),
            Err(ParseError::UnknownUnit { .. })
        ));
        assert!(parse_bytes("").is_err());
    }
}
