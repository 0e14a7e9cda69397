//! The durable part of a Raft voter: its hard state (term, vote) in
//! `raft/state.json`, replaced atomically, and its log in `raft/log.jsonl`,
//! one JSON entry per line, appended and fsynced.
//!
//! A truncation (a new leader overwrote an uncommitted tail) rewrites the
//! log file atomically; metadata logs are small, so that is cheap. On open,
//! a torn last line (the process died mid-append) is dropped: that entry was
//! never acknowledged to anyone, because replies go out after the fsync.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Entry, HardState, Index};
use crate::durable::write_atomically;

/// A voter's durable state in a directory.
pub struct Storage {
    dir: PathBuf,
    log: File,
    /// Entries in the file.
    len: Index,
}

impl Storage {
    /// Opens (creating) `dir`, returning the storage, the hard state and the log.
    pub fn open<C: DeserializeOwned>(
        dir: &Path,
    ) -> anyhow::Result<(Storage, HardState, Vec<Entry<C>>)> {
        std::fs::create_dir_all(dir)?;
        let state_path = dir.join("state.json");
        let hard = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", state_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HardState::default(),
            Err(e) => return Err(e.into()),
        };
        let log_path = dir.join("log.jsonl");
        let mut entries = Vec::new();
        let mut torn = false;
        if let Ok(file) = File::open(&log_path) {
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    break;
                }
                match (
                    line.ends_with('\n'),
                    serde_json::from_str::<Entry<C>>(line.trim_end()),
                ) {
                    (true, Ok(entry)) => entries.push(entry),
                    _ => {
                        torn = true;
                        break;
                    }
                }
            }
        }
        let len = entries.len() as Index;
        let storage = if torn {
            tracing::warn!(dir = %dir.display(), kept = len, "raft log: torn last entry dropped");
            let raw: Vec<Vec<u8>> = std::fs::read_to_string(&log_path)?
                .lines()
                .take(entries.len())
                .map(|l| format!("{l}\n").into_bytes())
                .collect();
            write_atomically(&log_path, &raw.concat())?;
            Storage::reopen(dir, len)?
        } else {
            Storage::reopen(dir, len)?
        };
        Ok((storage, hard, entries))
    }

    fn reopen(dir: &Path, len: Index) -> anyhow::Result<Storage> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log.jsonl"))?;
        Ok(Storage {
            dir: dir.to_path_buf(),
            log,
            len,
        })
    }

    /// Persists the hard state (atomically, fsynced).
    pub fn save_hard_state(&mut self, hard: HardState) -> anyhow::Result<()> {
        write_atomically(&self.dir.join("state.json"), &serde_json::to_vec(&hard)?)?;
        Ok(())
    }

    /// Makes the durable log equal the in-memory one from `from` on:
    /// `entries` are the in-memory entries from `from` to the end, `all`
    /// the whole in-memory log (used when the file must be rewritten).
    pub fn save_log<C: Serialize>(
        &mut self,
        from: Index,
        entries: &[Entry<C>],
        all: &[Entry<C>],
    ) -> anyhow::Result<()> {
        let line = |e: &Entry<C>| -> anyhow::Result<Vec<u8>> {
            let mut bytes = serde_json::to_vec(e)?;
            bytes.push(b'\n');
            Ok(bytes)
        };
        if from == self.len + 1 {
            let mut buf = Vec::new();
            for entry in entries {
                buf.extend(line(entry)?);
            }
            self.log.write_all(&buf)?;
            self.log.sync_data()?;
        } else {
            let mut buf = Vec::new();
            for entry in all {
                buf.extend(line(entry)?);
            }
            write_atomically(&self.dir.join("log.jsonl"), &buf)?;
            *self = Storage::reopen(&self.dir, 0)?;
        }
        self.len = all.len() as Index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_and_vote_survive_reopen_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let e = |term, c: u32| Entry {
            term,
            command: Some(c),
        };
        {
            let (mut s, hard, log) = Storage::open::<u32>(dir.path()).unwrap();
            assert_eq!(hard, HardState::default());
            assert!(log.is_empty());
            s.save_hard_state(HardState {
                term: 3,
                voted_for: Some(2),
            })
            .unwrap();
            let all = vec![e(1, 10), e(1, 11)];
            s.save_log(1, &all, &all).unwrap();
            let all = vec![e(1, 10), e(1, 11), e(2, 12)];
            s.save_log(3, &all[2..], &all).unwrap();
            // A new leader overwrote index 2 onwards.
            let all = vec![e(1, 10), e(3, 20)];
            s.save_log(2, &all[1..], &all).unwrap();
        }
        let mut raw = std::fs::read(dir.path().join("log.jsonl")).unwrap();
        raw.extend_from_slice(b"{\"term\":3,\"comm");
        std::fs::write(dir.path().join("log.jsonl"), raw).unwrap();
        let (mut s, hard, log) = Storage::open::<u32>(dir.path()).unwrap();
        assert_eq!(
            hard,
            HardState {
                term: 3,
                voted_for: Some(2)
            }
        );
        assert_eq!(log, vec![e(1, 10), e(3, 20)]);
        let all = vec![e(1, 10), e(3, 20), e(3, 21)];
        s.save_log(3, &all[2..], &all).unwrap();
        let (_, _, log) = Storage::open::<u32>(dir.path()).unwrap();
        assert_eq!(log, all);
    }
}
