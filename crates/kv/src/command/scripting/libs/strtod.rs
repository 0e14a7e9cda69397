//! C's `strtod` as glibc implements it, which lua-cjson's decoder uses for
//! every number token: the longest prefix that is a decimal number
//! (correctly rounded), a hexadecimal float (`0x1.8p3`, correctly rounded
//! to nearest-even, subnormals and overflow included), `inf`/`infinity` or
//! `nan`/`nan(payload)` in any case, after optional white space and sign.
//! Rust's `f64::from_str` only parses a whole decimal string, so this finds
//! the prefix itself and converts hex floats by hand.

/// Parses a number at the start of `s`: the value and the bytes used, or
/// `None` when no conversion is possible (C's `endptr == nptr`).
pub(super) fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while matches!(at(i), b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let start = i;
    let negative = at(i) == b'-';
    if matches!(at(i), b'+' | b'-') {
        i += 1;
    }
    let sign = |v: f64| if negative { -v } else { v };
    let rest = &s[i.min(s.len())..];
    if starts_with_ignore_case(rest, b"inf") {
        let used = if starts_with_ignore_case(rest, b"infinity") {
            8
        } else {
            3
        };
        return Some((sign(f64::INFINITY), i + used));
    }
    if starts_with_ignore_case(rest, b"nan") {
        let (nan, used) = nan(&rest[3..]);
        return Some((sign(nan), i + 3 + used));
    }
    if at(i) == b'0'
        && at(i + 1) | 0x20 == b'x'
        && (at(i + 2).is_ascii_hexdigit() || (at(i + 2) == b'.' && at(i + 3).is_ascii_hexdigit()))
    {
        let (value, used) = hex(&s[i + 2..]);
        return Some((sign(value), i + 2 + used));
    }
    let mut j = i;
    let mut digits = 0;
    while at(j).is_ascii_digit() {
        j += 1;
        digits += 1;
    }
    if at(j) == b'.' {
        j += 1;
        while at(j).is_ascii_digit() {
            j += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if at(j) | 0x20 == b'e' {
        let mut k = j + 1;
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        if at(k).is_ascii_digit() {
            while at(k).is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[start..j]).ok()?;
    let value: f64 = text.parse().ok()?;
    Some((value, j))
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// After "nan": an optional `(chars)` whose number (C's `strtoull` base 0)
/// becomes the payload. Returns the NaN and the bytes used after "nan".
fn nan(s: &[u8]) -> (f64, usize) {
    const QUIET_NAN: u64 = 0x7ff8_0000_0000_0000;
    if s.first() != Some(&b'(') {
        return (f64::from_bits(QUIET_NAN), 0);
    }
    let inner_len = s[1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if s.get(1 + inner_len) != Some(&b')') {
        return (f64::from_bits(QUIET_NAN), 0);
    }
    let bits = match strtoull_whole(&s[1..1 + inner_len]) {
        Some(payload) => QUIET_NAN | (payload & 0x0007_ffff_ffff_ffff),
        None => QUIET_NAN,
    };
    (f64::from_bits(bits), inner_len + 2)
}

/// `strtoull(s, &end, 0)` when it uses all of `s` (saturating as C does).
fn strtoull_whole(s: &[u8]) -> Option<u64> {
    let (digits, radix) = if s.len() > 2 && s[0] == b'0' && s[1] | 0x20 == b'x' {
        (&s[2..], 16)
    } else if s.len() > 1 && s[0] == b'0' {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let mut value: u64 = 0;
    for &c in digits {
        let digit = (c as char).to_digit(radix)?;
        value = value
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(digit));
    }
    Some(value)
}

/// A hexadecimal float after "0x": the value and the bytes used.
fn hex(s: &[u8]) -> (f64, usize) {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let digit = |c: u8| (c as char).to_digit(16).map(u64::from);
    let (mut mantissa, mut exponent, mut sticky) = (0u64, 0i64, false);
    let mut i = 0;
    let mut push = |d: u64, fraction: bool| {
        if mantissa >> 60 == 0 {
            mantissa = mantissa * 16 + d;
            if fraction {
                exponent -= 4;
            }
        } else {
            sticky |= d != 0;
            if !fraction {
                exponent += 4;
            }
        }
    };
    while let Some(d) = digit(at(i)) {
        push(d, false);
        i += 1;
    }
    if at(i) == b'.' {
        i += 1;
        while let Some(d) = digit(at(i)) {
            push(d, true);
            i += 1;
        }
    }
    if at(i) | 0x20 == b'p' {
        let mut k = i + 1;
        let negative = at(k) == b'-';
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        if at(k).is_ascii_digit() {
            let mut e: i64 = 0;
            while at(k).is_ascii_digit() {
                e = (e * 10 + i64::from(at(k) - b'0')).min(1 << 40);
                k += 1;
            }
            exponent += if negative { -e } else { e };
            i = k;
        }
    }
    (compose(mantissa, exponent, sticky), i)
}

/// `mantissa * 2^exponent` (plus a nonzero tail when `sticky`), rounded to
/// the nearest double, ties to even.
fn compose(mantissa: u64, exponent: i64, sticky: bool) -> f64 {
    if mantissa == 0 {
        return 0.0;
    }
    let zeros = mantissa.leading_zeros();
    let m = mantissa << zeros;
    // The value is m * 2^(top - 63), m in [2^63, 2^64).
    let top = exponent - i64::from(zeros) + 63;
    if top > 1023 {
        return f64::INFINITY;
    }
    if top >= -1022 {
        let mut q = round_right(m, sticky, 11);
        let mut top = top;
        if q == 1 << 53 {
            q >>= 1;
            top += 1;
            if top > 1023 {
                return f64::INFINITY;
            }
        }
        return f64::from_bits((((top + 1023) as u64) << 52) | (q & ((1 << 52) - 1)));
    }
    // Subnormal: units of 2^-1074 (q = 2^52 is the smallest normal).
    let shift = 11 + (-1022 - top);
    if shift > 65 {
        return 0.0;
    }
    f64::from_bits(round_right(m, sticky, shift as u32))
}

/// `m >> shift` rounded to nearest, ties to even (`sticky`: bits below `m`).
fn round_right(m: u64, sticky: bool, shift: u32) -> u64 {
    let wide = u128::from(m);
    let q = wide >> shift;
    let rest = wide - (q << shift);
    let half = 1u128 << (shift - 1);
    let up = rest > half || (rest == half && (sticky || q & 1 == 1));
    (q + u128::from(up)) as u64
}

#[cfg(test)]
mod tests {
    use super::strtod;

    fn parse(s: &str) -> Option<(f64, usize)> {
        strtod(s.as_bytes())
    }

    #[test]
    fn decimal_prefixes() {
        assert_eq!(parse("12abc"), Some((12.0, 2)));
        assert_eq!(parse("-1.5e3,"), Some((-1500.0, 6)));
        assert_eq!(parse("1e"), Some((1.0, 1)));
        assert_eq!(parse("1.e+"), Some((1.0, 2)));
        assert_eq!(parse(".5"), Some((0.5, 2)));
        assert_eq!(parse("+7"), Some((7.0, 2)));
        assert_eq!(parse("1e400"), Some((f64::INFINITY, 5)));
        assert_eq!(parse("-"), None);
        assert_eq!(parse("."), None);
        assert_eq!(parse("x"), None);
        assert!(parse("-0").is_some_and(|(v, _)| v == 0.0 && v.is_sign_negative()));
    }

    #[test]
    fn special_values() {
        assert_eq!(parse("inf"), Some((f64::INFINITY, 3)));
        assert_eq!(parse("-Infinity"), Some((f64::NEG_INFINITY, 9)));
        assert_eq!(parse("infinit"), Some((f64::INFINITY, 3)));
        let (nan, used) = parse("nan(0x5)x").unwrap();
        assert_eq!((nan.to_bits(), used), (0x7ff8_0000_0000_0005, 8));
        let (nan, used) = parse("-NaN(").unwrap();
        assert_eq!((nan.to_bits(), used), (0xfff8_0000_0000_0000, 4));
    }

    #[test]
    fn hex_floats_round_to_nearest_even() {
        assert_eq!(parse("0x10"), Some((16.0, 4)));
        assert_eq!(parse("0x1.8p1"), Some((3.0, 7)));
        assert_eq!(parse("0x"), Some((0.0, 1)));
        assert_eq!(parse("0xg"), Some((0.0, 1)));
        assert_eq!(parse("0x.8"), Some((0.5, 4)));
        assert_eq!(parse("0x1p"), Some((1.0, 3)));
        assert_eq!(parse("0x1p-1074").unwrap().0, f64::from_bits(1));
        assert_eq!(parse("0x1p-1075").unwrap().0, 0.0);
        assert_eq!(parse("0x1.8p-1074").unwrap().0, f64::from_bits(2));
        assert_eq!(parse("0x1p1024").unwrap().0, f64::INFINITY);
        assert_eq!(parse("0x1.fffffffffffff8p1023").unwrap().0, f64::INFINITY);
        assert_eq!(parse("0x20000000000001").unwrap().0, 9007199254740992.0);
        assert_eq!(parse("0x20000000000003").unwrap().0, 9007199254740996.0);
        assert_eq!(
            parse("0x200000000000010000000001").unwrap().0,
            parse("0x20000000000002p40").unwrap().0
        );
    }
}
