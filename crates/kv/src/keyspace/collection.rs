//! Collections on any engine: the one place that reads and writes a
//! collection's metadata, so every data type follows the same rules.
//!
//! A type's commands (`command::hash`, `command::zset`, ...) never touch
//! [`Meta`] bytes or versions themselves. They ask for a [`Collection`]
//! (`read_collection` for a read, `write_collection` to create one if
//! absent, `existing_collection` to change one only if present), read and
//! write its subkeys through the keyspace, change `meta.len` / `meta.extra`
//! as they go, and end with [`Keyspace::save_collection`]. The rules that
//! hold for every type live here:
//! - a key of another type answers `WRONGTYPE` ([`KeyError::WrongType`]);
//! - a new collection gets a fresh version (unique per store, never reused,
//!   so it cannot see subkeys of a deleted predecessor on the lsm engine;
//!   the engine keeps a durable reserve so that this holds across restarts,
//!   also when the clock was set back);
//! - an empty collection does not exist: saving one with `len == 0` deletes
//!   the key, as Redis does — except a stream, which Redis keeps when empty
//!   (`XDEL` of its last entry, `XGROUP CREATE ... MKSTREAM`): its last id
//!   and consumer groups live on;
//! - every subkey write touches the key for `WATCH`.
//!
//! Subkey layout within a collection (e.g. a sorted set's member and score
//! namespaces) is the type module's business; this layer moves bytes.

use bytes::Bytes;

use super::Keyspace;
use crate::engine::{EngineError, SubRange};
use crate::value::{Entry, Extra, Kind, Meta, Value};

/// Most subkeys one range read may ask for whatever the client sent
/// (callers page through bigger ranges).
pub const SUB_RANGE_LIMIT_MAX: usize = 1 << 20;

/// Why a collection could not be used.
#[derive(Debug, Clone)]
pub enum KeyError {
    /// The key holds another type.
    WrongType,
    /// The engine failed.
    Engine(EngineError),
}

impl From<EngineError> for KeyError {
    fn from(err: EngineError) -> Self {
        KeyError::Engine(err)
    }
}

/// A live collection (see the module docs): its key, metadata and expiry.
#[derive(Debug, Clone)]
pub struct Collection {
    /// The key.
    pub key: Bytes,
    /// Type, version, length and the type's own fields.
    pub meta: Meta,
    /// The key's expiry (kept as is by `save_collection`).
    pub expire_at_ms: Option<u64>,
}

impl Collection {
    /// The number of elements.
    pub fn len(&self) -> u64 {
        self.meta.len
    }

    /// Whether it has no elements (only while being built or emptied).
    pub fn is_empty(&self) -> bool {
        self.meta.len == 0
    }
}

/// A key as a command has it: a slice, or already `Bytes` (an argument),
/// which a [`Collection`] then shares instead of copying.
pub trait KeyArg {
    /// The key's bytes.
    fn bytes(&self) -> &[u8];
    /// The key as `Bytes` (a copy only if it is not `Bytes` already).
    fn to_key(&self) -> Bytes;
}

impl KeyArg for [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn to_key(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl KeyArg for Bytes {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn to_key(&self) -> Bytes {
        self.clone()
    }
}

fn typed<K: KeyArg + ?Sized>(key: &K, entry: Entry, kind: Kind) -> Result<Collection, KeyError> {
    match entry.value {
        Value::Collection(meta) if meta.kind == kind => Ok(Collection {
            key: key.to_key(),
            meta,
            expire_at_ms: entry.expire_at_ms,
        }),
        _ => Err(KeyError::WrongType),
    }
}

impl Keyspace {
    /// A version no collection in this store has had (see the module docs):
    /// the clock in microseconds, or one more than the last (which starts at
    /// the engine's durable reserve, `Engine::version_floor`, so versions
    /// grow across restarts even when the clock went back).
    pub fn new_version(&mut self) -> Result<u64, EngineError> {
        let version = clock::now_us().max(self.last_version + 1);
        self.engine.reserve_version(version)?;
        self.last_version = version;
        Ok(version)
    }

    /// The collection at `key` for a read command (counts a hit or miss);
    /// `None` if absent, `WrongType` if the key holds another type.
    pub fn read_collection<K: KeyArg + ?Sized>(
        &mut self,
        key: &K,
        kind: Kind,
        now_ms: u64,
    ) -> Result<Option<Collection>, KeyError> {
        match self.get(key.bytes(), now_ms)? {
            Some(entry) => typed(key, entry, kind).map(Some),
            None => Ok(None),
        }
    }

    /// The collection at `key` for a write that only changes an existing
    /// one (`HDEL`, `LPUSHX`, `ZADD XX`): `None` if absent.
    pub fn existing_collection<K: KeyArg + ?Sized>(
        &mut self,
        key: &K,
        kind: Kind,
        now_ms: u64,
    ) -> Result<Option<Collection>, KeyError> {
        match self.lookup(key.bytes(), now_ms)? {
            Some(entry) => typed(key, entry, kind).map(Some),
            None => Ok(None),
        }
    }

    /// The collection at `key`, created empty (and stored, so subkeys can
    /// be written) if absent. Save it when done: an empty one is deleted.
    pub fn write_collection(
        &mut self,
        key: &Bytes,
        kind: Kind,
        now_ms: u64,
    ) -> Result<Collection, KeyError> {
        if let Some(found) = self.existing_collection(key, kind, now_ms)? {
            return Ok(found);
        }
        self.create_collection(key.clone(), kind, None)
            .map_err(KeyError::Engine)
    }

    /// Stores a new, empty collection at `key`, replacing whatever is
    /// there (the `*STORE` commands' destination, `RENAME`, `COPY`).
    pub fn create_collection(
        &mut self,
        key: Bytes,
        kind: Kind,
        expire_at_ms: Option<u64>,
    ) -> Result<Collection, EngineError> {
        let meta = Meta {
            kind,
            version: self.new_version()?,
            len: 0,
            extra: Extra::new(),
        };
        let collection = Collection {
            key,
            meta,
            expire_at_ms,
        };
        self.put_meta(&collection)?;
        Ok(collection)
    }

    fn put_meta(&mut self, c: &Collection) -> Result<(), EngineError> {
        let entry = Entry {
            value: Value::Collection(c.meta.clone()),
            expire_at_ms: c.expire_at_ms,
        };
        self.put(c.key.clone(), entry)
    }

    /// Writes the collection's metadata back (after its length or extra
    /// fields changed); deletes the key if it is empty (a stream excepted,
    /// see the module docs). Returns whether the key still exists.
    pub fn save_collection(&mut self, c: &Collection) -> Result<bool, EngineError> {
        if c.meta.len == 0 && c.meta.kind != Kind::Stream {
            self.touch(&c.key);
            if self.engine.remove(&c.key)? {
                self.raise(crate::config::NotifyFlags::GENERIC, "del", &c.key);
            }
            return Ok(false);
        }
        self.put_meta(c)?;
        Ok(true)
    }

    /// One subkey's value.
    pub fn sub_get(&mut self, c: &Collection, sub: &[u8]) -> Result<Option<Bytes>, EngineError> {
        self.engine.sub_get(&c.key, c.meta.version, sub)
    }

    /// Inserts or replaces a subkey (the caller keeps `meta.len` right).
    pub fn sub_put(&mut self, c: &Collection, sub: &[u8], value: &[u8]) -> Result<(), EngineError> {
        self.touch(&c.key);
        self.engine.sub_put(&c.key, c.meta.version, sub, value)
    }

    /// Deletes a subkey (the caller keeps `meta.len` right).
    pub fn sub_remove(&mut self, c: &Collection, sub: &[u8]) -> Result<(), EngineError> {
        self.touch(&c.key);
        self.engine.sub_remove(&c.key, c.meta.version, sub)
    }

    /// Deletes a subkey and returns its value (a pop; the caller keeps
    /// `meta.len` right).
    pub fn sub_take(&mut self, c: &Collection, sub: &[u8]) -> Result<Option<Bytes>, EngineError> {
        self.touch(&c.key);
        self.engine.sub_take(&c.key, c.meta.version, sub)
    }

    /// Appends the subkeys in `range` (at most [`SUB_RANGE_LIMIT_MAX`]).
    pub fn sub_range(
        &mut self,
        c: &Collection,
        range: &SubRange<'_>,
        out: &mut Vec<(Bytes, Bytes)>,
    ) -> Result<(), EngineError> {
        let range = SubRange {
            limit: range.limit.min(SUB_RANGE_LIMIT_MAX),
            ..*range
        };
        self.engine.sub_range(&c.key, c.meta.version, &range, out)
    }

    /// The values of the subkeys in `range`, without the subkeys (at most
    /// [`SUB_RANGE_LIMIT_MAX`]).
    pub fn sub_values(
        &mut self,
        c: &Collection,
        range: &SubRange<'_>,
        out: &mut Vec<Bytes>,
    ) -> Result<(), EngineError> {
        let range = SubRange {
            limit: range.limit.min(SUB_RANGE_LIMIT_MAX),
            ..*range
        };
        self.engine.sub_values(&c.key, c.meta.version, &range, out)
    }

    /// Copies a collection to `dst` under a new version, replacing what is
    /// there (`RENAME`, `COPY`, `MOVE`). O(elements): the subkeys are
    /// addressed by key, so a different key needs its own copies.
    pub fn copy_collection(
        &mut self,
        src: &Collection,
        dst: Bytes,
        expire_at_ms: Option<u64>,
    ) -> Result<Collection, EngineError> {
        const PAGE: usize = 1024;
        let mut copy = self.create_collection(dst, src.meta.kind, expire_at_ms)?;
        let mut page = Vec::with_capacity(PAGE);
        let mut after: Option<Bytes> = None;
        loop {
            page.clear();
            let range = SubRange {
                lower: after
                    .as_deref()
                    .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                upper: std::ops::Bound::Unbounded,
                reverse: false,
                limit: PAGE,
            };
            self.engine
                .sub_range(&src.key, src.meta.version, &range, &mut page)?;
            for (sub, value) in &page {
                self.engine
                    .sub_put(&copy.key, copy.meta.version, sub, value)?;
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => after = Some(last.clone()),
                _ => break,
            }
        }
        copy.meta.len = src.meta.len;
        copy.meta.extra = src.meta.extra.clone();
        self.save_collection(&copy)?;
        Ok(copy)
    }
}
