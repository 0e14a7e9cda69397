//! Helpers for the collection commands' unit tests.

use bytes::Bytes;

use crate::command::local::LocalClient;
use crate::config::{Config, FsyncPolicy};
use crate::engine::lsm::LsmEngine;
use crate::protocol::Frame;

/// Runs `test` on a fresh memory-engine client, then on a fresh
/// lsm-engine one.
pub fn each_engine(mut test: impl FnMut(&mut LocalClient)) {
    test(&mut LocalClient::memory(Config::default()));
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = LsmEngine::open(dir.path(), FsyncPolicy::No).expect("open");
    test(&mut LocalClient::with_engine(Config::default(), engine));
}

/// Runs a command given as space-separated words.
pub fn run(c: &mut LocalClient, line: &str) -> Frame {
    let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    c.run(&words)
}

/// A bulk string.
pub fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

/// An array of bulk strings.
pub fn bulks(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|i| bulk(i)).collect())
}

/// An error reply.
pub fn err(text: &str) -> Frame {
    Frame::error(text)
}

/// The bulk strings inside an array or set reply, as text.
pub fn texts(frame: &Frame) -> Vec<String> {
    match frame {
        Frame::Array(items) | Frame::Set(items) => items
            .iter()
            .map(|item| match item {
                Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// Scans with `command` (`HSCAN key` / `SSCAN key` plus `options`)
/// until the cursor comes back to 0; returns every element and the
/// number of calls.
pub fn scan_all(c: &mut LocalClient, command: &str, options: &str) -> (Vec<String>, usize) {
    let (mut cursor, mut out, mut calls) = ("0".to_string(), Vec::new(), 0);
    loop {
        calls += 1;
        let line = format!("{command} {cursor} {options}");
        let reply = run(c, line.trim_end());
        let Frame::Array(parts) = reply else {
            panic!("not a scan reply: {reply:?}");
        };
        let Frame::Bulk(next) = &parts[0] else {
            panic!("no cursor: {parts:?}");
        };
        cursor = String::from_utf8_lossy(next).into_owned();
        out.extend(texts(&parts[1]));
        if cursor == "0" {
            return (out, calls);
        }
        assert!(calls < 100_000, "the scan does not end");
    }
}
