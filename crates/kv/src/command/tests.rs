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
