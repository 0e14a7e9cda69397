//! `OBJECT IDLETIME` and `OBJECT FREQ` compared with a real `redis-server`
//! (see `common/diff.rs`): which commands count as an access, the shared
//! small integers' common stamp, and the LFU policy's errors and counters.
//! The memory engine only: the lsm engine keeps no access stamps and
//! reports every key as just used (see `command::bits::object`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common;

use common::diff::{Pair, RespConn};

/// Sleeps until the wall clock is `at_ms` past a whole second: both servers
/// count idle time in whole Unix seconds (Redis refreshes its clock every
/// 100 ms), so commands kept within one second's middle see the same second.
fn sleep_until_ms_past_second(at_ms: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = now.as_millis() as u64 % 1000;
    let wait = (at_ms + 1000 - into) % 1000;
    std::thread::sleep(Duration::from_millis(wait));
}

#[test]
fn idle_time_and_frequency_match_redis() {
    let mut pair = Pair::start(kv::config::EngineKind::Memory);
    // A client of ours that reads without touching (Redis 7.0 has no
    // `CLIENT NO-TOUCH`; its read must leave the key as idle as Redis's
    // untouched one).
    let mut no_touch = RespConn::connect(pair.ours_addr());
    assert_eq!(no_touch.call(&[b"CLIENT", b"NO-TOUCH", b"ON"]), b"+OK\r\n");
    sleep_until_ms_past_second(300);
    pair.check_words(&[
        &["SET", "read", "hello"],
        &["SET", "peeked", "hello"],
        &["SET", "written", "hello"],
        &["SET", "untouched", "hello"],
        &["SET", "touched", "hello"],
        &["RPUSH", "list", "x"],
        &["HSET", "hash", "f", "v"],
        &["SET", "five", "5"],
        &["GET", "five"],
        &["OBJECT", "IDLETIME", "read"],
        &["OBJECT", "IDLETIME", "five"],
        &["OBJECT", "IDLETIME", "missing"],
    ]);
    std::thread::sleep(Duration::from_secs(1));
    no_touch.call(&[b"GET", b"untouched"]);
    pair.check_words(&[
        &["OBJECT", "IDLETIME", "read"],
        &["GET", "read"],
        &["OBJECT", "IDLETIME", "read"],
        // Redis's LOOKUP_NOTOUCH commands.
        &["EXISTS", "peeked"],
        &["TYPE", "peeked"],
        &["TTL", "peeked"],
        &["PTTL", "peeked"],
        &["OBJECT", "ENCODING", "peeked"],
        &["OBJECT", "IDLETIME", "peeked"],
        &["APPEND", "written", "!"],
        &["OBJECT", "IDLETIME", "written"],
        &["OBJECT", "IDLETIME", "untouched"],
        &["TOUCH", "touched", "missing"],
        &["OBJECT", "IDLETIME", "touched"],
        &["LRANGE", "list", "0", "-1"],
        &["OBJECT", "IDLETIME", "list"],
        &["OBJECT", "IDLETIME", "hash"],
        &["HGET", "hash", "f"],
        &["OBJECT", "IDLETIME", "hash"],
        // A new key holding 5 shares the stamp of the 5 read above.
        &["SET", "five-again", "5"],
        &["OBJECT", "IDLETIME", "five-again"],
        &["SET", "big", "12345"],
        &["OBJECT", "IDLETIME", "big"],
        &["OBJECT", "FREQ", "read"],
    ]);
    // Under an LFU policy: counters instead of idle times.
    pair.check_words(&[
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
        &["OBJECT", "IDLETIME", "read"],
        &["SET", "counted", "hello"],
        &["OBJECT", "FREQ", "counted"],
        &["GET", "counted"],
        &["OBJECT", "FREQ", "counted"],
        &["OBJECT", "FREQ", "missing"],
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
        &["OBJECT", "FREQ", "counted"],
    ]);
}
