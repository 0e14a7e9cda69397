//! Kill -9 test of subkey writes: a child process writes collections through
//! the engine's batches (metadata and fields in one commit, as a command
//! does) under `--fsync always`, prints each acknowledged write, and is
//! killed; every acknowledged field must be there after reopening, with its
//! collection's metadata.

use std::time::Duration;

use bytes::Bytes;

use super::{LsmEngine, test_meta as meta};
use crate::config::FsyncPolicy;
use crate::engine::SubRange;
use crate::value::Value;

/// Set in the child: the store directory.
const DIR_ENV: &str = "KV_LSM_SUBKEY_CRASH_DIR";

/// Not a test on its own: the child of
/// `acknowledged_subkey_writes_survive_kill_9`, doing nothing without its
/// environment variable.
#[test]
fn subkey_crash_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let mut engine = LsmEngine::open(std::path::Path::new(&dir), FsyncPolicy::Always).unwrap();
    println!("{}", testkit::crash::READY);
    // Collection i: fields 0.., written one per commit with the metadata's
    // new length, as HSET does; every 50th commit deletes collection i - 1
    // and starts a fresh one under the same key (a new version).
    let mut version = 1;
    let mut len = 0u64;
    let key = b"h";
    for n in 0u64.. {
        engine.begin_batch();
        if n % 50 == 0 && n > 0 {
            engine.remove(key).unwrap();
            version += 1;
            len = 0;
        }
        len += 1;
        engine
            .put(Bytes::from_static(key), meta(version, len))
            .unwrap();
        let field = format!("f{:06}", len - 1);
        engine
            .sub_put(key, version, field.as_bytes(), format!("v{n}").as_bytes())
            .unwrap();
        engine.commit_batch().unwrap();
        println!("{}{version} {field} v{n}", testkit::crash::ACK);
    }
}

#[test]
fn acknowledged_subkey_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let acks = testkit::crash::run_child_until_killed(
        "engine::lsm::crash_tests::subkey_crash_child",
        [(DIR_ENV, dir.path())],
        Duration::from_millis(700),
    );
    assert!(
        acks.len() > 10,
        "the child acknowledged only {} writes",
        acks.len()
    );
    let mut engine = LsmEngine::open(dir.path(), FsyncPolicy::Always).unwrap();
    let last = acks.last().unwrap();
    let mut parts = last.split(' ');
    let version: u64 = parts.next().unwrap().parse().unwrap();
    // The newest collection has every field acknowledged for its version
    // (and perhaps one more write that was durable but not yet printed).
    let entry = engine.get(b"h").unwrap().expect("the collection survived");
    let Value::Collection(m) = entry.value else {
        panic!("not a collection")
    };
    assert!(m.version == version || m.version == version + 1, "{m:?}");
    let mut fields = Vec::new();
    engine
        .sub_range(b"h", m.version, &SubRange::all(usize::MAX), &mut fields)
        .unwrap();
    assert_eq!(fields.len() as u64, m.len, "metadata and fields agree");
    for ack in acks
        .iter()
        .filter(|a| a.starts_with(&format!("{} ", m.version)))
    {
        let mut parts = ack.split(' ').skip(1);
        let (field, value) = (parts.next().unwrap(), parts.next().unwrap());
        let got = engine.sub_get(b"h", m.version, field.as_bytes()).unwrap();
        assert_eq!(got.as_deref(), Some(value.as_bytes()), "{ack} lost");
    }
    assert_eq!(engine.len(), 1);
}
