//! Differential tests of list commands against a real `redis-server` (see
//! `common/diff.rs`): random command streams over a few keys, every reply
//! compared byte for byte in RESP2 and RESP3, on both engines.

use crate::common;

use common::diff::{Client, Pair, check_cases, cmd, wait_blocked};

/// A random stream of list commands over 3 list keys and a string key,
/// now and then a few of them in a `MULTI` block (where blocking commands
/// answer at once).
fn stream(seed: u64, len: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if rng.u8(..25) == 0 {
            out.push(cmd(&["MULTI"]));
            for _ in 0..rng.usize(1..5) {
                out.push(one(&mut rng));
            }
            out.push(cmd(&[if rng.bool() { "EXEC" } else { "DISCARD" }]));
        } else {
            out.push(one(&mut rng));
        }
    }
    out
}

/// One random list command.
fn one(rng: &mut fastrand::Rng) -> Vec<Vec<u8>> {
    let keys = ["a", "b", "c", "s"];
    let values = ["x", "y", "z", "", "hello", "1"];
    let ends = ["LEFT", "RIGHT", "left", "up"];
    let k = keys[rng.usize(..3)];
    // Now and then a key of the wrong type or a missing one.
    let k = if rng.u8(..12) == 0 { keys[3] } else { k };
    let k2 = keys[rng.usize(..keys.len())];
    let v = values[rng.usize(..values.len())];
    let n = rng.i64(-8..8).to_string();
    let m = rng.i64(-8..8).to_string();
    let odd = rng.u8(..10) == 0;
    let e1 = ends[rng.usize(..if odd { 4 } else { 3 })];
    let e2 = ends[rng.usize(..3)];
    let count = rng.i64(-1..5).to_string();
    match rng.u8(..30) {
        0..=3 => cmd(&["RPUSH", k, v, values[rng.usize(..values.len())]]),
        4..=5 => cmd(&["LPUSH", k, v]),
        6 => cmd(&["LPUSHX", k, v, v]),
        7 => cmd(&["RPUSHX", k, v]),
        8 => cmd(&["LPOP", k]),
        9 => cmd(&["RPOP", k, &count]),
        10 => cmd(&["LRANGE", k, &n, &m]),
        11 => cmd(&["LRANGE", k, "0", "-1"]),
        12 => cmd(&["LLEN", k]),
        13 => cmd(&["LINDEX", k, &n]),
        14 => cmd(&["LSET", k, &n, v]),
        15 => cmd(&[
            "LINSERT",
            k,
            ["BEFORE", "AFTER", "after"][rng.usize(..3)],
            v,
            "ins",
        ]),
        16 => cmd(&["LREM", k, &n, v]),
        17 => cmd(&["LTRIM", k, &n, &m]),
        18 => cmd(&["LPOS", k, v]),
        19 => cmd(&["LPOS", k, v, "RANK", &n, "COUNT", &count, "MAXLEN", &m]),
        20 => cmd(&["LMOVE", k, k2, e1, e2]),
        21 => cmd(&["RPOPLPUSH", k, k2]),
        22 => cmd(&["LMPOP", "2", k, k2, e1, "COUNT", &count]),
        23 => cmd(&["BLPOP", k, k2, "0.01"]),
        24 => cmd(&["BRPOP", k, "0.01"]),
        25 => cmd(&["BLMOVE", k, k2, e1, e2, "0.01"]),
        26 => cmd(&["BLMPOP", "0.01", "1", k, e1]),
        27 => cmd(&["DEL", k]),
        28 => cmd(&["SET", "s", v]),
        _ => cmd(&["TYPE", k]),
    }
}

#[test]
fn list_streams_match_redis_on_both_engines() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for seed in 0..24 {
            if seed == 12 {
                pair.both(&[b"HELLO", b"3"]); // differs in version and id
            }
            pair.run_stream(seed, &stream(seed, 250));
        }
    }
}

/// Bad input: every error text and edge reply, in both protocols.
#[test]
fn list_bad_input_matches_redis() {
    let cases: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b", "c", "a", "b", "c"],
        &["SET", "s", "x"],
        &["LPOP", "l", "-1"],
        &["LPOP", "l", "x"],
        &["LPOP", "l", "0"],
        &["LPOP", "nokey", "0"],
        &["LPOP", "l", "1", "2"],
        &["RPOP", "s"],
        &["LPUSH", "s", "a"],
        &["LPUSHX", "nokey", "a"],
        &["LRANGE", "l", "x", "1"],
        &["LRANGE", "l", "-9223372036854775808", "9223372036854775807"],
        &["LRANGE", "l", "9223372036854775807", "-9223372036854775808"],
        &["LINDEX", "l", "-9223372036854775808"],
        &["LINDEX", "l", "x"],
        &["LSET", "nokey", "0", "x"],
        &["LSET", "l", "100", "x"],
        &["LSET", "l", "-100", "x"],
        &["LSET", "l", "x", "x"],
        &["LSET", "s", "0", "x"],
        &["LINSERT", "l", "middle", "a", "x"],
        &["LINSERT", "nokey", "before", "a", "x"],
        &["LINSERT", "l", "before", "zz", "x"],
        &["LREM", "l", "x", "a"],
        &["LREM", "l", "-9223372036854775808", "a"],
        &["LTRIM", "l", "0", "x"],
        &["LTRIM", "s", "0", "1"],
        &["LPOS", "l", "a", "RANK", "0"],
        &["LPOS", "l", "a", "RANK", "-9223372036854775808"],
        &["LPOS", "l", "a", "RANK", "9223372036854775807"],
        &["LPOS", "l", "a", "COUNT", "-1"],
        &["LPOS", "l", "a", "COUNT", "x"],
        &["LPOS", "l", "a", "MAXLEN", "-1"],
        &["LPOS", "l", "a", "foo"],
        &["LPOS", "l", "a", "RANK"],
        &["LPOS", "l", "a", "RANK", "x"],
        &["LPOS", "l", "b", "COUNT", "0"],
        &[
            "LPOS",
            "l",
            "b",
            "COUNT",
            "0",
            "RANK",
            "-1",
            "MAXLEN",
            "9223372036854775807",
        ],
        &["LPOS", "nokey", "a", "COUNT", "0"],
        &["LPOS", "nokey", "a"],
        &["LPOS", "s", "a"],
        &["LMOVE", "l", "d", "up", "left"],
        &["LMOVE", "l", "s", "left", "left"],
        &["LMOVE", "s", "l", "left", "left"],
        &["LMOVE", "l", "l", "left", "right"],
        &["LMPOP", "0", "l", "left"],
        &["LMPOP", "-1", "l", "left"],
        &["LMPOP", "2", "l", "left"],
        &["LMPOP", "1", "l", "up"],
        &["LMPOP", "1", "l", "left", "count", "0"],
        &["LMPOP", "1", "l", "left", "count", "x"],
        &["LMPOP", "1", "l", "left", "foo", "1"],
        &["LMPOP", "1", "l", "left", "count"],
        &["LMPOP", "1", "l", "left", "count", "1", "count", "2"],
        &["LMPOP", "9223372036854775807", "l", "left"],
        &["LMPOP", "x", "l", "left"],
        &["LMPOP", "1", "nokey", "left"],
        &["LMPOP", "2", "s", "l", "left"],
        &[
            "LMPOP",
            "2",
            "nokey",
            "l",
            "right",
            "count",
            "9223372036854775807",
        ],
        &["BLPOP", "nokey", "nope"],
        &["BLPOP", "nokey", "-1"],
        &["BLPOP", "nokey", "inf"],
        &["BLPOP", "nokey", "nan"],
        &["BLPOP", "nokey", ""],
        &["BLPOP", "nokey", "0.001"],
        &["BLPOP", "s", "0.001"],
        &["BLMOVE", "nokey", "d", "up", "left", "x"],
        &["BLMOVE", "nokey", "d", "left", "left", "x"],
        &["BLMOVE", "nokey", "d", "left", "left", "0.001"],
        &["BRPOPLPUSH", "nokey", "d", "0.001"],
        &["BLMPOP", "0", "0", "l", "left"],
        &["BLMPOP", "x", "1", "l", "left"],
        &["BLMPOP", "0.001", "1", "nokey", "left", "COUNT", "0"],
        &["BLMPOP", "0.001", "1", "nokey", "left"],
        &["RPUSH", "l", "a", "b"],
        &["MULTI"],
        &["BLPOP", "nokey", "0"],
        &["BLMOVE", "nokey", "d", "left", "left", "0"],
        &["BRPOPLPUSH", "nokey", "d", "0"],
        &["BLMPOP", "0", "1", "nokey", "left"],
        &["BLPOP", "l", "0"],
        &["EXEC"],
        // A script never blocks: it gets the timeout reply at once.
        &["EVAL", "return redis.call('BLPOP', 'nokey', 0)", "0"],
        &[
            "EVAL",
            "return redis.call('BLMOVE', 'nokey', 'd', 'LEFT', 'LEFT', 0)",
            "0",
        ],
        &[
            "EVAL",
            "return redis.call('BLMPOP', 0, 1, 'l', 'LEFT', 'COUNT', 5)",
            "0",
        ],
        &["CLIENT", "UNBLOCK", "x"],
        &["CLIENT", "UNBLOCK", "1", "foo"],
        &["CLIENT", "UNBLOCK", "999999"],
        &["CLIENT", "UNBLOCK", "999999", "ERROR"],
        &["CLIENT", "UNBLOCK", "1", "2", "3"],
    ];
    check_cases(cases);
}

/// Long lists: pages, shifts and trims over more than one range read.
#[test]
fn long_lists_match_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        let mut rng = fastrand::Rng::with_seed(7);
        let values: Vec<String> = (0..3000).map(|i| (i % 37).to_string()).collect();
        let mut args: Vec<&[u8]> = vec![b"RPUSH", b"big"];
        args.extend(values.iter().map(|v| v.as_bytes()));
        pair.check(&args, "fill");
        for round in 0..60 {
            let v = (rng.u32(..40)).to_string();
            let n = rng.i64(-3000..3000).to_string();
            let command = match round % 6 {
                0 => cmd(&["LINSERT", "big", "AFTER", &v, "new"]),
                1 => cmd(&["LREM", "big", &rng.i64(-3..3).to_string(), &v]),
                2 => cmd(&["LPOS", "big", &v, "RANK", "-2", "COUNT", "0"]),
                3 => cmd(&["LINDEX", "big", &n]),
                4 => cmd(&["LINSERT", "big", "BEFORE", &v, "new"]),
                _ => cmd(&["LRANGE", "big", &n, "-1"]),
            };
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            pair.check(&args, &format!("round {round}"));
        }
        pair.check(&[b"LTRIM", b"big", b"1000", b"-1000"], "trim");
        pair.check(&[b"LRANGE", b"big", b"0", b"-1"], "after trim");
        pair.check(&[b"RPOP", b"big", b"5000"], "pop all");
        pair.check(&[b"EXISTS", b"big"], "gone");
    }
}

/// Blocked clients against real Redis: who is served with what, in which
/// order and reply shape, by plain writes, `MULTI`/`EXEC` and moves, in
/// RESP2 and RESP3.
#[test]
fn blocked_clients_are_served_as_redis_serves_them() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for protocol in ["2", "3"] {
            pair.both(&[b"HELLO", protocol.as_bytes()]);
            pair.check(&[b"FLUSHALL"], "reset");
            let mut waiters: Vec<Client> =
                (0..3).map(|_| Client::connect(&pair, protocol)).collect();
            // FIFO across three clients, one push of three elements.
            for (i, w) in waiters.iter_mut().enumerate() {
                w.send(&["BLPOP", "other", "q", "0"]);
                wait_blocked(&mut pair, i + 1);
            }
            pair.check(&[b"RPUSH", b"q", b"a", b"b", b"c", b"d"], "push");
            // Blocked clients are served before the next command runs.
            pair.check(&[b"LRANGE", b"q", b"0", b"-1"], "what is left");
            for w in &mut waiters {
                w.expect_same("FIFO BLPOP");
            }
            // Also within one pipeline: the push, then a read.
            waiters[0].send(&["BLPOP", "p", "0"]);
            wait_blocked(&mut pair, 1);
            for conn in [&mut pair.redis, &mut pair.ours] {
                conn.send(&[b"RPUSH", b"p", b"x", b"y"]);
                conn.send(&[b"LRANGE", b"p", b"0", b"-1"]);
            }
            for what in ["pipelined push", "pipelined read"] {
                let (expected, got) = (pair.redis.read_reply(), pair.ours.read_reply());
                assert_eq!(
                    String::from_utf8_lossy(&expected),
                    String::from_utf8_lossy(&got),
                    "{what}"
                );
            }
            waiters[0].expect_same("BLPOP served inside a pipeline");
            // BLMOVE, then the moved element serves a BRPOP on the destination.
            let [w1, w2, w3] = &mut waiters[..] else {
                unreachable!()
            };
            w1.send(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]);
            wait_blocked(&mut pair, 1);
            w2.send(&["BRPOP", "dst", "0"]);
            wait_blocked(&mut pair, 2);
            pair.check(&[b"RPUSH", b"src", b"job"], "push to src");
            w1.expect_same("BLMOVE");
            w2.expect_same("BRPOP of the moved element");
            // BLMPOP served by a transaction; BRPOPLPUSH served by LMOVE.
            w1.send(&["BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2"]);
            wait_blocked(&mut pair, 1);
            w3.send(&["BRPOPLPUSH", "c", "d", "0"]);
            wait_blocked(&mut pair, 2);
            pair.check(&[b"MULTI"], "multi");
            pair.check(&[b"RPUSH", b"b", b"1", b"2", b"3"], "queued");
            pair.check(&[b"LPUSH", b"x", b"moved"], "queued");
            pair.check(&[b"LMOVE", b"x", b"c", b"LEFT", b"LEFT"], "queued");
            pair.check(&[b"EXEC"], "exec");
            w1.expect_same("BLMPOP");
            w3.expect_same("BRPOPLPUSH");
            pair.check(&[b"LRANGE", b"b", b"0", b"-1"], "left in b");
            pair.check(&[b"LRANGE", b"d", b"0", b"-1"], "moved to d");
            // A key that turns into a string keeps its waiter blocked.
            w2.send(&["BLPOP", "k", "0"]);
            wait_blocked(&mut pair, 1);
            pair.check(&[b"SET", b"k", b"str"], "set");
            pair.check(&[b"DEL", b"k"], "del");
            pair.check(&[b"LPUSH", b"k", b"v"], "push");
            w2.expect_same("BLPOP after a type change");
            // A script's push serves a waiter too.
            w3.send(&["BRPOP", "scripted", "0"]);
            wait_blocked(&mut pair, 1);
            pair.check(
                &[
                    b"EVAL",
                    b"return redis.call('RPUSH', KEYS[1], 'from-lua')",
                    b"1",
                    b"scripted",
                ],
                "script push",
            );
            w3.expect_same("BRPOP served by a script");
            // Timeouts.
            w1.send(&["BRPOPLPUSH", "none", "d", "0.02"]);
            w1.expect_same("BRPOPLPUSH timeout");
            w1.send(&["BLMPOP", "0.02", "1", "none", "LEFT"]);
            w1.expect_same("BLMPOP timeout");
        }
    }
}
