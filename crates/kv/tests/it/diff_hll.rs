//! Differential tests of the HyperLogLog commands against a real
//! `redis-server` (see `common/diff.rs`): random `PFADD`/`PFCOUNT`/`PFMERGE`
//! streams whose replies, estimates and raw HyperLogLog bytes (`GET`) must
//! equal Redis's byte for byte, through sparse and dense encodings, on both
//! engines.

use crate::common;

use common::diff::{Pair, cmd};

/// A random stream over 4 keys; elements come from a pool big enough to
/// push a key from sparse to dense.
fn stream(seed: u64, len: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let keys = ["h1", "h2", "h3", "s"];
    (0..len)
        .map(|_| {
            let k = keys[rng.usize(..3)];
            let k2 = keys[rng.usize(..keys.len())];
            let k3 = keys[rng.usize(..keys.len())];
            match rng.u8(..12) {
                0..=3 => {
                    let mut c = cmd(&["PFADD", k]);
                    let pool = [10, 300, 5000][rng.usize(..3)];
                    for _ in 0..rng.usize(0..60) {
                        c.push(format!("el:{}", rng.u32(..pool)).into_bytes());
                    }
                    c
                }
                4 => cmd(&["PFCOUNT", k]),
                5 => cmd(&["PFCOUNT", k, k2, k3]),
                6 => cmd(&["PFMERGE", k, k2]),
                7 => cmd(&["PFMERGE", "m", k, k2, k3]),
                8 => cmd(&["GET", keys[rng.usize(..keys.len())]]),
                9 => cmd(&["GET", "m"]),
                10 => match rng.u8(..4) {
                    0 => cmd(&["SET", "s", "plain"]),
                    1 => cmd(&["DEL", k]),
                    2 => cmd(&["EXPIRE", k, "100"]),
                    _ => cmd(&["TTL", k]),
                },
                _ => cmd(&["STRLEN", k]),
            }
        })
        .collect()
}

#[test]
fn hll_streams_match_redis_on_both_engines() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for seed in 0..12 {
            pair.check(&[b"FLUSHALL"], "reset");
            pair.run_stream(seed, &stream(seed, 250));
        }
    }
}

/// Bytes written by Redis are read here and the other way round: a
/// HyperLogLog copied with GET/SET counts the same, and corrupt or foreign
/// strings get Redis's errors.
#[test]
fn hll_bytes_interoperate_and_bad_values_match_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for n in [5usize, 700, 3000] {
            let mut add = cmd(&["PFADD", "src"]);
            add.extend((0..n).map(|i| format!("v{i}").into_bytes()));
            let add: Vec<&[u8]> = add.iter().map(Vec::as_slice).collect();
            pair.check(&add, "fill");
            let raw = pair.redis.call(&[b"GET", b"src"]);
            let body = bulk_body(&raw);
            for conn in [&mut pair.redis, &mut pair.ours] {
                conn.call(&[b"SET", b"copy", body]);
            }
            pair.check(&[b"PFCOUNT", b"copy"], "count of Redis's bytes");
            pair.check(
                &[b"PFADD", b"copy", b"new", b"newer"],
                "add to Redis's bytes",
            );
            pair.check(&[b"GET", b"copy"], "bytes after the add");
            pair.check(&[b"PFCOUNT", b"copy", b"src"], "union");
            for sub in [
                &b"ENCODING"[..],
                b"DECODE",
                b"GETREG",
                b"ENCODING",
                b"TODENSE",
                b"DECODE",
            ] {
                pair.check(&[b"PFDEBUG", sub, b"copy"], "pfdebug");
            }
            pair.check(&[b"GET", b"copy"], "dense after PFDEBUG");
        }
        for bad in [
            &b"plain"[..],
            b"123",
            b"HYLL",
            b"HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff",
            b"HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff",
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xfe",
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff\x00",
        ] {
            pair.check(&[b"SET", b"bad", bad], "set");
            pair.check(&[b"PFCOUNT", b"bad"], "bad count");
            pair.check(&[b"PFCOUNT", b"bad", b"src"], "bad union");
            pair.check(&[b"PFMERGE", b"dst", b"bad"], "bad merge");
            pair.check(&[b"PFADD", b"bad"], "bad add");
            pair.check(&[b"GET", b"bad"], "bad bytes");
        }
        pair.check(&[b"PFDEBUG", b"ENCODING", b"none"], "pfdebug missing key");
        pair.check(&[b"PFDEBUG", b"NOPE", b"src"], "pfdebug unknown");
        pair.check(&[b"PFDEBUG", b"getreg", b"src", b"x"], "pfdebug arity");
        pair.check(&[b"PFDEBUG", b"ENCODING", b"bad"], "pfdebug not hll");
        pair.check(&[b"PFSELFTEST"], "selftest");
        pair.check(&[b"PFADD"], "arity");
        pair.check(&[b"PFCOUNT"], "arity");
        pair.check(&[b"PFMERGE"], "arity");
    }
}

/// The payload of a raw RESP bulk reply.
fn bulk_body(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|&b| b == b'\n').expect("header") + 1;
    &raw[start..raw.len() - 2]
}
