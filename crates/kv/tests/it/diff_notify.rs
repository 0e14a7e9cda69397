//! Keyspace notifications compared with a real `redis-server`: the same
//! commands on both, a `PSUBSCRIBE __key*@0__:*` subscriber on each, and the
//! published messages compared in order (see `common/diff.rs`).

use crate::common;

use common::diff::{Pair, RespConn};

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
