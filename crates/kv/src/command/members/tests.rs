//! Random argument vectors for every hash and set command, on both
//! engines: no panic, every reply encodes in RESP2 and RESP3, and the
//! collections' stored lengths stay true.

use bytes::BytesMut;

use super::testing::{each_engine, texts};
use crate::protocol::{Frame, ProtocolVersion};

const COMMANDS: &[&str] = &[
    "HSET",
    "HSETNX",
    "HGET",
    "HMGET",
    "HMSET",
    "HDEL",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HEXISTS",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HSTRLEN",
    "HSCAN",
    "HRANDFIELD",
    "SADD",
    "SREM",
    "SMEMBERS",
    "SISMEMBER",
    "SMISMEMBER",
    "SCARD",
    "SPOP",
    "SRANDMEMBER",
    "SMOVE",
    "SINTER",
    "SUNION",
    "SDIFF",
    "SINTERSTORE",
    "SUNIONSTORE",
    "SDIFFSTORE",
    "SINTERCARD",
    "SSCAN",
    "DEL",
    "SET",
    "SCAN",
    "RENAME",
];

const WORDS: &[&str] = &[
    "h",
    "s",
    "t",
    "str",
    "a",
    "b",
    "",
    "*",
    "a*",
    "count",
    "match",
    "novalues",
    "withvalues",
    "limit",
    "type",
    "hash",
    "1.5",
    "inf",
    "-inf",
    "nan",
    "1e308",
    "0",
    "1",
    "-1",
    "2",
    "3",
    "-3",
    "10",
    "1000",
    "-1000",
    "1048576",
    "-1048577",
    "9223372036854775807",
    "-9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "4611686018427387904",
    "-4611686018427387904",
    "007",
    "-0",
];

#[test]
fn random_commands_never_panic_and_lengths_stay_true() {
    for seed in 0..4 {
        each_engine(|c| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut ok = 0;
            for _ in 0..1500 {
                let name = COMMANDS[rng.usize(..COMMANDS.len())];
                let mut args: Vec<&[u8]> = vec![name.as_bytes()];
                if rng.u8(..5) > 0 {
                    args.push(["h", "s", "t", "str"][rng.usize(..4)].as_bytes());
                }
                for _ in 0..rng.usize(0..7) {
                    args.push(WORDS[rng.usize(..WORDS.len())].as_bytes());
                }
                let reply = c.run(&args);
                ok += usize::from(!reply.is_error());
                for version in [ProtocolVersion::Resp2, ProtocolVersion::Resp3] {
                    let mut out = BytesMut::new();
                    reply.encode(version, &mut out);
                    assert!(!out.is_empty());
                }
            }
            assert!(ok > 300, "only {ok} commands did not fail");
            // Every stored length is the number of elements.
            for (key, len, all) in [
                ("h", "HLEN", "HKEYS"),
                ("s", "SCARD", "SMEMBERS"),
                ("t", "SCARD", "SMEMBERS"),
            ] {
                let Frame::Integer(n) = c.run(&[len.as_bytes(), key.as_bytes()]) else {
                    continue; // another type now
                };
                let listed = texts(&c.run(&[all.as_bytes(), key.as_bytes()])).len();
                assert_eq!(n as usize, listed, "{key}");
            }
        });
    }
}
