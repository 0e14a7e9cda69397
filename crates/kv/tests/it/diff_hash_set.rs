//! Differential tests of hash and set commands against a real
//! `redis-server` (see `common/diff.rs`): seeded random command streams over
//! a few keys, fields and members, in RESP2 and RESP3, on both engines.
//!
//! Replies whose order Redis leaves open (`HGETALL`, `SMEMBERS`, `SINTER`...)
//! are compared sorted; random ones (`SPOP`, `SRANDMEMBER`, `HRANDFIELD`) by
//! shape, and after an `SPOP` the key is deleted on both sides so the two
//! stay equal; `HSCAN` / `SSCAN` are run to the end on each side (cursors
//! differ) and the sets of elements compared.

use crate::common;

use std::collections::BTreeSet;

use common::diff::{Pair, RespConn, bulk_value, cmd, elements, show};

/// How a command's replies are compared.
#[derive(Clone, Copy)]
enum Compare {
    Exact,
    Sorted,
    SortedPairs,
    /// Same shape; then the key (argument 1) is deleted on both sides.
    ShapeThenDelete,
    Shape,
    /// A full `HSCAN` / `SSCAN` on each side, elements compared as sets.
    Scan,
}

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// A random stream of hash and set commands.
fn stream(seed: u64, len: usize) -> Vec<(Vec<Vec<u8>>, Compare)> {
    use Compare::*;
    let mut rng = fastrand::Rng::with_seed(seed);
    let hashes = ["h1", "h2"];
    let sets = ["s1", "s2", "s3"];
    let fields = ["a", "b", "c", "10", ""];
    // Float fields, summed in an 80-bit long double as Redis does.
    let float_fields = ["fa", "fb"];
    let values = ["", "x", "10", "-3", "abc", "007", "9223372036854775807"];
    let float_values = [
        "1.5", "-0.25", "2", "1e2", "abc", "inf", "0", "5.", "0x10", "0x", "0.1", "-0.7", "1e-20",
    ];
    let increments = [
        "1",
        "-5",
        "9223372036854775807",
        "-9223372036854775808",
        "x",
        "1.5",
    ];
    let members = ["a", "b", "c", "d", "1", "2", "10", ""];
    let counts = ["0", "1", "2", "5", "-1", "-3", "x", "-9223372036854775808"];
    (0..len)
        .map(|_| {
            // Mostly the right type; sometimes another, for WRONGTYPE.
            let other = rng.u8(..10) == 0;
            let h = if other {
                pick(&mut rng, &["s1", "str"])
            } else {
                pick(&mut rng, &hashes)
            };
            let s = if other {
                pick(&mut rng, &["h1", "str"])
            } else {
                pick(&mut rng, &sets)
            };
            let s2 = pick(&mut rng, &sets);
            let s3 = pick(&mut rng, &["s1", "s2", "s3", "nokey"]);
            let f = pick(&mut rng, &fields);
            let f2 = pick(&mut rng, &fields);
            let ff = pick(&mut rng, &float_fields);
            let v = pick(&mut rng, &values);
            let fv = pick(&mut rng, &float_values);
            let m = pick(&mut rng, &members);
            let m2 = pick(&mut rng, &members);
            let n = pick(&mut rng, &counts);
            let inc = pick(&mut rng, &increments);
            let scan_count = rng.u8(1..5).to_string();
            match rng.u8(..42) {
                0 => (cmd(&["HSET", h, f, v]), Exact),
                1 => (cmd(&["HSET", h, f, v, f2, "y"]), Exact),
                2 => (cmd(&["HSETNX", h, f, v]), Exact),
                3 => (cmd(&["HMSET", h, f, v]), Exact),
                4 => (cmd(&["HGET", h, f]), Exact),
                5 => (cmd(&["HMGET", h, f, f2, "zz"]), Exact),
                6 => (cmd(&["HDEL", h, f, f2]), Exact),
                7 => (cmd(&["HLEN", h]), Exact),
                8 => (cmd(&["HEXISTS", h, f]), Exact),
                9 => (cmd(&["HSTRLEN", h, f]), Exact),
                10 => (cmd(&["HINCRBY", h, f, inc]), Exact),
                11 => (cmd(&["HSET", h, ff, fv]), Exact),
                12 => (cmd(&["HINCRBYFLOAT", h, ff, fv]), Exact),
                13 => (cmd(&["HGETALL", h]), SortedPairs),
                14 => (cmd(&["HKEYS", h]), Sorted),
                15 => (cmd(&["HVALS", h]), Sorted),
                16 => (cmd(&["HRANDFIELD", h]), Shape),
                17 => (cmd(&["HRANDFIELD", h, n]), Shape),
                18 => (cmd(&["HRANDFIELD", h, n, "WITHVALUES"]), Shape),
                19 => (cmd(&["HSCAN", h, "0", "COUNT", &scan_count]), Scan),
                20 => (cmd(&["HSCAN", h, "0", "MATCH", "*a*"]), Scan),
                21 => (cmd(&["SADD", s, m, m2]), Exact),
                22 => (cmd(&["SREM", s, m, m2]), Exact),
                23 => (cmd(&["SMEMBERS", s]), Sorted),
                24 => (cmd(&["SISMEMBER", s, m]), Exact),
                25 => (cmd(&["SMISMEMBER", s, m, m2]), Exact),
                26 => (cmd(&["SCARD", s]), Exact),
                27 => (cmd(&["SMOVE", s, s2, m]), Exact),
                28 => (cmd(&["SINTER", s, s2]), Sorted),
                29 => (cmd(&["SUNION", s, s2, s3]), Sorted),
                30 => (cmd(&["SDIFF", s, s2, s3]), Sorted),
                31 => (cmd(&["SINTERSTORE", s2, s, s3]), Exact),
                32 => (cmd(&["SUNIONSTORE", s2, s, s3]), Exact),
                33 => (cmd(&["SDIFFSTORE", s2, s, s3]), Exact),
                34 => (cmd(&["SINTERCARD", "2", s, s2]), Exact),
                35 => (cmd(&["SINTERCARD", "2", s, s3, "LIMIT", n]), Exact),
                36 => (cmd(&["SPOP", s]), ShapeThenDelete),
                37 => (cmd(&["SPOP", s, n]), ShapeThenDelete),
                38 => (cmd(&["SRANDMEMBER", s, n]), Shape),
                39 => (cmd(&["SSCAN", s, "0", "COUNT", &scan_count]), Scan),
                40 => (cmd(&["TYPE", pick(&mut rng, &["h1", "s1", "str"])]), Exact),
                _ => (
                    cmd(&["DEL", pick(&mut rng, &["h1", "h2", "s1", "s2"])]),
                    Exact,
                ),
            }
        })
        .collect()
}

/// Scans to the end from the command's cursor (argument 2); returns every
/// element (field and value pairs joined for `HSCAN`).
fn full_scan(conn: &mut RespConn, args: &[&[u8]], pairs: bool) -> BTreeSet<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
    let mut found = BTreeSet::new();
    for _ in 0..10_000 {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let reply = conn.call(&refs);
        let parts = elements(&reply);
        if parts.len() != 2 {
            // An error: keep it as the result.
            found.insert(reply);
            return found;
        }
        let items = elements(&parts[1]);
        for group in items.chunks(if pairs { 2 } else { 1 }) {
            found.insert(group.concat());
        }
        let cursor = bulk_value(&parts[0]).expect("a cursor");
        if cursor == b"0" {
            return found;
        }
        args[2] = cursor;
    }
    panic!("the scan does not end: {}", show(&[&args[0], &args[1]]));
}

fn run(pair: &mut Pair, seed: u64, commands: &[(Vec<Vec<u8>>, Compare)]) {
    for (i, (command, compare)) in commands.iter().enumerate() {
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        let history: Vec<String> = commands[i.saturating_sub(15)..i]
            .iter()
            .map(|(c, _)| show(&c.iter().map(Vec::as_slice).collect::<Vec<_>>()))
            .collect();
        let context = format!(
            "seed {seed}, command #{i}; the commands before it:\n    {}",
            history.join("\n    ")
        );
        match compare {
            Compare::Exact => {
                pair.check(&args, &context);
            }
            Compare::Sorted => {
                pair.check_unordered(&args, false, &context);
            }
            Compare::SortedPairs => {
                pair.check_unordered(&args, true, &context);
            }
            Compare::Shape => {
                pair.check_shape(&args, &context);
            }
            Compare::ShapeThenDelete => {
                pair.check_shape(&args, &context);
                pair.check(&[b"DEL", args[1]], &context);
            }
            Compare::Scan => {
                let pairs = args[0].eq_ignore_ascii_case(b"hscan");
                let expected = full_scan(&mut pair.redis, &args, pairs);
                let got = full_scan(&mut pair.ours, &args, pairs);
                assert!(
                    expected == got,
                    "a full scan differs from redis-server for {}\n  redis: {expected:?}\n  ours:  {got:?}\n{context}",
                    show(&args)
                );
            }
        }
    }
}

fn streams_match(resp3: bool) {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        if resp3 {
            pair.both(&[b"HELLO", b"3"]);
        }
        for seed in 0..12 {
            pair.check(&[b"FLUSHALL"], "");
            pair.check(&[b"SET", b"str", b"x"], "");
            run(&mut pair, seed, &stream(seed, 300));
        }
    }
}

#[test]
fn hash_and_set_streams_match_redis_in_resp2() {
    streams_match(false);
}

#[test]
fn hash_and_set_streams_match_redis_in_resp3() {
    streams_match(true);
}

/// Fixed cases: errors, huge counts Redis serves, and big collections
/// (beyond the compact encodings and our whole-read thresholds).
#[test]
fn edge_cases_match_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        let fixed = [
            "HSET h f v g w",
            "HSET h f",
            "HSET h",
            "HMSET h f v g",
            "HRANDFIELD h 9223372036854775807",
            "HRANDFIELD h 9223372036854775807 WITHVALUES",
            "HRANDFIELD h -4611686018427387904 WITHVALUES",
            "HRANDFIELD h 4611686018427387904 WITHVALUES",
            "HRANDFIELD h -9223372036854775808",
            "HRANDFIELD h 1 WITHVALUES x",
            "HRANDFIELD nokey -5 WITHVALUES",
            "HSCAN h x",
            "HSCAN h 18446744073709551616",
            "HSCAN h 0 COUNT 0",
            "HSCAN h 0 COUNT x",
            "HSCAN h 0 MATCH",
            "HSCAN nokey 0 COUNT 0",
            "HSCAN h 0 COUNT 9223372036854775807",
            "HINCRBY h n 9223372036854775807",
            "HINCRBY h n 1",
            "HINCRBY h f 1",
            "HINCRBYFLOAT h f 1",
            "HINCRBYFLOAT h g nan",
            "HINCRBYFLOAT h g -inf",
            "HINCRBYFLOAT h tiny 1.5e-30",
            "SADD s a b c",
            "SPOP s -1",
            "SPOP s x",
            "SPOP s 1 2",
            "SPOP nokey 3",
            "SPOP nokey",
            "SRANDMEMBER s 9223372036854775807",
            "SRANDMEMBER s -9223372036854775808",
            "SRANDMEMBER s 1 2",
            "SRANDMEMBER nokey -3",
            "SINTERCARD 0 s",
            "SINTERCARD 2 s",
            "SINTERCARD 1 s LIMIT -1",
            "SINTERCARD 1 s LIMIT",
            "SINTERCARD 1 s foo 1",
            "SINTERCARD 1 s LIMIT 1 LIMIT 2",
            "SMOVE s s a",
            "SMOVE nokey h a",
            "SMOVE s h a",
            "SSCAN s 0 NOVALUES",
            "SSCAN s 0 COUNT 0",
            "SSCAN s x",
            "SPOP s 9223372036854775807",
            "EXISTS s",
        ];
        for line in fixed {
            let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            let reply = pair.both(&args);
            if line.starts_with("HRANDFIELD h 9") || line.starts_with("SRANDMEMBER s 9") {
                let pairs = line.ends_with("WITHVALUES");
                let (a, b) = (
                    common::diff::canonical(&reply.0, pairs),
                    common::diff::canonical(&reply.1, pairs),
                );
                assert_eq!(a, b, "{line}");
            } else if line.starts_with("SPOP s 9") {
                assert_eq!(
                    common::diff::canonical(&reply.0, false),
                    common::diff::canonical(&reply.1, false),
                    "{line}"
                );
            } else {
                assert_eq!(
                    String::from_utf8_lossy(&reply.0),
                    String::from_utf8_lossy(&reply.1),
                    "{line}"
                );
            }
        }
        // Big collections: a real hash table on Redis's side, paging and
        // sampling by descent on ours.
        for i in 0..1500 {
            let (f, v) = (format!("field:{i}"), i.to_string());
            pair.check(&[b"HSET", b"big", f.as_bytes(), v.as_bytes()], "");
            pair.check(&[b"SADD", b"bigset", f.as_bytes()], "");
        }
        pair.check_unordered(&[b"HGETALL", b"big"], true, "");
        pair.check_unordered(&[b"SMEMBERS", b"bigset"], false, "");
        pair.check_shape(&[b"HRANDFIELD", b"big", b"-700", b"WITHVALUES"], "");
        pair.check_shape(&[b"SRANDMEMBER", b"bigset", b"300"], "");
        pair.check(&[b"SINTERCARD", b"1", b"bigset", b"LIMIT", b"1000"], "");
        for (command, pairs) in [(&b"HSCAN"[..], true), (b"SSCAN", false)] {
            let key: &[u8] = if pairs { b"big" } else { b"bigset" };
            let args = [command, key, b"0", b"COUNT", b"37"];
            let expected = full_scan(&mut pair.redis, &args, pairs);
            let got = full_scan(&mut pair.ours, &args, pairs);
            assert_eq!(expected.len(), 1500);
            assert!(expected == got, "a full {} differs", show(&args));
        }
        pair.check_shape(&[b"SPOP", b"bigset", b"600"], "");
        pair.check(&[b"SCARD", b"bigset"], "");
    }
}
