//! A stream's RDB form (`rdb.c`'s `RDB_TYPE_STREAM_LISTPACKS*`): the
//! entries as listpacks keyed by a master id in a radix tree, then the
//! stream's ids and counters, then its consumer groups with their pending
//! entries and consumers.
//!
//! ```text
//!  nodes: len, then per node: string(master id, 16 bytes BE), string(listpack)
//!    listpack: count, deleted, n, field×n, 0 (the master entry), then per entry
//!              flags, ms-diff, seq-diff, [n, (field, value)×n | value×master n], lp-count
//!  length, last id (ms, seq)
//!  [v2+] first id, max deleted id, entries added
//!  groups: len, then name, last id, [v2+] entries read,
//!          PEL: len, then id (16 bytes BE), delivery time (8 LE), delivery count
//!          consumers: len, then name, seen time (8 LE), [v3] active time (8 LE),
//!                     PEL: len, then id (16 bytes BE)
//! ```
//!
//! We read all three versions (15: Redis 5–6, 19: 7.0, 21: 7.2) and write
//! 19, what Redis 7.0 writes and every Redis since 7.0 loads. Entries flagged
//! deleted in a node are skipped on read (only their effect on the counters
//! is kept); we write live entries only, each node's first entry's fields as
//! its master fields, as Redis does when it starts a node.

use bytes::Bytes;

use super::compact::{ListpackWriter, listpack_entries};
use super::{Cursor, RdbError, put_len, put_string};

/// `RDB_TYPE_STREAM_LISTPACKS` (Redis 5–6).
pub const TYPE_STREAM_1: u8 = 15;
/// `RDB_TYPE_STREAM_LISTPACKS_2` (Redis 7.0).
pub const TYPE_STREAM_2: u8 = 19;
/// `RDB_TYPE_STREAM_LISTPACKS_3` (Redis 7.2).
pub const TYPE_STREAM_3: u8 = 21;

/// Entries per listpack node we write (Redis's `stream-node-max-entries`).
pub const NODE_ENTRIES: usize = 100;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// A stream entry id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    fn to_be(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    fn from_be(raw: &[u8]) -> Result<StreamId, RdbError> {
        if raw.len() != 16 {
            return Err(RdbError::Format("stream id is not 16 bytes"));
        }
        let half = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            u64::from_be_bytes(b)
        };
        Ok(StreamId {
            ms: half(0),
            seq: half(8),
        })
    }
}

/// One live entry: its id and `field, value, field, value...`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    /// Its id.
    pub id: StreamId,
    /// Fields and values, flat.
    pub fields: Vec<Bytes>,
}

/// A delivered, unacknowledged entry of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamNack {
    /// The entry's id.
    pub id: StreamId,
    /// Last delivery (Unix ms).
    pub delivery_time_ms: u64,
    /// Deliveries so far.
    pub delivery_count: u64,
    /// The consumer that owns it.
    pub consumer: Bytes,
}

/// A consumer of a group (its pending entries are the group's nacks it owns).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConsumer {
    /// Its name.
    pub name: Bytes,
    /// When it was last seen (Unix ms).
    pub seen_time_ms: u64,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamGroup {
    /// Its name.
    pub name: Bytes,
    /// Last delivered id.
    pub last_id: StreamId,
    /// Its read counter (`-1`: unknown).
    pub entries_read: i64,
    /// Its pending entries, ascending by id.
    pub pending: Vec<StreamNack>,
    /// Its consumers, by name.
    pub consumers: Vec<StreamConsumer>,
}

/// A whole stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RdbStream {
    /// Live entries, ascending by id.
    pub entries: Vec<StreamEntry>,
    /// The last id generated.
    pub last_id: StreamId,
    /// The first live entry's id as recorded (`0-0` when empty).
    pub first_id: StreamId,
    /// The largest id ever deleted.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups, by name.
    pub groups: Vec<StreamGroup>,
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_len(out, id.ms);
    put_len(out, id.seq);
}

fn put_ms(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

/// Appends a stream's body (after its type byte [`TYPE_STREAM_2`]).
pub fn encode(out: &mut Vec<u8>, s: &RdbStream) {
    let nodes: Vec<&[StreamEntry]> = s.entries.chunks(NODE_ENTRIES).collect();
    put_len(out, nodes.len() as u64);
    for node in nodes {
        let master = node[0].id;
        let master_fields: Vec<&Bytes> = node[0].fields.iter().step_by(2).collect();
        let mut lp = ListpackWriter::new();
        lp.int(node.len() as i64);
        lp.int(0);
        lp.int(master_fields.len() as i64);
        for field in &master_fields {
            lp.string(field);
        }
        lp.int(0);
        for entry in node {
            let names: Vec<&Bytes> = entry.fields.iter().step_by(2).collect();
            let same = names == master_fields;
            let n = entry.fields.len() / 2;
            lp.int(if same { FLAG_SAMEFIELDS } else { 0 });
            lp.int(entry.id.ms.wrapping_sub(master.ms) as i64);
            lp.int(entry.id.seq.wrapping_sub(master.seq) as i64);
            if same {
                for value in entry.fields.iter().skip(1).step_by(2) {
                    lp.string(value);
                }
                lp.int(n as i64 + 3);
            } else {
                lp.int(n as i64);
                for item in &entry.fields {
                    lp.string(item);
                }
                lp.int(2 * n as i64 + 4);
            }
        }
        put_string(out, &master.to_be());
        put_string(out, &lp.finish());
    }
    put_len(out, s.entries.len() as u64);
    put_id(out, s.last_id);
    put_id(out, s.first_id);
    put_id(out, s.max_deleted_id);
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for g in &s.groups {
        put_string(out, &g.name);
        put_id(out, g.last_id);
        put_len(out, g.entries_read as u64);
        put_len(out, g.pending.len() as u64);
        for nack in &g.pending {
            out.extend_from_slice(&nack.id.to_be());
            put_ms(out, nack.delivery_time_ms);
            put_len(out, nack.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for c in &g.consumers {
            put_string(out, &c.name);
            put_ms(out, c.seen_time_ms);
            let owned: Vec<&StreamNack> =
                g.pending.iter().filter(|n| n.consumer == c.name).collect();
            put_len(out, owned.len() as u64);
            for nack in owned {
                out.extend_from_slice(&nack.id.to_be());
            }
        }
    }
}

fn read_id(cur: &mut Cursor<'_>) -> Result<StreamId, RdbError> {
    Ok(StreamId {
        ms: cur.length()?,
        seq: cur.length()?,
    })
}

fn read_ms(cur: &mut Cursor<'_>) -> Result<u64, RdbError> {
    cur.u64_le()
}

fn int(item: Option<&Bytes>) -> Result<i64, RdbError> {
    item.and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(RdbError::Format("stream listpack integer"))
}

/// The live entries of one node (master id `master`), appended to `out`.
fn read_node(master: StreamId, lp: &[u8], out: &mut Vec<StreamEntry>) -> Result<(), RdbError> {
    let items = listpack_entries(lp)?;
    if items.is_empty() {
        return Err(RdbError::Format("empty listpack inside stream"));
    }
    let mut it = items.iter();
    let count = int(it.next())?;
    let deleted = int(it.next())?;
    let master_n = int(it.next())?;
    if count < 0 || deleted < 0 || master_n < 0 || master_n as usize > items.len() {
        return Err(RdbError::Format("stream master entry"));
    }
    let master_fields: Vec<Bytes> = (0..master_n)
        .map(|_| {
            it.next()
                .cloned()
                .ok_or(RdbError::Format("stream master entry"))
        })
        .collect::<Result<_, _>>()?;
    if int(it.next())? != 0 {
        return Err(RdbError::Format("stream master entry terminator"));
    }
    let (mut live, mut dead) = (0i64, 0i64);
    while let Some(flags) = it.next() {
        let flags = int(Some(flags))?;
        let ms = master.ms.wrapping_add(int(it.next())? as u64);
        let seq = master.seq.wrapping_add(int(it.next())? as u64);
        let mut fields = Vec::new();
        let lp_count = if flags & FLAG_SAMEFIELDS != 0 {
            for name in &master_fields {
                let value = it
                    .next()
                    .ok_or(RdbError::Format("stream entry truncated"))?;
                fields.push(name.clone());
                fields.push(value.clone());
            }
            master_n + 3
        } else {
            let n = int(it.next())?;
            if n < 0 || n as usize > items.len() {
                return Err(RdbError::Format("stream entry field count"));
            }
            for _ in 0..2 * n {
                fields.push(
                    it.next()
                        .ok_or(RdbError::Format("stream entry truncated"))?
                        .clone(),
                );
            }
            2 * n + 4
        };
        if int(it.next())? != lp_count {
            return Err(RdbError::Format("stream entry lp-count"));
        }
        if flags & FLAG_DELETED != 0 {
            dead += 1;
            continue;
        }
        live += 1;
        let id = StreamId { ms, seq };
        if out.last().is_some_and(|last| last.id >= id) {
            return Err(RdbError::Format("stream entries out of order"));
        }
        out.push(StreamEntry { id, fields });
    }
    if live != count || dead != deleted {
        return Err(RdbError::Format("stream node counts"));
    }
    Ok(())
}

/// Reads a stream body of type `kind` (one of the `TYPE_STREAM_*`).
pub fn decode(kind: u8, cur: &mut Cursor<'_>) -> Result<RdbStream, RdbError> {
    let mut s = RdbStream::default();
    let nodes = cur.count(2)?;
    for _ in 0..nodes {
        let master = StreamId::from_be(&cur.string()?)?;
        let lp = cur.string()?;
        read_node(master, &lp, &mut s.entries)?;
    }
    let length = cur.length()?;
    if length != s.entries.len() as u64 {
        return Err(RdbError::Format("stream length mismatch"));
    }
    s.last_id = read_id(cur)?;
    if s.entries.last().is_some_and(|e| e.id > s.last_id) {
        return Err(RdbError::Format("stream entry after the last id"));
    }
    if kind == TYPE_STREAM_1 {
        s.first_id = s.entries.first().map_or_else(StreamId::default, |e| e.id);
        s.entries_added = length;
    } else {
        s.first_id = read_id(cur)?;
        s.max_deleted_id = read_id(cur)?;
        s.entries_added = cur.length()?;
    }
    let groups = cur.count(4)?;
    for _ in 0..groups {
        let name = cur.string()?;
        if s.groups.iter().any(|g| g.name == name) {
            return Err(RdbError::Format("duplicated consumer group name"));
        }
        let last_id = read_id(cur)?;
        let entries_read = if kind == TYPE_STREAM_1 {
            -1
        } else {
            cur.length()? as i64
        };
        let n = cur.count(25)?;
        let mut pending: Vec<StreamNack> = Vec::with_capacity(n);
        for _ in 0..n {
            let id = StreamId::from_be(cur.take(16)?)?;
            if pending.last().is_some_and(|last| last.id >= id) {
                return Err(RdbError::Format("duplicated global PEL entry"));
            }
            pending.push(StreamNack {
                id,
                delivery_time_ms: read_ms(cur)?,
                delivery_count: cur.length()?,
                consumer: Bytes::new(),
            });
        }
        let mut owned_by_any = vec![false; pending.len()];
        let n = cur.count(10)?;
        let mut consumers: Vec<StreamConsumer> = Vec::with_capacity(n);
        for _ in 0..n {
            let name = cur.string()?;
            if consumers.iter().any(|c| c.name == name) {
                return Err(RdbError::Format("duplicated consumer name"));
            }
            let seen_time_ms = read_ms(cur)?;
            if kind == TYPE_STREAM_3 {
                read_ms(cur)?; // active time: not kept
            }
            let owned = cur.count(16)?;
            for _ in 0..owned {
                let id = StreamId::from_be(cur.take(16)?)?;
                let at = pending
                    .binary_search_by(|n| n.id.cmp(&id))
                    .map_err(|_| RdbError::Format("consumer entry not found in group PEL"))?;
                if owned_by_any[at] {
                    return Err(RdbError::Format("PEL entry owned twice"));
                }
                owned_by_any[at] = true;
                pending[at].consumer = name.clone();
            }
            consumers.push(StreamConsumer { name, seen_time_ms });
        }
        if owned_by_any.contains(&false) {
            return Err(RdbError::Format("group PEL entry without consumer"));
        }
        s.groups.push(StreamGroup {
            name,
            last_id,
            entries_read,
            pending,
            consumers,
        });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{RDB_VERSION, RdbValue, crc64, dump_payload, parse_dump_payload};

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    fn sample() -> RdbStream {
        let entries = (0..230u64)
            .map(|i| StreamEntry {
                id: id(1_700_000_000_000 + i / 2, i % 2),
                fields: if i % 9 == 0 {
                    vec![
                        Bytes::from("other"),
                        Bytes::from(vec![b'v'; i as usize * 30]),
                    ]
                } else {
                    vec![
                        Bytes::from("n"),
                        Bytes::from(i.to_string()),
                        Bytes::from("neg"),
                        Bytes::from(format!("-{i}")),
                    ]
                },
            })
            .collect();
        let nack = |i: u64, consumer: &str| StreamNack {
            id: id(1_700_000_000_000 + i / 2, i % 2),
            delivery_time_ms: 1_800_000_000_000 + i,
            delivery_count: i % 5 + 1,
            consumer: Bytes::from(consumer.to_string()),
        };
        RdbStream {
            entries,
            last_id: id(1_700_000_000_200, 7),
            first_id: id(1_700_000_000_000, 0),
            max_deleted_id: id(1_700_000_000_150, 0),
            entries_added: 260,
            groups: vec![
                StreamGroup {
                    name: Bytes::from("g1"),
                    last_id: id(1_700_000_000_100, 1),
                    entries_read: 180,
                    pending: vec![nack(3, "alice"), nack(4, "bob"), nack(150, "alice")],
                    consumers: ["alice", "bob", "carol"]
                        .iter()
                        .map(|n| StreamConsumer {
                            name: Bytes::from(n.to_string()),
                            seen_time_ms: 1_800_000_000_500,
                        })
                        .collect(),
                },
                StreamGroup {
                    name: Bytes::from("g2"),
                    last_id: StreamId::default(),
                    entries_read: -1,
                    pending: vec![],
                    consumers: vec![],
                },
            ],
        }
    }

    #[test]
    fn streams_round_trip() {
        for value in [sample(), RdbStream::default()] {
            let value = RdbValue::Stream(Box::new(value));
            assert_eq!(parse_dump_payload(&dump_payload(&value)).unwrap(), value);
        }
    }

    /// The body with a correct footer, so a corruption reaches the decoder.
    fn reseal(body: &[u8]) -> Vec<u8> {
        let mut out = body.to_vec();
        out.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn corrupt_stream_bodies_are_refused_without_panicking() {
        let mut small = sample();
        small.entries.truncate(5);
        small.groups[0].pending.truncate(2);
        let payload = dump_payload(&RdbValue::Stream(Box::new(small)));
        let body = &payload[..payload.len() - 10];
        for i in 0..body.len() {
            for flip in [0x01, 0x41, 0xff] {
                let mut bad = body.to_vec();
                bad[i] ^= flip;
                // Some flips still decode (a changed value); none may panic.
                let _ = parse_dump_payload(&reseal(&bad));
            }
        }
        for cut in 0..body.len() {
            assert!(
                parse_dump_payload(&reseal(&body[..cut])).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn huge_claimed_counts_allocate_nothing() {
        for at in 0..4 {
            // nodes, then (empty stream) groups, PEL, consumers: each claims 2^64-1.
            let mut body = vec![TYPE_STREAM_2];
            let mut lengths = [0u64; 4];
            lengths[at] = u64::MAX;
            put_len(&mut body, lengths[0]);
            if at > 0 {
                put_len(&mut body, 0); // length
                for _ in 0..6 {
                    put_len(&mut body, 0); // last, first, max deleted ids
                }
                put_len(&mut body, 0); // entries added
                put_len(&mut body, if at == 1 { u64::MAX } else { 1 });
                if at > 1 {
                    put_string(&mut body, b"g");
                    put_len(&mut body, 0);
                    put_len(&mut body, 0);
                    put_len(&mut body, 0); // entries read
                    put_len(&mut body, lengths[2]);
                    if at > 2 {
                        put_len(&mut body, lengths[3]);
                    }
                }
            }
            assert_eq!(
                parse_dump_payload(&reseal(&body)),
                Err(RdbError::Format("count larger than the data")),
                "count #{at}"
            );
        }
    }

    #[test]
    fn a_consumer_owning_an_unknown_entry_is_refused() {
        // Alice owns an id that is then cut from the group PEL.
        let mut forged = sample();
        forged.groups[0].pending.remove(0);
        forged.groups[0].pending.insert(
            0,
            StreamNack {
                id: id(1_700_000_000_001, 1),
                delivery_time_ms: 0,
                delivery_count: 1,
                consumer: Bytes::from("alice"),
            },
        );
        let mut good = vec![TYPE_STREAM_2];
        encode(&mut good, &forged);
        // Drop that nack from the group PEL only: 16 + 8 + 1 bytes.
        let needle = id(1_700_000_000_001, 1).to_be();
        let at = good.windows(16).position(|w| w == needle).unwrap();
        good.drain(at..at + 25);
        let pel_len_at = good[..at].iter().rposition(|&b| b == 3).unwrap();
        good[pel_len_at] = 2;
        assert_eq!(
            parse_dump_payload(&reseal(&good)),
            Err(RdbError::Format("consumer entry not found in group PEL"))
        );
    }
}
