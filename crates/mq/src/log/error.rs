//! The one error type of the log, so the broker can map each case to a Kafka error code
//! (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, OFFSET_OUT_OF_RANGE, KAFKA_STORAGE_ERROR) and an
//! operator reading a log line knows which file to look at and what to do.

use std::path::PathBuf;

/// Everything that can go wrong in [`super::PartitionLog`] and [`super::BatchHeader`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Data read back from disk is damaged: it is never served. Names the file and byte.
    #[error(
        "corrupt log data in {} at byte {position}: {reason}. The batch is not served; \
         restore the partition from a replica, or (losing data from there on) truncate the \
         segment at that byte",
        file.display()
    )]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte position of the damaged batch in that file.
        position: u64,
        /// What check failed.
        reason: String,
    },
    /// A client's batch does not match its CRC-32C (damaged in transit): resend it.
    #[error("record batch CRC-32C mismatch: the batch was damaged in transit; resend it")]
    CrcMismatch,
    /// A client's batch is not a well-formed v2 record batch.
    #[error("invalid record batch: {0}")]
    InvalidBatch(String),
    /// A client's batch is larger than `LogConfig::batch_bytes_max`.
    #[error(
        "record batch of {size_bytes} bytes exceeds the limit of {max_bytes} bytes \
         (batch_bytes_max, Kafka's message.max.bytes); send smaller batches"
    )]
    BatchTooLarge {
        /// Size of the batch sent.
        size_bytes: usize,
        /// The configured limit.
        max_bytes: usize,
    },
    /// The requested offset is not in `[start_offset, end_offset]`.
    #[error("offset {offset} is out of range: the log holds [{start_offset}, {end_offset})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// The log start offset.
        start_offset: i64,
        /// The log end offset.
        end_offset: i64,
    },
    /// A replicated batch does not continue the log (its base offset is below the end).
    #[error(
        "replicated batch starts at offset {base_offset} but the log ends at {end_offset}; \
         truncate the log to the batch's base offset first"
    )]
    NonContiguous {
        /// The batch's base offset.
        base_offset: i64,
        /// The log end offset.
        end_offset: i64,
    },
    /// The configuration cannot work (a zero segment size, a limit above what indexes hold).
    #[error("invalid log config: {0}")]
    Config(String),
    /// An operating-system I/O error, with what was being done and on which file.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What the log was doing ("writing", "fsync of", ...).
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    /// A closure for `map_err` that wraps an I/O error with context and path.
    pub(crate) fn io(
        context: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.to_path_buf();
        move |source| LogError::Io {
            context,
            path,
            source,
        }
    }
}
