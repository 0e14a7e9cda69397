//! The write-ahead log: every acknowledged sample is on disk before the append
//! returns, and a restart replays it into the head.
//!
//! Why a module: the head keeps recent samples in memory (the chapter's "memory
//! cache" of InfluxDB and Prometheus); without a log a crash loses them all.
//! Appends encode their records into a shared buffer (under the head's lock, so
//! the log's order is the head's order) and get a [`Ticket`]; one **commit
//! thread** writes everything buffered since its last round and fsyncs once
//! (group commit: one fsync serves every writer of the round), then marks the
//! round durable. Waiting on the ticket blocks (`wait`) or is a `Future`, so
//! async servers never fsync, nor block, on their worker threads.
//!
//! Segments (`wal/00000001`, ...) roll at `wal_segment_bytes_max`. After the
//! head cuts a block, [`Wal::checkpoint`] rewrites the closed segments into one
//! `checkpoint.N` holding only what the head still needs (its series and the
//! samples not yet in a block) and deletes them, as Prometheus does. On open, a
//! torn tail of the last segment (a crash mid-write) is cut away; damage
//! anywhere else is [`crate::Error::Corrupt`].

pub mod record;

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, IoContext, Result, corrupt};
pub use record::Record;

/// The log.
pub(crate) struct Wal {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Shared {
    dir: PathBuf,
    segment_bytes_max: u64,
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
}

struct State {
    buf: Vec<u8>,
    appended: u64,
    durable: u64,
    failed: Option<String>,
    shutdown: bool,
    gone: bool,
    file: Arc<File>,
    segment: u64,
    segment_bytes: u64,
    rotate_requested: bool,
    rotations: u64,
    wakers: Vec<(u64, Waker)>,
    fsyncs: u64,
}

/// A promise that an append is durable: [`Ticket::wait`] blocks until the
/// commit thread has fsynced it; `.await` does the same without blocking.
#[must_use = "an append is acknowledged only once its ticket resolves"]
pub struct Ticket {
    shared: Option<Arc<Shared>>,
    seq: u64,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("seq", &self.seq).finish()
    }
}

impl Ticket {
    /// A ticket with nothing to wait for (an append that changed nothing).
    pub(crate) fn ready() -> Self {
        Self {
            shared: None,
            seq: 0,
        }
    }

    fn check(&self, s: &State) -> Option<Result<()>> {
        if s.durable >= self.seq {
            Some(Ok(()))
        } else if let Some(e) = &s.failed {
            Some(Err(Error::WritesDisabled(e.clone())))
        } else if s.gone {
            Some(Err(Error::Closed))
        } else {
            None
        }
    }

    /// Blocks until the append is durable (or the log failed).
    pub fn wait(self) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut s = shared.state.lock();
        loop {
            if let Some(r) = self.check(&s) {
                return r;
            }
            shared.done.wait(&mut s);
        }
    }
}

impl Future for Ticket {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(Ok(()));
        };
        let mut s = shared.state.lock();
        match self.check(&s) {
            Some(r) => Poll::Ready(r),
            None => {
                s.wakers.push((self.seq, cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

fn checkpoint_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("checkpoint.{n:08}"))
}

/// The WAL files of `dir`: (checkpoints, segments), each sorted by number.
fn list(dir: &Path) -> Result<(Vec<u64>, Vec<u64>)> {
    let (mut cps, mut segs) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir(dir).at(dir)? {
        let name = e.at(dir)?.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("checkpoint.")
            .and_then(|n| n.parse().ok())
        {
            cps.push(n);
        } else if name.ends_with(".tmp") {
            let _ = std::fs::remove_file(dir.join(&name));
        } else if let Ok(n) = name.parse() {
            segs.push(n);
        }
    }
    cps.sort_unstable();
    segs.sort_unstable();
    Ok((cps, segs))
}

/// fsyncs a directory (file creations, renames and deletions in it).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).at(path)
}

impl Wal {
    /// Opens (or creates) the log in `dir`, feeding every surviving record to
    /// `apply` in order, and starts the commit thread.
    pub fn open(dir: &Path, segment_bytes_max: u64, mut apply: impl FnMut(Record)) -> Result<Self> {
        std::fs::create_dir_all(dir).at(dir)?;
        let (cps, segs) = list(dir)?;
        let cp = cps.last().copied();
        if let Some(n) = cp {
            let path = checkpoint_path(dir, n);
            let read = record::read_frames(&read_file(&path)?);
            if let Some(why) = read.stopped {
                return Err(corrupt(&path, why));
            }
            read.records.into_iter().for_each(&mut apply);
        }
        let live: Vec<u64> = segs
            .iter()
            .copied()
            .filter(|&s| cp.is_none_or(|c| s > c))
            .collect();
        for (i, &n) in live.iter().enumerate() {
            let path = segment_path(dir, n);
            let read = record::read_frames(&read_file(&path)?);
            if let Some(why) = &read.stopped {
                if i + 1 < live.len() {
                    return Err(corrupt(&path, why.clone()));
                }
                tracing::warn!(path = %path.display(), why, "cutting the torn tail of the WAL");
                let f = OpenOptions::new().write(true).open(&path).at(&path)?;
                f.set_len(read.valid_bytes).at(&path)?;
                f.sync_all().at(&path)?;
            }
            read.records.into_iter().for_each(&mut apply);
        }
        // Leftovers of an interrupted checkpoint.
        for &s in segs.iter().filter(|&&s| cp.is_some_and(|c| s <= c)) {
            let _ = std::fs::remove_file(segment_path(dir, s));
        }
        for &c in cps.iter().filter(|&&c| Some(c) != cp) {
            let _ = std::fs::remove_file(checkpoint_path(dir, c));
        }
        let segment = match live.last() {
            Some(&n) => n,
            None => cp.unwrap_or(0) + 1,
        };
        let path = segment_path(dir, segment);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .at(&path)?;
        let segment_bytes = file.metadata().at(&path)?.len();
        sync_dir(dir)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segment_bytes_max,
            state: Mutex::new(State {
                buf: Vec::new(),
                appended: 0,
                durable: 0,
                failed: None,
                shutdown: false,
                gone: false,
                file: Arc::new(file),
                segment,
                segment_bytes,
                rotate_requested: false,
                rotations: 0,
                wakers: Vec::new(),
                fsyncs: 0,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("tsdb-wal".into())
                .spawn(move || commit_loop(&shared))
                .at(dir)?
        };
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Refuses early if the log has failed (before the head is changed).
    pub fn check_writable(&self) -> Result<()> {
        let s = self.shared.state.lock();
        match (&s.failed, s.shutdown) {
            (Some(e), _) => Err(Error::WritesDisabled(e.clone())),
            (None, true) => Err(Error::Closed),
            _ => Ok(()),
        }
    }

    /// Queues encoded frames; the ticket resolves once they are fsynced.
    pub fn append(&self, frames: &[u8]) -> Ticket {
        if frames.is_empty() {
            return Ticket::ready();
        }
        let mut s = self.shared.state.lock();
        s.buf.extend_from_slice(frames);
        s.appended += 1;
        let seq = s.appended;
        drop(s);
        self.shared.work.notify_one();
        Ticket {
            shared: Some(self.shared.clone()),
            seq,
        }
    }

    /// Flushes what is buffered, closes the current segment and starts a new
    /// one; returns the closed segment's number. Called with the head locked,
    /// so the closed segments hold exactly the records before this call.
    pub fn cut_segment(&self) -> Result<u64> {
        let mut s = self.shared.state.lock();
        let target = s.rotations + 1;
        s.rotate_requested = true;
        self.shared.work.notify_one();
        loop {
            if s.rotations >= target {
                return Ok(s.segment - 1);
            }
            if let Some(e) = &s.failed {
                return Err(Error::WritesDisabled(e.clone()));
            }
            if s.gone {
                return Err(Error::Closed);
            }
            self.shared.done.wait(&mut s);
        }
    }

    /// Rewrites the checkpoint and segments up to `upto` into `checkpoint.upto`,
    /// keeping what `keep` returns for each record, then deletes them.
    pub fn checkpoint(
        &self,
        upto: u64,
        mut keep: impl FnMut(Record) -> Option<Record>,
    ) -> Result<()> {
        let dir = &self.shared.dir;
        let (cps, segs) = list(dir)?;
        let mut out = Vec::new();
        let base = cps.iter().rfind(|&&c| c <= upto).copied();
        let mut inputs: Vec<PathBuf> = base.map(|c| checkpoint_path(dir, c)).into_iter().collect();
        let first_seg = base.map_or(0, |c| c + 1);
        inputs.extend(
            segs.iter()
                .filter(|&&s| s >= first_seg && s <= upto)
                .map(|&s| segment_path(dir, s)),
        );
        let older: Vec<PathBuf> = cps
            .iter()
            .filter(|&&c| base.is_some_and(|b| c < b))
            .map(|&c| checkpoint_path(dir, c))
            .collect();
        for path in &inputs {
            let read = record::read_frames(&read_file(path)?);
            if let Some(why) = read.stopped {
                return Err(corrupt(path, why));
            }
            for r in read.records.into_iter().filter_map(&mut keep) {
                r.encode(&mut out);
            }
        }
        let path = checkpoint_path(dir, upto);
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp).at(&tmp)?;
            f.write_all(&out).at(&tmp)?;
            f.sync_all().at(&tmp)?;
        }
        std::fs::rename(&tmp, &path).at(&path)?;
        sync_dir(dir)?;
        for p in inputs.iter().chain(&older).filter(|p| **p != path) {
            std::fs::remove_file(p).at(p)?;
        }
        sync_dir(dir)
    }

    /// fsyncs done so far.
    pub fn fsyncs(&self) -> u64 {
        self.shared.state.lock().fsyncs
    }

    /// Bytes of all WAL files on disk.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::read_dir(&self.shared.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Drains the buffer and stops the commit thread.
    pub fn close(&self) {
        self.shared.state.lock().shutdown = true;
        self.shared.work.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Marks the log gone when the commit thread exits (also by a panic).
struct Gone<'a>(&'a Shared);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock();
        s.gone = true;
        for (_, w) in s.wakers.drain(..) {
            w.wake();
        }
        drop(s);
        self.0.done.notify_all();
    }
}

/// Whether a round starts a new segment, and on which side of its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Roll {
    No,
    BeforeWrite,
    AfterWrite,
}

/// The commit thread: one round per wake-up (see the module docs).
fn commit_loop(shared: &Shared) {
    let _gone = Gone(shared);
    loop {
        let (buf, seq, file, segment, rotate) = {
            let mut s = shared.state.lock();
            while s.buf.is_empty() && !s.rotate_requested && !s.shutdown {
                shared.work.wait(&mut s);
            }
            if s.buf.is_empty() && !s.rotate_requested {
                return; // shut down with nothing left
            }
            let requested = std::mem::take(&mut s.rotate_requested);
            let size_roll = !requested
                && s.segment_bytes > 0
                && s.segment_bytes + s.buf.len() as u64 > shared.segment_bytes_max;
            let rotate = if requested {
                Roll::AfterWrite
            } else if size_roll {
                Roll::BeforeWrite
            } else {
                Roll::No
            };
            (
                std::mem::take(&mut s.buf),
                s.appended,
                s.file.clone(),
                s.segment,
                rotate,
            )
        };
        let result = (|| -> Result<Option<File>> {
            if let Some(e) = &shared.state.lock().failed {
                return Err(Error::WritesDisabled(e.clone()));
            }
            // A size-triggered roll closes the segment before this round's bytes;
            // a requested one (cut_segment) after them.
            let path = segment_path(&shared.dir, segment);
            if !buf.is_empty() && rotate != Roll::BeforeWrite {
                (&*file).write_all(&buf).at(&path)?;
                file.sync_data().at(&path)?;
            }
            if rotate == Roll::No {
                return Ok(None);
            }
            let next = segment_path(&shared.dir, segment + 1);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&next)
                .at(&next)?;
            sync_dir(&shared.dir)?;
            if rotate == Roll::BeforeWrite {
                (&f).write_all(&buf).at(&next)?;
                f.sync_data().at(&next)?;
            }
            Ok(Some(f))
        })();
        let mut s = shared.state.lock();
        match result {
            Ok(new_file) => {
                s.fsyncs += u64::from(!buf.is_empty());
                s.durable = seq;
                s.segment_bytes += buf.len() as u64;
                if let Some(f) = new_file {
                    s.file = Arc::new(f);
                    s.segment = segment + 1;
                    s.segment_bytes = if rotate == Roll::BeforeWrite {
                        buf.len() as u64
                    } else {
                        0
                    };
                    s.rotations += 1;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "WAL write failed; writes disabled until reopen");
                s.failed.get_or_insert_with(|| e.to_string());
            }
        }
        let durable = s.durable;
        let failed = s.failed.is_some();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut s.wakers)
            .into_iter()
            .partition(|(q, _)| failed || *q <= durable);
        s.wakers = waiting;
        drop(s);
        shared.done.notify_all();
        for (_, w) in ready {
            w.wake();
        }
    }
}
