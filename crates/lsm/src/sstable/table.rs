//! Reading an SSTable: point lookups through the bloom filter and block index, and
//! ordered iteration.
//!
//! Why a module: the read path's last stop. The index and the bloom filter are loaded in
//! memory when the table opens; data blocks are read on demand through the shared block
//! cache, each one verified by its checksum.
//!
//! Lookups rely on order (a point read stops at the first entry at or after its key), so
//! the order is checked on both sides of the disk, as TigerBeetle does: the builder
//! asserts it when writing, and a reader re-checks it when a block comes off the disk,
//! before the block enters the cache — entries strictly increasing in internal order,
//! the first after the previous block's last, the last the one the index names. The
//! index itself is checked (ordered, blocks back to back) when the table opens. A block
//! whose checksum is right but whose order is wrong (a bug, a misdirected write) is
//! corruption naming the file, never a wrong answer.

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
        check_index(&index, &meta, index_h.offset).map_err(|what| corrupt(&path, &what))?;
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

    /// Reads data block `i` through the cache (filling it when `fill_cache`). A block
    /// from the disk is checked by [`Table::check_block`] before anyone uses it; that
    /// pass also finds the first entry at or after `seek`, returned as its offset (one
    /// pass over the block instead of two). `None` for a cached block: search it.
    fn block(
        &self,
        i: usize,
        fill_cache: bool,
        seek: Option<(&[u8], u64)>,
    ) -> Result<(Block, Option<usize>)> {
        let handle = self.index[i].handle;
        if let Some(b) = self.cache.get(self.meta.id, handle.offset) {
            return Ok((b, None));
        }
        let block = Arc::new(read_block(&self.file, &self.path, handle)?);
        let found = self.check_block(i, &block, seek)?;
        if fill_cache {
            self.cache
                .insert(self.meta.id, handle.offset, block.clone());
        }
        Ok((block, Some(found)))
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
        let seek = (key, snapshot);
        let (block, found) = self.block(i, true, Some(seek))?;
        let pos = match found {
            Some(pos) => pos,
            None => seek_in_block(&block, seek).ok_or_else(|| self.bad_block(i))?,
        };
        let mut r = Reader::new(&block[pos..]);
        if r.is_empty() {
            return Ok(None);
        }
        let e = decode_entry(&mut r).ok_or_else(|| self.bad_block(i))?;
        Ok((e.key == key).then(|| e.to_entry()))
    }

    /// Verifies what lookups rely on in data block `i`, fresh from the disk: every
    /// entry decodes, in strictly increasing internal order, the first after the previous
    /// block's last (as the index has it; for block 0, the table's smallest key), and
    /// the last is the one the index names. Returns the offset of the first entry at or
    /// after `seek` (the block's length when there is none, or no `seek`).
    fn check_block(&self, i: usize, block: &[u8], seek: Option<(&[u8], u64)>) -> Result<usize> {
        let out_of_order = |what: &str| {
            let offset = self.index[i].handle.offset;
            corrupt(&self.path, &format!("{what} in block at offset {offset}"))
        };
        let mut prev = i
            .checked_sub(1)
            .map(|p| (&self.index[p].key[..], self.index[p].seq));
        let mut found = None;
        let mut r = Reader::new(block);
        while !r.is_empty() {
            let at = block.len() - r.buf.len();
            let e = decode_entry(&mut r).ok_or_else(|| self.bad_block(i))?;
            match prev {
                Some((key, seq)) if !cmp_internal(key, seq, e.key, e.seq).is_lt() => {
                    return Err(out_of_order("entries out of order"));
                }
                None if e.key != self.meta.smallest => {
                    return Err(out_of_order("first key is not the table's smallest key"));
                }
                _ => {}
            }
            if found.is_none()
                && let Some((key, seq)) = seek
                && cmp_internal(e.key, e.seq, key, seq).is_ge()
            {
                found = Some(at);
            }
            prev = Some((e.key, e.seq));
        }
        let last = &self.index[i];
        if prev != Some((&last.key[..], last.seq)) {
            return Err(out_of_order("last entry differs from the index"));
        }
        Ok(found.unwrap_or(block.len()))
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

/// Offset of the first entry of a (checked) block at or after `seek` in internal order
/// (the block's length when none is); `None` on a malformed entry.
fn seek_in_block(block: &[u8], (key, seq): (&[u8], u64)) -> Option<usize> {
    let mut r = Reader::new(block);
    while !r.is_empty() {
        let at = block.len() - r.buf.len();
        let e = decode_entry(&mut r)?;
        if cmp_internal(e.key, e.seq, key, seq).is_ge() {
            return Some(at);
        }
    }
    Some(block.len())
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

/// Checks the index `open` relies on: entries strictly increasing in internal order,
/// data blocks back to back from offset 0 up to the index block, the last key the
/// table's largest. Returns what is wrong.
fn check_index(
    index: &[IndexEntry],
    meta: &TableMeta,
    index_offset: u64,
) -> std::result::Result<(), String> {
    let mut end = 0u64;
    for (i, e) in index.iter().enumerate() {
        if e.handle.offset != end {
            return Err(format!(
                "index entry {i}: block at offset {} should start at {end}",
                e.handle.offset
            ));
        }
        end = end.saturating_add(u64::from(e.handle.size));
        if i > 0 && !cmp_internal(&index[i - 1].key, index[i - 1].seq, &e.key, e.seq).is_lt() {
            return Err(format!("index entries {} and {i} out of order", i - 1));
        }
    }
    if end != index_offset {
        return Err(format!(
            "data blocks end at {end}, the index block starts at {index_offset}"
        ));
    }
    match index.last() {
        None if meta.entries == 0 => Ok(()),
        Some(last)
            if meta.entries > 0 && last.key == meta.largest && meta.smallest <= meta.largest =>
        {
            Ok(())
        }
        _ => Err("index and meta block disagree on the key range".to_string()),
    }
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
            let (block, _) = self.table.block(self.block_index, self.fill_cache, None)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Kind, encode_entry};
    use crate::options::Compression;
    use crate::sstable::TableBuilder;
    use crate::sstable::block::frame_block;
    use crate::sstable::table_path;

    const SEQ_MAX: u64 = u64::MAX >> 8;

    fn put(key: &str, seq: u64) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            seq,
            kind: Kind::Put,
            expire_at_ms: 0,
            value: format!("value of {key}").into_bytes(),
        }
    }

    fn open(path: &Path) -> Arc<Table> {
        // A fresh cache each time: a block cached from an earlier open must not hide
        // what is on disk now.
        let cache = Arc::new(BlockCache::new(1 << 20));
        Arc::new(Table::open(path.to_path_buf(), 1, cache).unwrap())
    }

    /// Writes table 1 of `entries` in `dir` (one data block) and opens it.
    fn build(dir: &Path, entries: &[Entry]) -> (PathBuf, Arc<Table>) {
        let mut builder = TableBuilder::create(dir, 1, 4096, Compression::None, 0.01).unwrap();
        for e in entries {
            builder.add(e).unwrap();
        }
        builder.finish().unwrap();
        let path = table_path(dir, 1);
        let table = open(&path);
        (path, table)
    }

    fn scan(table: &Arc<Table>) -> Result<Vec<Vec<u8>>> {
        let mut it = TableIter::seek(table.clone(), b"", false);
        let mut keys = Vec::new();
        while let Some(e) = it.next_entry()? {
            keys.push(e.key);
        }
        Ok(keys)
    }

    /// Rewrites data block 0 with `entries` in the given order, framed with a correct
    /// checksum (the same length, so the index still points at it): what a bug or a
    /// misdirected write could leave, and what a checksum cannot catch.
    fn rewrite_block_0(path: &Path, table: &Table, entries: &[&Entry]) {
        let mut payload = Vec::new();
        for e in entries {
            encode_entry(&mut payload, e);
        }
        let framed = frame_block(&payload, Compression::None);
        let handle = table.index[0].handle;
        assert_eq!(
            framed.len(),
            handle.size as usize,
            "same length as the original"
        );
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(&framed, handle.offset).unwrap();
    }

    #[test]
    fn a_block_out_of_order_with_a_valid_checksum_is_corruption_not_a_wrong_answer() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [put("a", 4), put("b", 3), put("c", 2), put("d", 1)];
        let (path, intact) = build(dir.path(), &entries);
        assert_eq!(intact.index.len(), 1, "one data block");
        assert_eq!(intact.get(b"b", SEQ_MAX).unwrap(), Some(entries[1].clone()));
        assert_eq!(scan(&intact).unwrap().len(), 4);

        // "b" moved behind "c": a point read of "b" would stop at "c" and answer "no
        // such key", a scan would go backwards.
        let [a, b, c, d] = &entries;
        rewrite_block_0(&path, &intact, &[a, c, b, d]);
        let damaged = open(&path); // index, bloom and meta are intact: it opens
        let is_order_corruption = |r: Result<_>| match r {
            Err(Error::Corruption { path: p, detail }) => {
                p == path && detail.contains("out of order") && detail.contains("offset 0")
            }
            _ => false,
        };
        assert!(is_order_corruption(damaged.get(b"b", SEQ_MAX).map(|_| ())));
        assert!(is_order_corruption(damaged.get(b"a", SEQ_MAX).map(|_| ())));
        assert!(is_order_corruption(scan(&damaged).map(|_| ())));

        // Two versions of a key in the wrong order (older first).
        let (b_new, b_old) = (put("b", 9), put("b", 8));
        let ordered = [put("a", 7), b_new.clone(), b_old.clone(), put("d", 6)];
        let dir = tempfile::tempdir().unwrap();
        let (path, intact) = build(dir.path(), &ordered);
        rewrite_block_0(&path, &intact, &[&ordered[0], &b_old, &b_new, &ordered[3]]);
        let err = open(&path).get(b"b", SEQ_MAX).unwrap_err();
        assert!(err.to_string().contains("out of order"), "{err}");
    }

    #[test]
    fn a_block_that_does_not_end_where_the_index_says_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [put("a", 4), put("b", 3), put("c", 2), put("e", 1)];
        let (path, intact) = build(dir.path(), &entries);
        // In order, same length, but its last key is "d" where the index says "e".
        let [a, b, c, _] = &entries;
        rewrite_block_0(&path, &intact, &[a, b, c, &put("d", 1)]);
        let err = open(&path).get(b"a", SEQ_MAX).unwrap_err();
        assert!(
            matches!(&err, Error::Corruption { detail, .. } if detail.contains("differs from the index")),
            "{err}"
        );
    }
}
