//! A stream's consumer groups, pending entries and consumers as subkeys
//! (the layout is in [`super::store`]'s docs): the records and the
//! [`Stream`] methods that read and write them.

use std::ops::Bound;

use bytes::{BufMut, Bytes};

use super::id::{ID_BYTES, Id};
use super::store::{PAGE, Stream, as_ref, prefix_bounds, u64_at};
use crate::command::engine_error;
use crate::keyspace::Keyspace;
use crate::protocol::Frame;

const GROUP: u8 = b'g';
const NACK: u8 = b'p';
const CONSUMER: u8 = b'c';
const CONSUMER_PEL: u8 = b'q';

/// A consumer group's state.
#[derive(Debug, Clone)]
pub(super) struct Group {
    /// Its name.
    pub name: Bytes,
    /// The last id delivered to it.
    pub last_id: Id,
    /// Its read counter (`-1`: unknown).
    pub entries_read: i64,
    /// Entries in its pending list.
    pub pending: u64,
    /// Number of consumers.
    pub consumers: u64,
}

/// One pending entry (a delivered, unacknowledged message).
#[derive(Debug, Clone)]
pub(super) struct Nack {
    /// The consumer it was delivered to.
    pub consumer: Bytes,
    /// When it was last delivered (Unix ms).
    pub delivery_time: u64,
    /// How many times.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone)]
pub(super) struct Consumer {
    /// Its name.
    pub name: Bytes,
    /// When it last read or claimed (Unix ms).
    pub seen_time: u64,
    /// Entries in its pending list.
    pub pending: u64,
}

fn scoped(tag: u8, group: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + group.len() + 4 + ID_BYTES);
    out.push(tag);
    out.put_u32(group.len() as u32);
    out.put_slice(group);
    out
}

fn group_key(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + name.len());
    out.push(GROUP);
    out.put_slice(name);
    out
}

fn nack_key(group: &[u8], id: Id) -> Vec<u8> {
    let mut out = scoped(NACK, group);
    out.put_slice(&id.to_bytes());
    out
}

fn consumer_key(group: &[u8], consumer: &[u8]) -> Vec<u8> {
    let mut out = scoped(CONSUMER, group);
    out.put_slice(consumer);
    out
}

fn consumer_pel_prefix(group: &[u8], consumer: &[u8]) -> Vec<u8> {
    let mut out = scoped(CONSUMER_PEL, group);
    out.put_u32(consumer.len() as u32);
    out.put_slice(consumer);
    out
}

impl Stream {
    // ---- groups ----

    /// A consumer group.
    pub fn group(&self, ks: &mut Keyspace, name: &[u8]) -> Result<Option<Group>, Frame> {
        let value = ks
            .sub_get(&self.coll, &group_key(name))
            .map_err(engine_error)?;
        Ok(value.map(|v| decode_group(Bytes::copy_from_slice(name), &v)))
    }

    /// Stores a group's state.
    pub fn put_group(&self, ks: &mut Keyspace, group: &Group) -> Result<(), Frame> {
        let mut value = Vec::with_capacity(40);
        value.put_slice(&group.last_id.to_bytes());
        value.put_i64(group.entries_read);
        value.put_u64(group.pending);
        value.put_u64(group.consumers);
        ks.sub_put(&self.coll, &group_key(&group.name), &value)
            .map_err(engine_error)
    }

    /// Groups after `after` (by name), at most `limit`.
    pub fn groups(
        &self,
        ks: &mut Keyspace,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Group>, Frame> {
        let lower = after.map_or_else(|| vec![GROUP], group_key);
        let lower = match after {
            Some(_) => Bound::Excluded(lower.as_slice()),
            None => Bound::Included(lower.as_slice()),
        };
        let upper = [GROUP + 1];
        let page = self.page(ks, lower, Bound::Excluded(&upper), false, limit)?;
        Ok(page
            .iter()
            .map(|(sub, value)| decode_group(sub.slice(1..), value))
            .collect())
    }

    /// Deletes a group and everything under it.
    pub fn remove_group(&mut self, ks: &mut Keyspace, name: &[u8]) -> Result<(), Frame> {
        for tag in [NACK, CONSUMER, CONSUMER_PEL] {
            self.remove_prefix(ks, &scoped(tag, name))?;
        }
        ks.sub_remove(&self.coll, &group_key(name))
            .map_err(engine_error)?;
        self.meta.groups -= 1;
        Ok(())
    }

    fn remove_prefix(&self, ks: &mut Keyspace, prefix: &[u8]) -> Result<(), Frame> {
        let (lower, upper) = prefix_bounds(prefix);
        loop {
            let page = self.page(ks, as_ref(&lower), as_ref(&upper), false, PAGE)?;
            for (sub, _) in &page {
                ks.sub_remove(&self.coll, sub).map_err(engine_error)?;
            }
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }

    // ---- pending entries ----

    /// A group's pending entry for `id`.
    pub fn nack(&self, ks: &mut Keyspace, group: &[u8], id: Id) -> Result<Option<Nack>, Frame> {
        let value = ks
            .sub_get(&self.coll, &nack_key(group, id))
            .map_err(engine_error)?;
        Ok(value.map(|v| decode_nack(&v)))
    }

    /// Stores a pending entry (the caller keeps the counts right).
    pub fn put_nack(
        &self,
        ks: &mut Keyspace,
        group: &[u8],
        id: Id,
        nack: &Nack,
    ) -> Result<(), Frame> {
        let mut value = Vec::with_capacity(16 + nack.consumer.len());
        value.put_u64(nack.delivery_time);
        value.put_u64(nack.delivery_count);
        value.put_slice(&nack.consumer);
        ks.sub_put(&self.coll, &nack_key(group, id), &value)
            .map_err(engine_error)?;
        let mut index = consumer_pel_prefix(group, &nack.consumer);
        index.put_slice(&id.to_bytes());
        ks.sub_put(&self.coll, &index, b"").map_err(engine_error)
    }

    /// Deletes a pending entry from the group's and its consumer's lists
    /// (the caller keeps the counts right).
    pub fn remove_nack(
        &self,
        ks: &mut Keyspace,
        group: &[u8],
        id: Id,
        consumer: &[u8],
    ) -> Result<(), Frame> {
        ks.sub_remove(&self.coll, &nack_key(group, id))
            .map_err(engine_error)?;
        let mut index = consumer_pel_prefix(group, consumer);
        index.put_slice(&id.to_bytes());
        ks.sub_remove(&self.coll, &index).map_err(engine_error)
    }

    /// A group's pending entries with ids in `lo..=hi`, at most `limit`
    /// (`reverse`: from the top).
    pub fn pel(
        &self,
        ks: &mut Keyspace,
        group: &[u8],
        (lo, hi): (Id, Id),
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Id, Nack)>, Frame> {
        let page = self.by_id(ks, &scoped(NACK, group), (lo, hi), reverse, limit)?;
        Ok(page
            .into_iter()
            .map(|(id, value)| (id, decode_nack(&value)))
            .collect())
    }

    /// A consumer's pending ids in `lo..=hi`, at most `limit`.
    pub fn consumer_pel(
        &self,
        ks: &mut Keyspace,
        group: &[u8],
        consumer: &[u8],
        (lo, hi): (Id, Id),
        limit: usize,
    ) -> Result<Vec<Id>, Frame> {
        let prefix = consumer_pel_prefix(group, consumer);
        let page = self.by_id(ks, &prefix, (lo, hi), false, limit)?;
        Ok(page.into_iter().map(|(id, _)| id).collect())
    }

    // ---- consumers ----

    /// A consumer of `group`.
    pub fn consumer(
        &self,
        ks: &mut Keyspace,
        group: &[u8],
        name: &[u8],
    ) -> Result<Option<Consumer>, Frame> {
        let value = ks
            .sub_get(&self.coll, &consumer_key(group, name))
            .map_err(engine_error)?;
        Ok(value.map(|v| decode_consumer(Bytes::copy_from_slice(name), &v)))
    }

    /// Stores a consumer's state.
    pub fn put_consumer(
        &self,
        ks: &mut Keyspace,
        group: &[u8],
        consumer: &Consumer,
    ) -> Result<(), Frame> {
        let mut value = Vec::with_capacity(16);
        value.put_u64(consumer.seen_time);
        value.put_u64(consumer.pending);
        ks.sub_put(&self.coll, &consumer_key(group, &consumer.name), &value)
            .map_err(engine_error)
    }

    /// Deletes a consumer record (its pending entries are the caller's).
    pub fn remove_consumer(
        &self,
        ks: &mut Keyspace,
        group: &[u8],
        name: &[u8],
    ) -> Result<(), Frame> {
        ks.sub_remove(&self.coll, &consumer_key(group, name))
            .map_err(engine_error)
    }

    /// Consumers of `group` after `after` (by name), at most `limit`.
    pub fn consumers(
        &self,
        ks: &mut Keyspace,
        group: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Consumer>, Frame> {
        let prefix = scoped(CONSUMER, group);
        let (lower, upper) = prefix_bounds(&prefix);
        let after_key = after.map(|name| consumer_key(group, name));
        let lower = match &after_key {
            Some(key) => Bound::Excluded(key.as_slice()),
            None => as_ref(&lower),
        };
        let page = self.page(ks, lower, as_ref(&upper), false, limit)?;
        Ok(page
            .iter()
            .map(|(sub, value)| decode_consumer(sub.slice(prefix.len()..), value))
            .collect())
    }
}

fn decode_group(name: Bytes, value: &[u8]) -> Group {
    Group {
        name,
        last_id: Id::from_bytes(value).unwrap_or_default(),
        entries_read: u64_at(value, 16) as i64,
        pending: u64_at(value, 24),
        consumers: u64_at(value, 32),
    }
}

fn decode_nack(value: &Bytes) -> Nack {
    Nack {
        delivery_time: u64_at(value, 0),
        delivery_count: u64_at(value, 8),
        consumer: value.slice(16.min(value.len())..),
    }
}

fn decode_consumer(name: Bytes, value: &[u8]) -> Consumer {
    Consumer {
        name,
        seen_time: u64_at(value, 0),
        pending: u64_at(value, 8),
    }
}
