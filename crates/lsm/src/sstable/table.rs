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
use super::data_block::{BlockIter, verify};
use super::index::BlockIndex;
use super::{TABLE_FORMAT_VERSION, TABLE_MAGIC, TableMeta};
use crate::cache::{Block, BlockCache};
use crate::codec::{Entry, EntryRef, Reader, cmp_internal};
use crate::error::{Error, IoContext, Result};

/// Footer length: 3 handles × 12 + version 4 + magic 8 + crc 4.
const FOOTER_BYTES: u64 = 52;
/// The first format, still read: data blocks without shared prefixes or restarts.
const FORMAT_V1: u32 = 1;
/// Blocks an iterator puts into the block cache before it stops filling it: a short
/// scan (a hash's fields, a page of a sorted set) is cached for the next reader, while a
/// long one-pass scan does not evict the working set of point reads (and skips the
/// cost of inserting and evicting every block it passes), as Postgres' ring buffers
/// keep sequential scans out of its buffer pool.
const SCAN_FILL_BLOCKS: usize = 8;
/// Largest sequence number (56 bits): seeking to (key, this) finds a key's newest version.
const SEQ_MAX: u64 = u64::MAX >> 8;

/// An open SSTable.
pub(crate) struct Table {
    /// File path, named in every error.
    pub path: PathBuf,
    /// The open file (kept open even after compaction deletes it, while readers hold it).
    file: File,
    /// Block index, in order.
    index: BlockIndex,
    /// Data blocks in format 2 (prefix-compressed keys, restart points).
    v2: bool,
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
        if version != TABLE_FORMAT_VERSION && version != FORMAT_V1 {
            return Err(corrupt(
                &path,
                &format!(
                    "table format version {version}, this build reads {FORMAT_V1} to \
                     {TABLE_FORMAT_VERSION}: open the store with the build that wrote it"
                ),
            ));
        }
        let index = BlockIndex::parse(&read_block(&file, &path, index_h)?)
            .ok_or_else(|| corrupt(&path, "malformed index block"))?;
        let bloom = BloomFilter::from_bytes(&read_block(&file, &path, bloom_h)?)
            .map_err(|e| corrupt(&path, &format!("bloom block: {e}")))?;
        let meta = parse_meta(&read_block(&file, &path, meta_h)?, id, size)
            .ok_or_else(|| corrupt(&path, "malformed meta block"))?;
        index
            .check(&meta, index_h.offset)
            .map_err(|what| corrupt(&path, &what))?;
        Ok(Table {
            path,
            file,
            index,
            v2: version != FORMAT_V1,
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
    /// from the disk is checked by [`Table::check_block`] before anyone uses it.
    fn block(&self, i: usize, fill_cache: bool) -> Result<Block> {
        let handle = self.index.handle(i);
        if let Some(b) = self.cache.get(self.meta.id, handle.offset) {
            return Ok(b);
        }
        let block = Arc::new(read_block(&self.file, &self.path, handle)?);
        self.check_block(i, &block)?;
        if fill_cache {
            self.cache
                .insert(self.meta.id, handle.offset, block.clone());
        }
        Ok(block)
    }

    /// A cursor over data block `i`, before its first entry.
    fn block_iter(&self, i: usize, fill_cache: bool) -> Result<BlockIter> {
        BlockIter::new(self.block(i, fill_cache)?, self.v2).ok_or_else(|| self.bad_block(i))
    }

    /// Number of data blocks.
    pub(crate) fn block_count(&self) -> usize {
        self.index.len()
    }

    /// The only block that can hold position `(key, seq)`: the first whose last entry
    /// is at or after it (`block_count()` when it is past the table).
    pub(crate) fn seek_block(&self, key: &[u8], seq: u64) -> usize {
        self.index.seek(key, seq)
    }

    /// Appends copies of every entry of data block `i`, in internal order (the reverse
    /// scan reads a block at a time and walks it backwards).
    pub(crate) fn block_entries(
        &self,
        i: usize,
        fill_cache: bool,
        out: &mut Vec<Entry>,
    ) -> Result<()> {
        let mut it = self.block_iter(i, fill_cache)?;
        while it.advance().map_err(|()| self.bad_block(i))? {
            out.push(it.entry().to_entry());
        }
        Ok(())
    }

    /// The newest version of `key` with sequence number <= `snapshot` (no bloom check).
    pub(crate) fn get(&self, key: &[u8], snapshot: u64) -> Result<Option<Entry>> {
        let i = self.index.seek(key, snapshot);
        if i == self.index.len() {
            return Ok(None);
        }
        let mut it = self.block_iter(i, true)?;
        it.seek(key, snapshot).map_err(|()| self.bad_block(i))?;
        Ok((it.valid() && it.entry().key == key).then(|| it.entry().to_entry()))
    }

    /// Verifies what lookups rely on in data block `i`, fresh from the disk: every
    /// entry decodes, in strictly increasing internal order, restart points at whole
    /// keys, the first entry after the previous block's last (as the index has it; for
    /// block 0, the table's smallest key), and the last the one the index names.
    fn check_block(&self, i: usize, block: &Block) -> Result<()> {
        let offset = self.index.handle(i).offset;
        let bad = |what: &str| corrupt(&self.path, &format!("{what} in block at offset {offset}"));
        let bounds = verify(block, self.v2).map_err(bad)?;
        let (first_key, first_seq) = (&bounds.first.0[..], bounds.first.1);
        match i.checked_sub(1) {
            Some(p)
                if !cmp_internal(self.index.key(p), self.index.seq(p), first_key, first_seq)
                    .is_lt() =>
            {
                return Err(bad("entries out of order"));
            }
            None if first_key != self.meta.smallest => {
                return Err(bad("first key is not the table's smallest key"));
            }
            _ => {}
        }
        if (&bounds.last.0[..], bounds.last.1) != (self.index.key(i), self.index.seq(i)) {
            return Err(bad("last entry differs from the index"));
        }
        Ok(())
    }

    fn bad_block(&self, i: usize) -> Error {
        corrupt(
            &self.path,
            &format!(
                "malformed entry in block at offset {}",
                self.index.handle(i).offset
            ),
        )
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

/// Ordered iteration over a table's entries (all versions): a cursor on one entry,
/// borrowed from the block it is in (no copy per entry).
pub(crate) struct TableIter {
    /// The table.
    table: Arc<Table>,
    /// Index of the block after the current one.
    next_block: usize,
    /// The current block's cursor; `None` once past the end.
    block: Option<BlockIter>,
    /// Whether blocks read by this iterator go into the cache (off for compaction, and
    /// after `SCAN_FILL_BLOCKS` blocks).
    fill_cache: bool,
    /// Blocks this iterator has entered.
    blocks_read: usize,
}

impl TableIter {
    /// Positions at the first entry >= (key, newest), i.e. the newest version of `key`
    /// or the first key after it.
    pub(crate) fn seek(table: Arc<Table>, key: &[u8], fill_cache: bool) -> Result<TableIter> {
        let i = table.index.seek(key, SEQ_MAX);
        let mut it = TableIter {
            table,
            next_block: i,
            block: None,
            fill_cache,
            blocks_read: 1,
        };
        if i < it.table.index.len() {
            let mut b = it.table.block_iter(i, fill_cache)?;
            b.seek(key, SEQ_MAX).map_err(|()| it.table.bad_block(i))?;
            it.next_block = i + 1;
            let valid = b.valid();
            it.block = Some(b);
            if !valid {
                it.advance()?;
            }
        }
        Ok(it)
    }

    /// The current entry; `None` past the end.
    pub(crate) fn current(&self) -> Option<EntryRef<'_>> {
        self.block
            .as_ref()
            .filter(|b| b.valid())
            .map(BlockIter::entry)
    }

    /// Moves to the next entry in internal order.
    pub(crate) fn advance(&mut self) -> Result<()> {
        loop {
            if let Some(b) = &mut self.block {
                let i = self.next_block - 1;
                if b.advance().map_err(|()| self.table.bad_block(i))? {
                    return Ok(());
                }
            }
            if self.next_block >= self.table.index.len() {
                self.block = None;
                return Ok(());
            }
            self.blocks_read += 1;
            let fill = self.fill_cache && self.blocks_read <= SCAN_FILL_BLOCKS;
            self.block = Some(self.table.block_iter(self.next_block, fill)?);
            self.next_block += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Kind;
    use crate::options::Compression;
    use crate::sstable::TableBuilder;
    use crate::sstable::block::frame_block;
    use crate::sstable::data_block::BlockBuilder;
    use crate::sstable::table_path;

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
        let mut it = TableIter::seek(table.clone(), b"", false)?;
        let mut keys = Vec::new();
        while let Some(e) = it.current() {
            keys.push(e.key.to_vec());
            it.advance()?;
        }
        Ok(keys)
    }

    /// Rewrites data block 0 with `entries` in the given order, framed with a correct
    /// checksum (the same length, so the index still points at it): what a bug or a
    /// misdirected write could leave, and what a checksum cannot catch.
    fn rewrite_block_0(path: &Path, table: &Table, entries: &[&Entry]) {
        let mut block = BlockBuilder::default();
        for e in entries {
            block.add(e);
        }
        let framed = frame_block(&block.finish(), Compression::None);
        let handle = table.index.handle(0);
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

    /// The entries `testdata/v1-000007.sst` was written with (by the format-1 builder,
    /// block size 256): every 3rd key, tombstones, expiring values, and two versions of
    /// every 25th key.
    fn v1_fixture_entries() -> Vec<Entry> {
        let mut out = Vec::new();
        for i in 0..300u64 {
            let key = format!("key{:05}", i * 3).into_bytes();
            let (kind, expire_at_ms, value) = match i % 10 {
                3 => (Kind::Delete, 0, Vec::new()),
                7 => (
                    Kind::PutExpiring,
                    4_000_000_000_000,
                    format!("exp{i}").into_bytes(),
                ),
                _ => (Kind::Put, 0, format!("value{i}").into_bytes()),
            };
            if i % 25 == 0 {
                out.push(Entry {
                    key: key.clone(),
                    seq: 1000 + i,
                    kind: Kind::Put,
                    expire_at_ms: 0,
                    value: b"newer".to_vec(),
                });
            }
            out.push(Entry {
                key,
                seq: 1 + i,
                kind,
                expire_at_ms,
                value,
            });
        }
        out
    }

    /// A table written before format 2 (plain entries, no restart points) still opens,
    /// scans, seeks and answers point reads: existing data directories keep working.
    #[test]
    fn a_format_1_table_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000007.sst");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sstable/testdata/v1-000007.sst"),
            &path,
        )
        .unwrap();
        let cache = Arc::new(BlockCache::new(1 << 20));
        let table = Arc::new(Table::open(path, 7, cache).unwrap());
        assert!(
            !table.v2 && table.index.len() > 10,
            "several format-1 blocks"
        );
        let want = v1_fixture_entries();
        let mut it = TableIter::seek(table.clone(), b"", true).unwrap();
        let mut got = Vec::new();
        while let Some(e) = it.current() {
            got.push(e.to_entry());
            it.advance().unwrap();
        }
        assert_eq!(got, want);
        for (i, e) in want.iter().enumerate() {
            let newest = want.iter().find(|w| w.key == e.key).unwrap();
            assert_eq!(table.get(&e.key, SEQ_MAX).unwrap().as_ref(), Some(newest));
            assert_eq!(table.get(&e.key, e.seq).unwrap().as_ref(), Some(e), "#{i}");
            // A seek between keys lands on the next key.
            let between = [&e.key[..], b"!"].concat();
            let it = TableIter::seek(table.clone(), &between, true).unwrap();
            let next = want.iter().find(|w| w.key > between);
            assert_eq!(it.current().map(|c| c.to_entry()).as_ref(), next);
        }
        assert_eq!(table.get(b"key00001", SEQ_MAX).unwrap(), None);
    }

    /// A table in a format this build does not know is refused with an error that
    /// names the versions, never read as garbage.
    #[test]
    fn an_unknown_table_format_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = build(dir.path(), &[put("a", 1)]);
        let bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        let mut footer = bytes[n - 52..n - 4].to_vec();
        footer[36..40].copy_from_slice(&9u32.to_le_bytes());
        let crc = crc32c::crc32c(&footer);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&footer, (n - 52) as u64).unwrap();
        file.write_all_at(&crc.to_le_bytes(), (n - 4) as u64)
            .unwrap();
        let cache = Arc::new(BlockCache::new(1 << 20));
        let err = Table::open(path, 1, cache).err().unwrap().to_string();
        assert!(
            err.contains("format version 9") && err.contains("reads 1 to 2"),
            "{err}"
        );
    }

    /// A long scan caches only its first blocks (it would evict the working set), while
    /// point reads cache every block they read.
    #[test]
    fn a_long_scan_fills_the_cache_with_its_first_blocks_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder =
            TableBuilder::create(dir.path(), 1, 256, Compression::None, 0.01).unwrap();
        let entries: Vec<Entry> = (0..2000u64)
            .map(|i| put(&format!("key{i:05}"), i + 1))
            .collect();
        for e in &entries {
            builder.add(e).unwrap();
        }
        builder.finish().unwrap();
        let cache = Arc::new(BlockCache::new(64 << 20));
        let table = Arc::new(Table::open(table_path(dir.path(), 1), 1, cache.clone()).unwrap());
        assert!(table.index.len() > 100);
        let mut it = TableIter::seek(table.clone(), b"", true).unwrap();
        let mut n = 0;
        while it.current().is_some() {
            n += 1;
            it.advance().unwrap();
        }
        assert_eq!(n, entries.len());
        let block_bytes_max = 256 + 64;
        assert!(
            cache.used_bytes() <= SCAN_FILL_BLOCKS * block_bytes_max,
            "{}",
            cache.used_bytes()
        );
        for e in entries.iter().step_by(10) {
            assert_eq!(table.get(&e.key, SEQ_MAX).unwrap().as_ref(), Some(e));
        }
        assert!(
            cache.used_bytes() > 100 * 200,
            "point reads cache their blocks"
        );
    }
}
