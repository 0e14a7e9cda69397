//! The kv cluster's CRDT commands (counters, sets, hashes) against the
//! real Redis: the same commands, sent round-robin through the three
//! nodes of a running cluster and to one `redis-server`, give the same
//! replies (set members and hash fields compared as sets, since the
//! orders differ); and what cluster mode refuses, it refuses clearly.

use redis::Value;

/// Replies with their order-free parts sorted.
fn normalized(command: &str, v: Value) -> Value {
    match (command, v) {
        ("SMEMBERS", Value::Array(mut items)) => {
            items.sort_by_key(|i| format!("{i:?}"));
            Value::Array(items)
        }
        ("HGETALL", Value::Array(items)) => {
            let mut pairs: Vec<Vec<Value>> = items.chunks(2).map(<[Value]>::to_vec).collect();
            pairs.sort_by_key(|p| format!("{p:?}"));
            Value::Array(pairs.concat())
        }
        (_, Value::ServerError(e)) => Value::SimpleString(format!("error {:?}", e.code())),
        (_, v) => v,
    }
}

fn run(con: &mut redis::Connection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let reply = cmd.query::<Value>(con);
    let reply = match reply {
        Ok(v) => v,
        Err(e) => Value::SimpleString(format!("error {:?}", e.code())),
    };
    normalized(args[0], reply)
}

/// Runs the differential over `cluster` (connections to the nodes).
pub fn data_types_match_redis(cluster: &mut [redis::Connection]) {
    let redis = testkit::RedisServer::start();
    let mut reference = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let script: &[&[&str]] = &[
        &["INCR", "hits"],
        &["INCRBY", "hits", "41"],
        &["DECR", "hits"],
        &["DECRBY", "hits", "-10"],
        &["GET", "hits"],
        &["INCRBY", "hits", "x"],
        &["INCRBY", "hits", "9223372036854775807"],
        &["GET", "hits"],
        &["SADD", "tags", "a", "b", "c", "a"],
        &["SADD", "tags", "c", "d"],
        &["SREM", "tags", "a", "zz"],
        &["SMEMBERS", "tags"],
        &["SISMEMBER", "tags", "b"],
        &["SISMEMBER", "tags", "a"],
        &["SCARD", "tags"],
        &["SCARD", "nothing"],
        &["SMEMBERS", "nothing"],
        &["HSET", "user", "name", "ada", "lang", "rust"],
        &["HSET", "user", "name", "grace", "year", "1906"],
        &["HGET", "user", "name"],
        &["HGET", "user", "missing"],
        &["HDEL", "user", "lang", "missing"],
        &["HGETALL", "user"],
        &["HGETALL", "nothing"],
        &["HSET", "user", "odd"],
        &["SADD", "hits", "x"],
        &["HGET", "tags", "f"],
        &["GET", "tags"],
        &["DEL", "tags"],
        &["SMEMBERS", "tags"],
        &["SADD", "tags", "again"],
        &["SMEMBERS", "tags"],
    ];
    for (i, args) in script.iter().enumerate() {
        let node = &mut cluster[i % cluster.len()];
        let ours = run(node, args);
        let theirs = run(&mut reference, args);
        assert_eq!(ours, theirs, "{args:?}");
    }
    // Cluster mode's own rules: a string is not a counter, and the CRDT
    // prefix is reserved.
    let con = &mut cluster[0];
    let _: () = redis::cmd("SET").arg("s").arg("5").query(con).unwrap();
    let err = redis::cmd("INCR").arg("s").query::<i64>(con).unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err}");
    let err = redis::cmd("SET")
        .arg("s")
        .arg(b"\0crdt\0\x01\x00".as_slice())
        .query::<()>(con)
        .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
}
