//! Full-disk tests with real processes: a write that cannot get disk space fails with an
//! error that names the file and says what to do — never a panic, never an abort — the
//! store stays readable in the same process, and after a reopen with space back it holds
//! every acknowledged write, nothing corrupt, and takes new writes.
//!
//! Two ways to run out of space without special hardware:
//!
//! * **A file-size limit** (`ulimit -f`, RLIMIT_FSIZE; no privileges needed). The child is
//!   this test binary re-executed (as in `crash.rs`) through
//!   `sh -c 'trap "" XFSZ; ulimit -f N; exec "$0" "$@"'`: with SIGXFSZ ignored, a write
//!   past the limit returns EFBIG ("File too large") instead of killing the process. It
//!   limits each *file*, not the disk, so it models "this file cannot grow":
//!   `commit_log_cannot_grow` overflows a log segment (an append past its preallocation,
//!   then a segment that cannot even be preallocated at open) and `sstable_cannot_grow`
//!   a compaction output (flush outputs are never larger than the log segment they come
//!   from, so with a per-file limit it is compaction that hits the wall).
//! * **A small tmpfs** (`disk_runs_out_of_space`; only as root where `mount` works,
//!   otherwise skipped with a note). `size=1m` models a disk whose total space runs out,
//!   so any file can be the one that fails (log appends into the sparse preallocated
//!   segment, flushes, compactions, the manifest); `nr_inodes=10` a disk out of inodes,
//!   where no new log segment or table can be created while appends to the current
//!   segment go on (the memtable must stay bounded). The parent then grows the file
//!   system — the operator freeing space — either while the child waits (its writes must
//!   resume without a reopen) or after it exited (a reopen of the still-full disk must
//!   fail cleanly or succeed, and one after growing must succeed).
//!
//! The child writes with `SyncPolicy::Always`, printing `FD-ack <key>` for each
//! acknowledged write, `FD-err <text>` for each failed one and `FD-done` at the end.
//! A failed fsync, which no file system here produces on demand, is tested by fault
//! injection in the unit test `db::tests::failed_log_fsync_disables_writes_until_reopen`.
// Test code: a failed unwrap is the failure report (clippy.toml's
// allow-unwrap-in-tests does not reach helper functions outside #[test]).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lsm::{Db, Error, Options, SyncPolicy, WriteBatch};

#[path = "full_disk/harness.rs"]
mod harness;

use harness::{DIR_ENV, LIMIT_ENV, RESUME_ENV, SCENARIO_ENV, Tmpfs, run_child};

/// Small sizes so flushes and compactions happen within a few hundred writes.
fn opts() -> Options {
    Options {
        memtable_size_bytes: 16 << 10,
        block_size_bytes: 512,
        table_size_bytes: 64 << 10,
        level1_size_bytes: 256 << 10,
        level_size_multiplier: 4,
        l0_compaction_trigger: 2,
        l0_slowdown_trigger: 3,
        l0_stop_trigger: 4,
        sync: SyncPolicy::Always,
        stall_timeout: Duration::from_secs(10),
        ..Options::default()
    }
}

/// For `sstable_cannot_grow`: one level-1 table that grows by every level-0 compaction
/// (outputs are not split below 1 MiB, and level 1 never needs to push data down).
fn one_table_opts() -> Options {
    Options {
        table_size_bytes: 1 << 20,
        level1_size_bytes: 64 << 20,
        ..opts()
    }
}

/// For the log-bound tmpfs case: large memtables, no compactions, and room for many
/// memtables waiting on a failing flush, so a log append is what fails in the writer.
fn log_bound_opts() -> Options {
    Options {
        memtable_size_bytes: 256 << 10,
        immutable_memtables_max: 8,
        l0_compaction_trigger: 8,
        l0_slowdown_trigger: 8,
        l0_stop_trigger: 8,
        ..opts()
    }
}

/// Key of the `i`-th write: scattered over the key space (so every level-0 table
/// overlaps level 1 and compactions rewrite it), unique through the suffix.
fn key(i: usize) -> String {
    format!("k-{:04}-{i:06}", i.wrapping_mul(2_654_435_761) % 10_000)
}

fn value_for(key: &str) -> Vec<u8> {
    // 1000 bytes, different per key, so a mixed-up value is caught.
    format!("{key}:").repeat(125).into_bytes()[..1000].to_vec()
}

// ---------------------------------------------------------------- child side

/// The child: runs one scenario against the store in `LSM_FULL_DISK_DIR` (without the
/// variable it does nothing, so a plain `cargo test` passes through it).
#[test]
fn full_disk_child() {
    let Ok(scenario) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_ENV).unwrap());
    check_file_size_limit();
    match scenario.as_str() {
        "log" => child_log(&dir),
        "open" => child_open(&dir),
        "table" => child_table(&dir),
        "space" => child_space(&dir, opts()),
        "space-log" => child_space(&dir, log_bound_opts()),
        other => panic!("unknown scenario {other}"),
    }
    println!("FD-done");
}

/// Fails the child if `ulimit -f` did not give the limit the parent asked for.
fn check_file_size_limit() {
    let Ok(want) = std::env::var(LIMIT_ENV) else {
        return;
    };
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return; // not Linux: trust the shell
    };
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max file size"))
        .expect("a file size line");
    let got = line.split_whitespace().nth(3).expect("a soft limit");
    assert_eq!(got, want, "ulimit -f gave another limit: {line}");
}

fn ack(db: &Db, i: usize) -> lsm::Result<()> {
    let k = key(i);
    db.put(k.as_bytes(), &value_for(&k))?;
    println!("FD-ack {k}");
    Ok(())
}

fn report(err: &Error) {
    println!("FD-err {}", err.to_string().replace('\n', " "));
}

/// Reads still work after a failed write: every acknowledged key by `get`, and `scan`
/// shows exactly the acknowledged keys (a failed write leaves no trace).
fn check_reads(db: &Db, acked: &[usize]) {
    for &i in acked {
        let k = key(i);
        let got = db.get(k.as_bytes()).expect("get after a failed write");
        assert_eq!(got.as_deref(), Some(&value_for(&k)[..]), "{k}");
    }
    let scanned: Vec<_> = db
        .scan(..)
        .expect("scan after a failed write")
        .map(|kv| String::from_utf8(kv.expect("scan entry").key).unwrap())
        .collect();
    let want: BTreeSet<_> = acked.iter().map(|&i| key(i)).collect();
    let want: Vec<_> = want.into_iter().collect();
    assert_eq!(scanned, want, "scan after a failed write");
}

/// Log segment overflow: a record larger than the file-size limit fails (after a
/// partial write that must be undone), smaller writes around it go on.
fn child_log(dir: &Path) {
    let limit: usize = std::env::var(LIMIT_ENV).unwrap().parse().unwrap();
    let db = Db::open(dir, opts()).unwrap();
    let big = vec![b'x'; limit + 1];
    let (mut acked, mut next) = (Vec::new(), 0);
    for round in 0..4 {
        for _ in 0..40 {
            ack(&db, next).unwrap();
            acked.push(next);
            next += 1;
        }
        // Alternate a single put and an atomic batch whose last write is too big.
        let big_key = format!("big-{round}");
        let result = if round % 2 == 0 {
            db.put(big_key.as_bytes(), &big)
        } else {
            db.write(
                WriteBatch::new()
                    .put(key(next).as_bytes(), b"part of a failed batch")
                    .put(big_key.as_bytes(), &big),
            )
        };
        let err = result.expect_err("a record larger than the file-size limit must fail");
        report(&err);
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        next += 1; // the batch's small key must not appear either
        check_reads(&db, &acked);
        assert_eq!(db.get(big_key.as_bytes()).unwrap(), None);
    }
    // The log is still usable: writes that fit keep being acknowledged.
    for _ in 0..40 {
        ack(&db, next).unwrap();
        acked.push(next);
        next += 1;
    }
    check_reads(&db, &acked);
}

/// No room for a new log segment's preallocation: open fails, leaving no files behind.
fn child_open(dir: &Path) {
    let before = listing(dir);
    let err = Db::open(dir, opts())
        .err()
        .expect("open must fail when the log segment cannot be preallocated");
    report(&err);
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(listing(dir), before, "a failed open left files behind");
}

/// Compaction output overflow: compactions fail, level 0 fills up, and writers get an
/// error instead of unbounded memory or a hang.
fn child_table(dir: &Path) {
    let db = Db::open(dir, one_table_opts()).unwrap();
    let mut acked = Vec::new();
    let err = (0..5000)
        .find_map(|i| match ack(&db, i) {
            Ok(()) => {
                acked.push(i);
                None
            }
            Err(e) => Some(e),
        })
        .expect("writes must fail once compaction cannot write its output");
    report(&err);
    assert!(matches!(err, Error::Background(_)), "{err:?}");
    check_reads(&db, &acked);
    // Further writes keep failing cleanly (the limit does not go away).
    for i in acked.len() + 1..acked.len() + 4 {
        let err = ack(&db, i).expect_err("writes keep failing while compaction fails");
        report(&err);
    }
    check_reads(&db, &acked);
    assert_no_stray_tables(&db, dir);
    // Flushes do not depend on compactions: a flush still succeeds.
    db.flush().expect("a flush while compactions fail");
    check_reads(&db, &acked);
}

/// A disk with no space left: writes fail wherever the space runs out; reads go on, and
/// writes after the first failure either fail cleanly or succeed (compaction frees space).
fn child_space(dir: &Path, opts: Options) {
    // A memtable holds at most its size plus the write that filled it.
    let memtable_bytes_max = opts.memtable_size_bytes + 2048;
    let db = Db::open(dir, opts).unwrap();
    let mut acked = Vec::new();
    let err = (0..100_000)
        .find_map(|i| {
            let result = ack(&db, i);
            let memtable_bytes = db.stats().memtable_bytes;
            assert!(
                memtable_bytes <= memtable_bytes_max,
                "memtable unbounded: {memtable_bytes}"
            );
            match result {
                Ok(()) => {
                    acked.push(i);
                    None
                }
                Err(e) => Some(e),
            }
        })
        .expect("a small file system must fill up");
    report(&err);
    check_reads(&db, &acked);
    let first_after = acked.len() + 1;
    for i in first_after..first_after + 50 {
        match ack(&db, i) {
            Ok(()) => acked.push(i),
            Err(e) => report(&e),
        }
    }
    check_reads(&db, &acked);
    assert_no_stray_tables(&db, dir);
    if std::env::var(RESUME_ENV).is_ok() {
        resume_after_space_returns(&db, &mut acked, first_after + 50);
    }
}

/// Waits for the parent to make space, then writes on in the same process: failed log
/// appends succeed at once, failed background work on its next retry (about a second).
fn resume_after_space_returns(db: &Db, acked: &mut Vec<usize>, mut next: usize) {
    println!("FD-full");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
    let deadline = Instant::now() + Duration::from_secs(20);
    let want = acked.len() + 20;
    while acked.len() < want {
        match ack(db, next) {
            Ok(()) => {
                acked.push(next);
                next += 1;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "writes did not resume: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    check_reads(db, acked);
}

/// Every `.sst` file in `dir` is a live table: failed flushes and compactions clean up
/// (checked a few times, as a retry may be writing an output right now).
fn assert_no_stray_tables(db: &Db, dir: &Path) {
    let mut last = (0, 0);
    for _ in 0..20 {
        let live: usize = db.stats().levels.iter().map(|l| l.tables).sum();
        let on_disk = listing(dir).iter().filter(|n| n.ends_with(".sst")).count();
        if live == on_disk {
            return;
        }
        last = (live, on_disk);
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("stray tables left by failed background work: (live, on disk) = {last:?}");
}

fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

// ---------------------------------------------------------------- parent side

/// Asserts an error text names a file of the store and says what to do.
fn assert_actionable(err: &str, dir: &Path, file_suffixes: &[&str], advice: &str) {
    let dir = dir.to_string_lossy();
    let names_file = err.match_indices(&*dir).any(|(at, _)| {
        let rest = &err[at + dir.len()..];
        let name = rest[1..].split([':', ' ', ')']).next().unwrap_or("");
        file_suffixes.iter().any(|s| name.ends_with(s))
    });
    assert!(names_file, "error names no {file_suffixes:?} file: {err}");
    assert!(err.contains(advice), "error does not say {advice:?}: {err}");
}

/// Reopens without any limit and checks: exactly the acknowledged keys with their
/// values, no corruption, and new writes (with a flush and a full compaction) succeed.
fn verify_reopened(dir: &Path, acked: &[String], tag: &str) -> Db {
    let db = Db::open(dir, opts()).expect("the store reopens once space is back");
    let check = |db: &Db, extra: usize| {
        for k in acked {
            let got = db.get(k.as_bytes()).unwrap_or_else(|e| panic!("{k}: {e}"));
            assert_eq!(got.as_deref(), Some(&value_for(k)[..]), "lost {k}");
        }
        let mut live = 0;
        for kv in db.scan(..).unwrap() {
            let kv = kv.expect("no corruption");
            let k = String::from_utf8(kv.key).unwrap();
            assert_eq!(kv.value, value_for(&k), "wrong value for {k}");
            live += 1;
        }
        assert_eq!(live, acked.len() + extra, "a failed write left a trace");
    };
    check(&db, 0);
    for i in 0..50 {
        let k = format!("z-{tag}-{i:03}");
        db.put(k.as_bytes(), &value_for(&k)).expect("writes resume");
    }
    db.flush().expect("flush after reopen");
    db.compact().expect("compaction after reopen");
    check(&db, 50);
    db
}

#[test]
fn commit_log_cannot_grow() {
    let dir = tempfile::tempdir().unwrap();
    let limit_bytes = 1 << 20;
    let out = run_child("log", dir.path(), Some(limit_bytes), None);
    assert_eq!(out.errors.len(), 4, "{:?}", out.errors);
    for err in &out.errors {
        assert!(err.contains("File too large"), "{err}");
        assert_actionable(err, dir.path(), &[".log"], "file size limit");
    }
    assert_eq!(out.acked.len(), 200);
    let db = verify_reopened(dir.path(), &out.acked, "log");
    assert_eq!(
        db.stats().wal_tail_dropped_bytes,
        0,
        "a failed append must be undone, not left as a torn tail"
    );
    // Leave a few writes in the log only, so the next open has a table to write first.
    for i in 0..5 {
        let k = format!("y-tail-{i}");
        db.put(k.as_bytes(), &value_for(&k)).unwrap();
    }
    drop(db);
    // No room for a log segment's preallocation (16 KiB memtable → 22 KiB segment).
    let out2 = run_child("open", dir.path(), Some(8 << 10), None);
    assert_eq!(out2.errors.len(), 1, "{:?}", out2.errors);
    assert_actionable(
        &out2.errors[0],
        dir.path(),
        &[".log", ".sst"],
        "file size limit",
    );
    let mut acked = out.acked;
    acked.extend((0..5).map(|i| format!("y-tail-{i}")));
    acked.extend((0..50).map(|i| format!("z-log-{i:03}")));
    verify_reopened(dir.path(), &acked, "open");
}

#[test]
fn sstable_cannot_grow() {
    let dir = tempfile::tempdir().unwrap();
    // Above a log segment (22 KiB) and a flushed memtable, below the L1 table that
    // the third compaction (about 90 KiB) has to write.
    let out = run_child("table", dir.path(), Some(64 << 10), None);
    assert_eq!(out.errors.len(), 4, "{:?}", out.errors);
    for err in &out.errors {
        assert!(err.contains("File too large"), "{err}");
        assert_actionable(err, dir.path(), &[".sst"], "file size limit");
    }
    verify_reopened(dir.path(), &out.acked, "table");
}

/// One way of running out of space on a tmpfs.
struct SpaceCase {
    /// Child scenario (the options it writes with).
    scenario: &'static str,
    /// Mount options of the small file system.
    mount: &'static str,
    /// Some error must name a file ending so (`""`: any).
    must_fail_in: &'static str,
    /// Grow the file system while the child waits, and require its writes to resume
    /// in the same process; otherwise the child exits on a full disk and the parent
    /// reopens it still full first.
    resume: bool,
}

#[test]
fn disk_runs_out_of_space() {
    let cases = [
        // Small memtables and busy compactions: which file the space runs out in (a log
        // append, a flush, a compaction output) depends on timing.
        SpaceCase {
            scenario: "space",
            mount: "size=1m",
            must_fail_in: "",
            resume: true,
        },
        // Large memtables, no compactions: a log append into the sparse preallocated
        // segment fails (after the flush of the previous memtable did).
        SpaceCase {
            scenario: "space-log",
            mount: "size=1m",
            must_fail_in: ".log",
            resume: false,
        },
        // Plenty of bytes but no inodes: new log segments and tables cannot be created
        // while appends to the current segment still work. The memtable must stay
        // bounded (writes fail) rather than grow without a rotation.
        SpaceCase {
            scenario: "space",
            mount: "size=64m,nr_inodes=10",
            must_fail_in: "",
            resume: true,
        },
    ];
    for case in cases {
        let fs = match Tmpfs::mount(case.mount) {
            Ok(fs) => fs,
            Err(why) => {
                eprintln!("skipping disk_runs_out_of_space: needs root and mount ({why})");
                return;
            }
        };
        let store = fs.dir.path().join("store");
        let grow = || fs.grow("size=64m,nr_inodes=10000");
        let make_space = case.resume.then_some(&grow as &dyn Fn());
        let out = run_child(case.scenario, &store, None, make_space);
        let what = format!("{} on {}", case.scenario, case.mount);
        assert!(!out.errors.is_empty(), "{what}");
        for err in &out.errors {
            assert!(err.contains("No space left on device"), "{what}: {err}");
            assert_actionable(err, &store, &[".log", ".sst", "MANIFEST"], "free space");
        }
        assert!(
            out.errors.iter().any(|e| e.contains(case.must_fail_in)),
            "{what}: no failure in a {} file: {:?}",
            case.must_fail_in,
            out.errors
        );
        assert!(
            out.acked.len() > 10,
            "{what}: {} writes fit",
            out.acked.len()
        );
        if !case.resume {
            // Reopening on the still-full disk may fail, but only with a clear I/O error.
            match Db::open(&store, opts()) {
                Ok(db) => drop(db),
                Err(err @ Error::Io { .. }) => {
                    assert_actionable(&err.to_string(), &store, &[""], "free space");
                }
                Err(err) => panic!("{what}: reopening a full disk: {err}"),
            }
            grow();
        }
        verify_reopened(&store, &out.acked, case.scenario);
    }
}
