//! Sorted-set commands through a socket-less client, on both engines:
//! replies, Redis's errors for bad input, and bounds on what a client's
//! numbers can make the server do. (Byte-for-byte agreement with Redis on
//! random streams is `tests/it/diff_zset.rs`.)

use bytes::Bytes;

use crate::command::local::LocalClient;
use crate::command::members::testing::each_engine;
use crate::protocol::Frame;

pub(in crate::command) fn run(c: &mut LocalClient, words: &[&str]) -> Frame {
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    c.run(&args)
}

pub(in crate::command) fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

pub(in crate::command) fn err(text: &str) -> Frame {
    Frame::Error(text.into())
}

fn members(words: &[&str]) -> Frame {
    Frame::Array(words.iter().map(|w| bulk(w)).collect())
}

#[test]
fn scores_order_members_and_ties_break_by_member() {
    each_engine(|c| {
        assert_eq!(
            run(
                c,
                &[
                    "ZADD", "z", "2", "b", "-inf", "x", "2", "a", "inf", "y", "-1.5", "n"
                ]
            ),
            Frame::Integer(5)
        );
        assert_eq!(
            run(c, &["ZRANGE", "z", "0", "-1"]),
            members(&["x", "n", "a", "b", "y"])
        );
        assert_eq!(
            run(c, &["ZRANGE", "z", "2", "(-1.5", "BYSCORE", "REV"]),
            members(&["b", "a"])
        );
        assert_eq!(run(c, &["ZRANK", "z", "b"]), Frame::Integer(3));
        assert_eq!(run(c, &["ZREVRANK", "z", "b"]), Frame::Integer(1));
        assert_eq!(
            run(c, &["ZRANK", "z", "y", "WITHSCORE"]),
            Frame::Array(vec![Frame::Integer(4), Frame::Double(f64::INFINITY)])
        );
        assert_eq!(
            run(c, &["ZRANK", "z", "nope", "WITHSCORE"]),
            Frame::NullArray
        );
        assert_eq!(run(c, &["ZCOUNT", "z", "-inf", "(2"]), Frame::Integer(2));
        assert_eq!(
            run(c, &["ZSCORE", "z", "x"]),
            Frame::Double(f64::NEG_INFINITY)
        );
        // -0 is stored as 0, so it ties with 0 and sorts by member.
        run(c, &["ZADD", "zero", "-0", "b", "0", "a"]);
        assert_eq!(run(c, &["ZRANGE", "zero", "0", "-1"]), members(&["a", "b"]));
        assert_eq!(run(c, &["ZSCORE", "zero", "b"]), Frame::Double(0.0));
    });
}

#[test]
fn ranks_are_found_from_the_nearer_end_of_a_big_set() {
    each_engine(|c| {
        let n = 3000;
        let mut args = vec!["ZADD".to_string(), "big".to_string()];
        for i in 0..n {
            args.push(i.to_string());
            args.push(format!("m{i:05}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(run(c, &refs), Frame::Integer(n));
        for i in [0, 1, 511, 512, 513, 1500, 2487, 2999] {
            let m = format!("m{i:05}");
            assert_eq!(run(c, &["ZRANK", "big", &m]), Frame::Integer(i));
            assert_eq!(run(c, &["ZREVRANK", "big", &m]), Frame::Integer(n - 1 - i));
        }
        let page = run(c, &["ZRANGE", "big", "1000", "1002"]);
        assert_eq!(page, members(&["m01000", "m01001", "m01002"]));
        assert_eq!(
            run(c, &["ZREMRANGEBYRANK", "big", "10", "-11"]),
            Frame::Integer(n - 20)
        );
        assert_eq!(run(c, &["ZCARD", "big"]), Frame::Integer(20));
    });
}

#[test]
fn zadd_options_follow_redis() {
    each_engine(|c| {
        assert_eq!(run(c, &["ZADD", "z", "XX", "1", "a"]), Frame::Integer(0));
        assert_eq!(
            run(c, &["EXISTS", "z"]),
            Frame::Integer(0),
            "XX creates nothing"
        );
        assert_eq!(run(c, &["ZADD", "z", "1", "a"]), Frame::Integer(1));
        assert_eq!(
            run(c, &["ZADD", "z", "CH", "GT", "0", "a", "5", "b"]),
            Frame::Integer(1)
        );
        assert_eq!(
            run(c, &["ZADD", "z", "CH", "GT", "3", "a"]),
            Frame::Integer(1)
        );
        assert_eq!(run(c, &["ZADD", "z", "LT", "INCR", "1", "a"]), Frame::Null);
        assert_eq!(
            run(c, &["ZADD", "z", "INCR", "0.5", "a"]),
            Frame::Double(3.5)
        );
        assert_eq!(run(c, &["ZADD", "z", "NX", "9", "a"]), Frame::Integer(0));
        assert_eq!(
            run(c, &["ZINCRBY", "z", "-inf", "a"]),
            Frame::Double(f64::NEG_INFINITY)
        );
        assert_eq!(
            run(c, &["ZINCRBY", "z", "+inf", "a"]),
            err("ERR resulting score is not a number (NaN)")
        );
        assert_eq!(
            run(c, &["ZSCORE", "z", "a"]),
            Frame::Double(f64::NEG_INFINITY)
        );
        for (args, text) in [
            (
                &["ZADD", "z", "NX", "XX", "1", "a"][..],
                "ERR XX and NX options at the same time are not compatible",
            ),
            (
                &["ZADD", "z", "GT", "LT", "1", "a"],
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            ),
            (
                &["ZADD", "z", "INCR", "1", "a", "2", "b"],
                "ERR INCR option supports a single increment-element pair",
            ),
            (&["ZADD", "z", "1", "a", "2"], "ERR syntax error"),
            (&["ZADD", "z", "nan", "a"], "ERR value is not a valid float"),
            (
                &["ZADD", "z", "1e400", "a"],
                "ERR value is not a valid float",
            ),
            (&["ZADD", "z", " 1", "a"], "ERR value is not a valid float"),
            (&["ZADD", "z", "", "a"], "ERR value is not a valid float"),
            (
                &["ZADD", "z", "1", "a", "x", "b"],
                "ERR value is not a valid float",
            ),
        ] {
            assert_eq!(run(c, args), err(text), "{args:?}");
        }
        assert_eq!(
            run(c, &["ZCARD", "z"]),
            Frame::Integer(2),
            "failed ZADDs change nothing"
        );
        run(c, &["SET", "s", "x"]);
        assert_eq!(
            run(c, &["ZADD", "s", "1", "a"]),
            err("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
        assert!(run(c, &["ZSCORE", "s", "a"]).is_error());
        assert!(run(c, &["ZUNION", "1", "s"]).is_error());
    });
}

#[test]
fn bad_ranges_and_counts_get_redis_errors() {
    each_engine(|c| {
        run(c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
        for (args, text) in [
            (
                &["ZRANGEBYSCORE", "z", "nan", "1"][..],
                "ERR min or max is not a float",
            ),
            (&["ZCOUNT", "z", "1", "x"], "ERR min or max is not a float"),
            (
                &["ZRANGEBYLEX", "z", "a", "+"],
                "ERR min or max not valid string range item",
            ),
            (
                &["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"],
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ),
            (
                &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ),
            (&["ZRANGE", "z", "0", "1", "REV", "REV"], "ERR syntax error"),
            (
                &["ZRANGESTORE", "d", "z", "0", "1", "WITHSCORES"],
                "ERR syntax error",
            ),
            (
                &["ZRANGE", "z", "x", "1"],
                "ERR value is not an integer or out of range",
            ),
            (
                &["ZPOPMIN", "z", "-1"],
                "ERR value is out of range, must be positive",
            ),
            (&["ZPOPMIN", "z", "1", "2"], "ERR syntax error"),
            (
                &["ZMPOP", "0", "z", "MIN"],
                "ERR numkeys should be greater than 0",
            ),
            (
                &["ZMPOP", "9223372036854775807", "z", "MIN"],
                "ERR syntax error",
            ),
            (
                &["ZMPOP", "1", "z", "MIN", "COUNT", "0"],
                "ERR count should be greater than 0",
            ),
            (
                &["ZUNION", "0", "z"],
                "ERR at least 1 input key is needed for 'zunion' command",
            ),
            (&["ZINTER", "2", "z"], "ERR syntax error"),
            (
                &["ZUNION", "1", "z", "WEIGHTS", "x"],
                "ERR weight value is not a float",
            ),
            (
                &["ZUNION", "1", "z", "AGGREGATE", "avg"],
                "ERR syntax error",
            ),
            (&["ZDIFF", "1", "z", "WEIGHTS", "1"], "ERR syntax error"),
            (
                &["ZINTERCARD", "1", "z", "LIMIT", "-1"],
                "ERR LIMIT can't be negative",
            ),
            (
                &["ZRANDMEMBER", "z", "-9223372036854775808"],
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ),
            (
                &["ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"],
                "ERR value is out of range",
            ),
            (&["ZRANDMEMBER", "z", "1", "x"], "ERR syntax error"),
            (&["ZSCAN", "z", "x"], "ERR invalid cursor"),
            (&["ZSCAN", "z", "0", "COUNT", "0"], "ERR syntax error"),
            (
                &["ZRANK", "z", "a", "WITHSCORE", "x"],
                "ERR wrong number of arguments for 'zrank' command",
            ),
        ] {
            assert_eq!(run(c, args), err(text), "{args:?}");
        }
        // Huge limits and counts are clamped to the set, not allocated.
        assert_eq!(
            run(
                c,
                &[
                    "ZRANGE",
                    "z",
                    "-inf",
                    "+inf",
                    "BYSCORE",
                    "LIMIT",
                    "0",
                    "9223372036854775807"
                ]
            ),
            members(&["a", "b", "c"])
        );
        assert_eq!(
            run(
                c,
                &["ZRANGE", "z", "-9223372036854775808", "9223372036854775807"]
            ),
            members(&["a", "b", "c"])
        );
        assert_eq!(
            run(c, &["ZRANDMEMBER", "z", "9223372036854775807"]),
            members(&["c", "b", "a"])
        );
        assert!(run(c, &["ZRANDMEMBER", "z", "-9223372036854775807"]).is_error());
        assert!(!run(c, &["ZSCAN", "z", "0", "COUNT", "9223372036854775807"]).is_error());
        match run(c, &["ZRANDMEMBER", "z", "-5"]) {
            Frame::Array(items) => assert_eq!(items.len(), 5),
            other => panic!("{other:?}"),
        }
        let popped = run(c, &["ZPOPMAX", "z", "9223372036854775807"]);
        assert_eq!(
            popped,
            Frame::Array(vec![
                bulk("c"),
                Frame::Double(3.0),
                bulk("b"),
                Frame::Double(2.0),
                bulk("a"),
                Frame::Double(1.0)
            ])
        );
        assert_eq!(
            run(c, &["EXISTS", "z"]),
            Frame::Integer(0),
            "an emptied set is deleted"
        );
    });
}

#[test]
fn lex_ranges_select_by_member() {
    each_engine(|c| {
        run(
            c,
            &[
                "ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e",
            ],
        );
        assert_eq!(
            run(c, &["ZRANGEBYLEX", "l", "(a", "[c"]),
            members(&["b", "c"])
        );
        assert_eq!(
            run(c, &["ZREVRANGEBYLEX", "l", "+", "(c"]),
            members(&["e", "d"])
        );
        assert_eq!(
            run(c, &["ZRANGEBYLEX", "l", "-", "+", "LIMIT", "1", "2"]),
            members(&["b", "c"])
        );
        assert_eq!(run(c, &["ZRANGEBYLEX", "l", "+", "-"]), members(&[]));
        assert_eq!(run(c, &["ZRANGEBYLEX", "l", "[c", "[a"]), members(&[]));
        assert_eq!(run(c, &["ZRANGEBYLEX", "l", "(c", "(c"]), members(&[]));
        assert_eq!(run(c, &["ZLEXCOUNT", "l", "[b", "(e"]), Frame::Integer(3));
        assert_eq!(
            run(c, &["ZREMRANGEBYLEX", "l", "[b", "[c"]),
            Frame::Integer(2)
        );
        assert_eq!(
            run(c, &["ZRANGE", "l", "0", "-1"]),
            members(&["a", "d", "e"])
        );
    });
}

#[test]
fn algebra_weights_and_aggregates() {
    each_engine(|c| {
        run(c, &["ZADD", "a", "1", "x", "2", "y", "inf", "z"]);
        run(c, &["ZADD", "b", "10", "y", "-inf", "z", "3", "w"]);
        assert_eq!(
            run(c, &["ZUNION", "2", "a", "b", "WITHSCORES"]),
            Frame::Array(vec![
                bulk("z"),
                Frame::Double(0.0), // inf + -inf counts as 0
                bulk("x"),
                Frame::Double(1.0),
                bulk("w"),
                Frame::Double(3.0),
                bulk("y"),
                Frame::Double(12.0),
            ])
        );
        assert_eq!(
            run(
                c,
                &[
                    "ZINTER",
                    "2",
                    "a",
                    "b",
                    "WEIGHTS",
                    "2",
                    "1",
                    "AGGREGATE",
                    "MAX"
                ]
            ),
            members(&["y", "z"])
        );
        assert_eq!(run(c, &["ZDIFF", "2", "a", "b"]), members(&["x"]));
        assert_eq!(run(c, &["ZDIFF", "2", "a", "a"]), members(&[]));
        assert_eq!(
            run(c, &["ZINTERCARD", "2", "a", "b", "LIMIT", "1"]),
            Frame::Integer(1)
        );
        assert_eq!(
            run(c, &["ZINTERSTORE", "d", "2", "a", "nope"]),
            Frame::Integer(0)
        );
        assert_eq!(run(c, &["EXISTS", "d"]), Frame::Integer(0));
        assert_eq!(
            run(c, &["ZUNIONSTORE", "a", "2", "a", "b"]),
            Frame::Integer(4)
        );
        assert_eq!(run(c, &["ZSCORE", "a", "y"]), Frame::Double(12.0));
        // RESP3: pairs.
        run(c, &["HELLO", "3"]);
        assert_eq!(
            run(c, &["ZRANGE", "b", "0", "0", "WITHSCORES"]),
            Frame::Array(vec![Frame::Array(vec![
                bulk("z"),
                Frame::Double(f64::NEG_INFINITY)
            ])])
        );
        assert_eq!(
            run(c, &["ZPOPMIN", "b", "1"]),
            Frame::Array(vec![Frame::Array(vec![
                bulk("z"),
                Frame::Double(f64::NEG_INFINITY)
            ])])
        );
        assert_eq!(
            run(c, &["ZMPOP", "2", "nope", "b", "MAX"]),
            Frame::Array(vec![
                bulk("b"),
                Frame::Array(vec![Frame::Array(vec![bulk("y"), Frame::Double(10.0)])])
            ])
        );
        assert_eq!(run(c, &["ZMPOP", "1", "nope", "MAX"]), Frame::NullArray);
    });
}

#[test]
fn zscan_pages_a_big_set_and_returns_a_small_one_whole() {
    each_engine(|c| {
        let mut args = vec!["ZADD".to_string(), "z".to_string()];
        for i in 0..300 {
            args.push((i % 7).to_string());
            args.push(format!("m{i}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(c, &refs);
        let (mut cursor, mut seen) = ("0".to_string(), std::collections::HashSet::new());
        let mut calls = 0;
        loop {
            let Frame::Array(reply) = run(c, &["ZSCAN", "z", &cursor, "COUNT", "50"]) else {
                panic!("not an array");
            };
            let (Frame::Bulk(next), Frame::Array(items)) = (&reply[0], &reply[1]) else {
                panic!("bad shape");
            };
            assert!(items.len() <= 100);
            for pair in items.chunks(2) {
                if let Frame::Bulk(m) = &pair[0] {
                    seen.insert(m.clone());
                }
            }
            calls += 1;
            cursor = String::from_utf8(next.to_vec()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!((seen.len(), calls), (300, 6));
        run(c, &["ZADD", "small", "1.5", "a", "2", "b"]);
        assert_eq!(
            run(c, &["ZSCAN", "small", "0", "COUNT", "1", "MATCH", "a*"]),
            Frame::Array(vec![bulk("0"), Frame::Array(vec![bulk("a"), bulk("1.5")])])
        );
    });
}
