//! Errors of the data store.
//!
//! Why a module: every failure a caller can see is named here with the file it concerns
//! and what to do. A record that fails its checksum is [`Error::Corrupt`], never bytes
//! served as if they were right: the layer above reads another copy and repairs this one.

use std::path::{Path, PathBuf};

use crate::ObjectId;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong in a data node's store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error on a named file or directory (disk full,
    /// permissions...). A failed append is cut away again: it leaves no trace.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the operation touched.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Stored bytes fail their checksum or do not parse. The object is not served;
    /// read another copy (replica or erasure-coded shards) and repair this one.
    #[error("corrupt data in {path} at byte {offset}: {detail}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the damaged record (or structure) starts.
        offset: u64,
        /// What check failed.
        detail: String,
    },
    /// The object-mapping table (the `lsm` store under `mapping/`) failed.
    #[error("object-mapping table: {0}")]
    Mapping(#[from] lsm::Error),
    /// The caller passed something the store refuses (an object over the size limit,
    /// a range outside the object, bad options...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The node has no room under `capacity_bytes_max` (garbage collection may free
    /// some: deleted objects' bytes come back once their files are compacted).
    #[error("data node full: {0}")]
    Full(String),
    /// An earlier fsync or append failed, so what the files hold is unknown; writes
    /// are refused (reads go on). Fix the disk and reopen the node.
    #[error(
        "writes are disabled after an earlier I/O error ({0}); fix the disk and reopen the node"
    )]
    WritesDisabled(String),
    /// The mapping names a data file that is not on disk (deleted by hand, or a lost
    /// disk): the object is gone from this node; restore it from another copy.
    #[error("object {id} maps to data file {path}, which is missing")]
    MissingFile {
        /// The object.
        id: ObjectId,
        /// The file the mapping names.
        path: PathBuf,
    },
    /// Too few data nodes answered (a cluster read or write): retry later.
    #[error("data nodes unavailable: {0}")]
    Unavailable(String),
    /// The node is shutting down; the operation did not run.
    #[error("the data node is shutting down")]
    Closed,
}

impl Error {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Corruption in `path` at `offset`.
    pub(crate) fn corrupt(path: &Path, offset: u64, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            offset,
            detail: detail.into(),
        }
    }
}

/// Attaches a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`Error::Io`] naming `path`.
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
