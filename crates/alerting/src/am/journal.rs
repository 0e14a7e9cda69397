//! The alert manager's durable record: an append-only JSON-lines file of
//! silences (every create, update and expiry) and history events (every
//! alert state change and every notification attempt), fsynced before a
//! change is acknowledged, replayed on start.
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

type Job = (
    Vec<u8>,
    Option<tokio::sync::oneshot::Sender<std::io::Result<()>>>,
);

/// The journal.
pub struct Journal {
    tx: Mutex<mpsc::Sender<Job>>,
    history: Mutex<std::collections::VecDeque<Event>>,
    path: PathBuf,
}

/// What a replay found.
pub struct Replayed {
    /// Latest version of each silence.
    pub silences: Vec<Silence>,
}

impl Journal {
    /// Opens (creating) `dir/journal.jsonl`, replays it, starts the writer thread.
    pub fn open(dir: &Path) -> std::io::Result<(Self, Replayed)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("journal.jsonl");
        let mut silences = std::collections::BTreeMap::new();
        let mut history = std::collections::VecDeque::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                // A torn last line (crash mid-write) is skipped; every full line is valid JSON.
                match serde_json::from_str::<Record>(&line) {
                    Ok(Record::Silence(s)) => {
                        silences.insert(s.id.clone(), s);
                    }
                    Ok(Record::Event(e)) => {
                        if history.len() == HISTORY_MAX {
                            history.pop_front();
                        }
                        history.push_back(e);
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping a torn journal line"),
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        // A torn tail gets a newline so the next record starts clean.
        file.write_all(b"\n")?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("am-journal".into())
            .spawn(move || writer(file, rx))?;
        let silences = silences
            .into_values()
            .map(|s: Silence| {
                match s
                    .clone()
                    .matchers
                    .into_iter()
                    .map(|m| m.checked())
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(matchers) => Silence { matchers, ..s },
                    Err(_) => s,
                }
            })
            .collect();
        Ok((
            Self {
                tx: Mutex::new(tx),
                history: Mutex::new(history),
                path,
            },
            Replayed { silences },
        ))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, rec: &Record, ack: Option<tokio::sync::oneshot::Sender<std::io::Result<()>>>) {
        let mut line = serde_json::to_vec(rec).expect("records serialize");
        line.push(b'\n');
        if self.tx.lock().send((line, ack)).is_err() {
            tracing::error!("the journal writer has stopped");
        }
    }

    /// Records a silence; resolves once it is on disk.
    pub async fn put_silence(&self, s: &Silence) -> std::io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(&Record::Silence(s.clone()), Some(tx));
        rx.await
            .unwrap_or_else(|_| Err(std::io::Error::other("the journal writer has stopped")))
    }

    /// Records an event (written with the next batch).
    pub fn event(&self, e: Event) {
        self.send(&Record::Event(e.clone()), None);
        let mut h = self.history.lock();
        if h.len() == HISTORY_MAX {
            h.pop_front();
        }
        h.push_back(e);
    }

    /// Events matching `filter`, newest last, at most `limit`.
    pub fn history(&self, filter: impl Fn(&Event) -> bool, limit: usize) -> Vec<Event> {
        let h = self.history.lock();
        let mut out: Vec<Event> = h
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

fn writer(mut file: File, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        // Group commit: everything queued now shares one fsync.
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
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
    }
}
