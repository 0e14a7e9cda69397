//! Fuzzes the command layer: random command vectors run against a keyspace
//! through `kv::LocalClient` (dispatch, MULTI/EXEC, WATCH, pub/sub, CONFIG,
//! pipelined write batches), with no socket, not only the parser.
//!
//! Input format, consumed byte by byte until it runs out:
//! - a command is `name, argc, args...`: `name` picks from [`NAMES`] (the
//!   command table plus a few unknown names), `argc` is `0..=7`;
//! - an argument is one selector byte: from [`WORDS`] (keys, options,
//!   settings), from [`NUMBERS`] (the integers where bugs live), or raw
//!   bytes (the next byte is a length, then that many bytes);
//! - every command also picks the client (two share the server) and
//!   whether it joins the current pipelined batch or runs alone.
//!
//! It asserts that nothing panics, that every reply encodes in RESP2 and
//! RESP3, and that the memory stays bounded: the server starts with
//! `proto-max-bulk-len 1mb`, and raising it is skipped (an operator's
//! setting is trusted; a client's numbers are what is being tested).
#![no_main]

use bytes::{Bytes, BytesMut};
use kv::LocalClient;
use kv::protocol::{Frame, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "get",
    "set",
    "setnx",
    "setex",
    "psetex",
    "getset",
    "getdel",
    "getex",
    "mget",
    "mset",
    "msetnx",
    "incr",
    "incrby",
    "decr",
    "decrby",
    "incrbyfloat",
    "append",
    "strlen",
    "getrange",
    "setrange",
    "del",
    "unlink",
    "exists",
    "touch",
    "type",
    "expire",
    "pexpire",
    "expireat",
    "pexpireat",
    "ttl",
    "pttl",
    "expiretime",
    "pexpiretime",
    "persist",
    "rename",
    "renamenx",
    "keys",
    "scan",
    "randomkey",
    "ping",
    "echo",
    "hello",
    "auth",
    "quit",
    "reset",
    "select",
    "dbsize",
    "flushdb",
    "flushall",
    "time",
    "info",
    "command",
    "lastsave",
    "client",
    "config",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "publish",
    "pubsub",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "lpush",
    "rpush",
    "lpushx",
    "rpushx",
    "lpop",
    "rpop",
    "lrange",
    "llen",
    "lindex",
    "lset",
    "linsert",
    "lrem",
    "ltrim",
    "lpos",
    "lmove",
    "rpoplpush",
    "lmpop",
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
    "blmpop",
    "setbit",
    "getbit",
    "bitcount",
    "bitpos",
    "bitop",
    "bitfield",
    "bitfield_ro",
    "lcs",
    "substr",
    "copy",
    "object",
    "sort",
    "sort_ro",
    "pfadd",
    "pfcount",
    "pfmerge",
    "pfdebug",
    "zadd",
    "zincrby",
    "zrem",
    "zcard",
    "zscore",
    "zmscore",
    "zrank",
    "zrevrank",
    "zcount",
    "zlexcount",
    "zrange",
    "zrangestore",
    "zrevrange",
    "zrangebyscore",
    "zrevrangebyscore",
    "zrangebylex",
    "zrevrangebylex",
    "zremrangebyrank",
    "zremrangebyscore",
    "zremrangebylex",
    "zpopmin",
    "zpopmax",
    "zmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "zunion",
    "zinter",
    "zdiff",
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zintercard",
    "zrandmember",
    "zscan",
    "geoadd",
    "geopos",
    "geodist",
    "geohash",
    "geosearch",
    "geosearchstore",
    "georadius",
    "georadius_ro",
    "georadiusbymember",
    "georadiusbymember_ro",
    "nosuch",
    "SET",
    "Get",
];

const WORDS: &[&str] = &[
    "k",
    "k0",
    "k1",
    "{k}x",
    "",
    "*",
    "k*",
    "[a-",
    "\\",
    "nx",
    "xx",
    "gt",
    "lt",
    "get",
    "ex",
    "px",
    "exat",
    "pxat",
    "keepttl",
    "persist",
    "count",
    "match",
    "type",
    "string",
    "none",
    "sync",
    "async",
    "id",
    "setname",
    "getname",
    "setinfo",
    "lib-name",
    "list",
    "info",
    "no-evict",
    "channels",
    "numsub",
    "numpat",
    "docs",
    "set",
    "maxclients",
    "timeout",
    "maxmemory",
    "maxmemory-policy",
    "allkeys-lru",
    "allkeys-lfu",
    "volatile-ttl",
    "maxmemory-samples",
    "client-output-buffer-limit",
    "pubsub 1kb 100 0",
    "pubsub 0 0 0",
    "normal 1 2 3",
    "hz",
    "requirepass",
    "default",
    "1.5",
    "inf",
    "-inf",
    "nan",
    "1e308",
    "3",
    "2",
    "news.*",
    "left",
    "right",
    "before",
    "after",
    "rank",
    "maxlen",
    "unblock",
    "bit",
    "byte",
    "and",
    "not",
    "overflow",
    "sat",
    "fail",
    "wrap",
    "incrby",
    "u8",
    "i64",
    "u63",
    "#3",
    "#99999999",
    "idx",
    "len",
    "withmatchlen",
    "minmatchlen",
    "alpha",
    "desc",
    "store",
    "by",
    "limit",
    "k*->f",
    "#",
    "replace",
    "db",
    "encoding",
    "freq",
    "getreg",
    "todense",
    "decode",
    "reply",
    "skip",
    "off",
    "on",
    "no-touch",
    "ch",
    "incr",
    "withscores",
    "withscore",
    "byscore",
    "bylex",
    "rev",
    "weights",
    "aggregate",
    "sum",
    "min",
    "max",
    "(1",
    "[a",
    "(a",
    "-",
    "+",
    "frommember",
    "fromlonlat",
    "byradius",
    "bybox",
    "withdist",
    "withcoord",
    "withhash",
    "any",
    "asc",
    "storedist",
    "km",
    "mi",
    "m",
    "ft",
    "13.361389",
    "38.115556",
    "85.05112878",
    "180",
    "-180",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "10",
    "100",
    "1000000000",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "1048576",
    "1048577",
    "536870912",
    "-0",
    "007",
];

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn arg(&mut self) -> Option<Bytes> {
        let selector = self.byte()? as usize;
        let words = WORDS.len();
        let numbers = NUMBERS.len();
        Some(if selector < words {
            Bytes::from_static(WORDS[selector].as_bytes())
        } else if selector < words + numbers {
            Bytes::from_static(NUMBERS[selector - words].as_bytes())
        } else {
            let len = (self.byte()? as usize).min(self.0.len());
            let (raw, rest) = self.0.split_at(len);
            self.0 = rest;
            Bytes::copy_from_slice(raw)
        })
    }
}

/// Whether the command would raise `proto-max-bulk-len` (see the docs).
fn raises_bulk_limit(args: &[Bytes]) -> bool {
    args.len() > 2
        && args[0].eq_ignore_ascii_case(b"config")
        && args[1].eq_ignore_ascii_case(b"set")
        && args[2..]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(b"proto-max-bulk-len"))
}

fn check(reply: &Frame) {
    for version in [ProtocolVersion::Resp2, ProtocolVersion::Resp3] {
        let mut out = BytesMut::new();
        reply.encode(version, &mut out);
        assert!(!out.is_empty());
    }
}

fn flush(client: &mut LocalClient, batch: &mut Vec<Vec<Bytes>>) {
    if batch.is_empty() {
        return;
    }
    for reply in client.run_batch(std::mem::take(batch)) {
        check(&reply);
    }
}

fuzz_target!(|data: &[u8]| {
    let first = LocalClient::memory(kv::Config {
        engine: kv::config::EngineKind::Memory,
        proto_max_bulk_len: 1024 * 1024,
        ..kv::Config::default()
    });
    let second = first.connect();
    let mut clients = [first, second];
    let mut batches: [Vec<Vec<Bytes>>; 2] = [Vec::new(), Vec::new()];
    let mut input = Input(data);
    while let Some(name) = input.byte() {
        let Some(shape) = input.byte() else { break };
        let mut args = vec![Bytes::from_static(
            NAMES[name as usize % NAMES.len()].as_bytes(),
        )];
        for _ in 0..(shape & 7) {
            match input.arg() {
                Some(arg) => args.push(arg),
                None => break,
            }
        }
        if raises_bulk_limit(&args) {
            continue;
        }
        let who = usize::from(shape & 8 != 0);
        let other = 1 - who;
        // Keep the two clients' commands in order: flush the other's batch.
        flush(&mut clients[other], &mut batches[other]);
        if shape & 16 != 0 {
            batches[who].push(args);
            if batches[who].len() >= 16 {
                flush(&mut clients[who], &mut batches[who]);
            }
        } else {
            flush(&mut clients[who], &mut batches[who]);
            let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            check(&clients[who].run(&argv));
        }
        if clients[who].closed() {
            flush(&mut clients[who], &mut batches[who]);
            clients[who] = clients[other].connect();
        }
        let _ = clients[0].messages();
        let _ = clients[1].messages();
    }
    for who in 0..2 {
        flush(&mut clients[who], &mut batches[who]);
    }
});
