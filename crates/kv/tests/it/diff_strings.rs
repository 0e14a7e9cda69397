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
