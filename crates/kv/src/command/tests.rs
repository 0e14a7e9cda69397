//! Commands run without a socket: a [`LocalClient`] over a memory engine.

use bytes::Bytes;

use super::local::LocalClient;
use crate::config::Config;
use crate::protocol::Frame;

fn client() -> LocalClient {
    LocalClient::memory(Config::default())
}

fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

#[test]
fn set_get_and_incr_run_without_a_server() {
    let mut c = client();
    assert_eq!(c.run(&[b"SET", b"k", b"v"]), Frame::OK);
    assert_eq!(c.run(&[b"GET", b"k"]), bulk("v"));
    assert_eq!(c.run(&[b"GET", b"missing"]), Frame::Null);
    assert_eq!(c.run(&[b"INCR", b"n"]), Frame::Integer(1));
    assert_eq!(c.run(&[b"INCRBY", b"n", b"41"]), Frame::Integer(42));
    assert_eq!(
        c.run(&[b"INCR", b"k"]),
        Frame::error("ERR value is not an integer or out of range")
    );
    assert_eq!(c.run(&[b"DBSIZE"]), Frame::Integer(2));
}

#[test]
fn dispatch_checks_name_and_arity_before_running() {
    let mut c = client();
    assert!(
        matches!(c.run(&[b"NOPE"]), Frame::Error(e) if e.starts_with("ERR unknown command 'NOPE'"))
    );
    assert_eq!(
        c.run(&[b"GET"]),
        Frame::error("ERR wrong number of arguments for 'get' command")
    );
}

#[test]
fn multi_exec_queues_then_runs_atomically() {
    let mut c = client();
    assert_eq!(c.run(&[b"MULTI"]), Frame::OK);
    assert_eq!(c.run(&[b"SET", b"a", b"1"]), Frame::Simple("QUEUED"));
    assert_eq!(c.run(&[b"INCR", b"a"]), Frame::Simple("QUEUED"));
    assert_eq!(c.run(&[b"GET", b"a"]), Frame::Simple("QUEUED"));
    assert_eq!(
        c.run(&[b"EXEC"]),
        Frame::Array(vec![Frame::OK, Frame::Integer(2), bulk("2")])
    );
    // A rejected command aborts the whole transaction.
    assert_eq!(c.run(&[b"MULTI"]), Frame::OK);
    assert!(c.run(&[b"GET"]).is_error());
    assert_eq!(c.run(&[b"SET", b"a", b"9"]), Frame::Simple("QUEUED"));
    assert_eq!(
        c.run(&[b"EXEC"]),
        Frame::error("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(c.run(&[b"GET", b"a"]), bulk("2"));
}

#[test]
fn watch_fails_exec_when_another_client_writes() {
    let mut a = client();
    let mut b = a.connect();
    assert_eq!(a.run(&[b"SET", b"balance", b"10"]), Frame::OK);
    assert_eq!(a.run(&[b"WATCH", b"balance"]), Frame::OK);
    assert_eq!(b.run(&[b"INCR", b"balance"]), Frame::Integer(11));
    assert_eq!(a.run(&[b"MULTI"]), Frame::OK);
    assert_eq!(a.run(&[b"SET", b"balance", b"0"]), Frame::Simple("QUEUED"));
    assert_eq!(a.run(&[b"EXEC"]), Frame::NullArray);
    assert_eq!(a.run(&[b"GET", b"balance"]), bulk("11"));
    // Unchanged watched keys let EXEC run.
    assert_eq!(a.run(&[b"WATCH", b"balance"]), Frame::OK);
    assert_eq!(a.run(&[b"MULTI"]), Frame::OK);
    assert_eq!(a.run(&[b"SET", b"balance", b"0"]), Frame::Simple("QUEUED"));
    assert_eq!(a.run(&[b"EXEC"]), Frame::Array(vec![Frame::OK]));
}

#[test]
fn a_pipelined_batch_runs_under_one_lock() {
    let mut c = client();
    let commands = [&b"SET k 1"[..], b"INCR k", b"GET k", b"QUIT", b"GET k"]
        .iter()
        .map(|line| {
            line.split(|&b| b == b' ')
                .map(Bytes::copy_from_slice)
                .collect()
        })
        .collect();
    let replies = c.run_batch(commands);
    assert_eq!(
        replies,
        vec![Frame::OK, Frame::Integer(2), bulk("2"), Frame::OK],
        "QUIT ends the batch"
    );
    assert!(c.closed());
}

#[test]
fn publish_reaches_a_local_subscriber() {
    let mut sub = client();
    let mut publisher = sub.connect();
    assert!(!sub.run(&[b"SUBSCRIBE", b"news"]).is_error());
    assert_eq!(
        publisher.run(&[b"PUBLISH", b"news", b"hi"]),
        Frame::Integer(1)
    );
    let messages = sub.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].2, "hi");
    drop(sub);
    assert_eq!(
        publisher.run(&[b"PUBLISH", b"news", b"hi"]),
        Frame::Integer(0),
        "a dropped client leaves the hub"
    );
}

#[test]
fn scan_count_is_bounded_before_anything_is_allocated() {
    let mut c = client();
    for i in 0..30 {
        let key = format!("k{i}");
        assert_eq!(c.run(&[b"SET", key.as_bytes(), b"v"]), Frame::OK);
    }
    // i64::MAX reached `Vec::with_capacity` and panicked; 1e9 asked for a
    // 32 GB buffer and aborted the process.
    for count in [&b"9223372036854775807"[..], b"1000000000"] {
        let Frame::Array(reply) = c.run(&[b"SCAN", b"0", b"COUNT", count]) else {
            panic!("SCAN replies with an array");
        };
        assert_eq!(reply[0], bulk("0"), "30 keys fit one capped call");
        assert!(matches!(&reply[1], Frame::Array(keys) if keys.len() == 30));
    }
    assert_eq!(
        c.run(&[b"SCAN", b"0", b"COUNT", b"0"]),
        Frame::error("ERR syntax error")
    );
}

fn config_get(c: &mut LocalClient, name: &str) -> Frame {
    let Frame::Map(pairs) = c.run(&[b"CONFIG", b"GET", name.as_bytes()]) else {
        panic!("CONFIG GET replies with a map");
    };
    assert_eq!(pairs.len(), 1, "{name}");
    pairs[0].1.clone()
}

#[test]
fn config_set_refuses_out_of_range_values_with_redis_errors() {
    let mut c = client();
    let failed = |name: &str, why: &str| {
        Frame::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    // Accepted before (maxclients 0 locks everyone out; a 1-byte bulk limit
    // was silently raised to 1mb).
    assert_eq!(
        c.run(&[b"CONFIG", b"SET", b"maxclients", b"0"]),
        failed(
            "maxclients",
            "argument must be between 1 and 4294967295 inclusive"
        )
    );
    assert_eq!(
        c.run(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1"]),
        failed(
            "proto-max-bulk-len",
            "argument must be between 1048576 and 9223372036854775807 inclusive"
        )
    );
    assert_eq!(
        c.run(&[b"CONFIG", b"SET", b"client-query-buffer-limit", b"1k"]),
        failed(
            "client-query-buffer-limit",
            "argument must be between 1048576 and 9223372036854775807 inclusive"
        )
    );
    assert_eq!(
        c.run(&[b"CONFIG", b"SET", b"maxmemory-samples", b"65"]),
        failed(
            "maxmemory-samples",
            "argument must be between 1 and 64 inclusive"
        )
    );
    // All or nothing: a bad pair leaves the good one unapplied.
    assert!(
        c.run(&[b"CONFIG", b"SET", b"timeout", b"5", b"maxclients", b"0"])
            .is_error()
    );
    assert_eq!(config_get(&mut c, "timeout"), bulk("0"));
    assert_eq!(config_get(&mut c, "maxclients"), bulk("10000"));
    // The bounds themselves are fine.
    assert_eq!(c.run(&[b"CONFIG", b"SET", b"maxclients", b"1"]), Frame::OK);
    assert_eq!(
        c.run(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1mb"]),
        Frame::OK
    );
    assert_eq!(config_get(&mut c, "proto-max-bulk-len"), bulk("1048576"));
}

#[test]
fn client_output_buffer_limit_is_set_and_read_in_redis_syntax() {
    let mut c = client();
    assert_eq!(
        config_get(&mut c, "client-output-buffer-limit"),
        bulk("normal 0 0 0 slave 0 0 0 pubsub 33554432 8388608 60")
    );
    assert_eq!(
        c.run(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"pubsub 1mb 512kb 10"
        ]),
        Frame::OK
    );
    assert_eq!(
        config_get(&mut c, "client-output-buffer-limit"),
        bulk("normal 0 0 0 slave 0 0 0 pubsub 1048576 524288 10")
    );
    assert_eq!(
        c.run(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"pubsub 1mb"
        ]),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration."
        )
    );
}

#[test]
fn publish_skips_a_subscriber_over_a_limit_set_at_run_time() {
    let mut sub = client();
    let mut publisher = sub.connect();
    assert!(!sub.run(&[b"SUBSCRIBE", b"c"]).is_error());
    let limit = b"pubsub 1000 0 0";
    assert_eq!(
        publisher.run(&[b"CONFIG", b"SET", b"client-output-buffer-limit", limit]),
        Frame::OK
    );
    let payload = [b'x'; 400];
    let counts: Vec<Frame> = (0..5)
        .map(|_| publisher.run(&[b"PUBLISH", b"c", &payload]))
        .collect();
    let one = Frame::Integer(1);
    let zero = Frame::Integer(0);
    assert_eq!(counts, [one.clone(), one, zero.clone(), zero.clone(), zero]);
    assert_eq!(sub.messages().len(), 2);
}

/// Found by the `commands` fuzz target: a setter's error quoted the
/// client's value, and a newline in it broke the reply line (debug builds
/// hit `Frame::error`'s one-line assertion).
#[test]
fn config_set_errors_stay_one_line_whatever_the_value() {
    let mut c = client();
    let reply = c.run(&[b"CONFIG", b"SET", b"maxmemory-policy", b"no\r\n+OK"]);
    let Frame::Error(text) = reply else {
        panic!("an error reply");
    };
    assert!(!text.contains(['\r', '\n']), "{text:?}");
    assert!(text.starts_with(
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - unknown maxmemory policy 'no  +OK'"
    ), "{text:?}");
}

#[test]
fn keyspace_notifications_reach_subscribers_without_a_socket() {
    let config = Config {
        notify_keyspace_events: crate::config::NotifyFlags::parse("KEA").expect("flags"),
        ..Config::default()
    };
    let engine = crate::engine::memory::MemoryEngine::new(0, Default::default(), 5);
    let mut writer = LocalClient::with_engine(config, Box::new(engine));
    let mut sub = writer.connect();
    sub.run(&[b"PSUBSCRIBE", b"__key*__:*"]);
    assert_eq!(writer.run(&[b"INCR", b"n"]), Frame::Integer(1));
    let got: Vec<(Bytes, Bytes)> = sub
        .messages()
        .into_iter()
        .map(|(_, channel, payload)| (channel, payload))
        .collect();
    assert_eq!(
        got,
        vec![
            (Bytes::from("__keyspace@0__:n"), Bytes::from("incrby")),
            (Bytes::from("__keyevent@0__:incrby"), Bytes::from("n")),
        ]
    );
    // Off: nothing is published.
    writer.run(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""]);
    writer.run(&[b"INCR", b"n"]);
    assert!(sub.messages().is_empty());
}

/// `INCR` changes the value where it lies (`Keyspace::update`): on both
/// engines it keeps the TTL, crosses digit-count changes, and only a
/// successful one counts as a modification (a failed one leaves a `WATCH`
/// intact, as in Redis).
#[test]
fn incr_in_place_keeps_ttl_and_touches_only_on_success() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lsm = crate::engine::lsm::LsmEngine::open(dir.path(), crate::config::FsyncPolicy::No)
        .expect("open");
    for mut a in [client(), LocalClient::with_engine(Config::default(), lsm)] {
        let mut b = a.connect();
        assert_eq!(a.run(&[b"SET", b"n", b"8", b"EX", b"100"]), Frame::OK);
        for want in [9, 10, 11] {
            assert_eq!(a.run(&[b"INCR", b"n"]), Frame::Integer(want));
        }
        assert_eq!(a.run(&[b"DECRBY", b"n", b"12"]), Frame::Integer(-1));
        assert_eq!(a.run(&[b"GET", b"n"]), bulk("-1"));
        assert!(matches!(a.run(&[b"TTL", b"n"]), Frame::Integer(t) if t > 90));
        // A failed INCR (overflow, not a number, wrong type) changes nothing
        // and breaks no WATCH.
        assert_eq!(a.run(&[b"SET", b"max", b"9223372036854775807"]), Frame::OK);
        assert_eq!(a.run(&[b"SET", b"text", b"abc"]), Frame::OK);
        assert_eq!(a.run(&[b"RPUSH", b"list", b"x"]), Frame::Integer(1));
        assert_eq!(b.run(&[b"WATCH", b"max", b"text", b"list"]), Frame::OK);
        assert_eq!(
            a.run(&[b"INCR", b"max"]),
            Frame::error("ERR increment or decrement would overflow")
        );
        assert!(a.run(&[b"INCR", b"text"]).is_error());
        assert!(a.run(&[b"INCR", b"list"]).is_error());
        assert_eq!(b.run(&[b"MULTI"]), Frame::OK);
        assert_eq!(b.run(&[b"GET", b"max"]), Frame::Simple("QUEUED"));
        assert_eq!(
            b.run(&[b"EXEC"]),
            Frame::Array(vec![bulk("9223372036854775807")])
        );
        // A successful one does.
        assert_eq!(b.run(&[b"WATCH", b"n"]), Frame::OK);
        assert_eq!(a.run(&[b"INCR", b"n"]), Frame::Integer(0));
        assert_eq!(b.run(&[b"MULTI"]), Frame::OK);
        assert_eq!(b.run(&[b"GET", b"n"]), Frame::Simple("QUEUED"));
        assert_eq!(b.run(&[b"EXEC"]), Frame::NullArray);
        // An expired counter starts again from zero, without its TTL.
        assert_eq!(a.run(&[b"SET", b"gone", b"5", b"PX", b"1"]), Frame::OK);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(a.run(&[b"INCR", b"gone"]), Frame::Integer(1));
        assert_eq!(a.run(&[b"TTL", b"gone"]), Frame::Integer(-1));
    }
}
