//! Errors of the time-series database.
//!
//! Why a module: every refusal a client can see is named here with the limit or
//! rule it broke, so a remote-write or scrape layer can map it to the protocol's
//! error (Prometheus answers `400 bad_data` for the input errors, `500` for the
//! storage ones) without parsing strings.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*` (or a metric name not
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`).
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// The metric name (label `__name__`) is not `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// A series has no `__name__` label.
    #[error("series has no metric name (label __name__)")]
    MissingMetricName,
    /// The same label name twice in one series.
    #[error("duplicate label name {0:?} in one series")]
    DuplicateLabelName(String),
    /// More labels on one series than `labels_per_series_max`.
    #[error("series has {count} labels, more than the limit of {limit}")]
    TooManyLabels {
        /// Labels on the series.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A label name longer than `label_name_bytes_max`.
    #[error("label name of {len} bytes exceeds the limit of {limit} bytes")]
    LabelNameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A label value longer than `label_value_bytes_max`.
    #[error("value of label {name:?} has {len} bytes, more than the limit of {limit} bytes")]
    LabelValueTooLong {
        /// The label.
        name: String,
        /// Its value's length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Creating the request's new series would pass `series_max`.
    #[error("too many series: {active} active, the request adds {new}, limit {limit}")]
    TooManySeries {
        /// Series in the head now.
        active: usize,
        /// New series the request brings.
        new: usize,
        /// The limit.
        limit: usize,
    },
    /// More samples in one append than `samples_per_request_max`.
    #[error("request has {count} samples, more than the limit of {limit}")]
    TooManySamples {
        /// Samples in the request.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A sample older than what the head still accepts: before the
    /// out-of-order window or inside a range already cut to a block.
    #[error("sample at {t_ms} ms is out of bounds: the oldest time accepted is {min_ms} ms")]
    OutOfBounds {
        /// The sample's timestamp.
        t_ms: i64,
        /// The oldest timestamp accepted now.
        min_ms: i64,
    },
    /// A sample further in the future than `future_tolerance_ms`.
    #[error("sample at {t_ms} ms is too far in the future (now {now_ms} ms)")]
    TooFarInFuture {
        /// The sample's timestamp.
        t_ms: i64,
        /// The clock when it came.
        now_ms: i64,
    },
    /// A second, different value for a timestamp a series already has.
    #[error("duplicate sample for timestamp {t_ms} ms with a different value")]
    DuplicateSample {
        /// The timestamp.
        t_ms: i64,
    },
    /// A regular expression of a matcher does not compile.
    #[error("invalid regular expression {pattern:?}: {reason}")]
    BadRegex {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// A query would return more samples than `query_samples_max`.
    #[error("query would return more than {limit} samples")]
    QueryTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Invalid options or arguments.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An operating-system I/O error on a named file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Stored bytes fail their checksum or do not parse.
    #[error("corrupt data in {path}: {detail}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What check failed.
        detail: String,
    },
    /// An earlier WAL write or fsync failed: what is on disk is unknown, so
    /// writes are refused until the database is reopened.
    #[error("writes are disabled after an earlier I/O error ({0}); fix the disk and reopen")]
    WritesDisabled(String),
    /// The database is closed.
    #[error("the database is closed")]
    Closed,
    /// The cold-storage object store failed or answered unexpectedly.
    #[error("cold storage: {0}")]
    Cold(String),
}

impl Error {
    /// True for errors caused by the request (Prometheus's `bad_data`, HTTP 400),
    /// false for the server's own failures (HTTP 500).
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            Error::Io { .. }
                | Error::Corrupt { .. }
                | Error::WritesDisabled(_)
                | Error::Closed
                | Error::Cold(_)
        )
    }
}

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    /// The error as [`Error::Io`] on `path`.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// A [`Error::Corrupt`] on `path`.
pub(crate) fn corrupt(path: &std::path::Path, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}
