//! The Kafka v2 record batch header: the unit the log stores, indexes and serves.
//!
//! The log never looks inside a batch on the hot path: it parses this fixed 61-byte
//! header, checks the CRC-32C (which covers everything from `attributes` to the end), and
//! rewrites `baseOffset` (which the CRC deliberately does not cover) to assign offsets.
//! That is what lets the bytes a producer sent be the bytes a consumer receives.
//!
//! Layout (big-endian):
//! ```text
//! 0  baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8
//! 17 crc u32 | 21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64
//! 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32
//! 57 recordsCount i32 | 61 records...
//! ```

use super::LogError;

/// Bytes before `batchLength`'s payload: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// The fixed header size of a v2 batch, up to and including `recordsCount`.
pub const HEADER_BYTES: usize = 61;
/// Where the CRC-covered part starts (`attributes`).
pub const CRC_START: usize = 21;
/// The smallest legal `batchLength` (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_BYTES - LOG_OVERHEAD) as i32;

const MAGIC_V2: i8 = 2;
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The compression codec of a batch's records (attributes bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Records stored as is.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Snappy, in the xerial framing Kafka's Java client writes (raw blocks also read).
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The attributes value of this codec.
    pub fn code(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    fn from_code(code: i16) -> Option<Compression> {
        Some(match code {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }
}

/// A parsed v2 record batch header (see the module doc for the layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (assigned by the log on append).
    pub base_offset: i64,
    /// Bytes after this field to the end of the batch.
    pub batch_length: i32,
    /// Leader epoch of the appending leader.
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// CRC-32C over `attributes` to the end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads `(baseOffset, batchLength)` from the first 12 bytes (callers check the length).
pub(crate) fn offset_and_length(bytes: &[u8]) -> (i64, i32) {
    (be_i64(bytes, 0), be_i32(bytes, 8))
}

/// Overwrites `baseOffset` in place (not covered by the CRC, so the batch stays valid).
pub fn set_base_offset(bytes: &mut [u8], base_offset: i64) {
    bytes[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites `partitionLeaderEpoch` (bytes 12..16, outside the CRC, like the base offset):
/// the leader stamps its epoch on what it appends (see `cluster::epochs`).
pub fn set_partition_leader_epoch(bytes: &mut [u8], epoch: i32) {
    bytes[12..16].copy_from_slice(&epoch.to_be_bytes());
}

impl BatchHeader {
    /// Parses the header from the first [`HEADER_BYTES`] of `bytes` (the records need not
    /// be there). Checks magic == 2, a sane `batchLength`, a known codec and non-negative
    /// counts; use [`BatchHeader::verify_crc`] for the content.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, LogError> {
        if bytes.len() < HEADER_BYTES {
            return Err(LogError::InvalidBatch(format!(
                "{} bytes is shorter than a v2 batch header ({HEADER_BYTES} bytes)",
                bytes.len()
            )));
        }
        let h = BatchHeader {
            base_offset: be_i64(bytes, 0),
            batch_length: be_i32(bytes, 8),
            partition_leader_epoch: be_i32(bytes, 12),
            magic: bytes[16] as i8,
            crc: be_i32(bytes, 17) as u32,
            attributes: be_i16(bytes, 21),
            last_offset_delta: be_i32(bytes, 23),
            base_timestamp: be_i64(bytes, 27),
            max_timestamp: be_i64(bytes, 35),
            producer_id: be_i64(bytes, 43),
            producer_epoch: be_i16(bytes, 51),
            base_sequence: be_i32(bytes, 53),
            records_count: be_i32(bytes, 57),
        };
        if h.magic != MAGIC_V2 {
            return Err(LogError::InvalidBatch(format!(
                "magic {} is not 2: only v2 record batches (Kafka 0.11+) are supported",
                h.magic
            )));
        }
        if h.batch_length < MIN_BATCH_LENGTH {
            return Err(LogError::InvalidBatch(format!(
                "batchLength {} is below the header size {MIN_BATCH_LENGTH}",
                h.batch_length
            )));
        }
        if Compression::from_code(h.attributes & COMPRESSION_MASK).is_none() {
            return Err(LogError::InvalidBatch(format!(
                "unknown compression codec {}",
                h.attributes & COMPRESSION_MASK
            )));
        }
        if h.last_offset_delta < 0 || h.records_count < 0 {
            return Err(LogError::InvalidBatch(format!(
                "negative lastOffsetDelta {} or recordsCount {}",
                h.last_offset_delta, h.records_count
            )));
        }
        Ok(h)
    }

    /// Checks that `bytes` is exactly one batch (`12 + batchLength` bytes) and that its
    /// CRC-32C over `attributes..end` matches the stored one.
    pub fn verify_crc(bytes: &[u8]) -> Result<(), LogError> {
        if bytes.len() < HEADER_BYTES {
            return Err(LogError::InvalidBatch(format!(
                "{} bytes is shorter than a v2 batch header",
                bytes.len()
            )));
        }
        let (_, len) = offset_and_length(bytes);
        if i64::from(len) + LOG_OVERHEAD as i64 != bytes.len() as i64 {
            return Err(LogError::InvalidBatch(format!(
                "batchLength {len} does not match the {} bytes received",
                bytes.len()
            )));
        }
        let stored = be_i32(bytes, 17) as u32;
        if crc32c::crc32c(&bytes[CRC_START..]) != stored {
            return Err(LogError::CrcMismatch);
        }
        Ok(())
    }

    /// The compression codec of the records.
    pub fn compression(&self) -> Compression {
        // parse() rejected unknown codecs.
        Compression::from_code(self.attributes & COMPRESSION_MASK).unwrap_or(Compression::None)
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Whether timestamps are LogAppendTime (set by the broker) rather than CreateTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Offset of the last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Total bytes of the batch on disk / on the wire: `12 + batch_length`.
    pub fn total_bytes(&self) -> u64 {
        LOG_OVERHEAD as u64 + self.batch_length.max(0) as u64
    }
}
