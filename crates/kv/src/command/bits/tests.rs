//! Unit tests of the bit commands, LCS, COPY and OBJECT with bad input.

use crate::command::local::LocalClient;
use crate::config::Config;
use crate::protocol::Frame;

fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

fn err(text: &str) -> Frame {
    Frame::error(text)
}

#[test]
fn huge_bit_offsets_are_refused_before_allocating() {
    let mut c = LocalClient::memory(Config::default());
    let bad = err("ERR bit offset is not an integer or out of range");
    for offset in [
        &b"4294967296"[..],
        b"-1",
        b"x",
        b"99999999999999999999",
        b"#1",
    ] {
        assert_eq!(c.run(&[b"SETBIT", b"k", offset, b"1"]), bad);
        assert_eq!(c.run(&[b"GETBIT", b"k", offset]), bad);
    }
    assert_eq!(
        c.run(&[b"BITFIELD", b"k", b"SET", b"u8", b"#536870912", b"1"]),
        bad
    );
    assert_eq!(
        c.run(&[
            b"BITFIELD",
            b"k",
            b"SET",
            b"i64",
            b"#9223372036854775807",
            b"1"
        ]),
        bad
    );
    assert_eq!(c.run(&[b"EXISTS", b"k"]), int(0));
    // A smaller proto-max-bulk-len lowers the limit with it.
    c.run(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1mb"]);
    assert_eq!(c.run(&[b"SETBIT", b"k", b"8388608", b"1"]), bad);
    assert_eq!(c.run(&[b"SETBIT", b"k", b"8388607", b"1"]), int(0));
    assert_eq!(c.run(&[b"STRLEN", b"k"]), int(1 << 20));
}

#[test]
fn setbit_getbit_bitcount_bitpos() {
    let mut c = LocalClient::memory(Config::default());
    assert_eq!(
        c.run(&[b"SETBIT", b"k", b"7", b"2"]),
        err("ERR bit is not an integer or out of range")
    );
    assert_eq!(c.run(&[b"SETBIT", b"k", b"7", b"1"]), int(0));
    assert_eq!(c.run(&[b"SETBIT", b"k", b"7", b"1"]), int(1));
    assert_eq!(c.run(&[b"GET", b"k"]), Frame::bulk("\x01"));
    assert_eq!(c.run(&[b"GETBIT", b"k", b"7"]), int(1));
    assert_eq!(c.run(&[b"GETBIT", b"k", b"100"]), int(0));
    c.run(&[b"SET", b"s", b"foobar"]);
    assert_eq!(c.run(&[b"BITCOUNT", b"s"]), int(26));
    assert_eq!(c.run(&[b"BITCOUNT", b"s", b"1", b"1"]), int(6));
    assert_eq!(c.run(&[b"BITCOUNT", b"s", b"5", b"30", b"BIT"]), int(17));
    assert_eq!(c.run(&[b"BITCOUNT", b"s", b"1"]), err("ERR syntax error"));
    assert_eq!(
        c.run(&[b"BITCOUNT", b"s", b"1", b"2", b"X"]),
        err("ERR syntax error")
    );
    assert_eq!(c.run(&[b"BITCOUNT", b"nokey", b"x"]), int(0));
    assert_eq!(
        c.run(&[b"BITPOS", b"s", b"2"]),
        err("ERR The bit argument must be 1 or 0.")
    );
    c.run(&[b"SET", b"f", b"\xff\xf0\x00"]);
    assert_eq!(c.run(&[b"BITPOS", b"f", b"0"]), int(12));
    assert_eq!(c.run(&[b"BITPOS", b"f", b"1", b"2"]), int(-1));
    assert_eq!(c.run(&[b"BITPOS", b"f", b"1", b"7", b"15", b"BIT"]), int(7));
    c.run(&[b"SET", b"ones", b"\xff\xff"]);
    assert_eq!(c.run(&[b"BITPOS", b"ones", b"0"]), int(16));
    assert_eq!(c.run(&[b"BITPOS", b"ones", b"0", b"0", b"-1"]), int(-1));
    assert_eq!(c.run(&[b"BITPOS", b"nokey", b"0"]), int(0));
    assert_eq!(c.run(&[b"BITPOS", b"nokey", b"1"]), int(-1));
}

#[test]
fn bitop_and_its_errors() {
    let mut c = LocalClient::memory(Config::default());
    c.run(&[b"SET", b"a", b"\xf0\x0f"]);
    c.run(&[b"SET", b"b", b"\xff"]);
    assert_eq!(c.run(&[b"BITOP", b"AND", b"d", b"a", b"b"]), int(2));
    assert_eq!(
        c.run(&[b"GET", b"d"]),
        Frame::Bulk(bytes::Bytes::from_static(b"\xf0\x00"))
    );
    assert_eq!(c.run(&[b"BITOP", b"NOT", b"d", b"a"]), int(2));
    assert_eq!(
        c.run(&[b"GET", b"d"]),
        Frame::Bulk(bytes::Bytes::from_static(b"\x0f\xf0"))
    );
    assert_eq!(
        c.run(&[b"BITOP", b"NOT", b"d", b"a", b"b"]),
        err("ERR BITOP NOT must be called with a single source key.")
    );
    assert_eq!(
        c.run(&[b"BITOP", b"NAND", b"d", b"a"]),
        err("ERR syntax error")
    );
    assert_eq!(c.run(&[b"BITOP", b"OR", b"d", b"none"]), int(0));
    assert_eq!(c.run(&[b"EXISTS", b"d"]), int(0));
}

#[test]
fn bitfield_types_overflow_and_readonly() {
    let mut c = LocalClient::memory(Config::default());
    let bad_type = err(
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
    );
    for t in [&b"u64"[..], b"i65", b"i0", b"x8", b"U8", b"u"] {
        assert_eq!(c.run(&[b"BITFIELD", b"k", b"GET", t, b"0"]), bad_type);
    }
    assert_eq!(
        c.run(&[b"BITFIELD", b"k", b"OVERFLOW", b"NOPE"]),
        err("ERR Invalid OVERFLOW type specified")
    );
    assert_eq!(
        c.run(&[b"BITFIELD", b"k", b"GET", b"u8"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.run(&[
            b"BITFIELD",
            b"k",
            b"INCRBY",
            b"u2",
            b"100",
            b"1",
            b"OVERFLOW",
            b"SAT",
            b"INCRBY",
            b"u2",
            b"102",
            b"4"
        ]),
        Frame::Array(vec![int(1), int(3)])
    );
    assert_eq!(
        c.run(&[
            b"BITFIELD",
            b"k",
            b"OVERFLOW",
            b"FAIL",
            b"INCRBY",
            b"i8",
            b"0",
            b"200"
        ]),
        Frame::Array(vec![Frame::Null])
    );
    assert_eq!(
        c.run(&[
            b"BITFIELD",
            b"k",
            b"SET",
            b"i8",
            b"#1",
            b"-1",
            b"GET",
            b"u8",
            b"8"
        ]),
        Frame::Array(vec![int(0), int(255)])
    );
    assert_eq!(
        c.run(&[b"BITFIELD_RO", b"k", b"SET", b"i8", b"0", b"1"]),
        err("ERR BITFIELD_RO only supports the GET subcommand")
    );
    assert_eq!(
        c.run(&[b"BITFIELD_RO", b"k", b"GET", b"i64", b"0"]),
        Frame::Array(vec![int(0x00ff_0000_0000_0000)])
    );
}

#[test]
fn lcs_and_its_bounds() {
    let mut c = LocalClient::memory(Config::default());
    c.run(&[b"MSET", b"a", b"ohmytext", b"b", b"mynewtext"]);
    assert_eq!(c.run(&[b"LCS", b"a", b"b"]), Frame::bulk("mytext"));
    assert_eq!(c.run(&[b"LCS", b"a", b"b", b"LEN"]), int(6));
    assert_eq!(
        c.run(&[b"LCS", b"a", b"b", b"LEN", b"IDX"]),
        err("ERR If you want both the length and indexes, please just use IDX.")
    );
    assert_eq!(
        c.run(&[b"LCS", b"a", b"b", b"FOO"]),
        err("ERR syntax error")
    );
    let big = vec![b'x'; 20_000];
    c.run(&[b"SET", b"big", &big]);
    assert_eq!(
        c.run(&[b"LCS", b"big", b"big"]),
        err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    );
}

#[test]
fn copy_and_object() {
    let mut c = LocalClient::memory(Config::default());
    c.run(&[b"SET", b"s", b"12"]);
    assert_eq!(
        c.run(&[b"COPY", b"s", b"s"]),
        err("ERR source and destination objects are the same")
    );
    assert_eq!(
        c.run(&[b"COPY", b"s", b"t", b"DB", b"1"]),
        err("ERR DB index is out of range")
    );
    assert_eq!(
        c.run(&[b"COPY", b"s", b"t", b"BOGUS"]),
        err("ERR syntax error")
    );
    assert_eq!(c.run(&[b"COPY", b"s", b"t", b"DB", b"0"]), int(1));
    assert_eq!(c.run(&[b"COPY", b"s", b"t"]), int(0));
    assert_eq!(c.run(&[b"COPY", b"s", b"t", b"REPLACE"]), int(1));
    assert_eq!(c.run(&[b"COPY", b"none", b"t"]), int(0));
    assert_eq!(c.run(&[b"OBJECT", b"ENCODING", b"s"]), Frame::bulk("int"));
    assert_eq!(c.run(&[b"OBJECT", b"REFCOUNT", b"s"]), int(2147483647));
    assert_eq!(c.run(&[b"OBJECT", b"ENCODING", b"none"]), Frame::Null);
    assert_eq!(
        c.run(&[b"OBJECT", b"FOO", b"s"]),
        err("ERR unknown subcommand 'FOO'. Try OBJECT HELP.")
    );
    assert_eq!(
        c.run(&[b"OBJECT", b"ENCODING"]),
        err("ERR wrong number of arguments for 'object|encoding' command")
    );
    assert!(
        matches!(c.run(&[b"OBJECT", b"FREQ", b"s"]), Frame::Error(e) if e.contains("LFU maxmemory policy is not selected"))
    );
    c.run(&[b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lfu"]);
    assert!(matches!(
        c.run(&[b"OBJECT", b"FREQ", b"s"]),
        Frame::Integer(_)
    ));
}

/// The lsm engine stores values up to its own limit: a bit offset past it
/// is refused up front, whatever `proto-max-bulk-len` says.
#[test]
fn bit_offsets_past_the_lsm_value_limit_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = crate::engine::lsm::LsmEngine::open(dir.path(), crate::config::FsyncPolicy::No)
        .expect("open");
    let limit = crate::engine::lsm::VALUE_BYTES_MAX;
    let mut c = LocalClient::with_engine(Config::default(), engine);
    let past = (limit * 8).to_string();
    assert_eq!(
        c.run(&[b"SETBIT", b"k", past.as_bytes(), b"1"]),
        err("ERR bit offset is not an integer or out of range")
    );
    let fields = format!("#{}", limit);
    assert_eq!(
        c.run(&[b"BITFIELD", b"k", b"SET", b"u8", fields.as_bytes(), b"1"]),
        err("ERR bit offset is not an integer or out of range")
    );
    assert_eq!(c.run(&[b"SETBIT", b"k", b"100", b"1"]), int(0));
    assert_eq!(c.run(&[b"BITCOUNT", b"k"]), int(1));
}

#[test]
fn sort_options_and_bad_input() {
    let mut c = LocalClient::memory(Config::default());
    c.run(&[b"RPUSH", b"l", b"3", b"1", b"2"]);
    let bulk = |items: &[&str]| Frame::Array(items.iter().map(Frame::bulk).collect());
    assert_eq!(c.run(&[b"SORT", b"l"]), bulk(&["1", "2", "3"]));
    assert_eq!(
        c.run(&[b"SORT", b"l", b"DESC", b"LIMIT", b"0", b"2"]),
        bulk(&["3", "2"])
    );
    assert_eq!(
        c.run(&[b"SORT", b"l", b"BY", b"nosort", b"DESC"]),
        bulk(&["2", "1", "3"])
    );
    c.run(&[b"MSET", b"w_1", b"30", b"w_2", b"20", b"w_3", b"10"]);
    assert_eq!(
        c.run(&[b"SORT", b"l", b"BY", b"w_*", b"GET", b"#", b"GET", b"w_*"]),
        bulk(&["3", "10", "2", "20", "1", "30"])
    );
    assert_eq!(c.run(&[b"SORT", b"l", b"STORE", b"dst"]), int(3));
    assert_eq!(
        c.run(&[b"LRANGE", b"dst", b"0", b"-1"]),
        bulk(&["1", "2", "3"])
    );
    assert_eq!(c.run(&[b"SORT", b"none", b"STORE", b"dst"]), int(0));
    assert_eq!(c.run(&[b"EXISTS", b"dst"]), int(0));
    assert_eq!(
        c.run(&[b"SORT_RO", b"l", b"STORE", b"dst"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.run(&[b"SORT", b"l", b"LIMIT", b"0", b"x"]),
        err("ERR value is not an integer or out of range")
    );
    c.run(&[b"SET", b"s", b"x"]);
    assert_eq!(
        c.run(&[b"SORT", b"s"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    c.run(&[b"RPUSH", b"words", b"b", b"a"]);
    assert_eq!(
        c.run(&[b"SORT", b"words"]),
        err("ERR One or more scores can't be converted into double")
    );
    assert_eq!(c.run(&[b"SORT", b"words", b"ALPHA"]), bulk(&["a", "b"]));
    assert_eq!(
        c.run(&[
            b"SORT",
            b"l",
            b"LIMIT",
            b"-9223372036854775808",
            b"9223372036854775807"
        ]),
        bulk(&["1", "2", "3"])
    );
}

/// `CLIENT NO-TOUCH ON`: reads no longer raise a key's LFU counter (and
/// `OBJECT` never does); `TOUCH` still does.
#[test]
fn no_touch_clients_leave_access_frequency_alone() {
    let mut config = Config::default();
    config.maxmemory_policy = crate::config::EvictionPolicy::AllKeysLfu;
    config.lfu_log_factor = 0; // every access counts
    let mut c = LocalClient::memory(config);
    c.run(&[b"SET", b"k", b"v"]);
    let freq = |c: &mut LocalClient| match c.run(&[b"OBJECT", b"FREQ", b"k"]) {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    };
    let start = freq(&mut c);
    assert_eq!(freq(&mut c), start, "OBJECT does not touch");
    c.run(&[b"GET", b"k"]);
    let touched = freq(&mut c);
    assert!(touched > start);
    assert_eq!(c.run(&[b"CLIENT", b"NO-TOUCH", b"ON"]), Frame::OK);
    for _ in 0..5 {
        c.run(&[b"GET", b"k"]);
    }
    assert_eq!(freq(&mut c), touched, "NO-TOUCH reads do not count");
    c.run(&[b"TOUCH", b"k"]);
    assert!(freq(&mut c) > touched, "TOUCH counts even under NO-TOUCH");
    assert_eq!(
        c.run(&[b"CLIENT", b"NO-TOUCH", b"MAYBE"]),
        err("ERR syntax error")
    );
}
