//! Reading an SSTable: point lookups through the bloom filter and block index, and
//! ordered iteration.
//!
//! Why a module: the read path's last stop. The index and the bloom filter are loaded in
//! memory when the table opens; data blocks are read on demand through the shared block
//! cache, each one verified by its checksum.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sketch::{BloomFilter, KeyHash};

use super::block::{BlockHandle, read_block};
use super::{TABLE_FORMAT_VERSION, TABLE_MAGIC, TableMeta};
use crate::cache::{Block, BlockCache};
use crate::codec::{Entry, Reader, cmp_internal, decode_entry};
use crate::error::{Error, IoContext, Result};

/// Footer length: 3 handles × 12 + version 4 + magic 8 + crc 4.
const FOOTER_BYTES: u64 = 52;

/// One index entry: the last internal key of a data block and where the block is.
struct IndexEntry {
    /// Last user key in the block.
    key: Vec<u8>,
    /// Sequence number of that last entry.
    seq: u64,
    /// Block location.
    handle: BlockHandle,
}

/// An open SSTable.
pub(crate) struct Table {
    /// File path, named in every error.
    pub path: PathBuf,
    /// The open file (kept open even after compaction deletes it, while readers hold it).
    file: File,
    /// Block index, in order.
    index: Vec<IndexEntry>,
    /// Bloom filter over user keys.
    bloom: BloomFilter,
    /// Summary (from the meta block).
    pub meta: TableMeta,
    /// Shared block cache.
    cache: Arc<BlockCache>,
}

fn corrupt(path: &Path, what: &str) -> Error {
    Error::corruption(path, what.to_string())
}

impl Table {
    /// Opens table `id`, verifying the footer, index, bloom and meta blocks.
    pub(crate) fn open(path: PathBuf, id: u64, cache: Arc<BlockCache>) -> Result<Table> {
        let file = File::open(&path).at(&path)?;
        let size = file.metadata().at(&path)?.len();
        if size < FOOTER_BYTES {
            return Err(corrupt(
                &path,
                "file is shorter than the footer (truncated table)",
            ));
        }
        let mut footer = [0u8; FOOTER_BYTES as usize];
        file.read_exact_at(&mut footer, size - FOOTER_BYTES)
            .at(&path)?;
        let (body, crc) = footer.split_at(48);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(corrupt(&path, "footer checksum mismatch"));
        }
        let mut r = Reader::new(body);
        let mut handle = || BlockHandle {
            offset: r.u64().unwrap_or(0),
            size: r.u32().unwrap_or(0),
        };
        let (index_h, bloom_h, meta_h) = (handle(), handle(), handle());
        let mut r = Reader::new(&body[36..]);
        let version = r.u32().unwrap_or(0);
        let magic = r.u64().unwrap_or(0);
        if magic != TABLE_MAGIC {
            return Err(corrupt(&path, "bad magic: not an SSTable of this engine"));
        }
        if version != TABLE_FORMAT_VERSION {
            return Err(corrupt(
                &path,
                &format!("table format version {version}, expected {TABLE_FORMAT_VERSION}"),
            ));
        }
        let index = parse_index(&read_block(&file, &path, index_h)?)
            .ok_or_else(|| corrupt(&path, "malformed index block"))?;
        let bloom = BloomFilter::from_bytes(&read_block(&file, &path, bloom_h)?)
            .map_err(|e| corrupt(&path, &format!("bloom block: {e}")))?;
        let meta = parse_meta(&read_block(&file, &path, meta_h)?, id, size)
            .ok_or_else(|| corrupt(&path, "malformed meta block"))?;
        Ok(Table {
            path,
            file,
            index,
            bloom,
            meta,
            cache,
        })
    }

    /// Bloom check: false means the key is surely not in this table.
    pub(crate) fn may_contain(&self, hash: KeyHash) -> bool {
        self.bloom.may_contain_hash(hash)
    }

    /// Reads data block `i`, through the cache when `fill_cache`.
    fn block(&self, i: usize, fill_cache: bool) -> Result<Block> {
        let handle = self.index[i].handle;
        if let Some(b) = self.cache.get(self.meta.id, handle.offset) {
            return Ok(b);
        }
        let block = Arc::new(read_block(&self.file, &self.path, handle)?);
        if fill_cache {
            self.cache
                .insert(self.meta.id, handle.offset, block.clone());
        }
        Ok(block)
    }

    /// Index of the first block whose last internal key is >= (key, seq).
    fn seek_block(&self, key: &[u8], seq: u64) -> usize {
        self.index
            .partition_point(|e| cmp_internal(&e.key, e.seq, key, seq).is_lt())
    }

    /// The newest version of `key` with sequence number <= `snapshot` (no bloom check).
    pub(crate) fn get(&self, key: &[u8], snapshot: u64) -> Result<Option<Entry>> {
        let i = self.seek_block(key, snapshot);
        if i == self.index.len() {
            return Ok(None);
        }
        let block = self.block(i, true)?;
        let mut r = Reader::new(&block);
        while !r.is_empty() {
            let e = decode_entry(&mut r).ok_or_else(|| self.bad_block(i))?;
            if cmp_internal(e.key, e.seq, key, snapshot).is_ge() {
                return Ok((e.key == key).then(|| e.to_entry()));
            }
        }
        Ok(None)
    }

    fn bad_block(&self, i: usize) -> Error {
        corrupt(
            &self.path,
            &format!(
                "malformed entry in block at offset {}",
                self.index[i].handle.offset
            ),
        )
    }
}

fn parse_index(bytes: &[u8]) -> Option<Vec<IndexEntry>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let key = r.len_prefixed()?.to_vec();
        let seq = r.u64()?;
        let handle = BlockHandle {
            offset: r.u64()?,
            size: r.u32()?,
        };
        out.push(IndexEntry { key, seq, handle });
    }
    Some(out)
}

fn parse_meta(bytes: &[u8], id: u64, size_bytes: u64) -> Option<TableMeta> {
    let mut r = Reader::new(bytes);
    let entries = r.varint()?;
    let _tombstones = r.varint()?;
    let seq_min = r.varint()?;
    let seq_max = r.varint()?;
    let smallest = r.len_prefixed()?.to_vec();
    let largest = r.len_prefixed()?.to_vec();
    Some(TableMeta {
        id,
        size_bytes,
        smallest,
        largest,
        seq_min,
        seq_max,
        entries,
    })
}

/// Ordered iteration over a table's entries (all versions), owning its position.
pub(crate) struct TableIter {
    /// The table.
    table: Arc<Table>,
    /// Index of the current block.
    block_index: usize,
    /// The current block and the read offset inside it.
    block: Option<(Block, usize)>,
    /// Whether blocks read by this iterator go into the cache (off for compaction).
    fill_cache: bool,
    /// Until the first block is loaded: entries below this key are skipped there
    /// without copying them.
    seek_key: Option<Vec<u8>>,
}

impl TableIter {
    /// Positions at the first entry >= (key, seq_max) i.e. the newest version of `key`.
    pub(crate) fn seek(table: Arc<Table>, key: &[u8], fill_cache: bool) -> TableIter {
        let block_index = table.seek_block(key, u64::MAX >> 8);
        TableIter {
            table,
            block_index,
            block: None,
            fill_cache,
            seek_key: Some(key.to_vec()),
        }
    }

    /// The next entry in internal order.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>> {
        loop {
            if let Some((block, pos)) = &mut self.block
                && *pos < block.len()
            {
                let mut r = Reader::new(&block[*pos..]);
                let before = r.buf.len();
                let e = decode_entry(&mut r)
                    .ok_or_else(|| self.table.bad_block(self.block_index - 1))?;
                *pos += before - r.buf.len();
                return Ok(Some(e.to_entry()));
            }
            if self.block_index >= self.table.index.len() {
                return Ok(None);
            }
            let block = self.table.block(self.block_index, self.fill_cache)?;
            self.block_index += 1;
            let mut pos = 0;
            if let Some(seek) = self.seek_key.take() {
                let mut r = Reader::new(&block);
                while !r.is_empty() {
                    let before = r.buf.len();
                    let e = decode_entry(&mut r)
                        .ok_or_else(|| self.table.bad_block(self.block_index - 1))?;
                    if e.key >= seek.as_slice() {
                        break;
                    }
                    pos += before - r.buf.len();
                }
            }
            self.block = Some((block, pos));
        }
    }
}
