//! The metadata service: the chapter's bucket table and object table, and the
//! multipart-upload tables, on the workspace's `lsm` engine.
//!
//! Why a module: the data store knows only object ids; everything a client names
//! (buckets, keys, ETags, content headers, in-progress uploads) lives here. As the
//! chapter designs it, the object table is **sharded by a hash of (bucket, object
//! name)** over `shards` independent `lsm::Db`s, so writes to different keys spread
//! over several commit logs; the bucket table is small and lives in its own store.
//! Listing merges the shards in key order ([`list`]).
//!
//! Rows (values are JSON, keys are bytes so a bucket's rows sort by object name):
//!
//! | table | key | value |
//! |---|---|---|
//! | buckets (own store) | bucket name | [`BucketRow`] |
//! | objects (shard of bucket, key) | `o` len(bucket) bucket key | [`ObjectRow`]: the newest version |
//! | versions (same shard) | `v` len(bucket) bucket key `\0` sort key | [`ObjectRow`] ([`versions`]) |
//! | uploads (shard of bucket, key) | `u` len(bucket) bucket key `\0` upload id | [`UploadRow`] |
//! | parts (same shard) | `p` upload id part number (u16 BE) | [`PartRow`] |
//!
//! Every write is fsynced before it returns (`lsm::SyncPolicy::Always`): a write the
//! API acknowledges survives `kill -9`. A row changes under its shard's lock, so a
//! read-modify-write (an overwrite that must free the old object's chunks) is atomic.

pub mod list;
pub mod versions;

pub use versions::{Change, NULL_VERSION, Versioning};

use std::collections::BTreeMap;
use std::path::Path;

use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};

use crate::ObjectId;

/// Errors of the metadata service.
pub type Result<T> = std::result::Result<T, lsm::Error>;

/// A bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketRow {
    /// Creation time, unix milliseconds.
    pub created_ms: u64,
    /// `Enabled`, `Suspended`, or none (never enabled).
    #[serde(default)]
    pub versioning: Option<String>,
    /// The bucket policy document, as given (validated by [`crate::s3::policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A piece of an object's bytes in the data store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// The data store's object id.
    #[serde(with = "id_text")]
    pub id: ObjectId,
    /// Its length in bytes.
    pub len: u64,
}

/// Content headers and user metadata stored with an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `x-amz-meta-*` user metadata.
    pub metadata: BTreeMap<String, String>,
}

/// An object: the chapter's object-table row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectRow {
    /// Size in bytes.
    pub size: u64,
    /// The ETag without quotes: MD5 hex, or `md5-of-md5s-N` after a multipart upload.
    pub etag: String,
    /// Last modification, unix milliseconds.
    pub modified_ms: u64,
    /// Its bytes, in order.
    pub chunks: Vec<Chunk>,
    /// Content headers and user metadata.
    pub headers: Headers,
    /// The version id (`None`: the null version).
    #[serde(default)]
    pub version_id: Option<String>,
    /// A delete marker (no bytes): the key reads as absent.
    #[serde(default)]
    pub delete_marker: bool,
}

/// An in-progress multipart upload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRow {
    /// Initiation time, unix milliseconds.
    pub initiated_ms: u64,
    /// Headers the completed object gets.
    pub headers: Headers,
}

/// One uploaded part.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartRow {
    /// MD5 hex of the part.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time, unix milliseconds.
    pub modified_ms: u64,
    /// Its bytes.
    pub chunks: Vec<Chunk>,
}

mod id_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::ObjectId;

    pub fn serialize<S: Serializer>(id: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The metadata service: a bucket store and `shards` object stores.
pub struct Meta {
    buckets: lsm::Db,
    shards: Vec<lsm::Db>,
    locks: Vec<Mutex<()>>,
}

fn lsm_opts() -> lsm::Options {
    lsm::Options {
        create_if_missing: true,
        sync: lsm::SyncPolicy::Always,
        memtable_size_bytes: 4 << 20,
        ..lsm::Options::default()
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> lsm::Error {
    lsm::Error::Corruption {
        path: "metadata".into(),
        detail: format!("{what}: {e}"),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> lsm::Error + '_ {
    move |source| lsm::Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("metadata rows serialize")
}

/// `tag` len(bucket) bucket: the start of a bucket's rows of one table.
pub(crate) fn bucket_prefix(tag: u8, bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + bucket.len());
    k.push(tag);
    k.push(u8::try_from(bucket.len()).expect("bucket names are at most 63 bytes"));
    k.extend_from_slice(bucket.as_bytes());
    k
}

/// The object-table key of (bucket, key).
pub(crate) fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = bucket_prefix(b'o', bucket);
    k.extend_from_slice(key.as_bytes());
    k
}

fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = bucket_prefix(b'u', bucket);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

fn part_key(upload_id: &str, part: u16) -> Vec<u8> {
    let mut k = vec![b'p'];
    k.extend_from_slice(upload_id.as_bytes());
    k.extend_from_slice(&part.to_be_bytes());
    k
}

/// Length of an upload id (hex of 128 random bits).
pub const UPLOAD_ID_LEN: usize = 32;

impl Meta {
    /// Opens (or creates) the metadata under `dir` with `shards` object shards. The
    /// shard count is fixed when the store is created (it is written to `dir/shards`).
    pub fn open(dir: &Path, shards: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let count_path = dir.join("shards");
        let shards = match std::fs::read_to_string(&count_path) {
            Ok(s) => s.trim().parse().map_err(|e| corrupt("shard count", e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let n = shards.clamp(1, 256);
                let mut f = std::fs::File::create(&count_path).map_err(io(&count_path))?;
                std::io::Write::write_all(&mut f, n.to_string().as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(io(&count_path))?;
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io(dir))?;
                n
            }
            Err(e) => return Err(io(&count_path)(e)),
        };
        let buckets = lsm::Db::open(dir.join("buckets"), lsm_opts())?;
        let shards: Vec<lsm::Db> = (0..shards)
            .map(|i| lsm::Db::open(dir.join(format!("shard-{i:03}")), lsm_opts()))
            .collect::<Result<_>>()?;
        let locks = shards.iter().map(|_| Mutex::new(())).collect();
        Ok(Self {
            buckets,
            shards,
            locks,
        })
    }

    /// The number of object shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard of (bucket, key): a hash of both, as the chapter shards.
    pub fn shard_of(&self, bucket: &str, key: &str) -> usize {
        let h = crc32c::crc32c_append(crc32c::crc32c(bucket.as_bytes()), &[0]);
        let h = crc32c::crc32c_append(h, key.as_bytes());
        h as usize % self.shards.len()
    }

    pub(crate) fn shards(&self) -> &[lsm::Db] {
        &self.shards
    }

    /// Locks the shard of (bucket, key) for a read-modify-write.
    pub fn lock(&self, bucket: &str, key: &str) -> MutexGuard<'_, ()> {
        self.locks[self.shard_of(bucket, key)].lock()
    }

    fn db(&self, bucket: &str, key: &str) -> &lsm::Db {
        &self.shards[self.shard_of(bucket, key)]
    }

    // ---- buckets

    /// The bucket `name`, if it exists.
    pub fn bucket(&self, name: &str) -> Result<Option<BucketRow>> {
        self.buckets
            .get(name.as_bytes())?
            .map(|v| decode(&v, "bucket"))
            .transpose()
    }

    /// Creates bucket `name`; false if it exists.
    pub fn create_bucket(&self, name: &str, row: &BucketRow) -> Result<bool> {
        let _g = self.locks[0].lock();
        if self.buckets.get(name.as_bytes())?.is_some() {
            return Ok(false);
        }
        self.buckets.put(name.as_bytes(), &encode(row))?;
        Ok(true)
    }

    /// Sets bucket `name`'s versioning word; false if there is no such bucket.
    pub fn set_versioning(&self, name: &str, word: &str) -> Result<bool> {
        self.update_bucket(name, |row| row.versioning = Some(word.to_string()))
    }

    /// Sets (or with `None` removes) bucket `name`'s policy document; false if there is
    /// no such bucket.
    pub fn set_policy(&self, name: &str, policy: Option<String>) -> Result<bool> {
        self.update_bucket(name, |row| row.policy = policy)
    }

    /// Rewrites bucket `name`'s row with `change`; false if there is no such bucket.
    fn update_bucket(&self, name: &str, change: impl FnOnce(&mut BucketRow)) -> Result<bool> {
        let _g = self.locks[0].lock();
        let Some(mut row) = self.bucket(name)? else {
            return Ok(false);
        };
        change(&mut row);
        self.buckets.put(name.as_bytes(), &encode(&row))?;
        Ok(true)
    }

    /// Deletes bucket `name` (the caller checked it is empty).
    pub fn delete_bucket(&self, name: &str) -> Result<()> {
        self.buckets.delete(name.as_bytes())
    }

    /// Every bucket, by name.
    pub fn buckets(&self) -> Result<Vec<(String, BucketRow)>> {
        self.buckets
            .scan(..)?
            .map(|kv| {
                let kv = kv?;
                let name = String::from_utf8(kv.key).map_err(|e| corrupt("bucket name", e))?;
                Ok((name, decode(&kv.value, "bucket")?))
            })
            .collect()
    }

    /// True when the bucket holds no object, version (or delete marker) and upload.
    pub fn bucket_is_empty(&self, bucket: &str) -> Result<bool> {
        for db in &self.shards {
            for tag in [b'o', b'v', b'u'] {
                if db
                    .scan_prefix(&bucket_prefix(tag, bucket))?
                    .next()
                    .is_some()
                {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    // ---- objects

    /// The object (bucket, key).
    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>> {
        self.db(bucket, key)
            .get(&object_key(bucket, key))?
            .map(|v| decode(&v, "object"))
            .transpose()
    }

    /// Writes the object row (caller holds the shard lock when it read the old row).
    pub fn put_object(&self, bucket: &str, key: &str, row: &ObjectRow) -> Result<()> {
        self.db(bucket, key)
            .put(&object_key(bucket, key), &encode(row))
    }

    /// Deletes the object row.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.db(bucket, key).delete(&object_key(bucket, key))
    }

    // ---- multipart uploads

    /// Records a new upload.
    pub fn create_upload(&self, bucket: &str, key: &str, id: &str, row: &UploadRow) -> Result<()> {
        self.db(bucket, key)
            .put(&upload_key(bucket, key, id), &encode(row))
    }

    /// The upload, if in progress.
    pub fn upload(&self, bucket: &str, key: &str, id: &str) -> Result<Option<UploadRow>> {
        self.db(bucket, key)
            .get(&upload_key(bucket, key, id))?
            .map(|v| decode(&v, "upload"))
            .transpose()
    }

    /// Records part `part` (returns the part it replaced).
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        part: u16,
        row: &PartRow,
    ) -> Result<Option<PartRow>> {
        let db = self.db(bucket, key);
        let k = part_key(id, part);
        let old = db.get(&k)?.map(|v| decode(&v, "part")).transpose()?;
        db.put(&k, &encode(row))?;
        Ok(old)
    }

    /// The parts of an upload numbered above `after`, at most `max`, ascending.
    pub fn parts(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        after: u16,
        max: usize,
    ) -> Result<Vec<(u16, PartRow)>> {
        let db = self.db(bucket, key);
        let lo = part_key(id, after.saturating_add(1));
        let hi = part_key(id, u16::MAX);
        let mut out = Vec::new();
        if after == u16::MAX {
            return Ok(out);
        }
        for kv in db.scan(lo.as_slice()..=hi.as_slice())? {
            if out.len() >= max {
                break;
            }
            let kv = kv?;
            let n = u16::from_be_bytes([kv.key[kv.key.len() - 2], kv.key[kv.key.len() - 1]]);
            out.push((n, decode(&kv.value, "part")?));
        }
        Ok(out)
    }

    /// Ends an upload: removes its row and its parts' rows in one batch, and writes
    /// `object` (the completed object, a new version under its bucket's mode) in the
    /// same batch when given. The caller holds the shard lock.
    pub fn finish_upload(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        object: Option<(ObjectRow, Versioning)>,
    ) -> Result<Change> {
        let db = self.db(bucket, key);
        let mut batch = lsm::WriteBatch::new();
        batch.delete(&upload_key(bucket, key, id));
        let lo = part_key(id, 0);
        let hi = part_key(id, u16::MAX);
        for kv in db.scan(lo.as_slice()..=hi.as_slice())? {
            batch.delete(&kv?.key);
        }
        let change = match object {
            Some((row, mode)) => self.stage_version(&mut batch, bucket, key, row, mode)?,
            None => Change::default(),
        };
        db.write(&batch)?;
        Ok(change)
    }

    /// In-progress uploads of `bucket` whose key starts with `prefix` and sorts after
    /// `key_marker`, by key then upload id, from all shards: at most `max` (key,
    /// upload id, row).
    pub fn uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        max: usize,
    ) -> Result<Vec<(String, String, UploadRow)>> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let mut start = bucket_prefix(b'u', bucket);
        start.extend_from_slice(prefix.as_bytes());
        let end = list::prefix_end(&start);
        let mut lo = bucket_prefix(b'u', bucket);
        lo.extend_from_slice(key_marker.as_bytes());
        // Past every upload of the marker key itself (`\0` then its ids).
        if !key_marker.is_empty() {
            lo.push(1);
        }
        let lo = lo.max(start);
        let mut out = Vec::new();
        // Each shard is sorted, so at most `max` rows of each can make the answer:
        // memory stays bounded by shards x max.
        for db in &self.shards {
            let hi = end.as_deref().map_or(Unbounded, Excluded);
            for kv in db.scan((Included(lo.as_slice()), hi))?.take(max) {
                let kv = kv?;
                let body = &kv.key[2 + bucket.len()..];
                if body.len() < UPLOAD_ID_LEN + 1 {
                    return Err(corrupt("upload key", "too short"));
                }
                let (k, id) = body.split_at(body.len() - UPLOAD_ID_LEN - 1);
                let key = String::from_utf8(k.to_vec()).map_err(|e| corrupt("upload key", e))?;
                let id =
                    String::from_utf8(id[1..].to_vec()).map_err(|e| corrupt("upload id", e))?;
                out.push((key, id, decode(&kv.value, "upload")?));
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out.truncate(max);
        Ok(out)
    }
}
