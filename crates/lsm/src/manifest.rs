//! The manifest: the durable list of live SSTables, changed only by atomic edits.
//!
//! Why it exists: flushes and compactions add and remove several files at once; a crash
//! in the middle must leave either the old set or the new one, never a mix. Each change
//! is one checksummed record ("version edit") appended to `MANIFEST-n` and fsynced; the
//! new table files and the directory are fsynced *before* the edit, so an edit never
//! names a file that might not survive. `CURRENT` names the live manifest and is replaced
//! by write-temp → fsync → rename → fsync-directory. Recovery replays the edits up to the
//! first torn or corrupt record: exactly the last committed set.
//!
//! Record payload: a sequence of tagged fields (see `Tag`); the first record of every
//! manifest carries the store's format version. A replayed state whose levels ≥ 1 hold
//! overlapping tables is corruption (an error naming the manifest and the tables).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::codec::{Reader, put_len_prefixed, put_varint};
use crate::error::{Error, IoContext, Result};
use crate::sstable::TableMeta;
use crate::version::find_overlap;
use crate::wal::{frame, parse_records, sync_dir};

/// Format version of the whole store (manifest, log and table layouts).
pub const FORMAT_VERSION: u32 = 1;
/// Number of levels (L0..L6).
pub(crate) const LEVELS: usize = 7;

/// Field tags of an edit record.
mod tag {
    pub const FORMAT_VERSION: u8 = 1;
    pub const LOG_NUMBER: u8 = 2;
    pub const NEXT_FILE_ID: u8 = 3;
    pub const LAST_SEQ: u8 = 4;
    pub const ADD_TABLE: u8 = 5;
    pub const REMOVE_TABLE: u8 = 6;
}

/// One atomic change to the set of live tables.
#[derive(Clone, Debug, Default)]
pub(crate) struct VersionEdit {
    /// Oldest log segment still needed (older ones are in SSTables).
    pub log_number: Option<u64>,
    /// Next unused file number.
    pub next_file_id: Option<u64>,
    /// Highest sequence number that is in an SSTable or older.
    pub last_seq: Option<u64>,
    /// Tables added, with their level.
    pub added: Vec<(usize, TableMeta)>,
    /// Tables removed: (level, id).
    pub removed: Vec<(usize, u64)>,
}

/// The state a manifest describes.
#[derive(Clone, Debug, Default)]
pub(crate) struct ManifestState {
    /// See [`VersionEdit::log_number`].
    pub log_number: u64,
    /// See [`VersionEdit::next_file_id`].
    pub next_file_id: u64,
    /// See [`VersionEdit::last_seq`].
    pub last_seq: u64,
    /// Live tables per level.
    pub levels: Vec<Vec<TableMeta>>,
}

impl ManifestState {
    /// Applies an edit.
    pub(crate) fn apply(&mut self, edit: &VersionEdit) {
        self.levels.resize(LEVELS, Vec::new());
        if let Some(n) = edit.log_number {
            self.log_number = self.log_number.max(n);
        }
        if let Some(n) = edit.next_file_id {
            self.next_file_id = self.next_file_id.max(n);
        }
        if let Some(n) = edit.last_seq {
            self.last_seq = self.last_seq.max(n);
        }
        for (level, id) in &edit.removed {
            self.levels[*level].retain(|t| t.id != *id);
        }
        for (level, meta) in &edit.added {
            self.levels[*level].push(meta.clone());
        }
    }
}

fn encode_edit(edit: &VersionEdit, with_version: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if with_version {
        out.push(tag::FORMAT_VERSION);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    }
    for (t, v) in [
        (tag::LOG_NUMBER, edit.log_number),
        (tag::NEXT_FILE_ID, edit.next_file_id),
        (tag::LAST_SEQ, edit.last_seq),
    ] {
        if let Some(v) = v {
            out.push(t);
            put_varint(&mut out, v);
        }
    }
    for (level, id) in &edit.removed {
        out.push(tag::REMOVE_TABLE);
        out.push(*level as u8);
        put_varint(&mut out, *id);
    }
    for (level, m) in &edit.added {
        out.push(tag::ADD_TABLE);
        out.push(*level as u8);
        for v in [m.id, m.size_bytes, m.seq_min, m.seq_max, m.entries] {
            put_varint(&mut out, v);
        }
        put_len_prefixed(&mut out, &m.smallest);
        put_len_prefixed(&mut out, &m.largest);
    }
    out
}

/// Decodes an edit; returns it and the format version if the record carries one.
fn decode_edit(payload: &[u8]) -> Option<(VersionEdit, Option<u32>)> {
    let mut r = Reader::new(payload);
    let mut edit = VersionEdit::default();
    let mut version = None;
    while !r.is_empty() {
        match r.u8()? {
            tag::FORMAT_VERSION => version = Some(r.u32()?),
            tag::LOG_NUMBER => edit.log_number = Some(r.varint()?),
            tag::NEXT_FILE_ID => edit.next_file_id = Some(r.varint()?),
            tag::LAST_SEQ => edit.last_seq = Some(r.varint()?),
            tag::REMOVE_TABLE => edit.removed.push((level(r.u8()?)?, r.varint()?)),
            tag::ADD_TABLE => {
                let level = level(r.u8()?)?;
                let (id, size_bytes, seq_min, seq_max, entries) = (
                    r.varint()?,
                    r.varint()?,
                    r.varint()?,
                    r.varint()?,
                    r.varint()?,
                );
                let smallest = r.len_prefixed()?.to_vec();
                let largest = r.len_prefixed()?.to_vec();
                edit.added.push((
                    level,
                    TableMeta {
                        id,
                        size_bytes,
                        smallest,
                        largest,
                        seq_min,
                        seq_max,
                        entries,
                    },
                ));
            }
            _ => return None,
        }
    }
    Some((edit, version))
}

fn level(b: u8) -> Option<usize> {
    ((b as usize) < LEVELS).then_some(b as usize)
}

/// The open manifest file, appended to by flushes and compactions.
pub(crate) struct Manifest {
    /// Path of the live manifest.
    path: PathBuf,
    /// The file.
    file: File,
    /// Append offset.
    pos: u64,
}

fn current_path(dir: &Path) -> PathBuf {
    dir.join("CURRENT")
}

/// File name of manifest `id`.
pub(crate) fn manifest_name(id: u64) -> String {
    format!("MANIFEST-{id:06}")
}

impl Manifest {
    /// Reads the live state; `None` when the directory holds no store (no CURRENT).
    pub(crate) fn load(dir: &Path) -> Result<Option<(ManifestState, String)>> {
        let current = current_path(dir);
        let name = match std::fs::read_to_string(&current) {
            Ok(s) => s.trim_end().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&current, e)),
        };
        if !name.starts_with("MANIFEST-") || name.contains('/') {
            return Err(Error::corruption(
                &current,
                format!("CURRENT names {name:?}, not a manifest"),
            ));
        }
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).at(&path)?;
        let records = parse_records(&bytes);
        if let Some(tail) = &records.tail_error {
            tracing::warn!(path = %path.display(), "manifest has a torn or corrupt tail, ignoring the last edit: {tail}");
        }
        let mut state = ManifestState {
            levels: vec![Vec::new(); LEVELS],
            ..Default::default()
        };
        for (i, payload) in records.payloads.iter().enumerate() {
            let (edit, version) = decode_edit(payload)
                .ok_or_else(|| Error::corruption(&path, format!("malformed edit #{i}")))?;
            match (i, version) {
                (0, Some(v)) if v != FORMAT_VERSION => {
                    return Err(Error::FormatVersion {
                        path: dir.to_path_buf(),
                        found: v,
                        expected: FORMAT_VERSION,
                    });
                }
                (0, None) => {
                    return Err(Error::corruption(
                        &path,
                        "first edit carries no format version",
                    ));
                }
                _ => {}
            }
            state.apply(&edit);
        }
        if records.payloads.is_empty() {
            return Err(Error::corruption(&path, "manifest holds no edits"));
        }
        // Lookups in levels >= 1 probe one table per level: overlapping tables there
        // would hide data. Refuse the state rather than answer wrongly.
        if let Some(overlap) = find_overlap(&state.levels) {
            return Err(Error::corruption(
                &path,
                format!("{overlap}; restore the store from a replica or backup"),
            ));
        }
        Ok(Some((state, name)))
    }

    /// Writes a new manifest `id` holding `state` as one edit, and points CURRENT at it.
    pub(crate) fn create(dir: &Path, id: u64, state: &ManifestState) -> Result<Manifest> {
        let path = dir.join(manifest_name(id));
        let snapshot = VersionEdit {
            log_number: Some(state.log_number),
            next_file_id: Some(state.next_file_id),
            last_seq: Some(state.last_seq),
            added: state
                .levels
                .iter()
                .enumerate()
                .flat_map(|(l, ts)| ts.iter().map(move |t| (l, t.clone())))
                .collect(),
            removed: Vec::new(),
        };
        let record = frame(&encode_edit(&snapshot, true));
        let tmp = dir.join("CURRENT.tmp");
        let prepared = (|| {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .at(&path)?;
            file.write_all_at(&record, 0).at(&path)?;
            file.sync_all().at(&path)?;
            std::fs::write(&tmp, format!("{}\n", manifest_name(id))).at(&tmp)?;
            File::open(&tmp).and_then(|f| f.sync_all()).at(&tmp)?;
            Ok(file)
        })();
        let file = match prepared {
            Ok(file) => file,
            Err(e) => {
                // Nothing points at the new files yet: remove them (disk full).
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, current_path(dir)).at(&tmp)?;
        sync_dir(dir)?;
        Ok(Manifest {
            path,
            file,
            pos: record.len() as u64,
        })
    }

    /// False only when CURRENT surely names another manifest than `id`: after a failed
    /// [`Manifest::create`], the files the new manifest lists may then be removed.
    pub(crate) fn may_be_current(dir: &Path, id: u64) -> bool {
        match std::fs::read_to_string(current_path(dir)) {
            Ok(name) => name.trim_end() == manifest_name(id),
            Err(_) => true,
        }
    }

    /// Appends and fsyncs one edit: when this returns Ok the edit is committed.
    pub(crate) fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        let record = frame(&encode_edit(edit, false));
        if let Err(e) = self
            .file
            .write_all_at(&record, self.pos)
            .and_then(|_| self.file.sync_data())
        {
            // Undo a partial append; the edit is not committed.
            let _ = self.file.set_len(self.pos);
            return Err(Error::io(&self.path, e));
        }
        self.pos += record.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: u64, smallest: &str, largest: &str) -> TableMeta {
        TableMeta {
            id,
            size_bytes: 100,
            smallest: smallest.as_bytes().to_vec(),
            largest: largest.as_bytes().to_vec(),
            seq_min: 1,
            seq_max: id,
            entries: 1,
        }
    }

    fn state(levels: Vec<Vec<TableMeta>>) -> ManifestState {
        let mut levels = levels;
        levels.resize(LEVELS, Vec::new());
        ManifestState {
            log_number: 1,
            next_file_id: 100,
            last_seq: 10,
            levels,
        }
    }

    #[test]
    fn overlapping_tables_in_a_level_below_0_are_corruption_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        // Overlap in level 0 is normal.
        let l0 = vec![meta(7, "a", "m"), meta(8, "c", "z")];
        Manifest::create(dir.path(), 1, &state(vec![l0.clone()])).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap().unwrap().0.levels[0], l0);

        // Level 2: 000012 ["f", "k"] and 000011 ["a", "f"] share key "f".
        let l2 = vec![meta(12, "f", "k"), meta(11, "a", "f"), meta(13, "x", "z")];
        Manifest::create(dir.path(), 2, &state(vec![vec![], vec![], l2])).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err();
        let Error::Corruption { path, detail } = &err else {
            panic!("not a corruption error: {err}");
        };
        assert_eq!(path.file_name().unwrap(), "MANIFEST-000002");
        assert!(
            detail.contains("000011.sst")
                && detail.contains("000012.sst")
                && detail.contains("level 2"),
            "{err}"
        );

        // A table whose smallest key is after its largest.
        let bad = vec![meta(21, "q", "p")];
        Manifest::create(dir.path(), 3, &state(vec![vec![], bad])).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("000021.sst"), "{err}");
    }
}
