//! Errors of the storage engine.
//!
//! Why a module: every failure a caller can see is named here with the file it concerns
//! and what to do about it. Corruption is always an error, never silently wrong data.

use std::path::{Path, PathBuf};

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong in the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error on a named file (disk full, permissions, ...). The
    /// message adds what to do for the errors an operator can fix (full disk, file size
    /// limit, permissions). A failed write leaves the store readable and consistent.
    #[error("I/O error on {path}: {source}{}", io_advice(.source))]
    Io {
        /// The file or directory the operation touched.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's bytes fail their checksum or do not parse. Restore the file from a
    /// replica or backup; the engine refuses to guess.
    #[error("corruption in {path}: {detail}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// What check failed, and where.
        detail: String,
    },
    /// The directory holds no store and `create_if_missing` is off.
    #[error("no store at {0} (no CURRENT file); set create_if_missing to create one")]
    NotFound(PathBuf),
    /// The store was written by an incompatible format version.
    #[error("store at {path} has format version {found}, this build reads version {expected}")]
    FormatVersion {
        /// The store directory.
        path: PathBuf,
        /// The version found on disk.
        found: u32,
        /// The version this build understands.
        expected: u32,
    },
    /// Another process (or another `Db` in this process) holds the store's lock.
    #[error("store at {0} is locked by another process; close it first")]
    Locked(PathBuf),
    /// The caller passed a value the engine refuses (too large, bad option...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Writes are refused after an earlier unrecoverable I/O error (for example a
    /// failed fsync); reads still work. Fix the disk and reopen the store.
    #[error(
        "writes are disabled after an earlier I/O error ({0}); fix the disk and reopen the store"
    )]
    WritesDisabled(String),
    /// A background flush or compaction keeps failing, and the write cannot proceed
    /// without it (memory is bounded).
    #[error(
        "background work is failing ({0}); free disk space or fix the error, writes resume when it succeeds"
    )]
    Background(String),
}

impl Error {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A corruption error on `path`.
    pub(crate) fn corruption(path: &Path, detail: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// What the operator can do about an I/O error, as a suffix of the message.
fn io_advice(err: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            "; the disk is full (or over quota): free space on it, then retry \
             (reads still work; reopen the store if writes stay disabled)"
        }
        ErrorKind::FileTooLarge => {
            "; the file reached the file size limit (ulimit -f) or the file system's \
             largest file: raise the limit or lower memtable_size_bytes / \
             table_size_bytes, then retry (reads still work)"
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            "; check the file's permissions and that the file system is mounted read-write"
        }
        _ => "",
    }
}

/// Adds the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`Error::Io`] naming `path`.
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
