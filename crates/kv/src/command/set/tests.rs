//! Set commands without a socket, on both engines: replies and errors as
//! Redis 7 gives them, and bounded work for any count.

use std::collections::HashSet;

use crate::command::members::testing::{bulk, bulks, each_engine, err, run, scan_all, texts};
use crate::protocol::Frame;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn set(items: &[&str]) -> Frame {
    Frame::Set(items.iter().map(|i| bulk(i)).collect())
}

#[test]
fn add_remove_and_membership() {
    each_engine(|c| {
        assert_eq!(run(c, "SADD s b a c a"), Frame::Integer(3));
        assert_eq!(run(c, "SADD s a d"), Frame::Integer(1));
        assert_eq!(run(c, "SMEMBERS s"), set(&["a", "b", "c", "d"]));
        assert_eq!(run(c, "SMEMBERS nokey"), set(&[]));
        assert_eq!(run(c, "SCARD s"), Frame::Integer(4));
        assert_eq!(run(c, "SCARD nokey"), Frame::Integer(0));
        assert_eq!(run(c, "SISMEMBER s a"), Frame::Integer(1));
        assert_eq!(run(c, "SISMEMBER s z"), Frame::Integer(0));
        assert_eq!(run(c, "SISMEMBER nokey a"), Frame::Integer(0));
        assert_eq!(
            run(c, "SMISMEMBER s a z d"),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Integer(0),
                Frame::Integer(1)
            ])
        );
        assert_eq!(
            run(c, "SMISMEMBER nokey a"),
            Frame::Array(vec![Frame::Integer(0)])
        );
        assert_eq!(run(c, "SREM s a z a"), Frame::Integer(1));
        assert_eq!(run(c, "SREM nokey a"), Frame::Integer(0));
        assert_eq!(run(c, "TYPE s"), Frame::Simple("set"));
        assert_eq!(run(c, "SREM s b c d"), Frame::Integer(3));
        assert_eq!(
            run(c, "EXISTS s"),
            Frame::Integer(0),
            "an empty set is deleted"
        );
        assert_eq!(
            c.run(&[b"SADD", b"bin", b"", b"\x00\xff"]),
            Frame::Integer(2)
        );
        assert_eq!(c.run(&[b"SISMEMBER", b"bin", b""]), Frame::Integer(1));
    });
}

#[test]
fn wrong_types_answer_wrongtype() {
    each_engine(|c| {
        run(c, "SET str x");
        run(c, "HSET h f v");
        run(c, "SADD s a");
        for command in [
            "SADD str a",
            "SREM str a",
            "SMEMBERS h",
            "SISMEMBER str a",
            "SMISMEMBER str a",
            "SCARD str",
            "SPOP str",
            "SPOP str 2",
            "SRANDMEMBER str",
            "SRANDMEMBER str -2",
            "SMOVE str s a",
            "SMOVE s str a",
            "SINTER s str",
            "SINTER nokey str",
            "SUNION str nokey",
            "SDIFF nokey h",
            "SDIFF s nokey str",
            "SINTERSTORE d s str",
            "SUNIONSTORE d s h",
            "SDIFFSTORE d s h",
            "SINTERCARD 2 s str",
            "SINTERCARD 2 nokey str",
            "SSCAN str 0",
        ] {
            assert_eq!(run(c, command), err(WRONGTYPE), "{command}");
        }
        assert_eq!(
            run(c, "SMEMBERS s"),
            set(&["a"]),
            "SMOVE to a string moved nothing"
        );
        assert_eq!(run(c, "EXISTS d"), Frame::Integer(0));
        // A missing source answers 0 before the destination's type is looked at.
        assert_eq!(run(c, "SMOVE nokey str a"), Frame::Integer(0));
    });
}

#[test]
fn smove_between_sets() {
    each_engine(|c| {
        run(c, "SADD src a b");
        run(c, "SADD dst b");
        assert_eq!(run(c, "SMOVE src dst a"), Frame::Integer(1));
        assert_eq!(run(c, "SMOVE src dst zz"), Frame::Integer(0));
        assert_eq!(
            run(c, "SMOVE src dst b"),
            Frame::Integer(1),
            "already there"
        );
        assert_eq!(run(c, "EXISTS src"), Frame::Integer(0));
        assert_eq!(run(c, "SMEMBERS dst"), set(&["a", "b"]));
        assert_eq!(run(c, "SMOVE dst dst a"), Frame::Integer(1));
        assert_eq!(run(c, "SMOVE dst dst zz"), Frame::Integer(0));
        assert_eq!(run(c, "SMOVE dst new a"), Frame::Integer(1));
        assert_eq!(run(c, "SMEMBERS new"), set(&["a"]));
        assert_eq!(run(c, "SCARD dst"), Frame::Integer(1));
    });
}

#[test]
fn algebra_and_store() {
    each_engine(|c| {
        run(c, "SADD a 1 2 3 4");
        run(c, "SADD b 3 4 5");
        run(c, "SADD c 4 5 6");
        assert_eq!(run(c, "SINTER a b"), set(&["3", "4"]));
        assert_eq!(run(c, "SINTER a b c"), set(&["4"]));
        assert_eq!(run(c, "SINTER a nokey"), set(&[]));
        assert_eq!(run(c, "SINTER a"), set(&["1", "2", "3", "4"]));
        assert_eq!(
            run(c, "SUNION a c nokey"),
            set(&["1", "2", "3", "4", "5", "6"])
        );
        assert_eq!(run(c, "SDIFF a b"), set(&["1", "2"]));
        assert_eq!(run(c, "SDIFF a b c"), set(&["1", "2"]));
        assert_eq!(run(c, "SDIFF a nokey"), set(&["1", "2", "3", "4"]));
        assert_eq!(run(c, "SDIFF nokey a"), set(&[]));
        assert_eq!(run(c, "SDIFF a a"), set(&[]));
        assert_eq!(run(c, "SINTERSTORE d a b"), Frame::Integer(2));
        assert_eq!(run(c, "SMEMBERS d"), set(&["3", "4"]));
        // The destination may be a source, and its old type does not matter.
        assert_eq!(run(c, "SUNIONSTORE d d c"), Frame::Integer(4));
        assert_eq!(run(c, "SMEMBERS d"), set(&["3", "4", "5", "6"]));
        run(c, "SET str x");
        run(c, "EXPIRE str 100");
        assert_eq!(run(c, "SDIFFSTORE str a b"), Frame::Integer(2));
        assert_eq!(run(c, "SMEMBERS str"), set(&["1", "2"]));
        assert_eq!(run(c, "TTL str"), Frame::Integer(-1), "the old TTL is gone");
        // An empty result deletes the destination.
        assert_eq!(run(c, "SINTERSTORE d a nokey"), Frame::Integer(0));
        assert_eq!(run(c, "EXISTS d"), Frame::Integer(0));
        assert_eq!(run(c, "SUNIONSTORE d nokey"), Frame::Integer(0));
        run(c, "HELLO 3");
        assert_eq!(run(c, "SINTER a b"), set(&["3", "4"]), "a set in RESP3 too");
    });
}

#[test]
fn algebra_pages_through_big_sets() {
    each_engine(|c| {
        for i in 0..2500 {
            run(c, &format!("SADD big m{i:05}"));
            if i % 2 == 0 {
                run(c, &format!("SADD even m{i:05}"));
            }
        }
        assert_eq!(texts(&run(c, "SINTER big even")).len(), 1250);
        assert_eq!(texts(&run(c, "SDIFF big even")).len(), 1250);
        assert_eq!(texts(&run(c, "SUNION even big")).len(), 2500);
        assert_eq!(texts(&run(c, "SMEMBERS big")).len(), 2500);
        assert_eq!(run(c, "SINTERCARD 2 big even"), Frame::Integer(1250));
        assert_eq!(
            run(c, "SINTERCARD 2 big even LIMIT 1100"),
            Frame::Integer(1100)
        );
        assert_eq!(run(c, "SDIFFSTORE odd big even"), Frame::Integer(1250));
        assert_eq!(run(c, "SCARD odd"), Frame::Integer(1250));
        let (members, _) = scan_all(c, "SSCAN odd", "COUNT 50");
        assert_eq!(members.len(), 1250);
        assert_eq!(members.iter().collect::<HashSet<_>>().len(), 1250);
    });
}

#[test]
fn sintercard_arguments() {
    each_engine(|c| {
        run(c, "SADD s a b c");
        run(c, "SADD t b c d");
        assert_eq!(run(c, "SINTERCARD 2 s t"), Frame::Integer(2));
        assert_eq!(run(c, "SINTERCARD 2 s t LIMIT 1"), Frame::Integer(1));
        assert_eq!(run(c, "SINTERCARD 2 s t LIMIT 0"), Frame::Integer(2));
        assert_eq!(run(c, "SINTERCARD 1 s LIMIT 1 LIMIT 5"), Frame::Integer(3));
        assert_eq!(run(c, "SINTERCARD 2 s nokey"), Frame::Integer(0));
        for (bad, error) in [
            ("SINTERCARD 0 s", "ERR numkeys should be greater than 0"),
            ("SINTERCARD -1 s", "ERR numkeys should be greater than 0"),
            ("SINTERCARD x s", "ERR numkeys should be greater than 0"),
            (
                "SINTERCARD 2 s",
                "ERR Number of keys can't be greater than number of args",
            ),
            (
                "SINTERCARD 9223372036854775807 s",
                "ERR Number of keys can't be greater than number of args",
            ),
            ("SINTERCARD 1 s LIMIT -1", "ERR LIMIT can't be negative"),
            ("SINTERCARD 1 s LIMIT x", "ERR LIMIT can't be negative"),
            ("SINTERCARD 1 s LIMIT", "ERR syntax error"),
            ("SINTERCARD 1 s foo 1", "ERR syntax error"),
        ] {
            assert_eq!(run(c, bad), err(error), "{bad}");
        }
    });
}

#[test]
fn spop_counts() {
    each_engine(|c| {
        assert_eq!(run(c, "SPOP nokey"), Frame::Null);
        assert_eq!(run(c, "SPOP nokey 3"), set(&[]));
        run(c, "SADD s a b c d e");
        let Frame::Bulk(one) = run(c, "SPOP s") else {
            panic!("a member");
        };
        assert_eq!(run(c, "SCARD s"), Frame::Integer(4));
        assert_eq!(c.run(&[b"SISMEMBER", b"s", &one]), Frame::Integer(0));
        assert_eq!(run(c, "SPOP s 0"), set(&[]));
        let two = texts(&run(c, "SPOP s 2"));
        assert_eq!(two.len(), 2);
        assert_ne!(two[0], two[1]);
        assert_eq!(run(c, "SCARD s"), Frame::Integer(2));
        let rest = texts(&run(c, "SPOP s 9223372036854775807"));
        assert_eq!(rest.len(), 2);
        assert_eq!(run(c, "EXISTS s"), Frame::Integer(0));
        for bad in ["-1", "x", "", "1.5", "-9223372036854775808"] {
            assert_eq!(
                c.run(&[b"SPOP", b"s", bad.as_bytes()]),
                err("ERR value is out of range, must be positive"),
                "{bad:?}"
            );
        }
        assert_eq!(run(c, "SPOP s 1 2"), err("ERR syntax error"));
        // A big set: popped members are distinct and gone.
        for i in 0..3000 {
            run(c, &format!("SADD big m{i}"));
        }
        let popped = texts(&run(c, "SPOP big 500"));
        assert_eq!(popped.iter().collect::<HashSet<_>>().len(), 500);
        assert_eq!(run(c, "SCARD big"), Frame::Integer(2500));
        for m in &popped {
            assert_eq!(run(c, &format!("SISMEMBER big {m}")), Frame::Integer(0));
        }
        while run(c, "SPOP big") != Frame::Null {}
        assert_eq!(run(c, "EXISTS big"), Frame::Integer(0));
    });
}

#[test]
fn srandmember_counts() {
    each_engine(|c| {
        assert_eq!(run(c, "SRANDMEMBER nokey"), Frame::Null);
        assert_eq!(run(c, "SRANDMEMBER nokey 5"), Frame::Array(Vec::new()));
        assert_eq!(run(c, "SRANDMEMBER nokey -5"), Frame::Array(Vec::new()));
        run(c, "SADD s a b c");
        assert!(matches!(run(c, "SRANDMEMBER s"), Frame::Bulk(_)));
        assert_eq!(run(c, "SRANDMEMBER s 0"), Frame::Array(Vec::new()));
        assert_eq!(
            run(c, "SRANDMEMBER s 9223372036854775807"),
            bulks(&["a", "b", "c"])
        );
        let two = texts(&run(c, "SRANDMEMBER s 2"));
        assert_ne!(two[0], two[1]);
        assert_eq!(texts(&run(c, "SRANDMEMBER s -7")).len(), 7);
        assert_eq!(run(c, "SCARD s"), Frame::Integer(3), "nothing removed");
        for (bad, error) in [
            (
                "SRANDMEMBER s -9223372036854775808",
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ),
            (
                "SRANDMEMBER s x",
                "ERR value is not an integer or out of range",
            ),
            ("SRANDMEMBER s 1 2", "ERR syntax error"),
            // Redis would try to build this reply and run out of memory.
            (
                "SRANDMEMBER s -9223372036854775807",
                "ERR value is out of range",
            ),
        ] {
            assert_eq!(run(c, bad), err(error), "{bad}");
        }
        for i in 0..2000 {
            run(c, &format!("SADD big {i}"));
        }
        let drawn = texts(&run(c, "SRANDMEMBER big -600"));
        assert_eq!(drawn.len(), 600);
        assert!(drawn.iter().collect::<HashSet<_>>().len() > 200);
        let distinct = texts(&run(c, "SRANDMEMBER big 300"));
        assert_eq!(distinct.iter().collect::<HashSet<_>>().len(), 300);
    });
}

#[test]
fn sscan_options() {
    each_engine(|c| {
        run(c, "SADD s a b c");
        assert_eq!(
            run(c, "SSCAN s 0 MATCH b*"),
            Frame::Array(vec![bulk("0"), bulks(&["b"])])
        );
        assert_eq!(run(c, "SSCAN s 0 NOVALUES"), err("ERR syntax error"));
        assert_eq!(run(c, "SSCAN s x"), err("ERR invalid cursor"));
        assert_eq!(
            run(c, "SSCAN nokey 0"),
            Frame::Array(vec![bulk("0"), Frame::Array(Vec::new())])
        );
        assert_eq!(
            run(c, "SSCAN s -1 COUNT 1"),
            Frame::Array(vec![bulk("0"), Frame::Array(Vec::new())]),
            "a cursor past every member"
        );
    });
}

#[test]
fn scan_filters_by_type() {
    each_engine(|c| {
        run(c, "SADD s a");
        run(c, "HSET h f v");
        run(c, "SET str x");
        let only = |c: &mut _, t: &str| {
            let reply = run(c, &format!("SCAN 0 COUNT 100 TYPE {t}"));
            let Frame::Array(parts) = reply else {
                panic!("{reply:?}");
            };
            texts(&parts[1])
        };
        assert_eq!(only(c, "set"), ["s"]);
        assert_eq!(only(c, "HASH"), ["h"]);
        assert_eq!(only(c, "string"), ["str"]);
        assert!(only(c, "nonsense").is_empty());
    });
}

#[test]
fn scan_cursors_parse_as_in_redis() {
    let mut c = crate::command::local::LocalClient::memory(crate::config::Config::default());
    run(&mut c, "SET k v");
    for cursor in ["-1", "+0", "18446744073709551615"] {
        assert!(
            !run(&mut c, &format!("SCAN {cursor}")).is_error(),
            "{cursor}"
        );
    }
    assert!(!c.run(&[b"SCAN", b""]).is_error());
    for cursor in ["x", "18446744073709551616", "1.0", "-"] {
        assert_eq!(
            run(&mut c, &format!("SCAN {cursor}")),
            err("ERR invalid cursor")
        );
    }
}

#[test]
fn smove_keeps_the_destination_ttl() {
    each_engine(|c| {
        run(c, "SADD src a b");
        run(c, "SADD dst z");
        run(c, "EXPIRE dst 100");
        run(c, "EXPIRE src 50");
        assert_eq!(run(c, "SMOVE src dst a"), Frame::Integer(1));
        assert_eq!(run(c, "TTL dst"), Frame::Integer(100));
        assert_eq!(run(c, "TTL src"), Frame::Integer(50));
        assert_eq!(run(c, "SPOP src"), bulk("b"));
        assert_eq!(run(c, "TTL src"), Frame::Integer(-2));
    });
}

#[test]
fn writes_that_change_nothing_leave_watch_alone() {
    each_engine(|c| {
        let mut other = c.connect();
        run(c, "SADD s a b");
        run(c, "HSET h f v");
        for noop in [
            "SADD s a",
            "SREM s zz",
            "SMOVE s t zz",
            "HSETNX h f w",
            "HDEL h zz",
            "SPOP s 0",
        ] {
            run(c, "WATCH s h");
            run(&mut other, noop);
            run(c, "MULTI");
            run(c, "PING");
            assert_eq!(
                run(c, "EXEC"),
                Frame::Array(vec![Frame::Simple("PONG")]),
                "{noop}"
            );
        }
        for change in [
            "SADD s c",
            "SREM s c",
            "HSET h f v",
            "HINCRBY h n 1",
            "SPOP s 1",
        ] {
            run(c, "WATCH s h");
            run(&mut other, change);
            run(c, "MULTI");
            run(c, "PING");
            assert_eq!(run(c, "EXEC"), Frame::NullArray, "{change}");
        }
    });
}
