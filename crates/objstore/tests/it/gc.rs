//! Garbage collection gives space back: files on disk and bytes, after deletes and
//! overwrites; it paces itself; it races safely with readers, writers and deletes; a
//! file it leaves behind is removed on open.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use objstore::{Node, ObjectId, Options};

use crate::support::{bytes, files_on_disk, small};

#[test]
fn compaction_reclaims_files_and_bytes_after_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        gc_live_ratio_max: 0.5,
        ..small(256 << 10)
    };
    let node = Node::open(dir.path(), opts.clone()).unwrap();
    // Eight writers, so group commits keep the test quick.
    let mut objects: Vec<(ObjectId, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let node = &node;
                s.spawn(move || {
                    (0..125u64)
                        .map(|i| {
                            let data = bytes(t * 1000 + i, 4096);
                            (node.put(&data).unwrap(), data)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let before = node.stats();
    let files_before = files_on_disk(dir.path());
    // The small-object claim: a thousand 4 KiB objects in a handful of files.
    assert_eq!(files_before as u64, before.files);
    assert!(files_before <= 20, "{files_before} files for 1000 objects");

    // Delete three objects of every four: most sealed files fall under the ratio.
    let mut kept = Vec::new();
    let mut doomed = Vec::new();
    for (i, (id, data)) in objects.drain(..).enumerate() {
        if i % 4 == 0 {
            kept.push((id, data));
        } else {
            doomed.push(id);
        }
    }
    std::thread::scope(|s| {
        for chunk in doomed.chunks(doomed.len() / 8 + 1) {
            let node = &node;
            s.spawn(move || {
                for id in chunk {
                    assert!(node.delete(*id).unwrap());
                }
            });
        }
    });
    let deleted = node.stats();
    assert_eq!(deleted.disk_bytes, before.disk_bytes, "deletes only mark");
    assert!(deleted.garbage_bytes > 3 * before.disk_bytes / 4 - 1);

    let mut reports = Vec::new();
    loop {
        let r = node.gc().unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        if r.files_compacted == 0 {
            break;
        }
        reports.push(r);
    }
    let after = node.stats();
    let files_after = files_on_disk(dir.path());
    assert_eq!(files_after as u64, after.files);
    assert!(
        files_after * 2 < files_before,
        "files on disk: {files_before} before, {files_after} after"
    );
    assert!(
        after.disk_bytes * 2 < before.disk_bytes,
        "bytes on disk: {} before, {} after",
        before.disk_bytes,
        after.disk_bytes
    );
    let reclaimed: u64 = reports.iter().map(|r| r.bytes_reclaimed).sum();
    assert_eq!(after.gc_bytes_reclaimed, reclaimed);
    assert_eq!(after.objects, 250);
    for (id, data) in &kept {
        assert_eq!(node.get(*id, ..).unwrap().as_ref(), Some(data));
    }
    drop(node);
    let node = Node::open(dir.path(), opts).unwrap();
    assert_eq!(node.stats().disk_bytes, after.disk_bytes);
    for (id, data) in &kept {
        assert_eq!(node.get(*id, ..).unwrap().as_ref(), Some(data));
    }
}

#[test]
fn overwrites_become_garbage_and_compaction_reclaims_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path(), small(64 << 10)).unwrap();
    let ids: Vec<ObjectId> = (0..20).map(|_| ObjectId::generate()).collect();
    for round in 0..10u64 {
        for (i, id) in ids.iter().enumerate() {
            node.put_with_id(*id, &bytes(round * 100 + i as u64, 2000))
                .unwrap();
        }
    }
    node.seal().unwrap();
    let before = node.stats();
    assert_eq!(before.objects, 20);
    while node.gc().unwrap().files_compacted > 0 {}
    let after = node.stats();
    assert!(
        after.disk_bytes * 3 < before.disk_bytes,
        "{} -> {}",
        before.disk_bytes,
        after.disk_bytes
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            node.get(*id, ..).unwrap().unwrap(),
            bytes(900 + i as u64, 2000)
        );
    }
}

#[test]
fn copies_are_paced_to_the_configured_rate() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        gc_live_ratio_max: 1.0,
        gc_bytes_per_sec: 200 << 10,
        ..small(64 << 10)
    };
    let node = Node::open(dir.path(), opts).unwrap();
    for i in 0..20 {
        node.put(&bytes(i, 4000)).unwrap();
    }
    node.seal().unwrap();
    let started = Instant::now();
    let r = node.gc().unwrap();
    let elapsed = started.elapsed();
    assert!(r.bytes_copied >= 80_000, "{r:?}");
    // A lower bound only (sleeps make it certain); speed itself is never asserted.
    let due = Duration::from_secs_f64(r.bytes_copied as f64 / (200 << 10) as f64);
    assert!(
        elapsed >= due.mul_f64(0.95),
        "copied {} bytes in {elapsed:?}",
        r.bytes_copied
    );
}

#[test]
fn a_file_left_without_live_objects_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<ObjectId> = {
        let node = Node::open(dir.path(), small(64 << 10)).unwrap();
        let ids = (0..5).map(|i| node.put(&bytes(i, 100)).unwrap()).collect();
        node.seal().unwrap();
        node.put(b"keeps the next file alive").unwrap();
        ids
    };
    // The state a crash between compaction's last move and its delete leaves: a
    // sealed file nothing maps into.
    {
        let node = Node::open(dir.path(), small(64 << 10)).unwrap();
        for id in &ids {
            node.delete(*id).unwrap();
        }
    }
    assert_eq!(files_on_disk(dir.path()), 2);
    let node = Node::open(dir.path(), small(64 << 10)).unwrap();
    assert_eq!(files_on_disk(dir.path()), 1);
    assert_eq!(node.stats().files_removed_on_open, 1);
    assert_eq!(node.stats().objects, 1);
}

#[test]
fn compaction_races_safely_with_readers_writers_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        gc_live_ratio_max: 0.95,
        ..small(16 << 10)
    };
    let node = Node::open(dir.path(), opts).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<HashMap<ObjectId, Option<Vec<u8>>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                let node = &node;
                s.spawn(move || {
                    let mut mine: HashMap<ObjectId, Option<Vec<u8>>> = HashMap::new();
                    let mut live = Vec::new();
                    for i in 0..300u64 {
                        let data = bytes(t * 10_000 + i, 700);
                        let id = node.put(&data).unwrap();
                        mine.insert(id, Some(data));
                        live.push(id);
                        if i % 2 == 1 {
                            let victim = live.swap_remove((i as usize * 7) % live.len());
                            assert!(node.delete(victim).unwrap());
                            mine.insert(victim, None);
                        }
                        // Every read during compaction is right or absent-as-deleted.
                        let probe = live[(i as usize * 13) % live.len()];
                        assert_eq!(node.get(probe, ..).unwrap(), mine[&probe]);
                    }
                    mine
                })
            })
            .collect();
        let gc = s.spawn(|| {
            let mut compacted = 0;
            let deadline = Instant::now() + Duration::from_secs(120);
            // Until the writers are done and at least one file was compacted.
            while !(stop.load(std::sync::atomic::Ordering::Relaxed) && compacted > 0) {
                assert!(Instant::now() < deadline, "compaction never found a file");
                let r = node.gc().unwrap();
                assert!(r.errors.is_empty(), "{:?}", r.errors);
                compacted += r.files_compacted;
            }
            compacted
        });
        let results = workers.into_iter().map(|w| w.join().unwrap()).collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        gc.join().unwrap();
        results
    });
    for mine in &results {
        for (id, want) in mine {
            assert_eq!(&node.get(*id, ..).unwrap(), want, "{id}");
        }
    }
    let s = node.stats();
    assert_eq!(s.objects, 4 * 150);
    assert_eq!(s.files as usize, files_on_disk(dir.path()));
}
