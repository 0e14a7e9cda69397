//! The alert manager's durable record: an append-only JSON-lines file of
//! silences (every create, update and expiry) and history events (every
//! alert state change and every notification attempt), fsynced before a
//! change is acknowledged, replayed on start.
//!
//! Compaction keeps the file bounded: once it holds more than twice the
//! records that matter (the latest version of each silence and the newest
//! `history_max` events), the writer thread writes those alone to a new
//! file, fsyncs it and renames it over the old one (then fsyncs the
//! directory), so a crash at any point leaves one whole journal.
//!
//! Why a module: Alertmanager keeps no history at all, and its silences
//! live in a snapshot written every 15 minutes; the notes ask that alerts
//! are never lost and that operators can see what was sent. One file,
//! written by one thread (fsync never on an async worker), is enough at
//! this scale: a record is a few hundred bytes.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::state::Silence;
use crate::rules::LabelSet;

/// History events kept in memory for queries (older ones stay in the file).
pub const HISTORY_MAX: usize = 100_000;

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When (Unix ms).
    pub t_ms: i64,
    /// `alert` (state change), `notify` (attempt), `silence`.
    pub kind: String,
    /// The alert's or group's labels.
    #[serde(default)]
    pub labels: LabelSet,
    /// Fingerprint (alerts) or group key (notifications), or silence id.
    #[serde(default)]
    pub subject: String,
    /// `firing`, `resolved`, `ok`, `failed: ...`, `created`, `expired`.
    pub what: String,
    /// Receiver of a notification.
    #[serde(default)]
    pub receiver: String,
    /// Attempt number of a notification.
    #[serde(default)]
    pub attempt: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Record {
    Silence(Silence),
    Event(Event),
}

type Ack = tokio::sync::oneshot::Sender<std::io::Result<()>>;

/// What the writer thread does, in order.
enum Job {
    /// Append a line; acknowledge once it is on disk.
    Append(Vec<u8>, Option<Ack>),
    /// Replace the file with these lines (every record that matters).
    Compact(Vec<u8>),
}

/// What is kept in memory; `records` counts the file's lines.
struct Memory {
    tx: mpsc::Sender<Job>,
    silences: std::collections::BTreeMap<String, Silence>,
    history: std::collections::VecDeque<Event>,
    records: usize,
}

/// The journal.
pub struct Journal {
    // One lock for the channel and the memory: a record is in the memory
    // if and only if it was queued, so a compaction's snapshot (queued
    // under the same lock) holds everything written before it.
    memory: Mutex<Memory>,
    history_max: usize,
    path: PathBuf,
}

/// What a replay found.
pub struct Replayed {
    /// Latest version of each silence.
    pub silences: Vec<Silence>,
}

impl Journal {
    /// Opens (creating) `dir/journal.jsonl`, replays it, starts the writer
    /// thread; keeps the newest [`HISTORY_MAX`] events.
    pub fn open(dir: &Path) -> std::io::Result<(Self, Replayed)> {
        Self::open_keeping(dir, HISTORY_MAX)
    }

    /// [`Self::open`], keeping the newest `history_max` events (in memory
    /// and, after compaction, in the file).
    pub fn open_keeping(dir: &Path, history_max: usize) -> std::io::Result<(Self, Replayed)> {
        assert!(history_max > 0, "the history keeps at least one event");
        std::fs::create_dir_all(dir)?;
        let path = dir.join("journal.jsonl");
        let mut silences = std::collections::BTreeMap::new();
        let mut history = std::collections::VecDeque::new();
        let mut records = 0;
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                records += 1;
                // A torn last line (crash mid-write) is skipped; every full line is valid JSON.
                match serde_json::from_str::<Record>(&line) {
                    Ok(Record::Silence(s)) => {
                        silences.insert(s.id.clone(), s);
                    }
                    Ok(Record::Event(e)) => {
                        if history.len() == history_max {
                            history.pop_front();
                        }
                        history.push_back(e);
                    }
                    Err(e) if line.is_empty() => drop(e),
                    Err(e) => tracing::warn!(error = %e, "skipping a torn journal line"),
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        // A torn tail gets a newline so the next record starts clean.
        file.write_all(b"\n")?;
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_path = path.clone();
        std::thread::Builder::new()
            .name("am-journal".into())
            .spawn(move || writer(file, &writer_path, rx))?;
        let silences: std::collections::BTreeMap<String, Silence> = silences
            .into_iter()
            .map(|(id, s): (String, Silence)| {
                match s
                    .clone()
                    .matchers
                    .into_iter()
                    .map(|m| m.checked())
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(matchers) => (id, Silence { matchers, ..s }),
                    Err(_) => (id, s),
                }
            })
            .collect();
        let replayed = Replayed {
            silences: silences.values().cloned().collect(),
        };
        let journal = Self {
            memory: Mutex::new(Memory {
                tx,
                silences,
                history,
                records,
            }),
            history_max,
            path,
        };
        journal.compact_if_due(&mut journal.memory.lock());
        Ok((journal, replayed))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many records the file holds now (for tests and metrics).
    pub fn records(&self) -> usize {
        self.memory.lock().records
    }

    fn send(memory: &mut Memory, rec: &Record, ack: Option<Ack>) {
        let mut line = serde_json::to_vec(rec).expect("records serialize");
        line.push(b'\n');
        memory.records += 1;
        if memory.tx.send(Job::Append(line, ack)).is_err() {
            tracing::error!("the journal writer has stopped");
        }
    }

    /// Queues a compaction when the file holds more than twice the records
    /// that matter.
    fn compact_if_due(&self, memory: &mut Memory) {
        let live = memory.silences.len() + memory.history.len();
        if memory.records <= 2 * live.max(self.history_max) {
            return;
        }
        let mut snapshot = Vec::new();
        let silences = memory.silences.values().cloned().map(Record::Silence);
        let events = memory.history.iter().cloned().map(Record::Event);
        for rec in silences.chain(events) {
            serde_json::to_writer(&mut snapshot, &rec).expect("records serialize");
            snapshot.push(b'\n');
        }
        memory.records = live;
        if memory.tx.send(Job::Compact(snapshot)).is_err() {
            tracing::error!("the journal writer has stopped");
        }
    }

    /// Records a silence; resolves once it is on disk.
    pub async fn put_silence(&self, s: &Silence) -> std::io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut memory = self.memory.lock();
            Self::send(&mut memory, &Record::Silence(s.clone()), Some(tx));
            memory.silences.insert(s.id.clone(), s.clone());
            self.compact_if_due(&mut memory);
        }
        rx.await
            .unwrap_or_else(|_| Err(std::io::Error::other("the journal writer has stopped")))
    }

    /// Records an event (written with the next batch).
    pub fn event(&self, e: Event) {
        let mut memory = self.memory.lock();
        Self::send(&mut memory, &Record::Event(e.clone()), None);
        if memory.history.len() == self.history_max {
            memory.history.pop_front();
        }
        memory.history.push_back(e);
        self.compact_if_due(&mut memory);
    }

    /// Events matching `filter`, newest last, at most `limit`.
    pub fn history(&self, filter: impl Fn(&Event) -> bool, limit: usize) -> Vec<Event> {
        let memory = self.memory.lock();
        let mut out: Vec<Event> = memory
            .history
            .iter()
            .rev()
            .filter(|e| filter(e))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}

fn writer(mut file: File, path: &Path, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        // Group commit: every append queued now shares one fsync; a
        // compaction ends the batch (it replaces what came before it).
        let mut batch = Vec::new();
        let mut compact = None;
        for job in std::iter::once(first).chain(rx.try_iter()) {
            match job {
                Job::Append(line, ack) => batch.push((line, ack)),
                Job::Compact(snapshot) => {
                    compact = Some(snapshot);
                    break;
                }
            }
        }
        let mut res = Ok(());
        for (line, _) in &batch {
            if res.is_ok() {
                res = file.write_all(line);
            }
        }
        if res.is_ok() {
            res = file.sync_data();
        }
        if let Err(e) = &res {
            tracing::error!(error = %e, "journal write failed");
        }
        for (_, ack) in batch {
            if let Some(ack) = ack {
                let _ = ack.send(
                    res.as_ref()
                        .map(|_| ())
                        .map_err(|e| std::io::Error::new(e.kind(), e.to_string())),
                );
            }
        }
        if let Some(snapshot) = compact {
            match replace(path, &snapshot) {
                Ok(compacted) => file = compacted,
                // The old file is whole and still appended to: nothing lost.
                Err(e) => tracing::error!(error = %e, "journal compaction failed"),
            }
        }
    }
}

/// Writes `snapshot` as the new journal at `path` (temp file, fsync,
/// rename, directory fsync); returns it open for appending.
fn replace(path: &Path, snapshot: &[u8]) -> std::io::Result<File> {
    let tmp = path.with_extension("jsonl.compacting");
    let mut out = File::create(&tmp)?;
    out.write_all(snapshot)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: i64) -> Event {
        Event {
            t_ms: i,
            kind: "alert".into(),
            labels: LabelSet::new(),
            subject: format!("a{i}"),
            what: "firing".into(),
            receiver: String::new(),
            attempt: 0,
        }
    }

    fn silence(id: &str, ends_at_ms: i64) -> Silence {
        Silence {
            id: id.into(),
            matchers: vec![super::super::matcher::Matcher::parse("job=kv").unwrap()],
            starts_at_ms: 0,
            ends_at_ms,
            created_by: "t".into(),
            comment: String::new(),
            updated_at_ms: ends_at_ms,
        }
    }

    fn lines(path: &Path) -> usize {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().filter(|l| !l.is_empty()).count()
    }

    /// Compaction bounds the file and keeps what matters: the newest
    /// events and the latest version of every silence, across a reopen.
    #[test]
    fn compaction_bounds_the_file_and_keeps_the_latest_records() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let keep = 10;
        {
            let (journal, _) = Journal::open_keeping(dir.path(), keep).unwrap();
            for version in 1..=5 {
                runtime
                    .block_on(journal.put_silence(&silence("s1", version)))
                    .unwrap();
            }
            runtime
                .block_on(journal.put_silence(&silence("s2", 7)))
                .unwrap();
            for i in 0..1000 {
                journal.event(event(i));
            }
            // The last put waits for the writer, so every line is on disk.
            runtime
                .block_on(journal.put_silence(&silence("s2", 8)))
                .unwrap();
            assert!(journal.records() <= 2 * (keep + 2) + 1);
            assert!(
                lines(journal.path()) <= 2 * (keep + 2) + 1,
                "{}",
                lines(journal.path())
            );
        }
        let (journal, replayed) = Journal::open_keeping(dir.path(), keep).unwrap();
        let mut silences: Vec<(String, i64)> = replayed
            .silences
            .iter()
            .map(|s| (s.id.clone(), s.ends_at_ms))
            .collect();
        silences.sort();
        assert_eq!(silences, [("s1".into(), 5), ("s2".into(), 8)]);
        let history = journal.history(|_| true, 100);
        let times: Vec<i64> = history.iter().map(|e| e.t_ms).collect();
        assert_eq!(times, (990..1000).collect::<Vec<_>>());
    }
}
