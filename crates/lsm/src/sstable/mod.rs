//! SSTables (Sorted-String Tables): step 3 of the book's write path and the last stop of
//! its read path.
//!
//! Why it exists: a flushed memtable becomes an immutable file of sorted entries that is
//! never modified, only merged by compaction and then deleted.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! data block*   prefix-compressed entries + restart array (see `data_block`),
//!               ~block_size_bytes each
//! index block   per data block: last internal key (key, seq), offset, size
//! bloom block   sketch::BloomFilter over the table's user keys
//! meta block    entry count, tombstones, min/max seq, smallest/largest user key
//! footer        index/bloom/meta handles, format version, magic, crc32c (52 bytes)
//! ```
//!
//! Every block ends with `u8 compression | u32 crc32c(payload + compression byte)`, so
//! every byte read from disk is verified before use; a mismatch is an error naming the
//! file and offset, never wrong data. A data block read from disk is also checked for
//! key order against the index before it is used or cached (see `table`).

mod block;
mod builder;
mod data_block;
mod index;
mod table;

pub(crate) use block::table_path;
pub(crate) use builder::TableBuilder;
pub(crate) use table::{Table, TableIter};

/// SSTable format version written in every footer: 2 since data blocks have restart
/// points and prefix-compressed keys. Tables of version 1 (plain entries) are still read.
pub(crate) const TABLE_FORMAT_VERSION: u32 = 2;
/// Magic number at the end of every SSTable ("HSLSMSST").
pub(crate) const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"HSLSMSST");

/// Summary of a table, recorded in the manifest and in the table's meta block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableMeta {
    /// File number.
    pub id: u64,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Smallest user key.
    pub smallest: Vec<u8>,
    /// Largest user key.
    pub largest: Vec<u8>,
    /// Smallest sequence number inside.
    pub seq_min: u64,
    /// Largest sequence number inside.
    pub seq_max: u64,
    /// Number of entries (all versions).
    pub entries: u64,
}
