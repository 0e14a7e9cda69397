//! Differential tests of the bit commands, LCS, SUBSTR, COPY and OBJECT
//! against a real `redis-server` (see `common/diff.rs`): seeded random
//! streams, every reply compared byte for byte, on both engines.

use crate::common;

use common::diff::{Pair, cmd};

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// A number near the interesting edges (0, ±1, type limits, offsets).
fn number(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..6) {
        0 => rng.i64(-3..4).to_string(),
        1 => rng.i64(-300..300).to_string(),
        2 => pick(
            rng,
            &[
                "127",
                "128",
                "-128",
                "-129",
                "255",
                "256",
                "32767",
                "-32768",
                "65535",
                "9223372036854775807",
                "-9223372036854775808",
                "4294967295",
            ],
        )
        .to_string(),
        3 => rng.i64(..).to_string(),
        4 => pick(rng, &["x", "", "1.5", "+1", "01", " 1"]).to_string(),
        _ => rng.i64(0..64).to_string(),
    }
}

fn bit_type(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..10) {
        0 => pick(rng, &["u64", "i65", "i0", "x8", "U8", "u", "i"]).to_string(),
        1..=4 => format!("u{}", rng.u32(1..64)),
        _ => format!("i{}", rng.u32(1..65)),
    }
}

fn offset(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..10) {
        0 => pick(rng, &["-1", "x", "4294967296", "#-1", "#"]).to_string(),
        1 => format!("#{}", rng.u32(..6)),
        _ => rng.u32(..80).to_string(),
    }
}

/// A random stream of bit and string commands over 4 keys.
fn stream(seed: u64, len: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let keys = ["a", "b", "c", "d"];
    let values = [
        "",
        "foobar",
        "\u{7f}\u{1}",
        "abc",
        "ohmytext",
        "mynewtext",
        "12",
        "\u{0}\u{0}\u{ff}",
    ];
    (0..len)
        .map(|_| {
            let k = pick(&mut rng, &keys);
            let k2 = pick(&mut rng, &keys);
            let n1 = number(&mut rng);
            let n2 = number(&mut rng);
            match rng.u8(..16) {
                0 => cmd(&["SET", k, pick(&mut rng, &values)]),
                1 => cmd(&["GET", k]),
                2 => {
                    let bit = pick(&mut rng, &["0", "1", "1", "2", "-1"]);
                    cmd(&["SETBIT", k, &offset(&mut rng), bit])
                }
                3 => cmd(&["GETBIT", k, &offset(&mut rng)]),
                4 => match rng.u8(..4) {
                    0 => cmd(&["BITCOUNT", k]),
                    1 => cmd(&["BITCOUNT", k, &n1, &n2]),
                    2 => cmd(&[
                        "BITCOUNT",
                        k,
                        &n1,
                        &n2,
                        pick(&mut rng, &["BIT", "BYTE", "bit", "X"]),
                    ]),
                    _ => cmd(&["BITCOUNT", k, &n1]),
                },
                5 => {
                    let bit = pick(&mut rng, &["0", "1", "1", "0", "2"]);
                    match rng.u8(..4) {
                        0 => cmd(&["BITPOS", k, bit]),
                        1 => cmd(&["BITPOS", k, bit, &n1]),
                        2 => cmd(&["BITPOS", k, bit, &n1, &n2]),
                        _ => cmd(&[
                            "BITPOS",
                            k,
                            bit,
                            &n1,
                            &n2,
                            pick(&mut rng, &["BIT", "BYTE", "X"]),
                        ]),
                    }
                }
                6 => {
                    let op = pick(&mut rng, &["AND", "OR", "XOR", "NOT", "not", "NAND"]);
                    if rng.bool() {
                        cmd(&["BITOP", op, k, k2])
                    } else {
                        cmd(&["BITOP", op, k, k2, pick(&mut rng, &keys)])
                    }
                }
                7 | 8 => {
                    let name = if rng.u8(..5) == 0 {
                        "BITFIELD_RO"
                    } else {
                        "BITFIELD"
                    };
                    let mut c = cmd(&[name, k]);
                    for _ in 0..rng.usize(0..4) {
                        let op = match rng.u8(..8) {
                            0 => vec![
                                "OVERFLOW".to_string(),
                                pick(&mut rng, &["WRAP", "SAT", "FAIL", "sat", "NOPE"]).to_string(),
                            ],
                            1 | 2 => vec!["GET".into(), bit_type(&mut rng), offset(&mut rng)],
                            3 | 4 => vec![
                                "SET".into(),
                                bit_type(&mut rng),
                                offset(&mut rng),
                                number(&mut rng),
                            ],
                            5 | 6 => vec![
                                "INCRBY".into(),
                                bit_type(&mut rng),
                                offset(&mut rng),
                                number(&mut rng),
                            ],
                            _ => vec![pick(&mut rng, &["GET", "BOGUS"]).to_string()],
                        };
                        c.extend(op.into_iter().map(String::into_bytes));
                    }
                    c
                }
                9 => {
                    let mut c = cmd(&["LCS", k, k2]);
                    for _ in 0..rng.usize(0..3) {
                        match rng.u8(..5) {
                            0 => c.push(b"LEN".to_vec()),
                            1 | 2 => c.push(b"IDX".to_vec()),
                            3 => c.push(b"WITHMATCHLEN".to_vec()),
                            _ => c.extend(cmd(&[
                                "MINMATCHLEN",
                                pick(&mut rng, &["0", "2", "-1", "x"]),
                            ])),
                        }
                    }
                    c
                }
                10 => cmd(&["SUBSTR", k, &n1, &n2]),
                11 => match rng.u8(..3) {
                    0 => cmd(&["COPY", k, k2]),
                    1 => cmd(&["COPY", k, k2, "REPLACE"]),
                    _ => cmd(&[
                        "COPY",
                        k,
                        k2,
                        pick(&mut rng, &["DB", "x"]),
                        pick(&mut rng, &["0", "-1", "x"]),
                    ]),
                },
                12 => cmd(&["STRLEN", k]),
                13 => cmd(&["OBJECT", pick(&mut rng, &["FREQ", "NOPE"]), k]),
                14 => cmd(&["EXISTS", k, k2]),
                _ => cmd(&["DEL", k]),
            }
        })
        .collect()
}

#[test]
fn bit_streams_match_redis_on_both_engines() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for seed in 0..25 {
            pair.check(&[b"FLUSHALL"], "reset");
            pair.run_stream(seed, &stream(seed, 300));
        }
    }
}

/// `OBJECT ENCODING` of values set with `SET` (what Redis encodes them
/// as), `OBJECT HELP`, and RESP3 shapes of `LCS IDX` and `BITFIELD`.
#[test]
fn object_encodings_and_resp3_shapes_match_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        let long = "x".repeat(45);
        for value in [
            "1",
            "-5",
            "12345678901234567890",
            "99999999999999999999",
            "abc",
            long.as_str(),
            &long[..44],
            "01",
            "1.5",
        ] {
            pair.check(&[b"SET", b"s", value.as_bytes()], "set");
            pair.check(&[b"OBJECT", b"ENCODING", b"s"], value);
            pair.check(&[b"OBJECT", b"REFCOUNT", b"s"], value);
        }
        pair.check(&[b"PFADD", b"h", b"a"], "hll");
        pair.check(&[b"OBJECT", b"ENCODING", b"h"], "hll is raw");
        pair.check(&[b"OBJECT", b"ENCODING", b"none"], "missing");
        pair.check(&[b"OBJECT", b"HELP"], "help");
        pair.check(&[b"OBJECT"], "arity");
        pair.check(&[b"OBJECT", b"ENCODING"], "arity");
        pair.check(&[b"OBJECT", b"HELP", b"x"], "arity");
        for conn in [&mut pair.redis, &mut pair.ours] {
            conn.call(&[b"HELLO", b"3"]);
        }
        pair.check(&[b"MSET", b"a", b"ohmytext", b"b", b"mynewtext"], "mset");
        pair.check(&[b"LCS", b"a", b"b", b"IDX", b"WITHMATCHLEN"], "resp3 map");
        pair.check(
            &[
                b"BITFIELD",
                b"a",
                b"OVERFLOW",
                b"FAIL",
                b"INCRBY",
                b"u2",
                b"0",
                b"9",
            ],
            "resp3 null",
        );
        pair.check(&[b"OBJECT", b"ENCODING", b"none"], "resp3 null");
    }
}

/// A random stream building lists, a set, a sorted set, weights and hashes,
/// and sorting them with every `SORT` option. Left out because Redis's own
/// answer depends on its hash-table order: a set read unsorted (`BY nosort`
/// without `STORE`) and `ALPHA` by a pattern (ties keep that order).
fn sort_stream(seed: u64, len: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let elems = ["1", "2", "3", "10", "-3", "2.5", "1e1", "a", "b", "x1", ""];
    let numeric = ["1", "2", "3", "10", "-3", "2.5", "1e1", "7", " 4", "0x10"];
    (0..len)
        .map(|_| {
            let e = pick(&mut rng, &elems);
            let n = pick(&mut rng, &numeric);
            match rng.u8(..12) {
                0 => cmd(&["RPUSH", pick(&mut rng, &["l1", "l2"]), n]),
                1 => cmd(&["RPUSH", "l2", e]),
                2 => cmd(&[
                    "SADD",
                    pick(&mut rng, &["s1", "s2"]),
                    if rng.bool() { n } else { e },
                ]),
                3 => cmd(&["ZADD", "z", &rng.i32(-5..5).to_string(), e]),
                4 => cmd(&["SET", &format!("w_{e}"), &rng.i32(-50..50).to_string()]),
                5 => cmd(&[
                    "HSET",
                    &format!("h_{e}"),
                    "f",
                    &rng.i32(-50..50).to_string(),
                ]),
                6 => cmd(&["LRANGE", "dst", "0", "-1"]),
                7 => cmd(&["DEL", pick(&mut rng, &["l1", "l2", "s1", "s2", "z", "dst"])]),
                _ => {
                    let src = pick(
                        &mut rng,
                        &["l1", "l2", "s1", "s2", "z", "none", "str", "l1"],
                    );
                    let name = if rng.u8(..4) == 0 { "SORT_RO" } else { "SORT" };
                    let mut c = cmd(&[name, src]);
                    let mut by_nosort = false;
                    let mut alpha = false;
                    let mut by_pattern = false;
                    let mut store = false;
                    for _ in 0..rng.usize(0..5) {
                        match rng.u8(..10) {
                            0 => c.extend(cmd(&[pick(&mut rng, &["ASC", "DESC", "desc"])])),
                            1 => {
                                alpha = true;
                                c.extend(cmd(&["ALPHA"]));
                            }
                            2 => {
                                let (a, b) = (number(&mut rng), number(&mut rng));
                                c.extend(cmd(&["LIMIT", &a, &b]));
                            }
                            3 => {
                                let p =
                                    pick(&mut rng, &["nosort", "w_*", "h_*->f", "w_*", "nokey"]);
                                by_nosort |= !p.contains('*');
                                by_pattern |= p.contains('*');
                                c.extend(cmd(&["BY", p]));
                            }
                            4 | 5 => c.extend(cmd(&[
                                "GET",
                                pick(
                                    &mut rng,
                                    &["#", "w_*", "h_*->f", "h_*->", "nokey", "h_*->g"],
                                ),
                            ])),
                            6 => {
                                store = true;
                                c.extend(cmd(&["STORE", "dst"]));
                            }
                            7 => c.extend(cmd(&[pick(&mut rng, &["LIMIT", "BOGUS", "GET"])])),
                            _ => {}
                        }
                    }
                    let set = src.starts_with('s') && src != "str";
                    if (set && by_nosort && !store) || (alpha && by_pattern) {
                        return cmd(&["EXISTS", src]);
                    }
                    c
                }
            }
        })
        .collect()
}

#[test]
fn sort_streams_match_redis_on_both_engines() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for seed in 0..30 {
            pair.check(&[b"FLUSHALL"], "reset");
            pair.check(&[b"SET", b"str", b"x"], "a string");
            pair.run_stream(seed, &sort_stream(seed, 200));
        }
    }
}

/// `OBJECT ENCODING` of collections at Redis 7.0's default thresholds, and
/// `COPY` of every collection type (the copy is compared element by
/// element, and is independent of its source).
#[test]
fn collection_encodings_and_copies_match_redis() {
    let long = "x".repeat(65);
    let mut setup: Vec<Vec<Vec<u8>>> = vec![
        cmd(&["RPUSH", "l", "a", "b", "c"]),
        cmd(&["HSET", "h", "f", "v"]),
        cmd(&["HSET", "hv", "f", &long]),
        cmd(&["HSET", "hf", &long, "v"]),
        cmd(&["SADD", "si", "1", "2", "-9223372036854775808"]),
        cmd(&["SADD", "ss", "1", "a"]),
        cmd(&["SADD", "s0", "01"]),
        cmd(&["ZADD", "z", "1", "a", "2", "b"]),
        cmd(&["ZADD", "zl", "1", &long]),
    ];
    let mut big_hash = cmd(&["HSET", "hb"]);
    let mut big_set = cmd(&["SADD", "sb"]);
    let mut big_zset = cmd(&["ZADD", "zb"]);
    for i in 0..600 {
        big_hash.extend(cmd(&[&format!("f{i}"), "v"]));
        if i < 129 {
            big_zset.extend(cmd(&[&i.to_string(), &format!("m{i}")]));
        }
        big_set.push(i.to_string().into_bytes());
    }
    setup.extend([big_hash, big_set, big_zset]);
    let keys = [
        "l", "h", "hv", "hf", "si", "ss", "s0", "z", "zl", "hb", "sb", "zb",
    ];
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        pair.run_stream(0, &setup);
        for key in keys {
            pair.check(&[b"OBJECT", b"ENCODING", key.as_bytes()], key);
            let copy = format!("{key}_copy");
            pair.check(&[b"COPY", key.as_bytes(), copy.as_bytes()], key);
            pair.check(&[b"COPY", key.as_bytes(), copy.as_bytes()], "exists");
            pair.check(&[b"TYPE", copy.as_bytes()], key);
        }
        pair.check(&[b"COPY", b"l", b"h_copy", b"REPLACE"], "replace a hash");
        pair.check(&[b"RPUSH", b"l", b"d"], "source changes");
        for check in [
            cmd(&["LRANGE", "h_copy", "0", "-1"]),
            cmd(&["LRANGE", "l_copy", "0", "-1"]),
            cmd(&["HGETALL", "hv_copy"]),
            cmd(&["SORT", "sb_copy", "LIMIT", "590", "20"]),
            cmd(&["SORT", "ss_copy", "ALPHA"]),
            cmd(&["ZRANGE", "zb_copy", "0", "-1", "WITHSCORES"]),
            cmd(&["SCARD", "sb_copy"]),
            cmd(&["PFADD", "l", "x"]),
            cmd(&["PFCOUNT", "z"]),
            cmd(&["PFMERGE", "d", "z"]),
            cmd(&["SETBIT", "l", "1", "1"]),
            cmd(&["BITCOUNT", "h"]),
            cmd(&["BITFIELD", "z", "GET", "u8", "0"]),
            cmd(&["LCS", "l", "h"]),
            cmd(&["BITOP", "AND", "d", "l"]),
        ] {
            let args: Vec<&[u8]> = check.iter().map(Vec::as_slice).collect();
            pair.check(&args, "after copies");
        }
    }
}

/// Keyspace notifications of these commands equal Redis's: a
/// `PSUBSCRIBE __key*@0__:*` subscriber on each server, messages compared
/// after every command (a `PING` marks the end of each command's events).
#[test]
fn notifications_match_redis() {
    fn events(sub: &mut common::diff::RespConn) -> Vec<Vec<u8>> {
        sub.send(&[b"PING"]);
        let mut out = Vec::new();
        loop {
            let reply = sub.read_reply();
            if String::from_utf8_lossy(&reply).contains("pong") {
                return out;
            }
            out.push(reply);
        }
    }
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        pair.check(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"], "");
        let mut subs = [pair.redis_addr(), pair.ours_addr()].map(|addr| {
            let mut sub = common::diff::RespConn::connect(addr);
            sub.call(&[b"PSUBSCRIBE", b"__key*@0__:*"]);
            sub
        });
        let commands = [
            cmd(&["SETBIT", "b", "7", "1"]),
            cmd(&["SETBIT", "b", "7", "1"]),
            cmd(&["BITFIELD", "b", "SET", "u8", "8", "200"]),
            cmd(&["BITFIELD", "b", "GET", "u8", "8"]),
            cmd(&["BITOP", "NOT", "n", "b"]),
            cmd(&["BITOP", "OR", "n", "nothing"]),
            cmd(&["PFADD", "h", "a", "b"]),
            cmd(&["PFADD", "h", "a"]),
            cmd(&["PFCOUNT", "h"]),
            cmd(&["PFMERGE", "m", "h"]),
            cmd(&["PFDEBUG", "TODENSE", "m"]),
            cmd(&["COPY", "h", "h2"]),
            cmd(&["COPY", "b", "h2", "REPLACE"]),
            cmd(&["RPUSH", "l", "3", "1", "2"]),
            cmd(&["SORT", "l", "STORE", "sorted"]),
            cmd(&["SORT", "l", "LIMIT", "0", "1"]),
            cmd(&["SORT", "l", "LIMIT", "5", "1", "STORE", "sorted"]),
            cmd(&["SORT", "l", "LIMIT", "5", "1", "STORE", "sorted"]),
            cmd(&["LCS", "b", "h"]),
        ];
        for command in &commands {
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            pair.check(&args, "");
            let [theirs, ours] = &mut subs;
            let (theirs, ours) = (events(theirs), events(ours));
            assert_eq!(
                ours.iter()
                    .map(|m| String::from_utf8_lossy(m))
                    .collect::<Vec<_>>(),
                theirs
                    .iter()
                    .map(|m| String::from_utf8_lossy(m))
                    .collect::<Vec<_>>(),
                "events after {}",
                common::diff::show(&args)
            );
        }
    }
}
