//! The node's table of data files and its cache of open descriptors.
//!
//! Why a module: reads, appends, the group commit and garbage collection all need to
//! know which files exist, their state and how much of each is live, and reads need a
//! descriptor without opening a file per read or holding every file open. The table
//! is rebuilt from the mapping on open, so its counters never drift across restarts.
//!
//! Descriptors: an LRU cache of at most `open_files_max` read-only descriptors. A read
//! clones the cached `Arc<File>` and reads without a lock; a descriptor evicted or a
//! file deleted meanwhile stays readable until that read drops it (a deleted file's
//! bytes live on until its last descriptor closes), so in-flight reads may briefly
//! hold a few descriptors more than the cap.

use std::collections::BTreeMap;
use std::fs::File;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::{Mutex, RwLock};

use crate::datafile::{FileInfo, FileState, file_name};
use crate::error::{Error, Result};
use crate::mapping::Delta;

/// The data files of a node.
pub(crate) struct Files {
    /// The `data/` directory.
    dir: PathBuf,
    /// Every data file on disk, by number.
    table: RwLock<BTreeMap<u64, FileInfo>>,
    /// Open read-only descriptors, least recently used evicted first.
    fds: Mutex<LruCache<u64, Arc<File>>>,
}

impl Files {
    /// A table over `files` in `dir`, caching at most `open_files_max` descriptors.
    pub(crate) fn new(dir: PathBuf, files: BTreeMap<u64, FileInfo>, open_files_max: usize) -> Self {
        let cap = NonZeroUsize::new(open_files_max).unwrap_or(NonZeroUsize::MIN);
        Self {
            dir,
            table: RwLock::new(files),
            fds: Mutex::new(LruCache::new(cap)),
        }
    }

    /// The path of file `file_id`.
    pub(crate) fn path(&self, file_id: u64) -> PathBuf {
        self.dir.join(file_name(file_id))
    }

    /// The `data/` directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A descriptor to read file `file_id`, or `None` when the file is not in the table
    /// or is gone from disk (garbage collection deleted it after moving its objects:
    /// the caller looks the object up again).
    pub(crate) fn reader(&self, file_id: u64) -> Result<Option<Arc<File>>> {
        if let Some(fd) = self.fds.lock().get(&file_id) {
            return Ok(Some(fd.clone()));
        }
        if !self.table.read().contains_key(&file_id) {
            return Ok(None);
        }
        let path = self.path(file_id);
        let fd = match File::open(&path) {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        // Cache it only while the file is still in the table (a deletion may have
        // raced with the open; the descriptor still serves this read).
        let table = self.table.read();
        if table.contains_key(&file_id) {
            self.fds.lock().put(file_id, fd.clone());
        }
        Ok(Some(fd))
    }

    /// Adds a new file (the new read-write file, or one found on open).
    pub(crate) fn insert(&self, info: FileInfo) {
        self.table.write().insert(info.file_id, info);
    }

    /// Removes file `file_id` from the table and the descriptor cache.
    pub(crate) fn remove(&self, file_id: u64) -> Option<FileInfo> {
        let removed = self.table.write().remove(&file_id);
        self.fds.lock().pop(&file_id);
        removed
    }

    /// The entry of file `file_id`.
    pub(crate) fn get(&self, file_id: u64) -> Option<FileInfo> {
        self.table.read().get(&file_id).copied()
    }

    /// Every file, by number.
    pub(crate) fn snapshot(&self) -> Vec<FileInfo> {
        self.table.read().values().copied().collect()
    }

    /// Sets the state and size of file `file_id`.
    pub(crate) fn set(&self, file_id: u64, state: FileState, size_bytes: u64) {
        if let Some(f) = self.table.write().get_mut(&file_id) {
            f.state = state;
            f.size_bytes = size_bytes;
        }
    }

    /// Applies the live-byte changes of a committed group.
    pub(crate) fn apply<'a>(&self, deltas: impl IntoIterator<Item = (&'a u64, &'a Delta)>) {
        let mut table = self.table.write();
        for (file_id, d) in deltas {
            if let Some(f) = table.get_mut(file_id) {
                f.live_bytes = f.live_bytes.saturating_add_signed(d.bytes);
                f.live_objects = f.live_objects.saturating_add_signed(d.objects);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(file_id: u64) -> FileInfo {
        FileInfo {
            file_id,
            state: FileState::Sealed,
            size_bytes: 100,
            live_bytes: 50,
            live_objects: 2,
        }
    }

    #[test]
    fn descriptors_are_bounded_and_forgotten_with_their_file() {
        let dir = tempfile::tempdir().unwrap();
        for id in 1..=3 {
            std::fs::write(dir.path().join(file_name(id)), b"x").unwrap();
        }
        let files = Files::new(
            dir.path().to_path_buf(),
            (1..=3).map(|id| (id, info(id))).collect(),
            2,
        );
        for id in 1..=3 {
            assert!(files.reader(id).unwrap().is_some());
        }
        assert_eq!(files.fds.lock().len(), 2, "at most open_files_max cached");
        assert!(files.reader(9).unwrap().is_none(), "not in the table");
        files.remove(3);
        assert!(files.reader(3).unwrap().is_none());
        std::fs::remove_file(dir.path().join(file_name(1))).unwrap();
        files.fds.lock().clear();
        assert!(
            files.reader(1).unwrap().is_none(),
            "gone from disk: look again"
        );
        files.apply([(
            &2,
            &Delta {
                bytes: -50,
                objects: -2,
            },
        )]);
        assert_eq!(
            (
                files.get(2).unwrap().live_bytes,
                files.get(2).unwrap().live_objects
            ),
            (0, 0)
        );
    }
}
