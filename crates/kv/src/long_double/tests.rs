//! Known glibc results (a C program doing Redis's `string2ld`, `+` and
//! `ld2string` on x86-64) and properties of the exact arithmetic.

use proptest::prelude::*;
use rustc_apfloat::ieee::{Double, X87DoubleExtended};
use rustc_apfloat::{Float, FloatConvert};

use super::LongDouble;

/// What glibc printed for `a + b`.
enum Expect {
    /// The whole text.
    Exact(&'static str),
    /// A long integer: its length, first and last 30 characters.
    Long(usize, &'static str, &'static str),
    /// The sum overflowed (Redis: "increment would produce NaN or Infinity").
    Overflow,
}
use Expect::*;

const GLIBC: &[(&str, &str, Expect)] = &[
    ("0.1", "0.2", Exact("0.3")),
    ("0", "0.000003814697265625", Exact("0.00000381469726562")),
    ("0", "0.000011444091796875", Exact("0.00001144409179688")),
    ("0", "0.000003814697265625001", Exact("0.00000381469726563")),
    (
        "0",
        "1e4931",
        Long(
            4932,
            "100000000000000000000601894938",
            "116314108653841811379188662272",
        ),
    ),
    ("0", "3e-4951", Exact("0")),
    ("0", "1.5", Exact("1.5")),
    ("1.5", "-1.5", Exact("0")),
    ("-0", "-0", Exact("0")),
    ("0", "-0.00000000000000000001", Exact("0")),
    ("-1", "0.99999999999999999", Exact("-0.00000000000000001")),
    ("10.5", "3.0e3", Exact("3010.5")),
    ("0", "0x1p63", Exact("9223372036854775808")),
    ("0", "0x1p64", Exact("18446744073709551616")),
    (
        "0",
        "0x1.fffffffffffffffep16383",
        Long(
            4933,
            "118973149535723176502126385303",
            "444156604419552086811989770240",
        ),
    ),
    ("0", "0x1p-16445", Exact("0")),
    ("5.0e3", "2.0e2", Exact("5200")),
    ("1", "1e-18", Exact("1")),
    ("1", "5e-18", Exact("1")),
    ("1", "-5e-18", Exact("1")),
    ("0.1", "0.1", Exact("0.2")),
    (
        "3.14159265358979323846264338327950288",
        "0",
        Exact("3.14159265358979324"),
    ),
    (
        "1.23456789012345678901234567890",
        "1e-5",
        Exact("1.23457789012345679"),
    ),
    (
        "123456789012345678901234567890",
        "1",
        Exact("123456789012345678899921813504"),
    ),
    (
        "-123456789012345678901234567890.5",
        "0.25",
        Exact("-123456789012345678899921813504"),
    ),
    ("9223372036854775807", "1", Exact("9223372036854775808")),
    ("18446744073709551615", "1", Exact("18446744073709551616")),
    ("18446744073709551617", "0", Exact("18446744073709551616")),
    ("0x1.8", "1", Exact("2.5")),
    ("0x.8", ".5", Exact("1")),
    ("1.", "+.5", Exact("1.5")),
    (
        "99999999999999999.99999999999999999",
        "0.000000000000000005",
        Exact("100000000000000000"),
    ),
    ("0.00000000000000000500000000000000000001", "0", Exact("0")),
    ("0.000000000000000005", "0", Exact("0")),
    ("0.000000000000000015", "0", Exact("0.00000000000000002")),
    ("0.000000000000000025", "0", Exact("0.00000000000000002")),
    ("1e-17", "2e-17", Exact("0.00000000000000003")),
    ("7.0", "-7.00000000000000000001", Exact("0")),
    (
        "1e100",
        "1",
        Exact(
            "9999999999999999999669353532207342619498699019828496079271391541752018669482644324418977840117055488",
        ),
    ),
    (
        "-1e100",
        "1e83",
        Long(
            101,
            "-99999999999999999000696300538",
            "105302808864172420249029705728",
        ),
    ),
    ("2.5e-4950", "2.5e-4950", Exact("0")),
    (
        "1.18973149535723176502e+4932",
        "0",
        Long(
            4933,
            "118973149535723176502126385303",
            "444156604419552086811989770240",
        ),
    ),
    ("1.18973149535723176502e+4932", "1e4913", Overflow),
    ("0.3", "-0.1", Exact("0.2")),
    ("100", "-0.01", Exact("99.99")),
    ("1e20", "-1e-20", Exact("100000000000000000000")),
];

#[test]
fn sums_print_as_glibc_prints_them() {
    for (a, b, expect) in GLIBC {
        let x = LongDouble::parse(a.as_bytes()).unwrap();
        let y = LongDouble::parse(b.as_bytes()).unwrap();
        let sum = x.add(y);
        let context = format!("{a} + {b}");
        match expect {
            Exact(text) => assert_eq!(sum.to_human(), *text, "{context}"),
            Long(len, head, tail) => {
                let text = sum.to_human();
                assert_eq!(text.len(), *len, "{context}");
                assert!(text.starts_with(head), "{context}: {text}");
                assert!(text.ends_with(tail), "{context}: {text}");
            }
            Overflow => assert!(!sum.is_finite(), "{context}"),
        }
    }
}

/// What `redis-server` 7.0 answered to `INCRBYFLOAT k <text>` on a missing
/// key: accepted (`true`) or "value is not a valid float".
const SYNTAX: &[(&str, bool)] = &[
    ("0.1", true),
    (" 1", false),
    ("1 ", false),
    ("\t1", false),
    ("inf", true),
    ("-inf", true),
    ("Infinity", true),
    ("INFINITY", true),
    ("infinit", false),
    ("nan", false),
    ("-nan", false),
    ("nan(1)", false),
    ("0x1p3", true),
    ("0x1.8", true),
    ("0x.8", true),
    ("0X1P-3", true),
    ("0x", false),
    ("0x.", false),
    ("0x1p", false),
    ("1e", false),
    ("1e+", false),
    ("1.", true),
    (".5", true),
    (".", false),
    ("+.5", true),
    ("+-1", false),
    ("--1", false),
    ("1_0", false),
    ("1,5", false),
    ("1e5000", false),
    ("1e-5000", false),
    ("3e-4951", true),
    ("1e-4951", false),
    ("0e99999999999999999999", true),
    ("1e-99999999999999999999", false),
    ("0e-99999999999", true),
    ("0x1p-16445", true),
    ("0x1p-16446", false),
    ("0x1p16384", false),
    ("-0", true),
    ("1.18973149535723176502e+4932", true),
    ("1.18973149535723176508e+4932", false),
    ("00000000000000001", true),
    ("", false),
    ("1\0", false),
    ("١", false),
];

#[test]
fn accepts_what_string2ld_accepts() {
    for (text, ok) in SYNTAX {
        assert_eq!(
            LongDouble::parse(text.as_bytes()).is_some(),
            *ok,
            "{text:?}"
        );
    }
    // The length limit: Redis's buffer holds 5119 characters and a NUL.
    let long = format!("1.{}", "0".repeat(super::TEXT_MAX - 3));
    assert_eq!(long.len(), super::TEXT_MAX - 1);
    assert!(LongDouble::parse(long.as_bytes()).is_some());
    assert!(LongDouble::parse(format!("{long}0").as_bytes()).is_none());
}

#[test]
fn the_bits_are_the_x87_layout() {
    let one = LongDouble::parse(b"1").unwrap();
    assert_eq!(one.0.to_bits(), 0x3fff_8000_0000_0000_0000);
    let smallest = LongDouble::parse(b"0x1p-16445").unwrap();
    assert_eq!(smallest.0.to_bits(), 1);
}

/// An f64 as the long double of the same value (exact).
fn widen(x: f64) -> LongDouble {
    let double = Double::from_bits(u128::from(x.to_bits()));
    let mut loses_info = false;
    let wide: X87DoubleExtended = double.convert(&mut loses_info).value;
    assert!(!loses_info);
    LongDouble(wide)
}

/// Rust's `{:.17}` of an f64, shaped as `ld2string` shapes it.
fn human_f64(x: f64) -> String {
    let fixed = format!("{x:.17}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".into()
    } else {
        trimmed.into()
    }
}

fn finite_f64() -> impl Strategy<Value = f64> {
    any::<u64>()
        .prop_map(f64::from_bits)
        .prop_filter("finite", |x| x.is_finite())
}

proptest! {
    /// Printing is exact: on doubles (a subset of long doubles) it agrees
    /// with Rust's exact fixed-point printing, which also rounds half to even.
    #[test]
    fn prints_doubles_as_rust_does(x in finite_f64()) {
        prop_assert_eq!(widen(x).to_human(), human_f64(x));
    }

    /// Small-magnitude doubles too (the random bits above are mostly huge or tiny).
    #[test]
    fn prints_ordinary_doubles_as_rust_does(m in -1_000_000_000_000i64..1_000_000_000_000, e in -40i32..40) {
        let x = m as f64 * 2f64.powi(e);
        prop_assert_eq!(widen(x).to_human(), human_f64(x));
    }

    /// Parsing is exact: a double's full decimal expansion reads back as
    /// that very value, in fixed and in scientific notation.
    #[test]
    fn parses_exact_decimals_exactly(x in finite_f64()) {
        let exact = format!("{x:.1100}");
        let parsed = LongDouble::parse(exact.trim_end_matches('0').as_bytes());
        // 1100 decimals are exact for every double; past 5119 characters
        // (huge values) Redis refuses the text.
        if exact.len() < super::TEXT_MAX {
            prop_assert!(parsed.unwrap().0.bitwise_eq(widen(x).0), "{}", exact);
        }
        let scientific = format!("{x:.1100e}");
        if scientific.len() < super::TEXT_MAX {
            let parsed = LongDouble::parse(scientific.as_bytes()).unwrap();
            prop_assert!(parsed.0.bitwise_eq(widen(x).0), "{}", scientific);
        }
    }

    /// Integer sums below 2^64 are exact.
    #[test]
    fn adds_integers_exactly(a in -(1i64 << 62)..(1i64 << 62), b in -(1i64 << 62)..(1i64 << 62)) {
        let x = LongDouble::parse(a.to_string().as_bytes()).unwrap();
        let y = LongDouble::parse(b.to_string().as_bytes()).unwrap();
        prop_assert_eq!(x.add(y).to_human(), (i128::from(a) + i128::from(b)).to_string());
    }

    /// `x + (-x)` is 0 and addition commutes.
    #[test]
    fn adds_like_a_field(x in finite_f64(), y in finite_f64()) {
        let (x, y) = (widen(x), widen(y));
        let minus = LongDouble(-x.0);
        prop_assert_eq!(x.add(minus).to_human(), "0");
        prop_assert!(x.add(y).0.bitwise_eq(y.add(x).0));
    }
}
