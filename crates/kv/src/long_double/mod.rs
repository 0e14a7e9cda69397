//! Redis's `long double` arithmetic, for `INCRBYFLOAT` and `HINCRBYFLOAT`.
//!
//! Redis computes those increments in C's `long double`: on x86-64 Linux the
//! x87 80-bit extended format (64-bit significand, 15-bit exponent). It reads
//! the stored value and the increment with `strtold` (its `string2ld`), adds
//! them, and prints the sum with `ld2string(.., LD_STR_HUMAN)`: `%.17Lf`,
//! trailing zeros and a trailing dot removed, `-0` as `0`. A double cannot
//! reproduce that (`0.1 + 0.2` is `0.30000000000000004` in doubles and
//! `0.3` in Redis), so this module does the same arithmetic exactly:
//! - **parsing**: [`LongDouble::parse`] accepts exactly what `string2ld`
//!   accepts (checked by a grammar of glibc's `strtold`: optional sign,
//!   decimal or `0x` hexadecimal digits with an optional point and exponent,
//!   `inf`/`infinity`; no white space, no NaN, nothing left over; a value
//!   that overflows or underflows to zero is refused, a subnormal one is
//!   not) and rounds the text to the nearest 80-bit value;
//! - **addition** rounds to nearest, ties to even, as the x87 does in its
//!   default (64-bit) precision;
//! - **printing** ([`LongDouble::to_human`]) is `%.17Lf` done exactly: the
//!   integer part in full (up to 4933 digits) and 17 decimals correctly
//!   rounded, ties to even, as glibc's `printf` does.
//!
//! Decimal-to-binary conversion with correct rounding and the arithmetic
//! come from `rustc_apfloat` (the Rust port of LLVM's `APFloat` that rustc
//! itself uses for constant evaluation; its `X87DoubleExtended` is this
//! format); the syntax check and the printing are here.

use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::{Float, Round};

/// Redis's `MAX_LONG_DOUBLE_CHARS`: `string2ld` refuses a text this long or
/// longer.
pub const TEXT_MAX: usize = 5 * 1024;

/// An x87 80-bit extended-precision number (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct LongDouble(X87DoubleExtended);

/// How `strtold` would read a whole text (see [`scan`]).
enum Syntax {
    /// `inf` or `infinity`, any case.
    Infinity { negative: bool },
    /// A number with at least one digit.
    Number {
        /// Hexadecimal (`0x...`).
        hex: bool,
        /// Some digit of the significand is not zero.
        nonzero: bool,
        /// It had an exponent (`e...` or `p...`).
        exponent: bool,
    },
}

/// The syntax of `text` if glibc's `strtold` reads all of it, else `None`.
fn scan(text: &[u8]) -> Option<Syntax> {
    let (negative, body) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(Syntax::Infinity { negative });
    }
    let (hex, body) = match body {
        [b'0', b'x' | b'X', rest @ ..] => (true, rest),
        _ => (false, body),
    };
    let is_digit = |c: &u8| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    };
    let mut at = 0;
    let mut digits = 0;
    let mut nonzero = false;
    let mut read_digits = |at: &mut usize| {
        while let Some(c) = body.get(*at).filter(|c| is_digit(c)) {
            digits += 1;
            nonzero |= *c != b'0';
            *at += 1;
        }
    };
    read_digits(&mut at);
    if body.get(at) == Some(&b'.') {
        at += 1;
        read_digits(&mut at);
    }
    if digits == 0 {
        // `strtold` reads no number here, or (`0x`) only the `0`.
        return None;
    }
    let marker: &[u8] = if hex { b"pP" } else { b"eE" };
    let mut exponent = false;
    if body.get(at).is_some_and(|c| marker.contains(c)) {
        at += 1;
        if matches!(body.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let start = at;
        while body.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None; // `1e` is read as `1`, leaving `e`
        }
        exponent = true;
    }
    (at == body.len()).then_some(Syntax::Number {
        hex,
        nonzero,
        exponent,
    })
}

impl LongDouble {
    /// Zero (a missing key or field).
    pub const ZERO: LongDouble = LongDouble(X87DoubleExtended::ZERO);

    /// Parses `text` as Redis's `string2ld` does (see the module docs):
    /// `None` where Redis replies "not a valid float".
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() >= TEXT_MAX {
            return None;
        }
        let (hex, nonzero, exponent) = match scan(text)? {
            Syntax::Infinity { negative } => {
                let inf = X87DoubleExtended::INFINITY;
                return Some(LongDouble(if negative { -inf } else { inf }));
            }
            Syntax::Number {
                hex,
                nonzero,
                exponent,
            } => (hex, nonzero, exponent),
        };
        let text = std::str::from_utf8(text).ok()?; // ASCII: `scan` checked it
        // `rustc_apfloat` wants an exponent on hexadecimal numbers; C does not.
        let parsed = if hex && !exponent {
            X87DoubleExtended::from_str_r(&format!("{text}p0"), Round::NearestTiesToEven)
        } else {
            X87DoubleExtended::from_str_r(text, Round::NearestTiesToEven)
        };
        let value = parsed.ok()?.value;
        // `strtold` sets ERANGE on overflow and on underflow to zero, and
        // `string2ld` refuses both (a subnormal result is fine).
        let out_of_range = value.is_infinite() || (value.is_zero() && nonzero);
        (!out_of_range && !value.is_nan()).then_some(LongDouble(value))
    }

    /// The sum, rounded to nearest (ties to even).
    pub fn add(self, other: LongDouble) -> LongDouble {
        LongDouble(self.0.add_r(other.0, Round::NearestTiesToEven).value)
    }

    /// Neither infinite nor NaN.
    pub fn is_finite(self) -> bool {
        self.0.is_finite()
    }

    /// `ld2string(.., LD_STR_HUMAN)`: `%.17Lf` without trailing zeros (see
    /// the module docs).
    pub fn to_human(self) -> String {
        let value = self.0;
        if value.is_nan() {
            return "nan".into();
        }
        if value.is_infinite() {
            return if value.is_negative() { "-inf" } else { "inf" }.into();
        }
        let bits = value.to_bits();
        let negative = bits >> 79 & 1 == 1;
        let exponent_field = (bits >> 64 & 0x7fff) as i32;
        // The significand has an explicit integer bit: value = mantissa × 2^shift.
        let mantissa = bits as u64;
        let shift = exponent_field.max(1) - 16383 - 63;
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        if shift >= 0 {
            // An integer: no decimals to print (they would all be zeros).
            out.push_str(&integer_decimal(mantissa, shift.unsigned_abs()));
        } else {
            let (int_part, decimals) = fixed_17(mantissa, shift.unsigned_abs());
            out.push_str(&int_part.to_string());
            let decimals = format!("{decimals:017}");
            let decimals = decimals.trim_end_matches('0');
            if !decimals.is_empty() {
                out.push('.');
                out.push_str(decimals);
            }
        }
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

/// 10^17: one unit of the 17th decimal.
const DECIMALS_SCALE: u128 = 100_000_000_000_000_000;

/// `mantissa / 2^shift` (`shift` ≥ 1) as its integer part and its first 17
/// decimals, rounded to nearest with ties to even as glibc's `printf` does.
fn fixed_17(mantissa: u64, shift: u32) -> (u64, u128) {
    let (mut int_part, fraction) = if shift >= 64 {
        (0, u128::from(mantissa))
    } else {
        (mantissa >> shift, u128::from(mantissa & ((1 << shift) - 1)))
    };
    // fraction < 2^64, so this is below 2^121: no overflow.
    let scaled = fraction * DECIMALS_SCALE;
    let (mut decimals, round_up) = if shift >= 122 {
        // scaled < 2^121 ≤ half a unit of the 17th decimal: rounds down.
        (0, false)
    } else {
        let decimals = scaled >> shift;
        let rest = scaled & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        (decimals, rest > half || (rest == half && decimals & 1 == 1))
    };
    if round_up {
        decimals += 1;
        if decimals == DECIMALS_SCALE {
            decimals = 0;
            int_part += 1; // int_part < 2^63: cannot overflow
        }
    }
    (int_part, decimals)
}

/// The decimal digits of `mantissa × 2^shift` (`shift` < 16384, so at most
/// 4933 digits), all of them, as `printf` writes them.
fn integer_decimal(mantissa: u64, shift: u32) -> String {
    if shift <= 64 {
        return (u128::from(mantissa) << shift).to_string();
    }
    // Little-endian 64-bit limbs of the number.
    let (word, bit) = ((shift / 64) as usize, shift % 64);
    let mut limbs = vec![0u64; word + 2];
    limbs[word] = mantissa << bit;
    if bit > 0 {
        limbs[word + 1] = mantissa >> (64 - bit);
    }
    // Peel off 19 decimal digits at a time, least significant first.
    const CHUNK: u64 = 10_000_000_000_000_000_000;
    let mut chunks = Vec::new();
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    while !limbs.is_empty() {
        let mut remainder = 0u128;
        for limb in limbs.iter_mut().rev() {
            let current = remainder << 64 | u128::from(*limb);
            *limb = (current / u128::from(CHUNK)) as u64;
            remainder = current % u128::from(CHUNK);
        }
        chunks.push(remainder as u64);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut out = chunks.pop().map_or_else(|| "0".into(), |c| c.to_string());
    for chunk in chunks.iter().rev() {
        out.push_str(&format!("{chunk:019}"));
    }
    out
}

#[cfg(test)]
mod tests;
