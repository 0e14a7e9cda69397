//! A whole dataset read back by commands, for comparing two servers key by
//! key and type by type (the RDB and replication interop tests).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// One key as compared: its type, its contents in a canonical order (sets
/// and hashes sorted, lists and sorted sets in their own order, scores as
/// Redis prints them), and whether it has a TTL.
pub type Dataset = BTreeMap<Vec<u8>, (String, Vec<Vec<u8>>, bool)>;

/// A blocking client (the `redis` crate's) to `addr`.
pub fn connect(addr: SocketAddr) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("url");
    let con = client.get_connection().expect("connect");
    con.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    con
}

/// Every key of the server at `addr`.
pub fn snapshot(con: &mut redis::Connection) -> Dataset {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(con).expect("KEYS");
    let mut out = Dataset::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(con).expect("TYPE");
        let q = |name: &str, extra: &[&str], con: &mut redis::Connection| -> Vec<Vec<u8>> {
            redis::cmd(name)
                .arg(&key)
                .arg(extra)
                .query(con)
                .expect(name)
        };
        let mut items = match kind.as_str() {
            "string" => vec![redis::cmd("GET").arg(&key).query(con).expect("GET")],
            "list" => q("LRANGE", &["0", "-1"], con),
            "set" => q("SMEMBERS", &[], con),
            "zset" => q("ZRANGE", &["0", "-1", "WITHSCORES"], con),
            "hash" => q("HGETALL", &[], con),
            "none" => continue, // expired between KEYS and TYPE
            other => vec![other.as_bytes().to_vec()],
        };
        match kind.as_str() {
            "set" => items.sort(),
            "hash" => {
                let mut pairs: Vec<Vec<Vec<u8>>> = items.chunks(2).map(|c| c.to_vec()).collect();
                pairs.sort();
                items = pairs.concat();
            }
            _ => {}
        }
        let pttl: i64 = redis::cmd("PTTL").arg(&key).query(con).expect("PTTL");
        out.insert(key, (kind, items, pttl >= 0));
    }
    out
}

/// Fills a server with every serializable type in the encodings Redis
/// chooses by size: small (listpack/intset), big (quicklist, hashtable,
/// skiplist), integers, long compressible strings (LZF in RDB), TTLs.
pub fn fill_every_type(con: &mut redis::Connection, prefix: &str) {
    let mut pipe = redis::pipe();
    let p = prefix;
    pipe.cmd("SET").arg(format!("{p}str")).arg("hello");
    pipe.cmd("SET").arg(format!("{p}int")).arg("-12345");
    pipe.cmd("SET")
        .arg(format!("{p}bigint"))
        .arg("12345678901234");
    pipe.cmd("SET")
        .arg(format!("{p}lzf"))
        .arg("abcdefgh".repeat(500));
    pipe.cmd("SET").arg(format!("{p}empty")).arg("");
    pipe.cmd("SET")
        .arg(format!("{p}bin"))
        .arg(vec![0u8, 255, 13, 10, 7]);
    pipe.cmd("SET")
        .arg(format!("{p}ttl"))
        .arg("v")
        .arg("EX")
        .arg("1000");
    pipe.cmd("RPUSH")
        .arg(format!("{p}list:small"))
        .arg(&["a", "1", "-7", "300000", "x"]);
    let big: Vec<String> = (0..3000).map(|i| format!("elem-{i}")).collect();
    pipe.cmd("RPUSH").arg(format!("{p}list:big")).arg(&big);
    pipe.cmd("RPUSH")
        .arg(format!("{p}list:plain"))
        .arg("y".repeat(20_000))
        .arg("z");
    pipe.cmd("SADD")
        .arg(format!("{p}set:ints"))
        .arg(&["1", "-2", "40000", "5000000000"]);
    pipe.cmd("SADD")
        .arg(format!("{p}set:small"))
        .arg(&["a", "b", "c"]);
    pipe.cmd("SADD").arg(format!("{p}set:big")).arg(&big);
    pipe.cmd("ZADD")
        .arg(format!("{p}zset:small"))
        .arg(&["1.5", "a", "-2", "b", "inf", "c"]);
    let mut scored = Vec::new();
    for (i, m) in big.iter().enumerate() {
        scored.push(format!("{}", i as f64 / 7.0));
        scored.push(m.clone());
    }
    pipe.cmd("ZADD").arg(format!("{p}zset:big")).arg(&scored);
    pipe.cmd("HSET")
        .arg(format!("{p}hash:small"))
        .arg(&["f", "v", "n", "12"]);
    let mut fields = Vec::new();
    for m in &big {
        fields.push(m.clone());
        fields.push(format!("value of {m}"));
    }
    pipe.cmd("HSET").arg(format!("{p}hash:big")).arg(&fields);
    pipe.cmd("HSET")
        .arg(format!("{p}hash:ttl"))
        .arg(&["a", "b"]);
    pipe.cmd("PEXPIRE")
        .arg(format!("{p}hash:ttl"))
        .arg("900000");
    pipe.query::<()>(con).expect("fill");
}
