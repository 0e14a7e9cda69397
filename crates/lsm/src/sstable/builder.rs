//! Writes one SSTable from entries given in internal order.
//!
//! Why a module: flush and compaction both produce tables; the builder owns block
//! cutting, the index, the bloom filter, the footer and the final fsync.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sketch::{BloomFilter, KeyHash};

use super::block::{BlockHandle, frame_block, table_path};
use super::data_block::BlockBuilder;
use super::{TABLE_FORMAT_VERSION, TABLE_MAGIC, TableMeta};
use crate::codec::{Entry, Kind, cmp_internal, put_len_prefixed, put_varint};
use crate::error::{IoContext, Result};
use crate::options::Compression;

/// Builds a table file; call [`TableBuilder::finish`] or drop it (the partial file is
/// removed on drop).
pub(crate) struct TableBuilder {
    /// Output path.
    path: PathBuf,
    /// Buffered writer; flushed and fsynced by `finish`.
    out: Option<BufWriter<File>>,
    /// Bytes written so far (the next block's offset).
    offset: u64,
    /// Target uncompressed block size.
    block_size_bytes: usize,
    /// Block compression.
    compression: Compression,
    /// Bloom target false-positive rate.
    bloom_fp_rate: f64,
    /// The block being filled.
    block: BlockBuilder,
    /// Index entries: (last key, last seq, handle).
    index: Vec<(Vec<u8>, u64, BlockHandle)>,
    /// Hashes of distinct user keys, for the bloom filter sized at the end.
    key_hashes: Vec<KeyHash>,
    /// Last entry added (key, seq), to assert order and build index entries.
    last: Option<(Vec<u8>, u64)>,
    /// Running summary.
    meta: TableMeta,
    /// Number of tombstones (kept in the meta block for compaction decisions).
    tombstones: u64,
}

impl TableBuilder {
    /// Starts table `id` in `dir`.
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        block_size_bytes: usize,
        compression: Compression,
        bloom_fp_rate: f64,
    ) -> Result<Self> {
        let path = table_path(dir, id);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        Ok(Self {
            path,
            out: Some(BufWriter::with_capacity(256 << 10, file)),
            offset: 0,
            block_size_bytes,
            compression,
            bloom_fp_rate,
            block: BlockBuilder::default(),
            index: Vec::new(),
            key_hashes: Vec::new(),
            last: None,
            meta: TableMeta {
                id,
                size_bytes: 0,
                smallest: Vec::new(),
                largest: Vec::new(),
                seq_min: u64::MAX,
                seq_max: 0,
                entries: 0,
            },
            tombstones: 0,
        })
    }

    /// Appends an entry; entries must come in strictly increasing internal order.
    pub(crate) fn add(&mut self, e: &Entry) -> Result<()> {
        let new_key = match &self.last {
            Some((k, s)) => {
                assert!(
                    cmp_internal(k, *s, &e.key, e.seq).is_lt(),
                    "table entries out of order"
                );
                *k != e.key
            }
            None => {
                self.meta.smallest = e.key.clone();
                true
            }
        };
        if new_key {
            self.key_hashes.push(KeyHash::of(&e.key));
        }
        self.block.add(e);
        self.last = Some((e.key.clone(), e.seq));
        self.meta.entries += 1;
        self.meta.seq_min = self.meta.seq_min.min(e.seq);
        self.meta.seq_max = self.meta.seq_max.max(e.seq);
        self.tombstones += u64::from(e.kind == Kind::Delete);
        if self.block.size_bytes() >= self.block_size_bytes {
            self.cut_block()?;
        }
        Ok(())
    }

    /// Bytes written to the file so far plus the open block (for output splitting).
    pub(crate) fn size_bytes(&self) -> u64 {
        self.offset
            + if self.block.is_empty() {
                0
            } else {
                self.block.size_bytes() as u64
            }
    }

    /// Number of entries added.
    pub(crate) fn entries(&self) -> u64 {
        self.meta.entries
    }

    fn write_block(&mut self, payload: &[u8], compression: Compression) -> Result<BlockHandle> {
        let framed = frame_block(payload, compression);
        let out = self.out.as_mut().expect("builder used after finish");
        out.write_all(&framed).at(&self.path)?;
        let handle = BlockHandle {
            offset: self.offset,
            size: framed.len() as u32,
        };
        self.offset += framed.len() as u64;
        Ok(handle)
    }

    fn cut_block(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = self.block.finish();
        let handle = self.write_block(&block, self.compression)?;
        let (key, seq) = self
            .last
            .clone()
            .expect("a non-empty block has a last entry");
        self.index.push((key, seq, handle));
        Ok(())
    }

    /// Writes index, bloom, meta and footer, fsyncs the file, and returns the summary.
    /// The caller fsyncs the directory before recording the table in the manifest.
    pub(crate) fn finish(mut self) -> Result<TableMeta> {
        self.cut_block()?;
        let mut index = Vec::new();
        for (key, seq, h) in &self.index {
            put_len_prefixed(&mut index, key);
            index.extend_from_slice(&seq.to_le_bytes());
            index.extend_from_slice(&h.offset.to_le_bytes());
            index.extend_from_slice(&h.size.to_le_bytes());
        }
        let index_h = self.write_block(&index, Compression::None)?;
        let mut bloom = BloomFilter::with_rate(self.key_hashes.len(), self.bloom_fp_rate);
        for h in &self.key_hashes {
            bloom.insert_hash(*h);
        }
        let bloom_h = self.write_block(&bloom.to_bytes(), Compression::None)?;
        self.meta.largest = self
            .last
            .as_ref()
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        let meta_h =
            self.write_block(&encode_meta(&self.meta, self.tombstones), Compression::None)?;
        let mut footer = Vec::with_capacity(52);
        for h in [index_h, bloom_h, meta_h] {
            footer.extend_from_slice(&h.offset.to_le_bytes());
            footer.extend_from_slice(&h.size.to_le_bytes());
        }
        footer.extend_from_slice(&TABLE_FORMAT_VERSION.to_le_bytes());
        footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        footer.extend_from_slice(&crc32c::crc32c(&footer).to_le_bytes());
        let mut out = self.out.take().expect("finish called once");
        out.write_all(&footer).at(&self.path)?;
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .at(&self.path)?;
        file.sync_all().at(&self.path)?;
        self.meta.size_bytes = self.offset + footer.len() as u64;
        let meta = self.meta.clone();
        self.path = PathBuf::new(); // finished: keep the file on drop
        Ok(meta)
    }
}

impl Drop for TableBuilder {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            // An abandoned build (error, shutdown): never leave a partial table behind.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Encodes the meta block.
pub(crate) fn encode_meta(m: &TableMeta, tombstones: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, m.entries);
    put_varint(&mut out, tombstones);
    put_varint(&mut out, m.seq_min);
    put_varint(&mut out, m.seq_max);
    put_len_prefixed(&mut out, &m.smallest);
    put_len_prefixed(&mut out, &m.largest);
    out
}
