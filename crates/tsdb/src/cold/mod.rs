//! Cold storage: sealed blocks older than a threshold move to an S3-compatible
//! object store and stay queryable.
//!
//! Why a module: the chapter keeps a year of data and notes that old data is
//! rarely read, so it belongs on cheap storage ("cold storage"). A block is
//! immutable, which makes it the unit to move: its `chunks` (the bulk of its
//! bytes) go to `s3://bucket/prefix/<id>/chunks`, with copies of `index` and
//! `meta.json` beside it so that the bucket alone holds whole blocks. The
//! local directory keeps `meta.json`, `index` (a few per cent of a block; it
//! stays so that opening the database and matching series need no round
//! trip) and a marker, `cold.json`; chunks are then read by ranged GETs
//! through a bounded LRU cache ([`cache`]).
//!
//! What moves is a pure decision ([`plan`]: blocks whose end is `after_ms`
//! behind the newest sample, as retention measures age); the I/O
//! ([`ColdTier::upload`], then the marker, then the local chunks' removal)
//! is ordered so that a crash at any point leaves each block counted exactly
//! once:
//!
//! | crash after | on restart |
//! |---|---|
//! | part of the upload | no marker: the block is local; the next pass uploads again (PUT overwrites) |
//! | the verified upload | same |
//! | the marker | the block opens cold; the leftover local `chunks` is removed |
//!
//! A block is deleted locally (its `chunks`) only after every object's length
//! and MD5 (the ETag of a single-part PUT) match the local file. Deleting a
//! cold block (retention, compaction) removes the local directory first and
//! the objects after; a crash between leaves unreferenced objects in the
//! bucket, never a block counted twice.

pub mod cache;
pub mod store;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use cache::ChunkCache;
pub use store::{ColdTarget, ObjectStore};

use crate::block::Meta;
use crate::error::{Error, IoContext, Result};
use crate::wal::sync_dir;

/// The marker file of a block whose chunks are in cold storage.
pub const MARKER: &str = "cold.json";

/// The files of a block uploaded, `chunks` last: it is what the marker promises.
const FILES: [&str; 3] = ["meta.json", "index", "chunks"];

/// Cold-tier settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ColdOptions {
    /// Where to put the blocks.
    pub target: ColdTarget,
    /// Blocks whose end is this far behind the newest sample move (e.g. 7 d).
    pub after_ms: i64,
    /// Bytes of fetched chunks kept in memory.
    pub cache_bytes_max: u64,
}

/// The blocks to move now: local ones whose end is `after_ms` behind `newest_t`.
pub fn plan(metas: &[Meta], newest_t: i64, after_ms: i64) -> Vec<String> {
    let cutoff = newest_t.saturating_sub(after_ms);
    metas
        .iter()
        .filter(|m| !m.cold && m.max_t <= cutoff)
        .map(|m| m.id.clone())
        .collect()
}

/// What the marker says.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    /// `s3://bucket/prefix` the block's objects are under.
    url: String,
}

/// The object store and the cache of what was read from it.
pub struct ColdTier {
    store: ObjectStore,
    cache: ChunkCache,
    url: String,
}

impl ColdTier {
    /// Builds the client (no request is sent).
    pub fn new(opts: &ColdOptions) -> Result<Self> {
        Ok(Self {
            store: ObjectStore::new(&opts.target)?,
            cache: ChunkCache::new(opts.cache_bytes_max),
            url: opts.target.url.trim_end_matches('/').to_string(),
        })
    }

    /// The chunk cache's counters.
    pub fn cache_stats(&self) -> cache::CacheStats {
        self.cache.stats()
    }

    /// Uploads block `id` from `dir` and checks each object's length and
    /// content against the local file.
    pub fn upload(&self, dir: &Path, id: &str) -> Result<()> {
        for f in FILES {
            let path = dir.join(f);
            let name = format!("{id}/{f}");
            let (len, md5) = file_digest(&path)?;
            self.store.put_file(&name, &path)?;
            let Some((got_len, got_etag)) = self.store.head(&name)? else {
                return Err(Error::Cold(format!(
                    "{} is missing right after its upload",
                    self.store.display(&name)
                )));
            };
            let tag_is_md5 = |t: &str| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
            let same = got_len == len
                && if tag_is_md5(&got_etag) {
                    got_etag.eq_ignore_ascii_case(&md5)
                } else {
                    // Not a plain MD5 (encryption, multipart): compare the bytes.
                    std::fs::read(&path).at(&path)? == self.store.get(&name)?
                };
            if !same {
                return Err(Error::Cold(format!(
                    "{} does not match {} after upload ({got_len} bytes, ETag {got_etag}; local {len} bytes, MD5 {md5})",
                    self.store.display(&name),
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Marks the block in `dir` as cold (durably): from now on it opens cold.
    pub fn write_marker(&self, dir: &Path) -> Result<()> {
        let m = serde_json::to_vec(&Marker {
            url: self.url.clone(),
        })
        .map_err(|e| Error::Cold(e.to_string()))?;
        let tmp = dir.join("cold.json.tmp");
        {
            let mut f = std::fs::File::create(&tmp).at(&tmp)?;
            std::io::Write::write_all(&mut f, &m).at(&tmp)?;
            f.sync_all().at(&tmp)?;
        }
        let path = dir.join(MARKER);
        std::fs::rename(&tmp, &path).at(&path)?;
        sync_dir(dir)
    }

    /// Checks the marker in `dir` names this tier's bucket, and removes a local
    /// `chunks` a crash left behind after the marker.
    pub fn adopt(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MARKER);
        let bytes = std::fs::read(&path).at(&path)?;
        let m: Marker = serde_json::from_slice(&bytes)
            .map_err(|e| crate::error::corrupt(&path, e.to_string()))?;
        if m.url != self.url {
            return Err(Error::InvalidArgument(format!(
                "block {} is in cold storage at {}, but the cold storage configured is {}; start with --cold-storage {}",
                dir.display(),
                m.url,
                self.url,
                m.url
            )));
        }
        let chunks = dir.join("chunks");
        if chunks.exists() {
            std::fs::remove_file(&chunks).at(&chunks)?;
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Bytes `[offset, offset + len)` of block `id`'s chunks, from the cache or
    /// the store.
    pub fn read(&self, id: &Arc<str>, offset: u64, len: u32) -> Result<Arc<Vec<u8>>> {
        if let Some(b) = self.cache.get(id, offset) {
            return Ok(b);
        }
        let bytes = Arc::new(self.store.get_range(&format!("{id}/chunks"), offset, len)?);
        self.cache.put(id, offset, bytes.clone());
        Ok(bytes)
    }

    /// Deletes block `id`'s objects (its local directory is already gone).
    pub fn delete(&self, id: &str) -> Result<()> {
        self.cache.forget(id);
        for f in FILES {
            self.store.delete(&format!("{id}/{f}"))?;
        }
        Ok(())
    }
}

/// A file's length and MD5 (hex), read in pieces.
fn file_digest(path: &Path) -> Result<(u64, String)> {
    use md5::Digest;
    let mut f = std::fs::File::open(path).at(path)?;
    let mut h = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((len, hex))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::DAY_MS;

    #[test]
    fn plan_moves_local_blocks_past_the_threshold_only() {
        let now = 30 * DAY_MS;
        let mut cold = Meta::for_test("cold", 0, DAY_MS, 0);
        cold.cold = true;
        let metas = [
            cold,
            Meta::for_test("old", DAY_MS, 2 * DAY_MS, 0),
            Meta::for_test("old-1m", DAY_MS, 2 * DAY_MS, 60_000),
            Meta::for_test("edge", 22 * DAY_MS, 23 * DAY_MS, 0),
            Meta::for_test("new", 23 * DAY_MS, 24 * DAY_MS, 0),
        ];
        assert_eq!(plan(&metas, now, 7 * DAY_MS), vec!["old", "old-1m", "edge"]);
        assert!(plan(&metas, now, 40 * DAY_MS).is_empty());
    }
}
