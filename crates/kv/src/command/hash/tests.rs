//! Hash commands without a socket, on both engines: replies and errors as
//! Redis 7 gives them, and bounded work for any count.

use std::collections::HashSet;

use crate::command::members::testing::{bulk, bulks, each_engine, err, run, scan_all, texts};
use crate::protocol::Frame;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn set_get_and_delete_fields() {
    each_engine(|c| {
        assert_eq!(run(c, "HSET h a 1 b 2"), Frame::Integer(2));
        assert_eq!(
            run(c, "HSET h a 9 c 3 c 4"),
            Frame::Integer(1),
            "c counted once"
        );
        assert_eq!(run(c, "HGET h a"), bulk("9"));
        assert_eq!(run(c, "HGET h c"), bulk("4"));
        assert_eq!(run(c, "HGET h zz"), Frame::Null);
        assert_eq!(run(c, "HGET nokey a"), Frame::Null);
        assert_eq!(run(c, "HMSET h d 5"), Frame::OK);
        assert_eq!(run(c, "HSETNX h d 6"), Frame::Integer(0));
        assert_eq!(run(c, "HSETNX h e 6"), Frame::Integer(1));
        assert_eq!(run(c, "HSETNX fresh f v"), Frame::Integer(1));
        assert_eq!(
            run(c, "HMGET h a zz e"),
            Frame::Array(vec![bulk("9"), Frame::Null, bulk("6")])
        );
        assert_eq!(
            run(c, "HMGET nokey a b"),
            Frame::Array(vec![Frame::Null, Frame::Null])
        );
        assert_eq!(run(c, "HLEN h"), Frame::Integer(5));
        assert_eq!(run(c, "HLEN nokey"), Frame::Integer(0));
        assert_eq!(run(c, "HEXISTS h a"), Frame::Integer(1));
        assert_eq!(run(c, "HEXISTS h zz"), Frame::Integer(0));
        assert_eq!(run(c, "HSTRLEN h a"), Frame::Integer(1));
        assert_eq!(run(c, "HSTRLEN h zz"), Frame::Integer(0));
        assert_eq!(run(c, "HDEL h a zz a"), Frame::Integer(1));
        assert_eq!(run(c, "HDEL nokey a"), Frame::Integer(0));
        assert_eq!(run(c, "HKEYS h"), bulks(&["b", "c", "d", "e"]));
        assert_eq!(run(c, "HVALS h"), bulks(&["2", "4", "5", "6"]));
        assert_eq!(run(c, "TYPE h"), Frame::Simple("hash"));
        // The last field gone, the key is gone.
        assert_eq!(run(c, "HDEL h b c d e"), Frame::Integer(4));
        assert_eq!(run(c, "EXISTS h"), Frame::Integer(0));
        assert_eq!(run(c, "HGETALL h"), Frame::Map(Vec::new()));
    });
}

#[test]
fn hgetall_is_a_map_and_arity_counts_pairs() {
    each_engine(|c| {
        run(c, "HSET h f v g w");
        let map = Frame::Map(vec![(bulk("f"), bulk("v")), (bulk("g"), bulk("w"))]);
        assert_eq!(run(c, "HGETALL h"), map);
        assert!(!run(c, "HELLO 3").is_error());
        assert_eq!(run(c, "HGETALL h"), map);
        for bad in ["HSET h f", "HSET h f v g", "HMSET h f v g"] {
            let name = bad.split(' ').next().unwrap().to_lowercase();
            let expected = format!("ERR wrong number of arguments for '{name}' command");
            assert_eq!(run(c, bad), err(&expected), "{bad}");
        }
        assert_eq!(
            run(c, "HLEN h"),
            Frame::Integer(2),
            "a refused HSET writes nothing"
        );
    });
}

#[test]
fn wrong_types_answer_wrongtype() {
    each_engine(|c| {
        run(c, "SET s x");
        run(c, "SADD set m");
        for command in [
            "HSET s f v",
            "HSETNX s f v",
            "HMSET s f v",
            "HGET s f",
            "HMGET s f",
            "HDEL s f",
            "HLEN s",
            "HEXISTS s f",
            "HSTRLEN s f",
            "HGETALL s",
            "HKEYS s",
            "HVALS set",
            "HINCRBY s f 1",
            "HINCRBYFLOAT s f 1",
            "HSCAN s 0",
            "HRANDFIELD s",
            "HRANDFIELD set 2 WITHVALUES",
        ] {
            assert_eq!(run(c, command), err(WRONGTYPE), "{command}");
        }
        assert_eq!(run(c, "GET s"), bulk("x"), "untouched");
    });
}

#[test]
fn hincrby_checks_numbers_and_overflow() {
    each_engine(|c| {
        assert_eq!(run(c, "HINCRBY h n 5"), Frame::Integer(5));
        assert_eq!(run(c, "HINCRBY h n -7"), Frame::Integer(-2));
        run(c, "HSET h text abc big 9223372036854775807 sp 1 lead 007");
        for field in ["text", "lead"] {
            assert_eq!(
                run(c, &format!("HINCRBY h {field} 1")),
                err("ERR hash value is not an integer")
            );
        }
        assert_eq!(
            run(c, "HINCRBY h big 1"),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(
            run(c, "HINCRBY h n -9223372036854775806"),
            Frame::Integer(i64::MIN)
        );
        assert_eq!(
            run(c, "HINCRBY h n -1"),
            err("ERR increment or decrement would overflow")
        );
        for bad in ["x", "1.5", "+1", "05", "99999999999999999999", ""] {
            assert_eq!(
                c.run(&[b"HINCRBY", b"h", b"n", bad.as_bytes()]),
                err("ERR value is not an integer or out of range"),
                "{bad:?}"
            );
        }
        // The increment is checked before the key's type.
        run(c, "SET s x");
        assert_eq!(
            run(c, "HINCRBY s f x"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(run(c, "HINCRBY fresh f 3"), Frame::Integer(3));
        assert_eq!(run(c, "HLEN fresh"), Frame::Integer(1));
        // A failed increment on a missing key creates nothing.
        assert!(run(c, "HINCRBY gone f x").is_error());
        assert_eq!(run(c, "EXISTS gone"), Frame::Integer(0));
    });
}

#[test]
fn hincrbyfloat_formats_like_redis() {
    each_engine(|c| {
        assert_eq!(run(c, "HINCRBYFLOAT h f 10.5"), bulk("10.5"));
        assert_eq!(run(c, "HINCRBYFLOAT h f 0.25"), bulk("10.75"));
        assert_eq!(run(c, "HINCRBYFLOAT h f -10.75"), bulk("0"));
        assert_eq!(run(c, "HINCRBYFLOAT h f -0"), bulk("0"));
        assert_eq!(run(c, "HINCRBYFLOAT h g 1e3"), bulk("1000"));
        assert_eq!(run(c, "HINCRBYFLOAT h tiny 1.5e-30"), bulk("0"));
        assert_eq!(run(c, "HINCRBYFLOAT h i 5."), bulk("5"));
        assert_eq!(run(c, "HINCRBYFLOAT h i .5"), bulk("5.5"));
        assert_eq!(run(c, "HINCRBYFLOAT h i 0x10"), bulk("21.5"), "C reads hex");
        assert_eq!(run(c, "HINCRBYFLOAT h i +1E1"), bulk("31.5"));
        run(c, "HSET h text abc sp 1 n 3");
        assert_eq!(run(c, "HINCRBYFLOAT h n 1.5"), bulk("4.5"));
        assert_eq!(
            run(c, "HINCRBYFLOAT h text 1"),
            err("ERR hash value is not a float")
        );
        for bad in ["x", "nan", "", " 1", "1 ", "1e", "nan(1)", "0x"] {
            assert_eq!(
                c.run(&[b"HINCRBYFLOAT", b"h", b"f", bad.as_bytes()]),
                err("ERR value is not a valid float"),
                "{bad:?}"
            );
        }
        for infinite in ["inf", "-inf", "infinity"] {
            assert_eq!(
                run(c, &format!("HINCRBYFLOAT h f {infinite}")),
                err("ERR value is NaN or Infinity")
            );
        }
        // A long double's range: 2e308 is fine, 2e4932 is not.
        run(c, "HSET h huge 1e4932");
        assert_eq!(
            run(c, "HINCRBYFLOAT h huge 1e4932"),
            err("ERR increment would produce NaN or Infinity")
        );
        assert_eq!(run(c, "HGET h huge"), bulk("1e4932"), "unchanged");
    });
}

#[test]
fn hscan_visits_every_field_once_in_bounded_pages() {
    each_engine(|c| {
        // Small hashes come back whole, as Redis's listpack ones do.
        run(c, "HSET small a 1 b 2");
        assert_eq!(
            run(c, "HSCAN small 0 COUNT 1"),
            Frame::Array(vec![bulk("0"), bulks(&["a", "1", "b", "2"])])
        );
        assert_eq!(
            run(c, "HSCAN small 0 NOVALUES"),
            Frame::Array(vec![bulk("0"), bulks(&["a", "b"])])
        );
        for i in 0..1000 {
            run(c, &format!("HSET big user:{i:04} v{i}"));
        }
        let (items, calls) = scan_all(c, "HSCAN big", "COUNT 7");
        assert_eq!(items.len(), 2000);
        assert!((143..=150).contains(&calls), "{calls} calls of COUNT 7");
        let fields: HashSet<&String> = items.iter().step_by(2).collect();
        assert_eq!(fields.len(), 1000, "each field exactly once");
        assert_eq!(items[1], "v0");
        let (fields, _) = scan_all(c, "HSCAN big", "COUNT 100 MATCH user:09* NOVALUES");
        assert_eq!(fields.len(), 100);
        assert!(fields.iter().all(|f| f.starts_with("user:09")));
        // A huge COUNT is capped, not allocated.
        let reply = run(c, "HSCAN big 0 COUNT 9223372036854775807");
        assert_eq!(texts(&reply_items(&reply)).len(), 2000);
        assert_eq!(
            run(c, "HSCAN nokey 0 COUNT 0"),
            Frame::Array(vec![bulk("0"), Frame::Array(Vec::new())]),
            "a missing key answers before options are parsed"
        );
        for (bad, error) in [
            ("HSCAN big x", "ERR invalid cursor"),
            ("HSCAN big 18446744073709551616", "ERR invalid cursor"),
            ("HSCAN big 0 COUNT 0", "ERR syntax error"),
            ("HSCAN big 0 COUNT -1", "ERR syntax error"),
            ("HSCAN big 0 MATCH", "ERR syntax error"),
            ("HSCAN big 0 TYPE hash", "ERR syntax error"),
            (
                "HSCAN big 0 COUNT x",
                "ERR value is not an integer or out of range",
            ),
        ] {
            assert_eq!(run(c, bad), err(error), "{bad}");
        }
    });
}

fn reply_items(reply: &Frame) -> Frame {
    match reply {
        Frame::Array(parts) => parts[1].clone(),
        other => panic!("not a scan reply: {other:?}"),
    }
}

#[test]
fn a_forgotten_hscan_cursor_still_reaches_every_field() {
    each_engine(|c| {
        for i in 0..300 {
            run(c, &format!("HSET h k{i:03} v"));
        }
        let reply = run(c, "HSCAN h 0 COUNT 100 NOVALUES");
        let Frame::Array(parts) = &reply else {
            panic!("{reply:?}")
        };
        let Frame::Bulk(cursor) = &parts[0] else {
            panic!("{parts:?}")
        };
        let cursor: u64 = std::str::from_utf8(cursor).unwrap().parse().unwrap();
        // Another tag: the slot does not know it, its 3 bytes ("k10") do.
        let forged = cursor ^ (1 << 14);
        let (fields, _) = scan_all(c, "HSCAN h", "COUNT 1000 NOVALUES");
        assert_eq!(fields.len(), 300);
        let reply = run(c, &format!("HSCAN h {forged} COUNT 1000 NOVALUES"));
        let rest = texts(&reply_items(&reply));
        assert_eq!(rest.first().map(String::as_str), Some("k100"));
        assert_eq!(rest.len(), 200);
    });
}

#[test]
fn hrandfield_counts_and_shapes() {
    each_engine(|c| {
        assert_eq!(run(c, "HRANDFIELD nokey"), Frame::Null);
        assert_eq!(run(c, "HRANDFIELD nokey 3"), Frame::Array(Vec::new()));
        assert_eq!(
            run(c, "HRANDFIELD nokey -3 WITHVALUES"),
            Frame::Array(Vec::new())
        );
        run(c, "HSET h a 1 b 2 c 3");
        assert!(matches!(run(c, "HRANDFIELD h"), Frame::Bulk(f) if b"abc".contains(&f[0])));
        assert_eq!(run(c, "HRANDFIELD h 0"), Frame::Array(Vec::new()));
        assert_eq!(
            run(c, "HRANDFIELD h 9223372036854775807"),
            bulks(&["a", "b", "c"])
        );
        assert_eq!(
            run(c, "HRANDFIELD h 5 WITHVALUES"),
            bulks(&["a", "1", "b", "2", "c", "3"])
        );
        let two = texts(&run(c, "HRANDFIELD h 2"));
        assert_eq!(two.len(), 2);
        assert_ne!(two[0], two[1], "a positive count is distinct");
        let many = texts(&run(c, "HRANDFIELD h -50 WITHVALUES"));
        assert_eq!(many.len(), 100);
        for pair in many.chunks(2) {
            let expected = (pair[0].as_bytes()[0] - b'a' + b'1') as char;
            assert_eq!(
                pair[1],
                expected.to_string(),
                "each value goes with its field"
            );
        }
        run(c, "HELLO 3");
        let Frame::Array(pairs) = run(c, "HRANDFIELD h -4 WITHVALUES") else {
            panic!("an array");
        };
        assert_eq!(pairs.len(), 4);
        assert!(
            pairs
                .iter()
                .all(|p| matches!(p, Frame::Array(kv) if kv.len() == 2))
        );
        run(c, "HELLO 2");
        for (bad, error) in [
            (
                "HRANDFIELD h -9223372036854775808",
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ),
            (
                "HRANDFIELD h -4611686018427387904 WITHVALUES",
                "ERR value is out of range",
            ),
            (
                "HRANDFIELD h 4611686018427387904 WITHVALUES",
                "ERR value is out of range",
            ),
            ("HRANDFIELD h 1 WITHVALUE", "ERR syntax error"),
            ("HRANDFIELD h 1 WITHVALUES x", "ERR syntax error"),
            (
                "HRANDFIELD h x",
                "ERR value is not an integer or out of range",
            ),
            // More repeats than we build a reply for (Redis runs out of memory).
            (
                "HRANDFIELD h -9223372036854775807",
                "ERR value is out of range",
            ),
            ("HRANDFIELD h -1048577", "ERR value is out of range"),
        ] {
            assert_eq!(run(c, bad), err(error), "{bad}");
        }
        assert_eq!(texts(&run(c, "HRANDFIELD h -1048576")).len(), 1 << 20);
    });
}

#[test]
fn hrandfield_on_a_big_hash_samples_widely() {
    each_engine(|c| {
        for i in 0..3000 {
            run(c, &format!("HSET h field:{i} {i}"));
        }
        let distinct = texts(&run(c, "HRANDFIELD h 200"));
        assert_eq!(distinct.len(), 200);
        assert_eq!(distinct.iter().collect::<HashSet<_>>().len(), 200);
        // Fewer than a third of the hash: sampled by descent.
        let drawn = texts(&run(c, "HRANDFIELD h -900"));
        assert_eq!(drawn.len(), 900);
        let seen: HashSet<&String> = drawn.iter().collect();
        assert!(seen.len() > 300, "{} distinct of 900 draws", seen.len());
        // A third or more: read whole, uniform.
        let drawn = texts(&run(c, "HRANDFIELD h -3000"));
        let seen: HashSet<&String> = drawn.iter().collect();
        assert!(seen.len() > 1500, "{} distinct of 3000 draws", seen.len());
        assert!(drawn.iter().all(|f| f.starts_with("field:")));
        // Most of the hash: read whole and shuffled.
        assert_eq!(texts(&run(c, "HRANDFIELD h 2500")).len(), 2500);
    });
}

#[test]
fn writes_keep_the_ttl_and_the_last_field_takes_it_away() {
    each_engine(|c| {
        run(c, "HSET h a 1");
        run(c, "EXPIRE h 100");
        run(c, "HSET h b 2");
        run(c, "HINCRBY h n 1");
        run(c, "HINCRBYFLOAT h n 1.5");
        run(c, "HDEL h a");
        assert_eq!(run(c, "TTL h"), Frame::Integer(100));
        run(c, "HDEL h b n");
        assert_eq!(run(c, "TTL h"), Frame::Integer(-2));
        run(c, "HSET h a 1");
        assert_eq!(run(c, "TTL h"), Frame::Integer(-1), "a new hash has no TTL");
        // MULTI/EXEC: a failing HINCRBY is undone alone.
        run(c, "MULTI");
        run(c, "HSET h x 1");
        run(c, "HINCRBY h a x");
        run(c, "HINCRBY h x 1");
        assert_eq!(
            run(c, "EXEC"),
            Frame::Array(vec![
                Frame::Integer(1),
                err("ERR value is not an integer or out of range"),
                Frame::Integer(2)
            ])
        );
        assert_eq!(run(c, "HLEN h"), Frame::Integer(2));
    });
}
