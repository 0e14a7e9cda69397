//! Recovery after a crash in the middle of a compaction, made deterministic: the node
//! directory is snapshotted (with the node closed) before and after a garbage
//! collection run, and the crash states in between are assembled from the two
//! snapshots. Each must reopen to a file table that names exactly the data files on
//! disk, with every object readable byte for byte and its file's counts right.
//!
//! (The kill -9 test in `crash.rs` found a file table of 5 against 4 files on disk:
//! its parent compared `stats()` with the directory while the reopened node's own
//! background collector was deleting a file between the two reads. That test now
//! checks with the collector off and runs a collection itself; these cases pin down
//! the states a crash during that collection leaves.)

use std::collections::HashMap;
use std::path::Path;

use objstore::datafile::file_name;
use objstore::{Node, ObjectId};

use crate::support::{bytes, files_on_disk, small};

/// Copies directory `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Opens the node in `dir` and checks table against disk and every object.
fn check(dir: &Path, objects: &HashMap<ObjectId, Vec<u8>>, case: &str) -> Node {
    let node = Node::open(dir, small(64 << 10)).unwrap();
    let table: Vec<u64> = node.files().iter().map(|f| f.file_id).collect();
    assert_eq!(table.len(), files_on_disk(dir), "{case}: table {table:?}");
    for f in node.files() {
        let path = dir.join("data").join(file_name(f.file_id));
        assert!(path.exists(), "{case}: {} is in the table only", f.file_id);
    }
    for (id, data) in objects {
        assert_eq!(
            node.get(*id, ..).unwrap().as_ref(),
            Some(data),
            "{case}: {id}"
        );
    }
    let s = node.stats();
    assert_eq!(s.objects, objects.len() as u64, "{case}");
    node
}

#[test]
fn every_crash_point_of_a_compaction_reopens_to_a_table_that_matches_the_disk() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let mut objects = HashMap::new();
    {
        let node = Node::open(&live, small(64 << 10)).unwrap();
        let mut doomed = Vec::new();
        for i in 0..60u64 {
            let data = bytes(i, 3000);
            let id = node.put(&data).unwrap();
            if i % 3 == 0 {
                objects.insert(id, data);
            } else {
                doomed.push(id);
            }
        }
        for id in doomed {
            assert!(node.delete(id).unwrap());
        }
        node.seal().unwrap();
    }
    let before = root.path().join("before");
    copy_dir(&live, &before);
    let old_files: Vec<String> = std::fs::read_dir(before.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    {
        let node = Node::open(&live, small(64 << 10)).unwrap();
        let r = node.gc().unwrap();
        assert!(r.files_compacted >= 2, "{r:?}");
        assert!(r.errors.is_empty(), "{r:?}");
    }
    let after = root.path().join("after");
    copy_dir(&live, &after);

    // 1. Copies appended (and fsynced) but no move committed: the mapping of before,
    //    the data files of after plus the old files. The copies are an unmapped tail.
    let c1 = root.path().join("c1");
    copy_dir(&before, &c1);
    for e in std::fs::read_dir(after.join("data")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), c1.join("data").join(e.file_name())).unwrap();
    }
    drop(check(&c1, &objects, "copied, not moved"));

    // 2. Every move committed, old files not yet deleted (or their unlink not yet
    //    durable): the mapping of after, the old files beside the new ones.
    let c2 = root.path().join("c2");
    copy_dir(&after, &c2);
    for name in &old_files {
        std::fs::copy(before.join("data").join(name), c2.join("data").join(name)).unwrap();
    }
    let node = check(&c2, &objects, "moved, not deleted");
    assert!(node.stats().files_removed_on_open >= 2);
    drop(node);

    // 3. Some old files deleted, one left: the mapping of after, one old file back.
    let c3 = root.path().join("c3");
    copy_dir(&after, &c3);
    let name = old_files.iter().min().unwrap();
    std::fs::copy(before.join("data").join(name), c3.join("data").join(name)).unwrap();
    drop(check(&c3, &objects, "partly deleted"));

    // 4. Done, and the reopened node collects again without losing anything.
    let node = check(&after, &objects, "done");
    node.gc().unwrap();
    drop(node);
    drop(check(&after, &objects, "collected twice"));
}
