//! List commands without a socket ([`LocalClient`]), on both engines:
//! replies, the encoding's edge cases (shifts on either side, pages,
//! emptied lists), bad input and huge counts.

use bytes::Bytes;

use crate::command::local::LocalClient;
use crate::config::{Config, FsyncPolicy};
use crate::engine::lsm::LsmEngine;
use crate::protocol::Frame;

/// A memory client and an lsm client (with its temp dir).
fn clients() -> Vec<(LocalClient, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let lsm = LsmEngine::open(dir.path(), FsyncPolicy::No).expect("open lsm");
    vec![
        (LocalClient::memory(Config::default()), None),
        (LocalClient::with_engine(Config::default(), lsm), Some(dir)),
    ]
}

fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

fn bulks(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|i| bulk(i)).collect())
}

fn ints(items: &[i64]) -> Frame {
    Frame::Array(items.iter().map(|&i| Frame::Integer(i)).collect())
}

fn run(c: &mut LocalClient, words: &[&str]) -> Frame {
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    c.run(&args)
}

fn range(c: &mut LocalClient, key: &str) -> Frame {
    run(c, &["LRANGE", key, "0", "-1"])
}

#[test]
fn pushes_pops_and_reads_at_both_ends() {
    for (mut c, _dir) in clients() {
        let c = &mut c;
        assert_eq!(run(c, &["RPUSH", "l", "b", "c"]), Frame::Integer(2));
        assert_eq!(run(c, &["LPUSH", "l", "a", "z"]), Frame::Integer(4));
        assert_eq!(range(c, "l"), bulks(&["z", "a", "b", "c"]));
        assert_eq!(run(c, &["LINDEX", "l", "-1"]), bulk("c"));
        assert_eq!(run(c, &["LINDEX", "l", "4"]), Frame::Null);
        assert_eq!(run(c, &["LRANGE", "l", "1", "2"]), bulks(&["a", "b"]));
        assert_eq!(run(c, &["LPOP", "l"]), bulk("z"));
        assert_eq!(run(c, &["RPOP", "l", "2"]), bulks(&["c", "b"]));
        assert_eq!(run(c, &["LLEN", "l"]), Frame::Integer(1));
        assert_eq!(run(c, &["LPUSHX", "none", "x"]), Frame::Integer(0));
        assert_eq!(run(c, &["RPUSHX", "l", "x"]), Frame::Integer(2));
        assert_eq!(run(c, &["LSET", "l", "-1", "y"]), Frame::OK);
        assert_eq!(range(c, "l"), bulks(&["a", "y"]));
        // Popping everything deletes the key.
        assert_eq!(
            run(c, &["LPOP", "l", "9223372036854775807"]),
            bulks(&["a", "y"])
        );
        assert_eq!(run(c, &["EXISTS", "l"]), Frame::Integer(0));
        assert_eq!(run(c, &["LPOP", "l", "1"]), Frame::NullArray);
        assert_eq!(run(c, &["LPOP", "l"]), Frame::Null);
        // A new list under the same key starts clean.
        assert_eq!(run(c, &["RPUSH", "l", "new"]), Frame::Integer(1));
        assert_eq!(range(c, "l"), bulks(&["new"]));
    }
}

#[test]
fn linsert_shifts_the_shorter_side_and_lrem_compacts_from_either_end() {
    for (mut c, _dir) in clients() {
        let c = &mut c;
        run(c, &["RPUSH", "l", "a", "b", "c", "d", "e"]);
        // Near the head: the head side moves down.
        assert_eq!(
            run(c, &["LINSERT", "l", "BEFORE", "b", "1"]),
            Frame::Integer(6)
        );
        // Near the tail: the tail side moves up.
        assert_eq!(
            run(c, &["LINSERT", "l", "AFTER", "d", "2"]),
            Frame::Integer(7)
        );
        assert_eq!(
            run(c, &["LINSERT", "l", "AFTER", "e", "3"]),
            Frame::Integer(8)
        );
        assert_eq!(
            run(c, &["LINSERT", "l", "BEFORE", "a", "0"]),
            Frame::Integer(9)
        );
        assert_eq!(
            range(c, "l"),
            bulks(&["0", "a", "1", "b", "c", "d", "2", "e", "3"])
        );
        assert_eq!(
            run(c, &["LINSERT", "l", "AFTER", "zz", "x"]),
            Frame::Integer(-1)
        );
        assert_eq!(run(c, &["LINDEX", "l", "4"]), bulk("c"));
        run(c, &["RPUSH", "r", "x", "a", "x", "b", "x", "c", "x"]);
        assert_eq!(run(c, &["LREM", "r", "2", "x"]), Frame::Integer(2));
        assert_eq!(range(c, "r"), bulks(&["a", "b", "x", "c", "x"]));
        assert_eq!(run(c, &["LREM", "r", "-1", "x"]), Frame::Integer(1));
        assert_eq!(range(c, "r"), bulks(&["a", "b", "x", "c"]));
        assert_eq!(run(c, &["RPUSH", "r", "x"]), Frame::Integer(5));
        assert_eq!(run(c, &["LREM", "r", "0", "x"]), Frame::Integer(2));
        assert_eq!(range(c, "r"), bulks(&["a", "b", "c"]));
        assert_eq!(run(c, &["LPUSH", "r", "y"]), Frame::Integer(4));
        assert_eq!(run(c, &["LINDEX", "r", "0"]), bulk("y"));
        assert_eq!(run(c, &["LREM", "r", "0", "zz"]), Frame::Integer(0));
        for v in ["a", "b", "c", "y"] {
            run(c, &["LREM", "r", "0", v]);
        }
        assert_eq!(run(c, &["EXISTS", "r"]), Frame::Integer(0));
    }
}

#[test]
fn long_lists_page_through_ranges_trims_and_searches() {
    for (mut c, _dir) in clients() {
        let c = &mut c;
        let n = 2_500;
        let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let mut args: Vec<&[u8]> = vec![b"RPUSH", b"l"];
        args.extend(values.iter().map(|v| v.as_bytes()));
        assert_eq!(c.run(&args), Frame::Integer(n));
        let Frame::Array(all) = range(c, "l") else {
            panic!("an array")
        };
        assert_eq!(all.len(), n as usize);
        assert_eq!(all[2_000], bulk("2000"));
        assert_eq!(run(c, &["LPOS", "l", "2400"]), Frame::Integer(2400));
        assert_eq!(run(c, &["LPOS", "l", "2400", "MAXLEN", "100"]), Frame::Null);
        assert_eq!(
            run(c, &["LPOS", "l", "10", "RANK", "-1", "COUNT", "0"]),
            ints(&[10])
        );
        assert_eq!(
            run(c, &["LINSERT", "l", "AFTER", "1500", "x"]),
            Frame::Integer(n + 1)
        );
        assert_eq!(run(c, &["LINDEX", "l", "1501"]), bulk("x"));
        assert_eq!(run(c, &["LINDEX", "l", "-1"]), bulk("2499"));
        assert_eq!(run(c, &["LREM", "l", "-1", "x"]), Frame::Integer(1));
        // Keeping less than is dropped rebuilds the list under a new
        // version: same elements, same TTL.
        assert_eq!(run(c, &["EXPIRE", "l", "1000"]), Frame::Integer(1));
        assert_eq!(run(c, &["LTRIM", "l", "1000", "-1001"]), Frame::OK);
        assert_eq!(run(c, &["LLEN", "l"]), Frame::Integer(500));
        assert_eq!(run(c, &["LINDEX", "l", "0"]), bulk("1000"));
        assert_eq!(run(c, &["LINDEX", "l", "-1"]), bulk("1499"));
        assert_eq!(run(c, &["TTL", "l"]), Frame::Integer(1000));
        assert_eq!(run(c, &["LPUSH", "l", "first"]), Frame::Integer(501));
        assert_eq!(run(c, &["LTRIM", "l", "0", "-2"]), Frame::OK);
        assert_eq!(run(c, &["LINDEX", "l", "0"]), bulk("first"));
        assert_eq!(run(c, &["LINDEX", "l", "-1"]), bulk("1498"));
        assert_eq!(run(c, &["LTRIM", "l", "1", "0"]), Frame::OK);
        assert_eq!(run(c, &["EXISTS", "l"]), Frame::Integer(0));
    }
}

#[test]
fn lmove_rotates_one_list_and_moves_between_two() {
    for (mut c, _dir) in clients() {
        let c = &mut c;
        run(c, &["RPUSH", "l", "a", "b", "c"]);
        assert_eq!(run(c, &["LMOVE", "l", "l", "LEFT", "RIGHT"]), bulk("a"));
        assert_eq!(range(c, "l"), bulks(&["b", "c", "a"]));
        assert_eq!(run(c, &["RPOPLPUSH", "l", "l"]), bulk("a"));
        assert_eq!(range(c, "l"), bulks(&["a", "b", "c"]));
        assert_eq!(run(c, &["LMOVE", "l", "d", "RIGHT", "LEFT"]), bulk("c"));
        assert_eq!(
            run(c, &["LMOVE", "none", "d", "RIGHT", "LEFT"]),
            Frame::Null
        );
        assert_eq!(
            run(c, &["LMPOP", "3", "none", "d", "l", "LEFT", "COUNT", "5"]),
            Frame::Array(vec![bulk("d"), bulks(&["c"])])
        );
        assert_eq!(run(c, &["EXISTS", "d"]), Frame::Integer(0));
    }
}

#[test]
fn bad_input_gets_redis_errors() {
    let wrongtype =
        Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value");
    for (mut c, _dir) in clients() {
        let c = &mut c;
        run(c, &["SET", "s", "x"]);
        run(c, &["RPUSH", "l", "a"]);
        assert_eq!(run(c, &["LPUSH", "s", "a"]), wrongtype);
        assert_eq!(run(c, &["LRANGE", "s", "0", "1"]), wrongtype);
        assert_eq!(run(c, &["LMOVE", "l", "s", "LEFT", "LEFT"]), wrongtype);
        assert_eq!(range(c, "l"), bulks(&["a"]), "nothing moved");
        assert_eq!(
            run(c, &["LPOP", "l", "-1"]),
            Frame::error("ERR value is out of range, must be positive")
        );
        assert_eq!(
            run(c, &["LSET", "none", "0", "x"]),
            Frame::error("ERR no such key")
        );
        assert_eq!(
            run(c, &["LSET", "l", "-2", "x"]),
            Frame::error("ERR index out of range")
        );
        assert_eq!(
            run(c, &["LINSERT", "l", "NEAR", "a", "x"]),
            Frame::error("ERR syntax error")
        );
        assert_eq!(
            run(c, &["LMPOP", "9223372036854775807", "l", "LEFT"]),
            Frame::error("ERR syntax error")
        );
        assert_eq!(
            run(c, &["LMPOP", "2", "l", "LEFT"]),
            Frame::error("ERR syntax error")
        );
        assert_eq!(
            run(c, &["LMPOP", "1", "l", "LEFT", "COUNT", "0"]),
            Frame::error("ERR count should be greater than 0")
        );
        assert_eq!(
            run(c, &["LPOS", "l", "a", "RANK", "0"]),
            Frame::error(
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                 second ... or use negative to start from the end of the list"
            )
        );
        assert_eq!(
            run(c, &["LPOS", "l", "a", "RANK", "-9223372036854775808"]),
            Frame::Null
        );
        assert_eq!(
            run(
                c,
                &["LRANGE", "l", "-9223372036854775808", "9223372036854775807"]
            ),
            bulks(&["a"])
        );
        assert_eq!(
            run(c, &["LINDEX", "l", "-9223372036854775808"]),
            Frame::Null
        );
        assert_eq!(
            run(c, &["BLPOP", "l", "-1"]),
            Frame::error("ERR timeout is negative")
        );
        // Without a connection to wait on, blocking answers as on timeout
        // and leaves nothing queued.
        assert_eq!(run(c, &["BLPOP", "none", "0"]), Frame::NullArray);
        assert_eq!(
            run(c, &["BLMOVE", "none", "l", "LEFT", "LEFT", "0"]),
            Frame::NullArray
        );
        assert_eq!(run(c, &["BLPOP", "l", "0"]), bulks(&["l", "a"]));
        assert_eq!(run(c, &["BLPOP", "s", "0"]), wrongtype);
        let Frame::Bulk(info) = run(c, &["INFO", "clients"]) else {
            panic!("bulk")
        };
        assert!(String::from_utf8_lossy(&info).contains("blocked_clients:0"));
    }
}

/// Random list commands with hostile arguments never panic, and the
/// length always agrees with what a full range read returns.
#[test]
fn random_commands_with_hostile_arguments_keep_lists_consistent() {
    const NAMES: &[&str] = &[
        "LPUSH",
        "RPUSH",
        "LPUSHX",
        "RPUSHX",
        "LPOP",
        "RPOP",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "LSET",
        "LINSERT",
        "LREM",
        "LTRIM",
        "LPOS",
        "LMOVE",
        "RPOPLPUSH",
        "LMPOP",
        "BLPOP",
        "BRPOP",
        "BLMOVE",
        "BRPOPLPUSH",
        "BLMPOP",
    ];
    const WORDS: &[&str] = &[
        "l",
        "m",
        "s",
        "0",
        "1",
        "2",
        "-1",
        "-2",
        "3",
        "100",
        "0.5",
        "-0.5",
        "inf",
        "nan",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "LEFT",
        "RIGHT",
        "BEFORE",
        "AFTER",
        "RANK",
        "COUNT",
        "MAXLEN",
        "x",
        "",
    ];
    for (mut c, _dir) in clients() {
        let mut rng = fastrand::Rng::with_seed(42);
        run(&mut c, &["SET", "s", "string"]);
        for _ in 0..3_000 {
            let mut words = vec![NAMES[rng.usize(..NAMES.len())]];
            for _ in 0..rng.usize(1..8) {
                words.push(WORDS[rng.usize(..WORDS.len())]);
            }
            let reply = run(&mut c, &words);
            let mut out = bytes::BytesMut::new();
            reply.encode(crate::protocol::ProtocolVersion::Resp3, &mut out);
            for key in ["l", "m"] {
                let Frame::Integer(len) = run(&mut c, &["LLEN", key]) else {
                    panic!("LLEN after {words:?}")
                };
                match range(&mut c, key) {
                    Frame::Array(items) => assert_eq!(items.len() as i64, len, "{words:?}"),
                    other => panic!("LRANGE after {words:?}: {other:?}"),
                }
            }
        }
    }
}
