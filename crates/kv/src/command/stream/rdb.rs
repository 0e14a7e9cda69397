//! A stream in and out of its RDB form ([`crate::rdb::stream`]), for
//! `DUMP`/`RESTORE` and full resynchronization. Unlike the other types a
//! stream cannot be rebuilt by its commands alone (a consumer's seen time,
//! a pending entry's delivery time and count, the counters `XSETID` does not
//! reach), so this reads and writes the store's records directly.

use bytes::Bytes;

use super::id::Id;
use super::pel::{Consumer, Group, Nack};
use super::store::{PAGE, Stream};
use crate::keyspace::Keyspace;
use crate::protocol::Frame;
use crate::rdb::stream::{
    RdbStream, StreamConsumer, StreamEntry, StreamGroup, StreamId, StreamNack,
};

fn to_rdb(id: Id) -> StreamId {
    StreamId {
        ms: id.ms,
        seq: id.seq,
    }
}

fn from_rdb(id: StreamId) -> Id {
    Id::new(id.ms, id.seq)
}

/// The stream at `key` in RDB form; `None` if there is none.
pub(crate) fn read(ks: &mut Keyspace, key: &[u8], now_ms: u64) -> Result<Option<RdbStream>, Frame> {
    let Some(s) = Stream::existing(ks, key, now_ms)? else {
        return Ok(None);
    };
    let mut out = RdbStream {
        last_id: to_rdb(s.meta.last_id),
        first_id: to_rdb(s.meta.first_id),
        max_deleted_id: to_rdb(s.meta.max_deleted),
        entries_added: s.meta.entries_added,
        ..RdbStream::default()
    };
    s.each_entry(ks, (Id::MIN, Id::MAX), false, 0, |_, e| {
        out.entries.push(StreamEntry {
            id: to_rdb(e.id),
            fields: e.fields,
        });
        Ok(true)
    })?;
    let mut after: Option<Bytes> = None;
    loop {
        let page = s.groups(ks, after.as_deref(), PAGE)?;
        for g in &page {
            out.groups.push(read_group(ks, &s, g)?);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.name.clone()),
            _ => break,
        }
    }
    Ok(Some(out))
}

fn read_group(ks: &mut Keyspace, s: &Stream, g: &Group) -> Result<StreamGroup, Frame> {
    let mut out = StreamGroup {
        name: g.name.clone(),
        last_id: to_rdb(g.last_id),
        entries_read: g.entries_read,
        pending: Vec::new(),
        consumers: Vec::new(),
    };
    let mut lo = Id::MIN;
    loop {
        let page = s.pel(ks, &g.name, (lo, Id::MAX), false, PAGE)?;
        let full = page.len() == PAGE;
        let last = page.last().map(|(id, _)| *id);
        for (id, nack) in page {
            out.pending.push(StreamNack {
                id: to_rdb(id),
                delivery_time_ms: nack.delivery_time,
                delivery_count: nack.delivery_count,
                consumer: nack.consumer,
            });
        }
        match last.and_then(Id::next) {
            Some(next) if full => lo = next,
            _ => break,
        }
    }
    let mut after: Option<Bytes> = None;
    loop {
        let page = s.consumers(ks, &g.name, after.as_deref(), PAGE)?;
        for c in &page {
            out.consumers.push(StreamConsumer {
                name: c.name.clone(),
                seen_time_ms: c.seen_time,
            });
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.name.clone()),
            _ => break,
        }
    }
    Ok(out)
}

/// Creates the stream `value` at `key` (which the caller has emptied).
pub(crate) fn write(
    ks: &mut Keyspace,
    key: &Bytes,
    value: &RdbStream,
    now_ms: u64,
) -> Result<(), Frame> {
    let mut s = Stream::create(ks, key, now_ms)?;
    for entry in &value.entries {
        s.append(ks, from_rdb(entry.id), &entry.fields)?;
    }
    s.meta.last_id = from_rdb(value.last_id);
    s.meta.first_id = from_rdb(value.first_id);
    s.meta.max_deleted = from_rdb(value.max_deleted_id);
    s.meta.entries_added = value.entries_added;
    s.meta.groups = value.groups.len() as u64;
    for g in &value.groups {
        for nack in &g.pending {
            let record = Nack {
                consumer: nack.consumer.clone(),
                delivery_time: nack.delivery_time_ms,
                delivery_count: nack.delivery_count,
            };
            s.put_nack(ks, &g.name, from_rdb(nack.id), &record)?;
        }
        for c in &g.consumers {
            let pending = g.pending.iter().filter(|n| n.consumer == c.name).count();
            let record = Consumer {
                name: c.name.clone(),
                seen_time: c.seen_time_ms,
                pending: pending as u64,
            };
            s.put_consumer(ks, &g.name, &record)?;
        }
        let group = Group {
            name: g.name.clone(),
            last_id: from_rdb(g.last_id),
            entries_read: g.entries_read,
            pending: g.pending.len() as u64,
            consumers: g.consumers.len() as u64,
        };
        s.put_group(ks, &group)?;
    }
    s.save(ks)
}
