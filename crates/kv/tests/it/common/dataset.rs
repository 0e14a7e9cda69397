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
            "stream" => stream_items(con, &key),
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

/// A stream as compared: every entry (`XRANGE - +`), then `XINFO STREAM
/// FULL` flattened (ids, counters, groups with their pending entries'
/// owners, delivery times and counts, consumers' seen times), minus the
/// radix-tree figures, which depend on how nodes were split.
fn stream_items(con: &mut redis::Connection, key: &[u8]) -> Vec<Vec<u8>> {
    fn flat(value: redis::Value, out: &mut Vec<Vec<u8>>) {
        match value {
            redis::Value::BulkString(b) => out.push(b),
            redis::Value::SimpleString(s) => out.push(s.into_bytes()),
            redis::Value::Int(i) => out.push(i.to_string().into_bytes()),
            redis::Value::Nil => out.push(b"(nil)".to_vec()),
            redis::Value::Array(items) => {
                out.push(format!("[{}", items.len()).into_bytes());
                for item in items {
                    flat(item, out);
                }
            }
            other => out.push(format!("{other:?}").into_bytes()),
        }
    }
    let mut out = Vec::new();
    let range: redis::Value = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(con)
        .expect("XRANGE");
    flat(range, &mut out);
    let info: redis::Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .arg("FULL")
        .arg("COUNT")
        .arg("0")
        .query(con)
        .expect("XINFO STREAM FULL");
    let redis::Value::Array(fields) = info else {
        panic!("XINFO STREAM FULL: {info:?}");
    };
    for pair in fields.chunks(2) {
        let name = match &pair[0] {
            redis::Value::BulkString(b) => b.clone(),
            other => format!("{other:?}").into_bytes(),
        };
        if name.starts_with(b"radix-tree") {
            continue;
        }
        out.push(name);
        if let Some(value) = pair.get(1) {
            flat(value.clone(), &mut out);
        }
    }
    out
}

/// Fills a server with streams: several listpack nodes with varying
/// fields, deleted entries, an emptied stream, an empty stream with a
/// group, and consumer groups with pending entries, consumers with and
/// without pending entries, acknowledged entries and read counters.
pub fn fill_streams(con: &mut redis::Connection, prefix: &str) {
    let p = prefix;
    let key = format!("{p}stream:big");
    let mut pipe = redis::pipe();
    for i in 1..=250u64 {
        let cmd = pipe
            .cmd("XADD")
            .arg(&key)
            .arg(format!("{}-{}", 1000 + i / 3, i % 3));
        if i % 7 == 0 {
            cmd.arg("other")
                .arg(i)
                .arg("extra")
                .arg("x".repeat(i as usize));
        } else {
            cmd.arg("n").arg(i).arg("name").arg(format!("entry {i}"));
        }
    }
    pipe.cmd("XDEL")
        .arg(&key)
        .arg(&["1001-2", "1010-0", "1050-1", "1083-2"]);
    pipe.cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g1")
        .arg("0");
    pipe.cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g1")
        .arg("alice")
        .arg("COUNT")
        .arg("5")
        .arg("STREAMS")
        .arg(&key)
        .arg(">");
    pipe.cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g1")
        .arg("bob")
        .arg("COUNT")
        .arg("120")
        .arg("STREAMS")
        .arg(&key)
        .arg(">");
    pipe.cmd("XACK")
        .arg(&key)
        .arg("g1")
        .arg(&["1001-0", "1005-1", "1020-0"]);
    pipe.cmd("XCLAIM")
        .arg(&key)
        .arg("g1")
        .arg("alice")
        .arg("0")
        .arg("1030-0")
        .arg("RETRYCOUNT")
        .arg("4");
    pipe.cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(&key)
        .arg("g1")
        .arg("carol");
    pipe.cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g2")
        .arg("$");
    pipe.cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g0")
        .arg("1040-0")
        .arg("ENTRIESREAD")
        .arg("7");
    let gone = format!("{p}stream:emptied");
    pipe.cmd("XADD").arg(&gone).arg("5-1").arg("a").arg("1");
    pipe.cmd("XADD").arg(&gone).arg("5-2").arg("b").arg("2");
    pipe.cmd("XDEL").arg(&gone).arg(&["5-1", "5-2"]);
    pipe.cmd("XGROUP")
        .arg("CREATE")
        .arg(format!("{p}stream:nothing"))
        .arg("g")
        .arg("$")
        .arg("MKSTREAM");
    pipe.cmd("XADD")
        .arg(format!("{p}stream:ttl"))
        .arg("*")
        .arg("f")
        .arg("v");
    pipe.cmd("PEXPIRE")
        .arg(format!("{p}stream:ttl"))
        .arg("900000");
    pipe.query::<()>(con).expect("fill streams");
}

/// Asserts two datasets are equal, naming the first key and item that
/// differ (a whole dataset is too big to print).
pub fn assert_same(got: &Dataset, want: &Dataset, what: &str) {
    let keys = |d: &Dataset| d.keys().cloned().collect::<Vec<_>>();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if keys(got) != keys(want) {
        let only = |a: &Dataset, b: &Dataset| {
            a.keys()
                .filter(|k| !b.contains_key(*k))
                .map(|k| text(k))
                .collect::<Vec<_>>()
        };
        panic!(
            "{what}: keys differ: only in got {:?}, only in want {:?}",
            only(got, want),
            only(want, got)
        );
    }
    for (key, (kind, items, ttl)) in want {
        let (got_kind, got_items, got_ttl) = &got[key];
        let at = items.iter().zip(got_items).position(|(a, b)| a != b);
        if kind != got_kind || ttl != got_ttl || at.is_some() || items.len() != got_items.len() {
            let at = at.unwrap_or(items.len().min(got_items.len()));
            let window = |v: &[Vec<u8>]| {
                v.iter()
                    .skip(at.saturating_sub(3))
                    .take(8)
                    .map(|b| text(b))
                    .collect::<Vec<_>>()
            };
            panic!(
                "{what}: key {} differs ({kind}/{got_kind}, ttl {ttl}/{got_ttl}, {} / {} items) at item {at}: want {:?}, got {:?}",
                text(key),
                items.len(),
                got_items.len(),
                window(items),
                window(got_items)
            );
        }
    }
}
