//! `CLIENT REPLY ON|OFF|SKIP` and `CLIENT NO-EVICT` against a real
//! `redis-server` (see `common/diff.rs`): the replies that are sent, and
//! those that are not, must be the same on both, on both engines.

use crate::common;

use common::diff::Pair;

/// Sends a command to both servers without reading a reply.
fn silent(pair: &mut Pair, args: &[&[u8]]) {
    pair.redis.send(args);
    pair.ours.send(args);
}

#[test]
fn client_reply_drops_the_same_replies_as_redis() {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        silent(&mut pair, &[b"CLIENT", b"REPLY", b"OFF"]);
        silent(&mut pair, &[b"SET", b"a", b"1"]);
        silent(&mut pair, &[b"GET", b"a"]);
        silent(&mut pair, &[b"CLIENT", b"REPLY", b"SKIP"]);
        silent(&mut pair, &[b"INCR", b"nope", b"extra"]);
        pair.check(&[b"CLIENT", b"REPLY", b"ON"], "on again");
        pair.check(&[b"GET", b"a"], "the silent SET happened");
        silent(&mut pair, &[b"CLIENT", b"REPLY", b"SKIP"]);
        silent(&mut pair, &[b"INCR", b"a"]);
        pair.check(&[b"GET", b"a"], "one reply skipped, then back");
        silent(&mut pair, &[b"CLIENT", b"REPLY", b"SKIP"]);
        silent(&mut pair, &[b"CLIENT", b"REPLY", b"SKIP"]);
        silent(&mut pair, &[b"GET", b"a"]);
        pair.check(&[b"GET", b"a"], "skip of a skip");
        pair.check(&[b"CLIENT", b"REPLY", b"MAYBE"], "syntax");
        pair.check(&[b"CLIENT", b"REPLY"], "arity");
        pair.check(&[b"CLIENT", b"REPLY", b"ON", b"x"], "arity");
        // A pipeline with replies off in the middle.
        for conn in [&mut pair.redis, &mut pair.ours] {
            conn.send(&[b"CLIENT", b"REPLY", b"OFF"]);
            conn.send(&[b"SET", b"b", b"2"]);
            conn.send(&[b"CLIENT", b"REPLY", b"ON"]);
            conn.send(&[b"GET", b"b"]);
        }
        let (redis, ours) = (pair.redis.read_reply(), pair.ours.read_reply());
        assert_eq!(redis, ours, "CLIENT REPLY ON");
        let (redis, ours) = (pair.redis.read_reply(), pair.ours.read_reply());
        assert_eq!(redis, ours, "GET b");
        pair.check(&[b"CLIENT", b"NO-EVICT", b"ON"], "no-evict");
        pair.check(&[b"CLIENT", b"NO-EVICT", b"OFF"], "no-evict");
        pair.check(&[b"CLIENT", b"NO-EVICT", b"MAYBE"], "no-evict syntax");
        pair.check(&[b"CLIENT", b"NO-EVICT"], "no-evict arity");
    }
}
