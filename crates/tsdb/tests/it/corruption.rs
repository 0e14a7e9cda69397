//! Bit flips in a block are detected: a damaged chunk fails its checksum on
//! read and in `verify` (an error, never wrong samples or a panic), and a
//! damaged index or meta file stops the open with `Corrupt`.

use std::path::PathBuf;

use tsdb::{Db, Error, HOUR_MS, MINUTE_MS, Matcher};

use crate::support::{ls, small_opts};

/// A database with one block on disk; returns the block's directory.
fn one_block(dir: &std::path::Path) -> PathBuf {
    let db = Db::open(dir, small_opts()).unwrap();
    let s = ls("x", &[("a", "b")]);
    for t in (0..3 * HOUR_MS).step_by(MINUTE_MS as usize) {
        db.append_wait(vec![(s.clone(), vec![(t, t as f64 * 0.5)])])
            .unwrap();
    }
    assert!(db.maintain().unwrap().cut >= 1);
    let meta = &db.blocks()[0];
    dir.join("blocks").join(&meta.id)
}

fn flip(path: &std::path::Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x04;
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_flipped_chunk_byte_is_an_error_not_a_wrong_answer() {
    let dir = tempfile::tempdir().unwrap();
    let block = one_block(dir.path());
    flip(&block.join("chunks"), 100);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert!(matches!(db.verify(), Err(Error::Corrupt { .. })));
    let e = db.select(&[Matcher::eq("a", "b")], 0, HOUR_MS).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(!e.is_bad_input());
    // Head data after the block still reads.
    assert!(
        !db.select(&[Matcher::eq("a", "b")], 2 * HOUR_MS, 3 * HOUR_MS)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_flipped_index_or_meta_byte_stops_the_open() {
    for file in ["index", "meta.json"] {
        let dir = tempfile::tempdir().unwrap();
        let block = one_block(dir.path());
        flip(&block.join(file), 20);
        match Db::open(dir.path(), small_opts()) {
            Err(Error::Corrupt { .. }) => {}
            Err(e) => panic!("{file}: {e}"),
            Ok(_) => panic!("{file}: a damaged block opened"),
        }
    }
}

/// Several WAL segments (small segments, no cut): a torn tail of the last
/// segment (a crash mid-write) is cut away and the rest replays; damage in an
/// earlier segment stops the open with `Corrupt` instead of silently dropping
/// acknowledged samples after it.
#[test]
fn wal_torn_tail_is_cut_and_earlier_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tsdb::Options {
        wal_segment_bytes_max: 4096,
        ..small_opts()
    };
    let s = ls("w", &[]);
    {
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        for t in 0..2000 {
            db.append_wait(vec![(s.clone(), vec![(t * 1000, t as f64)])])
                .unwrap();
        }
    }
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 5).unwrap(); // the last record loses its tail
    drop(f);
    {
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        let got = &crate::support::dump(&db)[&s];
        assert_eq!(got.len(), 1999, "only the torn record is gone");
        assert_eq!(got[1998], (1_998_000, 1998.0));
    }
    flip(&segs[0], 100);
    match Db::open(dir.path(), opts) {
        Err(Error::Corrupt { .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a damaged WAL segment opened"),
    }
}
