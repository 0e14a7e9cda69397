//! Differential tests of sorted-set commands against a real `redis-server`
//! (see `common/diff.rs`): seeded random streams over a few keys with
//! scores chosen to collide (ties broken by member, negatives, `inf`,
//! exclusive bounds, lex ranges), every reply compared byte for byte, in
//! RESP2 and RESP3, on both engines.
//!
//! Lex commands run on their own key whose members all have score 0 (lex
//! ranges over mixed scores are unspecified in Redis: they depend on its
//! encoding). Random replies are checked by property (`ZRANDMEMBER` with a
//! count at least the set's size is the whole set, in order).

use crate::common;

use common::diff::{Pair, check_cases, cmd, stream_of};

const KEYS: [&str; 3] = ["z1", "z2", "z3"];
const MEMBERS: [&str; 9] = ["a", "b", "c", "d", "e", "f", "10", "2", "ab"];
const SCORES: [&str; 17] = [
    "0", "1", "-1", "2.5", "-2.5", "inf", "-inf", "+inf", "1e3", "0.1", "3", "1.1", "-0", "7", "1",
    "2", "1e-5",
];
const BAD_SCORES: [&str; 6] = ["nan", "abc", "", "1e400", "(1", " 1"];
const BOUNDS: [&str; 16] = [
    "-inf", "+inf", "(1", "1", "(2.5", "0", "(-1", "(inf", "-5", "5", "2.5", "(0", "-1", "3", "(3",
    "inf",
];
const LEX_BOUNDS: [&str; 10] = ["-", "+", "[a", "(a", "[c", "(d", "[ab", "(b", "[", "[zz"];

struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.usize(..from.len())]
    }

    fn key(&mut self) -> &'static str {
        self.pick(&KEYS)
    }

    fn member(&mut self) -> &'static str {
        self.pick(&MEMBERS)
    }

    fn score(&mut self) -> &'static str {
        if self.rng.u8(..30) == 0 {
            self.pick(&BAD_SCORES)
        } else {
            self.pick(&SCORES)
        }
    }

    fn bound(&mut self) -> &'static str {
        if self.rng.u8(..40) == 0 {
            "x"
        } else {
            self.pick(&BOUNDS)
        }
    }

    fn index(&mut self) -> String {
        self.rng.i64(-8..8).to_string()
    }

    fn words(&mut self, words: &mut Vec<String>, options: &[&str]) {
        for option in options {
            if self.rng.bool() {
                words.push(option.to_string());
            }
        }
    }

    fn limit(&mut self, words: &mut Vec<String>) {
        if self.rng.u8(..3) == 0 {
            words.push("LIMIT".into());
            words.push(self.rng.i64(-1..4).to_string());
            words.push(self.rng.i64(-2..5).to_string());
        }
    }

    fn keys(&mut self, words: &mut Vec<String>) -> usize {
        let n = self.rng.usize(1..4);
        words.push(n.to_string());
        for _ in 0..n {
            // Sometimes a plain set: the algebra reads its members with score 1.
            let k = if self.rng.u8(..6) == 0 {
                "st"
            } else {
                self.key()
            };
            words.push(k.into());
        }
        n
    }

    fn command(&mut self) -> Vec<String> {
        let k = self.key().to_string();
        let mut w: Vec<String> = Vec::new();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.rng.u8(..34) {
            0..=5 => {
                w = s(&["ZADD", &k]);
                if self.rng.u8(..3) == 0 {
                    let opts = ["NX", "XX", "GT", "LT", "CH", "INCR"];
                    let n = self.rng.usize(1..3);
                    for _ in 0..n {
                        let o = self.pick(&opts);
                        w.push(o.into());
                    }
                }
                for _ in 0..self.rng.usize(1..4) {
                    let (sc, m) = (self.score(), self.member());
                    w.push(sc.into());
                    w.push(m.into());
                }
            }
            6 => w = s(&["ZINCRBY", &k, self.score(), self.member()]),
            7 => w = s(&["ZREM", &k, self.member(), self.member()]),
            8 => w = s(&["ZCARD", &k]),
            9 => w = s(&["ZSCORE", &k, self.member()]),
            10 => w = s(&["ZMSCORE", &k, self.member(), self.member(), "zz"]),
            11 => w = s(&["ZRANK", &k, self.member()]),
            12 => w = s(&["ZREVRANK", &k, self.member()]),
            13 => w = s(&["ZCOUNT", &k, self.bound(), self.bound()]),
            14 | 15 => {
                w = s(&["ZRANGE", &k]);
                match self.rng.u8(..2) {
                    0 => {
                        w.push(self.index());
                        w.push(self.index());
                    }
                    _ => {
                        w.push(self.bound().into());
                        w.push(self.bound().into());
                        w.push("BYSCORE".into());
                        self.limit(&mut w);
                    }
                }
                self.words(&mut w, &["REV", "WITHSCORES"]);
            }
            16 => {
                let name = self.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]);
                w = s(&[name, &k, self.bound(), self.bound()]);
                self.words(&mut w, &["WITHSCORES"]);
                self.limit(&mut w);
            }
            17 => {
                w = s(&["ZREVRANGE", &k, &self.index(), &self.index()]);
                self.words(&mut w, &["WITHSCORES"]);
            }
            18 => {
                let dst = self.key();
                w = s(&[
                    "ZRANGESTORE",
                    dst,
                    &k,
                    self.bound(),
                    self.bound(),
                    "BYSCORE",
                ]);
                self.words(&mut w, &["REV"]);
                self.limit(&mut w);
            }
            19 => w = s(&["ZREMRANGEBYSCORE", &k, self.bound(), self.bound()]),
            20 => w = s(&["ZREMRANGEBYRANK", &k, &self.index(), &self.index()]),
            21 if self.rng.u8(..4) == 0 => {
                let name = self.pick(&["BZPOPMIN", "BZPOPMAX"]);
                w = s(&[name, &k, self.key(), "0.01"]);
            }
            21 => {
                w = s(&[self.pick(&["ZPOPMIN", "ZPOPMAX"]), &k]);
                if self.rng.bool() {
                    w.push(self.rng.i64(-1..4).to_string());
                }
            }
            22 => {
                w = s(&["ZMPOP"]);
                self.keys(&mut w);
                w.push(self.pick(&["MIN", "MAX", "mid"]).into());
                if self.rng.bool() {
                    w.push("COUNT".into());
                    w.push(self.rng.i64(0..4).to_string());
                }
            }
            23..=26 => {
                let name = self.pick(&[
                    "ZUNION",
                    "ZINTER",
                    "ZDIFF",
                    "ZUNIONSTORE",
                    "ZINTERSTORE",
                    "ZDIFFSTORE",
                ]);
                w.push(name.into());
                if name.ends_with("STORE") {
                    let dst = self.key();
                    w.push(dst.into());
                }
                let n = self.keys(&mut w);
                if !name.starts_with("ZDIFF") {
                    if self.rng.bool() {
                        w.push("WEIGHTS".into());
                        for _ in 0..n {
                            let weight = self.pick(&["1", "2", "-1", "0", "0.5", "inf"]);
                            w.push(weight.into());
                        }
                    }
                    if self.rng.bool() {
                        w.push("AGGREGATE".into());
                        w.push(self.pick(&["SUM", "MIN", "MAX"]).into());
                    }
                }
                if !name.ends_with("STORE") && self.rng.bool() {
                    w.push("WITHSCORES".into());
                }
            }
            27 => {
                w = s(&["ZINTERCARD"]);
                self.keys(&mut w);
                if self.rng.bool() {
                    w.push("LIMIT".into());
                    w.push(self.rng.i64(0..3).to_string());
                }
            }
            28 => {
                w = s(&["ZRANDMEMBER", &k, self.pick(&["100", "0", "10"])]);
                self.words(&mut w, &["WITHSCORES"]);
            }
            29 => w = s(&["ZSCAN", &k, "0"]),
            // Lex commands on the all-zero-score key.
            30 => w = s(&["ZADD", "lx", "0", self.member(), "0", self.member()]),
            31 => {
                let name = self.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT"]);
                w = s(&[name, "lx", self.pick(&LEX_BOUNDS), self.pick(&LEX_BOUNDS)]);
                if name != "ZLEXCOUNT" {
                    self.limit(&mut w);
                }
            }
            32 => {
                w = s(&[
                    "ZRANGE",
                    "lx",
                    self.pick(&LEX_BOUNDS),
                    self.pick(&LEX_BOUNDS),
                    "BYLEX",
                ]);
                self.words(&mut w, &["REV"]);
                self.limit(&mut w);
            }
            _ => {
                w = match self.rng.u8(..5) {
                    4 => s(&["SADD", "st", self.member(), self.member()]),
                    0 => s(&[
                        "ZREMRANGEBYLEX",
                        "lx",
                        self.pick(&LEX_BOUNDS),
                        self.pick(&LEX_BOUNDS),
                    ]),
                    1 => s(&["DEL", &k]),
                    2 => s(&["SET", "str", "x"]),
                    _ => s(&[self.pick(&["ZCARD", "ZRANGE", "ZADD"]), "str", "0", "1"]),
                };
            }
        }
        w
    }
}

fn stream(seed: u64) -> Vec<Vec<Vec<u8>>> {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(seed),
    };
    stream_of(300, || g.command())
}

#[test]
fn zset_streams_match_redis_on_both_engines() {
    for engine in Pair::engines() {
        // RESP2, then RESP3 (scores as doubles, pairs nested).
        Pair::start(engine).run_seeds(0..40, 100..120, &stream);
    }
}

/// The blocking pops: argument errors, immediate pops, `MULTI` (never
/// blocks), in RESP2 and RESP3.
#[test]
fn blocking_pop_replies_match_redis() {
    let cases: &[&[&str]] = &[
        &["BZPOPMIN", "nokey", "nope"],
        &["BZPOPMIN", "nokey", "-1"],
        &["BZPOPMIN", "nokey", "inf"],
        &["BZPOPMIN", "nokey", "0.001"],
        &["SET", "s", "x"],
        &["BZPOPMAX", "s", "0.001"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["BZPOPMIN", "nokey", "z", "0"],
        &["BZPOPMAX", "z", "0"],
        &["BZMPOP", "0", "0", "z", "MIN"],
        &["BZMPOP", "x", "1", "z", "MIN"],
        &["BZMPOP", "-1", "1", "z", "MIN"],
        &["BZMPOP", "x", "1", "z", "UP"],
        &["BZMPOP", "0.001", "1", "nokey", "MIN", "COUNT", "0"],
        &["BZMPOP", "0.001", "1", "nokey", "MAX"],
        &["BZMPOP", "0", "2", "nokey", "z", "MAX", "COUNT", "5"],
        &["ZADD", "z", "1", "a"],
        &["MULTI"],
        &["BZPOPMIN", "nokey", "0"],
        &["BZMPOP", "0", "1", "nokey", "MIN"],
        &["BZPOPMIN", "z", "0"],
        &["EXEC"],
        // A script sees a score as Redis 7.0 prints it (%.17g).
        &["ZADD", "f", "1.1", "a"],
        &[
            "EVAL",
            "return redis.call('ZSCORE', KEYS[1], 'a')",
            "1",
            "f",
        ],
        &[
            "EVAL",
            "return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
            "1",
            "f",
        ],
    ];
    check_cases(cases);
}

/// Two clients wait on an empty key; one `ZADD` serves them first come,
/// first served, exactly as Redis does.
#[test]
fn blocked_pops_are_woken_in_order_as_in_redis() {
    use common::diff::RespConn;
    for engine in Pair::engines() {
        let pair = Pair::start(engine);
        let mut replies = Vec::new();
        for addr in [pair.redis_addr(), pair.ours_addr()] {
            let mut first = RespConn::connect(addr);
            let mut second = RespConn::connect(addr);
            let mut writer = RespConn::connect(addr);
            first.send(&[b"BZPOPMIN", b"other", b"q", b"0"]);
            std::thread::sleep(std::time::Duration::from_millis(100));
            second.send(&[b"BZMPOP", b"0", b"1", b"q", b"MAX", b"COUNT", b"2"]);
            std::thread::sleep(std::time::Duration::from_millis(100));
            let added = writer.call(&[
                b"ZADD", b"q", b"1", b"a", b"2", b"b", b"3", b"c", b"4", b"d",
            ]);
            replies.push((
                added,
                first.read_reply(),
                second.read_reply(),
                writer.call(&[b"ZRANGE", b"q", b"0", b"-1"]),
            ));
            // A timeout answers a null array.
            replies.push((
                first.call(&[b"BZPOPMAX", b"none", b"0.05"]),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            ));
        }
        assert_eq!(
            replies[0], replies[2],
            "the served pops differ from redis-server"
        );
        assert_eq!(
            replies[1], replies[3],
            "the timeout reply differs from redis-server"
        );
    }
}

/// A set past Redis's listpack size (a skiplist there): ranks, ranges,
/// limits and removals over more than one page of our score index.
#[test]
fn long_sets_match_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        let mut rng = fastrand::Rng::with_seed(11);
        let mut words: Vec<String> = vec!["ZADD".into(), "big".into()];
        for i in 0..2000 {
            words.push((rng.i64(-50..50) as f64 / 4.0).to_string());
            words.push(format!("m{i}"));
        }
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        pair.check(&args, "fill");
        for round in 0..80 {
            let a = rng.i64(-15..15).to_string();
            let b = rng.i64(-15..15).to_string();
            let i = rng.i64(-2100..2100).to_string();
            let m = format!("m{}", rng.u32(..2100));
            let command = match round % 10 {
                0 => cmd(&["ZRANK", "big", &m]),
                1 => cmd(&["ZREVRANK", "big", &m]),
                2 => cmd(&["ZCOUNT", "big", &format!("({a}"), &b]),
                3 => cmd(&[
                    "ZRANGE",
                    "big",
                    &i,
                    &(rng.i64(-2100..2100)).to_string(),
                    "WITHSCORES",
                ]),
                4 => cmd(&[
                    "ZRANGEBYSCORE",
                    "big",
                    &a,
                    &b,
                    "LIMIT",
                    &rng.u32(..600).to_string(),
                    "7",
                ]),
                5 => cmd(&[
                    "ZREVRANGEBYSCORE",
                    "big",
                    &b,
                    &a,
                    "WITHSCORES",
                    "LIMIT",
                    "530",
                    "3",
                ]),
                6 => cmd(&[
                    "ZREMRANGEBYRANK",
                    "big",
                    &i,
                    &rng.i64(-2100..2100).to_string(),
                ]),
                7 => cmd(&["ZPOPMIN", "big", &rng.u32(..700).to_string()]),
                8 => cmd(&["ZADD", "big", "INCR", &a, &m]),
                _ => cmd(&[
                    "ZREMRANGEBYSCORE",
                    "big",
                    &format!("({a}"),
                    &format!("({b}"),
                ]),
            };
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            pair.check(&args, &format!("round {round}"));
        }
        pair.check(&[b"ZCARD", b"big"], "card");
        pair.check(
            &[b"ZRANDMEMBER", b"big", b"100000", b"WITHSCORES"],
            "all, highest first",
        );
        pair.check(
            &[
                b"ZUNIONSTORE",
                b"u",
                b"2",
                b"big",
                b"big",
                b"WEIGHTS",
                b"1",
                b"-2",
            ],
            "union",
        );
        pair.check(
            &[b"ZRANGE", b"u", b"0", b"-1", b"WITHSCORES"],
            "union contents",
        );
    }
}
