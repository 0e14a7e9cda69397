//! Damage on disk: every flipped bit in a record is caught on read (and only that
//! record's object is refused), damaged files are not compacted into valid-looking
//! records, and open settles torn tails and interrupted seals.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use objstore::datafile::{file_name, format::FILE_HEADER_BYTES, verify_sealed};
use objstore::{Error, Node, ObjectId};

use crate::support::{bytes, small};

fn data_path(node: &Node, file_id: u64) -> PathBuf {
    node.path().join("data").join(file_name(file_id))
}

fn flip(path: &Path, at: u64, mask: u8) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ mask], at).unwrap();
}

/// An object, its bytes, and where its record lies in its file.
type Placed = (ObjectId, Vec<u8>, std::ops::Range<u64>);

/// Puts objects one after another into a fresh file and returns them with the byte
/// range of each one's record (records follow each other from the file header on).
fn fill(node: &Node, sizes: &[usize]) -> (u64, Vec<Placed>) {
    let mut at = FILE_HEADER_BYTES;
    let mut out = Vec::new();
    let mut file_id = None;
    for (i, &len) in sizes.iter().enumerate() {
        let data = bytes(i as u64 + 100, len);
        let id = node.put(&data).unwrap();
        let f = node.head(id).unwrap().unwrap().file_id;
        assert_eq!(*file_id.get_or_insert(f), f, "one file");
        let end = at + len as u64 + 40;
        out.push((id, data, at..end));
        at = end;
    }
    (file_id.unwrap(), out)
}

/// Flips one bit at every byte of the file in turn: the object whose record holds the
/// byte is refused with `Corrupt`, every other object reads back exactly.
fn every_flip_is_caught(node: &Node, path: &Path, objects: &[Placed]) {
    let len = std::fs::metadata(path).unwrap().len();
    for at in 0..len {
        let mask = 1u8 << (at % 8);
        flip(path, at, mask);
        for (id, data, range) in objects {
            let got = node.get(*id, ..);
            if range.contains(&at) {
                assert!(
                    matches!(got, Err(Error::Corrupt { .. })),
                    "flip at byte {at} in {id}'s record was served: {got:?}"
                );
            } else {
                assert_eq!(got.unwrap().as_ref(), Some(data), "flip at {at} hurt {id}");
            }
        }
        flip(path, at, mask);
    }
}

#[test]
fn bit_flips_in_sealed_and_read_write_files_are_detected_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path(), small(64 << 10)).unwrap();
    let (sealed, objects) = fill(&node, &[0, 1, 17, 300, 64, 5]);
    node.seal().unwrap();
    every_flip_is_caught(&node, &data_path(&node, sealed), &objects);
    let (active, objects) = fill(&node, &[9, 200, 0, 33]);
    assert_ne!(active, sealed);
    every_flip_is_caught(&node, &data_path(&node, active), &objects);
    assert!(node.stats().corrupt_reads > 1000);
}

#[test]
fn a_damaged_sealed_file_still_opens_and_a_scrub_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (sealed, objects) = {
        let node = Node::open(dir.path(), small(64 << 10)).unwrap();
        let r = fill(&node, &[100, 100, 100]);
        node.seal().unwrap();
        r
    };
    let path = dir.path().join("data").join(file_name(sealed));
    verify_sealed(&path).unwrap();
    flip(&path, objects[1].2.start + 50, 0x20);
    assert!(matches!(verify_sealed(&path), Err(Error::Corrupt { .. })));
    let node = Node::open(dir.path(), small(64 << 10)).unwrap();
    assert!(matches!(
        node.get(objects[1].0, ..),
        Err(Error::Corrupt { .. })
    ));
    for i in [0, 2] {
        assert_eq!(node.get(objects[i].0, ..).unwrap().unwrap(), objects[i].1);
    }
}

#[test]
fn compaction_never_copies_a_damaged_object_and_keeps_its_file_until_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let opts = objstore::Options {
        gc_live_ratio_max: 0.9,
        ..small(64 << 10)
    };
    let node = Node::open(dir.path(), opts).unwrap();
    let (file, objects) = fill(&node, &[500, 500, 500, 500]);
    node.seal().unwrap();
    node.delete(objects[3].0).unwrap();
    flip(&data_path(&node, file), objects[0].2.start + 100, 1);

    let r = node.gc().unwrap();
    assert_eq!(r.objects_moved, 2, "the two healthy live objects moved");
    assert_eq!(r.files_compacted, 0, "the damaged object keeps its file");
    assert!(
        r.errors.iter().any(|e| e.contains("checksum")),
        "{:?}",
        r.errors
    );
    assert!(matches!(
        node.get(objects[0].0, ..),
        Err(Error::Corrupt { .. })
    ));
    for o in &objects[1..3] {
        assert_eq!(node.get(o.0, ..).unwrap().as_ref(), Some(&o.1));
        assert_ne!(node.head(o.0).unwrap().unwrap().file_id, file);
    }
    // The layer above repairs the object from another copy: the file can go.
    node.put_with_id(objects[0].0, &objects[0].1).unwrap();
    let r = node.gc().unwrap();
    assert_eq!((r.files_compacted, r.objects_moved), (1, 0), "{r:?}");
    assert!(!data_path(&node, file).exists());
    assert_eq!(node.get(objects[0].0, ..).unwrap().unwrap(), objects[0].1);
}

#[test]
fn a_damaged_header_of_a_dead_record_does_not_stop_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let opts = objstore::Options {
        gc_live_ratio_max: 0.9,
        ..small(64 << 10)
    };
    let node = Node::open(dir.path(), opts).unwrap();
    let (file, objects) = fill(&node, &[300, 300, 300, 300, 300]);
    node.seal().unwrap();
    node.delete(objects[1].0).unwrap();
    node.delete(objects[2].0).unwrap();
    // The dead record's length field: the scan cannot find the records after it.
    flip(&data_path(&node, file), objects[1].2.start + 25, 0x40);
    let r = node.gc().unwrap();
    assert_eq!((r.files_compacted, r.objects_moved), (1, 3), "{r:?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    for i in [0, 3, 4] {
        assert_eq!(node.get(objects[i].0, ..).unwrap().unwrap(), objects[i].1);
    }
}

#[test]
fn open_cuts_a_torn_tail_and_finishes_an_interrupted_seal() {
    let dir = tempfile::tempdir().unwrap();
    let (old, active, objects) = {
        let node = Node::open(dir.path(), small(64 << 10)).unwrap();
        let (old, mut objects) = fill(&node, &[100, 200]);
        node.seal().unwrap();
        let (active, more) = fill(&node, &[300]);
        objects.extend(more);
        (old, active, objects)
    };
    let data = dir.path().join("data");
    // The seal of the older file never finished: no footer.
    let old_path = data.join(file_name(old));
    let old_len = std::fs::metadata(&old_path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&old_path)
        .unwrap()
        .set_len(old_len - 24)
        .unwrap();
    // Half a record at the end of the read-write file, as a crash mid-write leaves it.
    let active_path = data.join(file_name(active));
    let active_len = std::fs::metadata(&active_path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&active_path).unwrap();
    f.write_all_at(b"HSOB\0\0\0\0 a torn record", active_len)
        .unwrap();
    // And a stray file that is not ours: left alone.
    std::fs::write(data.join("notes.txt"), b"keep me").unwrap();

    let node = Node::open(dir.path(), small(64 << 10)).unwrap();
    assert_eq!(verify_sealed(&old_path).unwrap(), old_len - 24);
    assert_eq!(std::fs::metadata(&active_path).unwrap().len(), active_len);
    for (id, d, _) in &objects {
        assert_eq!(node.get(*id, ..).unwrap().as_ref(), Some(d));
    }
    let id = node.put(b"next").unwrap();
    assert_eq!(
        node.head(id).unwrap().unwrap().file_id,
        active,
        "appends go on after the cut"
    );
    assert!(data.join("notes.txt").exists());
}

#[test]
fn a_file_that_lost_its_tail_serves_what_it_holds_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (sealed, objects) = {
        let node = Node::open(dir.path(), small(64 << 10)).unwrap();
        let r = fill(&node, &[200, 200, 200]);
        node.seal().unwrap();
        node.put(b"in the next file").unwrap();
        r
    };
    // A disk that lost the last 100 bytes of the sealed file (footer and a record's end).
    let path = dir.path().join("data").join(file_name(sealed));
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let opts = objstore::Options {
        gc_live_ratio_max: 0.9,
        ..small(64 << 10)
    };
    let node = Node::open(dir.path(), opts).unwrap();
    for (id, data, _) in &objects[..2] {
        assert_eq!(node.get(*id, ..).unwrap().as_ref(), Some(data));
    }
    assert!(matches!(
        node.get(objects[2].0, ..),
        Err(Error::Corrupt { .. })
    ));
    // Compaction moves what it can and keeps the file for the damaged object.
    node.delete(objects[0].0).unwrap();
    let r = node.gc().unwrap();
    assert_eq!((r.files_compacted, r.objects_moved), (0, 1), "{r:?}");
    assert!(r.errors[0].contains("runs past the end"), "{:?}", r.errors);
    assert!(r.errors[1].contains("file is kept"), "{:?}", r.errors);
    assert_ne!(node.head(objects[1].0).unwrap().unwrap().file_id, sealed);
    assert_eq!(node.get(objects[1].0, ..).unwrap().unwrap(), objects[1].1);
}
