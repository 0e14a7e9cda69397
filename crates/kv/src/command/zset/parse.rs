//! Reading scores and ranges the way Redis reads them.
//!
//! Redis parses every score with C's `strtod`, and two callers check its
//! result differently: a score to store (`ZADD`, `WEIGHTS`, GEO
//! coordinates) must be the whole argument, finite or `inf`, neither out of
//! range nor NaN (`getDoubleFromObject`); a range bound (`ZRANGEBYSCORE`)
//! may start with `(` for "exclusive", may have leading blanks and may even
//! be empty (`strtod("")` is 0), and overflow quietly becomes `inf`
//! (`zslParseRange`). [`strtod`] is C's parser, so both rules are exactly
//! Redis's, hexadecimal floats and `infinity` included.

use std::ops::Bound;

use bytes::Bytes;

use super::store::{MEMBERS, SCORES, score_prefix};
use crate::engine::prefix_end;
use crate::protocol::Frame;

/// `ERR value is not a valid float`.
pub(in crate::command) fn not_float() -> Frame {
    Frame::error("ERR value is not a valid float")
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What C's `strtod` reads from the start of `text`: the value, how many
/// bytes it consumed (0 if none form a number) and whether the value was
/// out of range (`ERANGE`: overflow to infinity or underflow to zero).
pub(in crate::command) fn strtod(text: &[u8]) -> (f64, usize, bool) {
    let mut i = text.iter().take_while(|&&b| is_space(b)).count();
    let negative = match text.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let signed = |v: f64| if negative { -v } else { v };
    let rest = &text[i..];
    let starts =
        |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
    if starts(b"infinity") {
        return (signed(f64::INFINITY), i + 8, false);
    }
    if starts(b"inf") {
        return (signed(f64::INFINITY), i + 3, false);
    }
    if starts(b"nan") {
        let mut end = i + 3;
        if text.get(end) == Some(&b'(')
            && let Some(close) = text[end..].iter().position(|&b| b == b')')
            && text[end + 1..end + close]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            end += close + 1;
        }
        return (f64::NAN, end, false);
    }
    if (starts(b"0x") || starts(b"0X"))
        && let Some((value, used)) = hex_float(&rest[2..])
    {
        return (signed(value), i + 2 + used, false);
    }
    // Decimal: digits, an optional point and digits, an optional exponent.
    let digits = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let int_digits = digits(0);
    let mut end = int_digits;
    let mut frac_digits = 0;
    if rest.get(end) == Some(&b'.') {
        frac_digits = digits(end + 1);
        if int_digits + frac_digits > 0 {
            end += 1 + frac_digits;
        }
    }
    if int_digits + frac_digits == 0 {
        return (0.0, 0, false);
    }
    let mantissa_end = end;
    if matches!(rest.get(end), Some(b'e' | b'E')) {
        let mut e = end + 1;
        if matches!(rest.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let exp_digits = digits(e);
        if exp_digits > 0 {
            end = e + exp_digits;
        }
    }
    let number = std::str::from_utf8(&rest[..end]).unwrap_or("0");
    let value: f64 = number.parse().unwrap_or(0.0);
    let nonzero = rest[..mantissa_end]
        .iter()
        .any(|b| (b'1'..=b'9').contains(b));
    let erange = value.is_infinite() || (value == 0.0 && nonzero);
    (signed(value), i + end, erange)
}

/// The part of a hexadecimal float after `0x`: value and bytes used, or
/// `None` if no hex digit follows (then `strtod` reads just the `0`).
fn hex_float(text: &[u8]) -> Option<(f64, usize)> {
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut seen = false;
    let mut i = 0;
    let mut sticky = false;
    let mut point = false;
    while i < text.len() {
        let b = text[i];
        if b == b'.' && !point {
            point = true;
            i += 1;
            continue;
        }
        let Some(d) = (b as char).to_digit(16) else {
            break;
        };
        seen = true;
        if mantissa >> 60 == 0 {
            mantissa = mantissa << 4 | u64::from(d);
            if point {
                exponent -= 4;
            }
        } else {
            sticky |= d != 0;
            if !point {
                exponent += 4;
            }
        }
        i += 1;
    }
    if !seen {
        return None;
    }
    if matches!(text.get(i), Some(b'p' | b'P')) {
        let mut e = i + 1;
        let negative = text.get(e) == Some(&b'-');
        if matches!(text.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let n = text[e..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n > 0 {
            let mut value: i64 = 0;
            for b in &text[e..e + n] {
                value = (value * 10 + i64::from(b - b'0')).min(1 << 20);
            }
            exponent += if negative { -value } else { value };
            i = e + n;
        }
    }
    let m = (mantissa | u64::from(sticky)) as f64;
    let exponent = exponent.clamp(-2200, 2200) as i32;
    // Scale in two steps so neither factor overflows on its own.
    let half = exponent / 2;
    Some((m * 2f64.powi(half) * 2f64.powi(exponent - half), i))
}

/// A score argument to store (`ZADD`, `ZINCRBY`, `WEIGHTS`), checked as
/// Redis's `getDoubleFromObject` checks it.
pub(in crate::command) fn score_arg(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || is_space(arg[0]) {
        return None;
    }
    let (value, used, erange) = strtod(arg);
    if used != arg.len() || value.is_nan() || (erange && (value.is_infinite() || value == 0.0)) {
        return None;
    }
    Some(value)
}

/// The text of an argument as C sees it (up to the first NUL).
fn c_str(arg: &[u8]) -> &[u8] {
    arg.iter().position(|&b| b == 0).map_or(arg, |n| &arg[..n])
}

/// One end of a score range (see [`ScoreRange`]).
#[derive(Debug, Clone, Copy)]
pub(in crate::command) struct ScoreBound {
    /// The score (never NaN; `-0` is read as `0`, as stored scores are).
    pub value: f64,
    /// Whether the bound itself is left out (`(`).
    pub exclusive: bool,
}

fn score_bound(arg: &[u8]) -> Option<ScoreBound> {
    let text = c_str(arg);
    let (text, exclusive) = match text.first() {
        Some(b'(') => (&text[1..], true),
        _ => (text, false),
    };
    let (value, used, _) = strtod(text);
    if used != text.len() || value.is_nan() {
        return None;
    }
    Some(ScoreBound {
        value: value + 0.0,
        exclusive,
    })
}

/// A `min max` score range, as `ZRANGEBYSCORE` reads it.
#[derive(Debug, Clone, Copy)]
pub(in crate::command) struct ScoreRange {
    /// The low end.
    pub min: ScoreBound,
    /// The high end.
    pub max: ScoreBound,
}

impl ScoreRange {
    /// Parses `min` and `max`; Redis's error if either is not a bound.
    pub fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Frame> {
        match (score_bound(min), score_bound(max)) {
            (Some(min), Some(max)) => Ok(ScoreRange { min, max }),
            _ => Err(Frame::error("ERR min or max is not a float")),
        }
    }

    /// The range as bounds over the score index's subkeys.
    pub fn subkeys(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let min = score_prefix(self.min.value);
        let max = score_prefix(self.max.value);
        let after = |p: &[u8]| prefix_end(p).unwrap_or_else(|| vec![SCORES + 1]);
        let lower = if self.min.exclusive {
            Bound::Included(after(&min))
        } else {
            Bound::Included(min.to_vec())
        };
        let upper = if self.max.exclusive {
            Bound::Excluded(max.to_vec())
        } else {
            Bound::Excluded(after(&max))
        };
        (lower, upper)
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::command) enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[member`.
    Included(Bytes),
    /// `(member`.
    Excluded(Bytes),
}

fn lex_bound(arg: &Bytes) -> Option<LexBound> {
    let alone = arg.len() == 1 || arg.get(1) == Some(&0);
    match arg.first() {
        Some(b'+') if alone => Some(LexBound::Max),
        Some(b'-') if alone => Some(LexBound::Min),
        Some(b'[') => Some(LexBound::Included(arg.slice(1..))),
        Some(b'(') => Some(LexBound::Excluded(arg.slice(1..))),
        _ => None,
    }
}

/// A `min max` lex range, as `ZRANGEBYLEX` reads it.
#[derive(Debug, Clone)]
pub(in crate::command) struct LexRange {
    /// The low end.
    pub min: LexBound,
    /// The high end.
    pub max: LexBound,
}

impl LexRange {
    /// Parses `min` and `max`; Redis's error if either is not a bound.
    pub fn parse(min: &Bytes, max: &Bytes) -> Result<LexRange, Frame> {
        match (lex_bound(min), lex_bound(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(Frame::error("ERR min or max not valid string range item")),
        }
    }

    /// The range as bounds over the member namespace's subkeys.
    pub fn subkeys(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let key = |m: &[u8]| [&[MEMBERS][..], m].concat();
        let bound = |b: &LexBound| match b {
            LexBound::Min => Bound::Included(vec![MEMBERS]),
            LexBound::Max => Bound::Excluded(vec![MEMBERS + 1]),
            LexBound::Included(m) => Bound::Included(key(m)),
            LexBound::Excluded(m) => Bound::Excluded(key(m)),
        };
        // `-` as a max and `+` as a min select nothing, as in Redis.
        let lower = match &self.min {
            LexBound::Max => Bound::Excluded(vec![MEMBERS + 1]),
            other => bound(other),
        };
        let upper = match &self.max {
            LexBound::Min => Bound::Excluded(vec![MEMBERS]),
            other => bound(other),
        };
        (lower, upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_reads_what_c_reads() {
        let cases: &[(&str, f64, usize)] = &[
            ("1.5", 1.5, 3),
            ("  -2", -2.0, 4),
            ("+inf", f64::INFINITY, 4),
            ("-Infinity", f64::NEG_INFINITY, 9),
            ("1e3x", 1000.0, 3),
            ("1e", 1.0, 1),
            ("1e+", 1.0, 1),
            (".5", 0.5, 2),
            ("5.", 5.0, 2),
            (".", 0.0, 0),
            ("", 0.0, 0),
            ("abc", 0.0, 0),
            ("0x10", 16.0, 4),
            ("0x1p-2", 0.25, 6),
            ("0x", 0.0, 1),
            ("0xg", 0.0, 1),
        ];
        for &(text, value, used) in cases {
            let (v, u, _) = strtod(text.as_bytes());
            assert_eq!((v, u), (value, used), "{text:?}");
        }
        assert!(strtod(b"nan").0.is_nan());
        assert!(strtod(b"1e400").2, "overflow is ERANGE");
        assert!(strtod(b"1e-400").2, "underflow to zero is ERANGE");
        assert!(!strtod(b"0e-400").2, "zero is not an underflow");
    }

    #[test]
    fn stored_scores_are_checked_like_redis() {
        assert_eq!(score_arg(b"1.5"), Some(1.5));
        assert_eq!(score_arg(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(score_arg(b"1e-310"), Some(1e-310), "a subnormal is kept");
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1e400",
            b"1e-400",
            b"1\0",
            b"x",
        ] {
            assert_eq!(score_arg(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn range_bounds_follow_zslparserange() {
        let r = ScoreRange::parse(b"(1", b"+inf").unwrap();
        assert!(r.min.exclusive && !r.max.exclusive);
        assert_eq!((r.min.value, r.max.value), (1.0, f64::INFINITY));
        // strtod("") is 0 and "(" alone is an exclusive 0, as in Redis.
        assert_eq!(ScoreRange::parse(b"", b"(").unwrap().max.value, 0.0);
        assert!(ScoreRange::parse(b" 1", b"2").is_ok());
        assert!(ScoreRange::parse(b"1 ", b"2").is_err());
        assert!(ScoreRange::parse(b"nan", b"2").is_err());
        assert!(ScoreRange::parse(b"1", b"x").is_err());
        let lex = LexRange::parse(&Bytes::from("[a"), &Bytes::from("+")).unwrap();
        assert_eq!(lex.min, LexBound::Included(Bytes::from("a")));
        assert!(LexRange::parse(&Bytes::from("a"), &Bytes::from("+")).is_err());
        assert!(LexRange::parse(&Bytes::from("-"), &Bytes::from("+x")).is_err());
    }
}
