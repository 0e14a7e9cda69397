//! Versioning: every version of an object in a version table, the newest one in the
//! object table.
//!
//! Why a module: with versioning on, a PUT adds a version instead of replacing the
//! object, and a DELETE adds a *delete marker*; old versions stay readable by id until
//! deleted by id. Rows (in the shard of (bucket, key), so one batch changes both
//! tables atomically):
//!
//! | table | key | value |
//! |---|---|---|
//! | versions | `v` len(bucket) bucket key `\0` sort key | [`ObjectRow`] (maybe a delete marker) |
//! | objects | `o` len(bucket) bucket key | the newest version (maybe a delete marker) |
//!
//! The sort key is 16 hex digits of `u64::MAX - unix µs` then 8 random hex digits, so a
//! key's versions scan newest first; it is also the version id S3 clients see. The
//! *null* version (written while versioning is off or suspended) has a sort key too,
//! but its id is `null`, and a new null version replaces the old one (whose bytes are
//! freed). A bucket that never had versioning keeps exactly one (null) version per key,
//! so its behaviour is S3's unversioned one.

use super::{Chunk, Meta, ObjectRow, Result, bucket_prefix, decode, encode, object_key};

/// A bucket's versioning state, as S3 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled: PUT replaces, DELETE removes.
    Off,
    /// New versions get ids; DELETE adds a delete marker.
    Enabled,
    /// New versions are the null version; DELETE adds a null delete marker.
    Suspended,
}

impl Versioning {
    /// From the bucket row's stored word.
    pub fn from_word(s: Option<&str>) -> Self {
        match s {
            Some("Enabled") => Self::Enabled,
            Some("Suspended") => Self::Suspended,
            _ => Self::Off,
        }
    }
}

/// The `null` version id.
pub const NULL_VERSION: &str = "null";

/// A new sort key (and version id): newest sorts first.
pub fn new_sort_key() -> String {
    format!(
        "{:016x}{:08x}",
        u64::MAX - clock::now_us(),
        fastrand::u32(..)
    )
}

/// A version row's key.
pub(crate) fn version_key(bucket: &str, key: &str, sort_key: &str) -> Vec<u8> {
    let mut k = versions_of(bucket, key);
    k.extend_from_slice(sort_key.as_bytes());
    k
}

/// The prefix of every version row of (bucket, key).
fn versions_of(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = bucket_prefix(b'v', bucket);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k
}

/// What a versioned change did.
#[derive(Debug, Default)]
pub struct Change {
    /// Chunks no row names any more: the caller frees them in the data store.
    pub freed: Vec<Chunk>,
    /// The version id written (a new version or delete marker), if any.
    pub version_id: Option<String>,
    /// Whether the version written or deleted is a delete marker.
    pub delete_marker: bool,
}

impl Meta {
    /// The sort key of the null version of (bucket, key), with its row.
    fn null_version(&self, bucket: &str, key: &str) -> Result<Option<(String, ObjectRow)>> {
        let prefix = versions_of(bucket, key);
        for kv in self.db(bucket, key).scan_prefix(&prefix)? {
            let kv = kv?;
            let row: ObjectRow = decode(&kv.value, "version")?;
            if row.version_id.is_none() {
                let sort = String::from_utf8_lossy(&kv.key[prefix.len()..]).into_owned();
                return Ok(Some((sort, row)));
            }
        }
        Ok(None)
    }

    /// Adds the writes of a new version `row` (an object or a delete marker) under
    /// `mode` to `batch`. The caller holds the shard lock and writes the batch.
    pub(crate) fn stage_version(
        &self,
        batch: &mut lsm::WriteBatch,
        bucket: &str,
        key: &str,
        mut row: ObjectRow,
        mode: Versioning,
    ) -> Result<Change> {
        let mut change = Change {
            delete_marker: row.delete_marker,
            ..Change::default()
        };
        let sort = new_sort_key();
        if mode == Versioning::Enabled {
            row.version_id = Some(sort.clone());
            change.version_id = Some(sort.clone());
        } else {
            row.version_id = None;
            if mode == Versioning::Suspended {
                change.version_id = Some(NULL_VERSION.into());
            }
            if let Some((old_sort, old)) = self.null_version(bucket, key)? {
                batch.delete(&version_key(bucket, key, &old_sort));
                change.freed = old.chunks;
            }
        }
        if mode == Versioning::Off && row.delete_marker {
            // Unversioned DELETE: no marker, the object goes.
            batch.delete(&object_key(bucket, key));
            change.delete_marker = false;
            return Ok(change);
        }
        let value = encode(&row);
        batch.put(&version_key(bucket, key, &sort), &value);
        batch.put(&object_key(bucket, key), &value);
        Ok(change)
    }

    /// Writes a new version (an object or a delete marker) under `mode`, in one batch
    /// under the shard lock: see the module docs.
    pub fn put_version(
        &self,
        bucket: &str,
        key: &str,
        row: ObjectRow,
        mode: Versioning,
    ) -> Result<Change> {
        let _g = self.lock(bucket, key);
        let mut batch = lsm::WriteBatch::new();
        let change = self.stage_version(&mut batch, bucket, key, row, mode)?;
        self.db(bucket, key).write(&batch)?;
        Ok(change)
    }

    /// The version `version_id` (`null` for the null version) of (bucket, key).
    pub fn version(&self, bucket: &str, key: &str, version_id: &str) -> Result<Option<ObjectRow>> {
        if version_id == NULL_VERSION {
            return Ok(self.null_version(bucket, key)?.map(|(_, r)| r));
        }
        if !is_sort_key(version_id) {
            return Ok(None);
        }
        self.db(bucket, key)
            .get(&version_key(bucket, key, version_id))?
            .map(|v| decode(&v, "version"))
            .transpose()
    }

    /// Deletes version `version_id` of (bucket, key) for good; the newest remaining
    /// version becomes the object (or the object goes). `None` if no such version.
    pub fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<Change>> {
        let _g = self.lock(bucket, key);
        let found = if version_id == NULL_VERSION {
            self.null_version(bucket, key)?
        } else if is_sort_key(version_id) {
            self.db(bucket, key)
                .get(&version_key(bucket, key, version_id))?
                .map(|v| decode(&v, "version"))
                .transpose()?
                .map(|r| (version_id.to_string(), r))
        } else {
            None
        };
        let Some((sort, row)) = found else {
            return Ok(None);
        };
        let mut batch = lsm::WriteBatch::new();
        batch.delete(&version_key(bucket, key, &sort));
        // The newest version left (the scan is newest first) becomes current.
        let prefix = versions_of(bucket, key);
        let mut next = None;
        for kv in self.db(bucket, key).scan_prefix(&prefix)? {
            let kv = kv?;
            if kv.key[prefix.len()..] != *sort.as_bytes() {
                next = Some(kv.value);
                break;
            }
        }
        match next {
            Some(value) => batch.put(&object_key(bucket, key), &value),
            None => batch.delete(&object_key(bucket, key)),
        };
        self.db(bucket, key).write(&batch)?;
        Ok(Some(Change {
            delete_marker: row.delete_marker,
            version_id: Some(row.version_id.unwrap_or_else(|| NULL_VERSION.into())),
            freed: row.chunks,
        }))
    }
}

/// Whether `s` has the shape of a sort key (24 lower-case hex digits).
pub fn is_sort_key(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
