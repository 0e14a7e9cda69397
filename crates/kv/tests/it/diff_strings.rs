//! Differential tests of string and key commands against a real
//! `redis-server` (see `common/diff.rs`): random command streams over a few
//! keys, every reply compared byte for byte, on both engines.

use crate::common;

use common::diff::{Pair, cmd};

/// A random stream of string and generic-key commands over 4 keys.
fn stream(seed: u64, len: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let keys = ["a", "b", "c", "n"];
    let values = ["", "x", "hello", "10", "-3", "3.5", "1e3", "abc"];
    (0..len)
        .map(|_| {
            let k = keys[rng.usize(..keys.len())];
            let k2 = keys[rng.usize(..keys.len())];
            let v = values[rng.usize(..values.len())];
            let n = rng.i64(-20..20).to_string();
            match rng.u8(..14) {
                0 => cmd(&["SET", k, v]),
                1 => cmd(&["GET", k]),
                2 => cmd(&["APPEND", k, v]),
                3 => cmd(&["INCRBY", k, &n]),
                4 => cmd(&["INCRBYFLOAT", k, v]),
                5 => cmd(&["STRLEN", k]),
                6 => cmd(&["GETRANGE", k, &n, "5"]),
                7 => cmd(&["SETRANGE", k, "2", v]),
                8 => cmd(&["DEL", k, k2]),
                9 => cmd(&["EXISTS", k, k2]),
                10 => cmd(&["MSET", k, v, k2, "1"]),
                11 => cmd(&["MGET", k, k2, "zz"]),
                12 => cmd(&["TYPE", k]),
                _ => cmd(&["RENAME", k, k2]),
            }
        })
        .collect()
}

#[test]
fn string_streams_match_redis_on_both_engines() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for seed in 0..20 {
            pair.run_stream(seed, &stream(seed, 200));
        }
    }
}

/// A random float text: short and long decimals, exponents near the ends
/// of the `long double` range, hexadecimal floats, specials and junk.
fn float_text(rng: &mut fastrand::Rng) -> String {
    let digits = |rng: &mut fastrand::Rng, n: usize| -> String {
        (0..n).map(|_| char::from(b'0' + rng.u8(..10))).collect()
    };
    let mut text = match rng.u8(..12) {
        0..=2 => {
            let n = rng.usize(1..8);
            let d = digits(rng, n);
            let at = rng.usize(..=n);
            format!("{}.{}", &d[..at], &d[at..])
        }
        3 => {
            let n = rng.usize(1..30);
            format!("{}e{}", digits(rng, n), rng.i32(-40..40))
        }
        4 => {
            let n = rng.usize(15..25);
            format!("0.{}", digits(rng, n))
        }
        5 => format!("1.{}e{}", digits(rng, 25), rng.i32(4900..4935)),
        6 => format!("{}e-{}", rng.u8(1..10), rng.i32(4930..4955)),
        7 => {
            let hex: String = (0..rng.usize(1..20))
                .map(|_| char::from(b"0123456789abcdefABCDEF"[rng.usize(..22)]))
                .collect();
            let exponent = if rng.bool() {
                format!("p{}", rng.i32(-70..70))
            } else {
                String::new()
            };
            format!("0x{}.{hex}{exponent}", rng.u8(..16))
        }
        8 => format!("{}", rng.i64(..)),
        9 => ["0.1", "0.2", "0.3", "1e-18", "5e-18", "1.5", "3.0e3", "7"][rng.usize(..8)].into(),
        10 => {
            let n = rng.usize(1..600);
            format!("{}.{}", digits(rng, n), digits(rng, 300))
        }
        _ => [
            "inf", "-inf", "nan", " 1", "1 ", "1e", "0x", ".", "", "1_0", "+.5", "1.",
        ][rng.usize(..12)]
        .into(),
    };
    if rng.u8(..4) == 0 {
        text.insert(0, '-');
    }
    text
}

/// `INCRBYFLOAT` and `HINCRBYFLOAT` compute in an 80-bit `long double` in
/// Redis: every sum and every printed digit must be the same here.
#[test]
fn float_increments_match_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for seed in 0..12 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut commands = vec![cmd(&["RPUSH", "list", "x"])];
            for _ in 0..150 {
                let (a, b) = (float_text(&mut rng), float_text(&mut rng));
                commands.push(match rng.u8(..6) {
                    0 => cmd(&["SET", "f", &a]),
                    1 => cmd(&["HSET", "h", "f", &a]),
                    2 => cmd(&["HINCRBYFLOAT", "h", "f", &b]),
                    3 => cmd(&["INCRBYFLOAT", "list", &b]),
                    _ => cmd(&["INCRBYFLOAT", "f", &b]),
                });
            }
            commands.push(cmd(&["GET", "f"]));
            commands.push(cmd(&["HGETALL", "h"]));
            pair.run_stream(seed, &commands);
            pair.check(&[b"FLUSHALL"], "reset");
        }
        let cases: &[&[&str]] = &[
            &["SET", "f", "0.1"],
            &["INCRBYFLOAT", "f", "0.2"],
            &["INCRBYFLOAT", "f", "-0.3"],
            &["INCRBYFLOAT", "f", "1e4931"],
            &["INCRBYFLOAT", "f", "1e4932"],
            &["INCRBYFLOAT", "f", "-1e4931"],
            &["INCRBYFLOAT", "f", "0x1p-16445"],
            &["INCRBYFLOAT", "f", "0x1p-16446"],
            &["SET", "f", "abc"],
            &["INCRBYFLOAT", "f", "abc"],
            &["SET", "f", "1"],
            &["INCRBYFLOAT", "f", "inf"],
            &["HINCRBYFLOAT", "h", "f", "inf"],
            &["HINCRBYFLOAT", "h", "f", "0.1"],
            &["HINCRBYFLOAT", "h", "f", "0.2"],
            &["HSET", "h", "g", "1.18973149535723176502e+4932"],
            &["HINCRBYFLOAT", "h", "g", "1e4913"],
            &["HINCRBYFLOAT", "h", "g", "-1e4913"],
            &["HSET", "h", "g", "x"],
            &["HINCRBYFLOAT", "h", "g", "1"],
            &["RPUSH", "list", "x"],
            &["INCRBYFLOAT", "list", "abc"],
        ];
        pair.check_words(cases);
        // The longest text Redis reads, and one character more.
        let long = format!("1.{}1", "0".repeat(5116));
        for text in [long.clone(), format!("{long}0")] {
            pair.check(&[b"INCRBYFLOAT", b"f", text.as_bytes()], "long text");
        }
    }
}
