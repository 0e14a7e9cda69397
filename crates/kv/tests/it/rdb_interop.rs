//! `DUMP`/`RESTORE` against a real redis-server: every type's RDB form,
//! in the encodings Redis picks (listpack, intset, quicklist, LZF strings),
//! moves from Redis to us and back, and both sides refuse the same bad
//! payloads with the same errors. Streams come in every state their RDB
//! form carries (several nodes, deleted entries, groups, pending entries,
//! consumers).

use crate::common::dataset::{connect, fill_every_type, fill_streams, snapshot};
use crate::common::diff::Pair;

/// Moves every key of `from` to `to` by DUMP + PTTL → RESTORE.
fn transfer(from: &mut redis::Connection, to: &mut redis::Connection) -> usize {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(from).unwrap();
    for key in &keys {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(from).unwrap();
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(from).unwrap();
        let ttl = ttl.max(0);
        let reply: redis::RedisResult<()> = redis::cmd("RESTORE")
            .arg(key)
            .arg(ttl)
            .arg(&payload)
            .arg("REPLACE")
            .query(to);
        reply.unwrap_or_else(|e| panic!("RESTORE {}: {e}", String::from_utf8_lossy(key)));
    }
    keys.len()
}

#[test]
fn every_type_round_trips_redis_to_ours_and_back() {
    for engine in Pair::engines() {
        let pair = Pair::start(engine);
        let mut redis_con = connect(pair.redis_addr());
        let mut ours = connect(pair.ours_addr());
        fill_every_type(&mut redis_con, "k:");
        fill_streams(&mut redis_con, "k:");
        let want = snapshot(&mut redis_con);
        assert!(want.len() >= 22, "the fill wrote every type");
        let big_stream = &want[b"k:stream:big".as_slice()];
        assert!(
            big_stream.0 == "stream" && big_stream.1.len() > 2000,
            "{big_stream:?}"
        );
        transfer(&mut redis_con, &mut ours);
        assert_eq!(snapshot(&mut ours), want, "Redis → ours on {engine:?}");

        redis::cmd("FLUSHALL").query::<()>(&mut redis_con).unwrap();
        transfer(&mut ours, &mut redis_con);
        assert_eq!(snapshot(&mut redis_con), want, "ours → Redis on {engine:?}");
    }
}

#[test]
fn restore_refuses_what_redis_refuses() {
    let mut pair = Pair::start(Pair::engines()[0]);
    pair.check(&[b"SET", b"s", b"v"], "setup");
    pair.check(&[b"XADD", b"x", b"1-1", b"f", b"v"], "setup");
    let mut con = connect(pair.redis_addr());
    let good: Vec<u8> = redis::cmd("DUMP").arg("s").query(&mut con).unwrap();
    // A stream whose node key is not a 16-byte id, and one whose listpack
    // is cut short (its size header no longer matches), resealed with a
    // right checksum so the body itself is judged.
    let stream: Vec<u8> = redis::cmd("DUMP").arg("x").query(&mut con).unwrap();
    let reseal = |body: &[u8]| {
        let mut out = body.to_vec();
        out.extend_from_slice(&stream[stream.len() - 10..stream.len() - 8]);
        let crc = kv::rdb::crc64(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    };
    let body = &stream[..stream.len() - 10];
    assert_eq!(
        (body[0], body[1], body[2]),
        (19, 1, 16),
        "type, one node, 16-byte key"
    );
    let mut short_key = body.to_vec();
    short_key[2] = 15;
    short_key.remove(3);
    let short_key = reseal(&short_key);
    let mut short_lp = body.to_vec();
    let lp_len_at = 3 + 16;
    short_lp[lp_len_at] -= 1;
    short_lp.remove(lp_len_at + 1 + 7);
    let short_lp = reseal(&short_lp);
    let mut flipped = good.clone();
    flipped[2] ^= 0x20;
    let mut newer = good.clone();
    let at = newer.len() - 10;
    newer[at] = 99;
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"RESTORE", b"s", b"0", &good],
        vec![b"RESTORE", b"n", b"-1", &good],
        vec![b"RESTORE", b"n", b"0", &flipped],
        vec![b"RESTORE", b"n", b"0", &newer],
        vec![b"RESTORE", b"n", b"0", b"short"],
        vec![b"RESTORE", b"xs", b"0", &stream],
        vec![b"XRANGE", b"xs", b"-", b"+"],
        vec![b"RESTORE", b"y", b"0", &short_key],
        vec![b"RESTORE", b"y", b"0", &short_lp],
        vec![b"EXISTS", b"y"],
        vec![b"RESTORE", b"n", b"0", &good, b"BOGUS"],
        vec![b"RESTORE", b"n", b"0", &good, b"FREQ", b"300"],
        vec![b"RESTORE", b"n", b"1", &good, b"ABSTTL"],
        vec![b"EXISTS", b"n"],
        vec![b"RESTORE", b"n", b"0", &good, b"IDLETIME", b"10"],
        vec![b"GET", b"n"],
        vec![b"DUMP", b"missing"],
    ];
    for case in &cases {
        pair.check(case, "restore errors");
    }
    for bad in [&short_key, &short_lp] {
        let reply = pair.check(&[b"RESTORE", b"z", b"0", bad], "corrupt stream");
        assert!(reply.starts_with(b"-ERR Bad data format"), "{reply:?}");
    }
}
