//! Keyspace notifications compared with a real `redis-server`: the same
//! commands on both, a `PSUBSCRIBE __key*@0__:*` subscriber on each, and the
//! published messages compared in order (see `common/diff.rs`).

use crate::common;

use common::diff::{Client, Pair, RespConn, wait_blocked};

/// Reads a subscriber's messages up to the reply of a `PING` sent after
/// the commands (a marker: every message published before it came first).
fn drain(sub: &mut RespConn) -> Vec<String> {
    sub.send(&[b"PING"]);
    let mut out = Vec::new();
    loop {
        let reply = sub.read_reply();
        let text = String::from_utf8_lossy(&reply).into_owned();
        if text.contains("pong") {
            return out;
        }
        out.push(text);
    }
}

fn subscriber(addr: std::net::SocketAddr) -> RespConn {
    let mut sub = RespConn::connect(addr);
    let reply = sub.call(&[b"PSUBSCRIBE", b"__key*@0__:*"]);
    assert!(String::from_utf8_lossy(&reply).contains("psubscribe"));
    sub
}

/// Both servers with every event class on, and a subscriber on each.
struct Watched {
    pair: Pair,
    theirs: RespConn,
    ours: RespConn,
    /// Commands whose events differed, with both event lists.
    mismatches: Vec<String>,
}

impl Watched {
    fn start(engine: kv::config::EngineKind) -> Watched {
        let mut pair = Pair::start(engine);
        pair.check(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"], "");
        let theirs = subscriber(pair.redis_addr());
        let ours = subscriber(pair.ours_addr());
        Watched {
            pair,
            theirs,
            ours,
            mismatches: Vec::new(),
        }
    }

    /// Runs each command on both (replies compared), then compares the
    /// events each one published.
    fn run(&mut self, commands: &[&[&str]]) {
        for command in commands {
            let args: Vec<&[u8]> = command.iter().map(|w| w.as_bytes()).collect();
            if command[0] == "SPOP" && command.len() == 3 {
                // Random members (the events do not depend on which).
                self.pair.check_shape(&args, "");
            } else {
                self.pair.check(&args, "");
            }
            self.compare(&format!("after {command:?}"));
        }
    }

    /// Records a mismatch (all of them are reported at the end).
    fn compare(&mut self, context: &str) {
        let (theirs, ours) = (events(&mut self.theirs), events(&mut self.ours));
        if ours != theirs {
            self.mismatches.push(format!(
                "{context}\n    redis: {theirs:?}\n    ours:  {ours:?}"
            ));
        }
    }

    fn assert_same(&self) {
        assert!(
            self.mismatches.is_empty(),
            "events differ from redis-server:\n{}",
            self.mismatches.join("\n")
        );
    }
}

/// The messages a subscriber got, each as `channel payload`.
fn events(sub: &mut RespConn) -> Vec<String> {
    drain(sub)
        .iter()
        .map(|message| {
            // *4 $8 pmessage $12 pattern $n channel $m payload
            let parts: Vec<&str> = message.split("\r\n").collect();
            format!("{} {}", parts[6], parts[8])
        })
        .collect()
}

#[test]
fn events_match_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        pair.check(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"], "");
        pair.check(&[b"CONFIG", b"GET", b"notify-keyspace-events"], "");
        let mut theirs = subscriber(pair.redis_addr());
        let mut ours = subscriber(pair.ours_addr());
        let commands: &[&[&[u8]]] = &[
            &[b"SET", b"a", b"1"],
            &[b"INCR", b"a"],
            &[b"INCRBY", b"a", b"5"],
            &[b"DECR", b"a"],
            &[b"INCRBYFLOAT", b"a", b"1.5"],
            &[b"APPEND", b"a", b"x"],
            &[b"SETRANGE", b"a", b"0", b"zz"],
            &[b"MSET", b"b", b"1", b"c", b"2"],
            &[b"EXPIRE", b"b", b"100"],
            &[b"PERSIST", b"b"],
            &[b"RENAME", b"b", b"d"],
            &[b"DEL", b"c", b"d", b"missing"],
            &[b"GETDEL", b"a"],
            &[b"GET", b"nothing"],
            &[b"SET", b"t", b"v", b"PX", b"1"],
        ];
        for command in commands {
            pair.check(command, "");
            assert_eq!(drain(&mut ours), drain(&mut theirs), "after {command:?}");
        }
        // Lazy expiry raises `expired`.
        std::thread::sleep(std::time::Duration::from_millis(20));
        pair.check(&[b"GET", b"t"], "");
        assert_eq!(drain(&mut ours), drain(&mut theirs), "lazy expiry");
        // Only the classes asked for.
        pair.check(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"Eg"], "");
        pair.check(&[b"CONFIG", b"GET", b"notify-keyspace-events"], "");
        for command in [&[&b"SET"[..], b"s", b"1"][..], &[b"DEL", b"s"]] {
            pair.check(command, "");
            assert_eq!(drain(&mut ours), drain(&mut theirs), "after {command:?}");
        }
        for bad in [&b"Kq"[..], b"K E"] {
            pair.check(&[b"CONFIG", b"SET", b"notify-keyspace-events", bad], "");
        }
    }
}

/// Events that depend on a command's options or outcome, family by family.
const FAMILIES: &[(&str, &[&[&str]])] = &[
    (
        "strings",
        &[
            &["SET", "s", "1", "GET"],
            &["SET", "s", "2", "EX", "100", "GET"],
            &["SET", "s", "3", "KEEPTTL"],
            &["SET", "s", "4", "NX"],
            &["SET", "s", "5", "XX", "PX", "100000"],
            &["SET", "new", "5", "XX"],
            &["SETNX", "s", "x"],
            &["SETNX", "s2", "x"],
            &["SETEX", "s2", "100", "y"],
            &["PSETEX", "s2", "100000", "y"],
            &["GETSET", "s2", "z"],
            &["MSETNX", "m1", "1", "m2", "2"],
            &["MSETNX", "m1", "1", "m3", "2"],
            &["INCRBY", "m1", "2"],
            &["DECRBY", "m1", "2"],
            &["INCRBYFLOAT", "m1", "0.5"],
            &["GETEX", "s"],
            &["GETEX", "s", "EX", "100"],
            &["GETEX", "s", "PERSIST"],
            &["GETEX", "s", "PERSIST"],
            &["GETEX", "s", "PXAT", "1000"],
            &["GETEX", "s", "EX", "100"],
            &["GETEX", "s2", "EXAT", "1"],
            &["GETDEL", "s2"],
            &["GETDEL", "m1"],
            &["SETRANGE", "m2", "0", ""],
            &["SETRANGE", "m4", "2", "ab"],
            &["APPEND", "m4", "cd"],
            &["LCS", "m2", "m4"],
        ],
    ),
    (
        "generic",
        &[
            &["SET", "g", "1"],
            &["EXPIRE", "g", "100"],
            &["EXPIRE", "g", "50", "GT"],
            &["PEXPIRE", "g", "50000", "LT"],
            &["EXPIREAT", "g", "99999999999", "NX"],
            &["PEXPIREAT", "g", "99999999999000", "XX"],
            &["PERSIST", "g"],
            &["PERSIST", "g"],
            &["EXPIRE", "g", "-1"],
            &["SET", "g", "1"],
            &["PEXPIRE", "g", "0"],
            &["SET", "g", "1"],
            &["EXPIREAT", "g", "1"],
            &["SET", "g", "1"],
            &["PEXPIREAT", "g", "1"],
            &["EXPIRE", "missing", "100"],
            &["SET", "g", "1"],
            &["RENAME", "g", "h"],
            &["RENAME", "h", "h"],
            &["RENAMENX", "h", "g"],
            &["SET", "i", "2"],
            &["RENAMENX", "g", "i"],
            &["RENAME", "g", "i"],
            &["COPY", "i", "j"],
            &["COPY", "i", "j"],
            &["COPY", "i", "j", "REPLACE"],
            &["TOUCH", "i", "j"],
            &["EXISTS", "i"],
            &["TYPE", "i"],
            &["UNLINK", "i", "j", "missing"],
            &["RPUSH", "l", "3", "1", "2"],
            &["SORT", "l"],
            &["SORT", "l", "STORE", "sorted"],
            &["SORT", "missing", "STORE", "sorted"],
            &["SORT", "missing", "STORE", "sorted"],
            &["SORT_RO", "l"],
            &["SADD", "set", "b", "a"],
            &["SORT", "set", "ALPHA", "STORE", "sorted"],
            &["DEL", "l", "set", "sorted"],
        ],
    ),
    (
        "lists",
        &[
            &["LPUSH", "l", "a", "b"],
            &["RPUSH", "l", "c"],
            &["LPUSHX", "l", "d"],
            &["RPUSHX", "l", "e"],
            &["LPUSHX", "missing", "d"],
            &["LINSERT", "l", "BEFORE", "a", "x"],
            &["LINSERT", "l", "BEFORE", "zz", "x"],
            &["LSET", "l", "0", "y"],
            &["LPOP", "l"],
            &["RPOP", "l", "2"],
            &["LMPOP", "1", "l", "LEFT"],
            &["LMPOP", "2", "missing", "l", "RIGHT", "COUNT", "1"],
            &["RPUSH", "l", "1", "2", "3", "4"],
            &["BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "2"],
            &["BLMPOP", "0", "1", "l", "LEFT"],
            &["LMOVE", "l", "l2", "LEFT", "RIGHT"],
            &["RPUSH", "l", "1", "2", "3", "4"],
            &["LMOVE", "l", "l2", "RIGHT", "LEFT"],
            &["LMOVE", "l", "l", "LEFT", "RIGHT"],
            &["LMOVE", "l", "l", "RIGHT", "RIGHT"],
            &["BLMOVE", "l", "l2", "LEFT", "LEFT", "0"],
            &["RPOPLPUSH", "l", "l2"],
            &["BRPOPLPUSH", "l2", "l", "0"],
            &["LMOVE", "missing", "l", "LEFT", "LEFT"],
            &["BLPOP", "l", "0"],
            &["BRPOP", "missing", "l2", "0"],
            &["LTRIM", "l2", "0", "0"],
            &["LTRIM", "l2", "0", "-1"],
            &["LREM", "l2", "0", "nothing"],
            &["LTRIM", "l2", "1", "0"],
            &["RPUSH", "l3", "a", "b", "a"],
            &["LREM", "l3", "1", "a"],
            &["LREM", "l3", "0", "a"],
            &["LREM", "l3", "0", "b"],
            &["RPUSH", "l4", "a"],
            &["LMOVE", "l4", "l4", "LEFT", "LEFT"],
            &["RPOPLPUSH", "l4", "l4"],
            &["LMOVE", "l4", "l5", "LEFT", "LEFT"],
            &["LPOP", "l5", "5"],
            &["FLUSHALL"],
        ],
    ),
    (
        "sets",
        &[
            &["SADD", "s", "a", "b", "c"],
            &["SADD", "s", "a"],
            &["SREM", "s", "a", "zz"],
            &["SREM", "s", "zz"],
            &["SMOVE", "s", "t", "b"],
            &["SMOVE", "s", "t", "zz"],
            &["SMOVE", "s", "t", "c"],
            &["DEL", "t"],
            &["SADD", "t", "x"],
            &["SMOVE", "t", "t", "x"],
            &["SPOP", "t"],
            &["SADD", "t", "1", "2", "3"],
            &["SPOP", "t", "0"],
            &["SPOP", "t", "3"],
            &["SADD", "t", "1", "2", "3"],
            &["SPOP", "t", "10"],
            &["SADD", "t", "1", "2", "3", "4", "5", "6"],
            &["SPOP", "t", "2"],
            &["SPOP", "t", "1"],
            &["SPOP", "t", "3"],
            &["SADD", "a", "1", "2"],
            &["SADD", "b", "2", "3"],
            &["SINTERSTORE", "d", "a", "b"],
            &["SUNIONSTORE", "d", "a", "b"],
            &["SDIFFSTORE", "d", "a", "b"],
            &["SINTERSTORE", "d", "a", "missing"],
            &["SINTERSTORE", "d", "a", "missing"],
            &["SUNIONSTORE", "d", "missing"],
            &["SDIFFSTORE", "a", "a", "a"],
            &["SINTERCARD", "1", "b"],
            &["SPOP", "b", "1"],
            &["SREM", "b", "2", "3"],
            &["FLUSHALL"],
        ],
    ),
    (
        "hashes",
        &[
            &["HSET", "h", "a", "1", "b", "2"],
            &["HSET", "h", "a", "1"],
            &["HMSET", "h", "c", "3"],
            &["HSETNX", "h", "c", "4"],
            &["HSETNX", "h", "d", "4"],
            &["HINCRBY", "h", "a", "2"],
            &["HINCRBYFLOAT", "h", "a", "2.5"],
            &["HDEL", "h", "zz"],
            &["HDEL", "h", "a", "b"],
            &["HDEL", "h", "c", "d"],
            &["HGETALL", "h"],
        ],
    ),
    (
        "sorted sets",
        &[
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
            &["ZADD", "z", "1", "a"],
            &["ZADD", "z", "INCR", "5", "a"],
            &["ZADD", "z", "NX", "INCR", "5", "a"],
            &["ZADD", "z", "XX", "CH", "7", "a", "8", "e"],
            &["ZADD", "z", "GT", "1", "a"],
            &["ZINCRBY", "z", "1", "b"],
            &["ZREM", "z", "zz"],
            &["ZREM", "z", "a"],
            &["ZPOPMIN", "z"],
            &["ZPOPMAX", "z"],
            &["ZPOPMIN", "missing"],
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
            &["ZMPOP", "1", "z", "MIN"],
            &["ZMPOP", "2", "missing", "z", "MAX", "COUNT", "2"],
            &["BZMPOP", "0", "1", "z", "MAX"],
            &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
            &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "1"],
            &["BZPOPMIN", "z", "0"],
            &["BZPOPMAX", "missing", "z", "0"],
            &[
                "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
            ],
            &["ZREMRANGEBYSCORE", "z", "1", "1"],
            &["ZREMRANGEBYSCORE", "z", "100", "200"],
            &["ZREMRANGEBYRANK", "z", "0", "0"],
            &["ZREMRANGEBYLEX", "z", "-", "[c"],
            &["ZADD", "y", "1", "d", "9", "q"],
            &["ZUNIONSTORE", "u", "2", "z", "y"],
            &["ZINTERSTORE", "u", "2", "z", "y"],
            &["ZDIFFSTORE", "u", "2", "z", "y"],
            &["ZINTERSTORE", "u", "2", "z", "missing"],
            &["ZINTERSTORE", "u", "2", "z", "missing"],
            &["ZRANGESTORE", "r", "z", "0", "-1"],
            &["ZRANGESTORE", "r", "z", "5", "6"],
            &["ZRANGESTORE", "r", "z", "5", "6"],
            &["ZREMRANGEBYRANK", "z", "0", "-1"],
            &["ZPOPMIN", "y", "5"],
            &["FLUSHALL"],
        ],
    ),
    (
        "geo",
        &[
            &["GEOADD", "g", "13.361389", "38.115556", "Palermo"],
            &["GEOADD", "g", "15.087269", "37.502669", "Catania"],
            &["GEOADD", "g", "NX", "15.087269", "37.502669", "Catania"],
            &[
                "GEOSEARCHSTORE",
                "d",
                "g",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
            ],
            &[
                "GEOSEARCHSTORE",
                "d",
                "g",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
                "STOREDIST",
            ],
            &[
                "GEOSEARCHSTORE",
                "d",
                "g",
                "FROMLONLAT",
                "0",
                "0",
                "BYRADIUS",
                "1",
                "km",
            ],
            &[
                "GEOSEARCHSTORE",
                "d",
                "g",
                "FROMLONLAT",
                "0",
                "0",
                "BYRADIUS",
                "1",
                "km",
            ],
            &["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "e"],
            &["GEORADIUS", "g", "15", "37", "200", "km", "STOREDIST", "e"],
            &["GEORADIUSBYMEMBER", "g", "Palermo", "1", "km", "STORE", "e"],
            &["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "e"],
            &["ZREM", "g", "Palermo", "Catania"],
        ],
    ),
    (
        "bitmaps and hyperloglogs",
        &[
            &["SETBIT", "b", "7", "1"],
            &["SETBIT", "b", "7", "1"],
            &["BITOP", "AND", "d", "b", "b"],
            &["BITOP", "OR", "d", "missing"],
            &["BITOP", "OR", "d", "missing"],
            &["BITOP", "NOT", "d", "b"],
            &["BITFIELD", "b", "GET", "u8", "0"],
            &["BITFIELD", "b", "SET", "u8", "0", "3"],
            &["BITFIELD", "b", "INCRBY", "u8", "0", "3", "GET", "u8", "0"],
            &[
                "BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9",
            ],
            &["GET", "c"],
            &[
                "BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "1",
            ],
            &["BITFIELD_RO", "b", "GET", "u8", "0"],
            &["PFADD", "p", "a", "b"],
            &["PFADD", "p", "a"],
            &["PFADD", "q"],
            &["PFADD", "q"],
            &["PFCOUNT", "p", "q"],
            &["PFMERGE", "r", "p", "q"],
            &["PFMERGE", "r"],
            &["FLUSHALL"],
        ],
    ),
    (
        "streams",
        &[
            &["XADD", "x", "1-1", "a", "1"],
            &["XADD", "x", "MAXLEN", "1", "2-1", "a", "2"],
            &["XADD", "x", "NOMKSTREAM", "3-1", "a", "3"],
            &["XADD", "y", "NOMKSTREAM", "3-1", "a", "3"],
            &["XTRIM", "x", "MAXLEN", "0"],
            &["XTRIM", "x", "MAXLEN", "0"],
            &["XADD", "x", "4-1", "a", "4"],
            &["XDEL", "x", "4-1", "9-9"],
            &["XDEL", "x", "9-9"],
            &["XSETID", "x", "10-1"],
            &["XGROUP", "CREATE", "x", "g", "0"],
            &["XGROUP", "CREATE", "new", "g", "$", "MKSTREAM"],
            &["XGROUP", "CREATECONSUMER", "x", "g", "c"],
            &["XGROUP", "CREATECONSUMER", "x", "g", "c"],
            &["XADD", "x", "11-1", "a", "5"],
            &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "x", ">"],
            &["XCLAIM", "x", "g", "c3", "0", "11-1"],
            &["XAUTOCLAIM", "x", "g", "c4", "0", "0"],
            &["XACK", "x", "g", "11-1"],
            &["XGROUP", "SETID", "x", "g", "0"],
            &["XGROUP", "DELCONSUMER", "x", "g", "c"],
            &["XGROUP", "DESTROY", "x", "g"],
            &["XGROUP", "DESTROY", "x", "g"],
            &["FLUSHALL"],
        ],
    ),
    (
        "transactions and scripts",
        &[
            &["MULTI"],
            &["SET", "a", "1"],
            &["LPUSH", "l", "x"],
            &["ZADD", "z", "INCR", "1", "m"],
            &["EXEC"],
            &[
                "EVAL",
                "redis.call('set', KEYS[1], '2', 'get'); return redis.call('lpop', KEYS[2])",
                "2",
                "a",
                "l",
            ],
            &["FLUSHALL"],
        ],
    ),
];

#[test]
fn option_and_outcome_events_match_redis() {
    for engine in Pair::engines() {
        let mut watched = Watched::start(engine);
        for (family, commands) in FAMILIES {
            eprintln!("{family} on {engine:?}");
            watched.run(commands);
        }
        watched.assert_same();
    }
}

/// A client blocked on an empty key is served by a later push: the push's
/// event, then the pop's, as in Redis.
#[test]
fn served_blocked_clients_raise_redis_events() {
    for engine in Pair::engines() {
        let mut watched = Watched::start(engine);
        let blocked_commands: &[(&[&str], &[&str])] = &[
            (&["BLPOP", "l", "0"], &["RPUSH", "l", "a", "b"]),
            (&["BRPOP", "l", "0"], &["LPUSH", "l", "a"]),
            (
                &["BLMOVE", "l", "d", "RIGHT", "LEFT", "0"],
                &["RPUSH", "l", "c"],
            ),
            (&["BRPOPLPUSH", "l", "d", "0"], &["RPUSH", "l", "c"]),
            (
                &["BLMPOP", "0", "1", "l", "LEFT", "COUNT", "5"],
                &["RPUSH", "l", "e"],
            ),
            (&["BZPOPMIN", "z", "0"], &["ZADD", "z", "1", "a", "2", "b"]),
            (&["BZPOPMAX", "z", "0"], &["ZADD", "z", "1", "a"]),
            (
                &["BZMPOP", "0", "1", "z", "MAX", "COUNT", "3"],
                &["ZADD", "z", "3", "c"],
            ),
        ];
        for (block, serve) in blocked_commands {
            let mut client = Client::connect(&watched.pair, "2");
            client.send(block);
            wait_blocked(&mut watched.pair, 1);
            // The served client's events are all out once it has its reply.
            let args: Vec<&[u8]> = serve.iter().map(|w| w.as_bytes()).collect();
            watched.pair.check(&args, "");
            client.expect_same(&format!("{block:?}"));
            watched.compare(&format!("{block:?} served by {serve:?}"));
            watched.run(&[&["DEL", "l", "d", "z"]]);
        }
        watched.assert_same();
    }
}
