//! Records inside a v2 batch: parsing (for compaction and ListOffsets by time) and
//! building batches (compaction's rewrites, tests, simple clients).
//!
//! A record is the notes' message: key, value, offset (batch base + delta), timestamp
//! (batch base + delta), size (its length prefix), headers; CRC is per batch.
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint (-1 = null) | key | valueLength varint (-1 = null: a tombstone) | value
//! headerCount varint | (keyLength varint | key | valueLength varint | value)*
//! ```
//! Varints are zigzag LEB128 (protobuf's). Compaction keeps each surviving record's bytes
//! as they are (deltas stay valid because it keeps the batch's base offset and timestamp),
//! so only the batch header, count, compression and CRC are rewritten.

use super::LogError;
use super::batch::{self, BatchHeader, Compression, HEADER_BYTES, LOG_OVERHEAD};
use super::codec;

/// Largest decompressed record payload compaction will look at (a bigger batch is kept as
/// it is, unparsed).
pub const MAX_RECORDS_BYTES: usize = 64 << 20;

/// One record, borrowed from its batch's (decompressed) payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The whole encoded record, length prefix included.
    pub raw: &'a [u8],
    /// Offset minus the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp minus the batch's base timestamp.
    pub timestamp_delta: i64,
    /// The key (`None` = null).
    pub key: Option<&'a [u8]>,
    /// The value (`None` = null: a tombstone in a compacted topic).
    pub value: Option<&'a [u8]>,
    /// The encoded headers (count already read, validated): see [`RecordView::headers`].
    headers: &'a [u8],
    header_count: i32,
}

/// A record header: a key (text by convention, any bytes here) and a value
/// (`None` = null).
pub type Header<'a> = (&'a [u8], Option<&'a [u8]>);

impl<'a> RecordView<'a> {
    /// The record's headers, in order.
    pub fn headers(&self) -> Vec<Header<'a>> {
        let mut b = self.headers;
        let mut out = Vec::with_capacity(usize::try_from(self.header_count).unwrap_or(0));
        for _ in 0..self.header_count {
            // Validated by `parse_record`; a failure cannot happen but ends the list.
            let (Ok(Some(key)), Ok(value)) = (
                get_bytes(&mut b, "header key"),
                get_bytes(&mut b, "header value"),
            ) else {
                break;
            };
            out.push((key, value));
        }
        out
    }
}

/// A record to encode with [`encode_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// The key (`None` = null).
    pub key: Option<&'a [u8]>,
    /// The value (`None` = a tombstone).
    pub value: Option<&'a [u8]>,
    /// CreateTime in ms.
    pub timestamp_ms: i64,
    /// Headers, in order (keys must not be null).
    pub headers: &'a [Header<'a>],
}

/// Appends a zigzag varint.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Reads a zigzag varint of at most 10 bytes, advancing `buf`.
pub fn get_varint(buf: &mut &[u8]) -> Result<i64, String> {
    let mut z: u64 = 0;
    for i in 0..10 {
        let Some((&b, rest)) = buf.split_first() else {
            return Err("varint runs past the end".into());
        };
        *buf = rest;
        z |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn get_i32_varint(buf: &mut &[u8], what: &str) -> Result<i32, String> {
    i32::try_from(get_varint(buf)?).map_err(|_| format!("{what} out of range"))
}

/// A length-prefixed byte string (-1 = null), bounded by what is left.
fn get_bytes<'a>(buf: &mut &'a [u8], what: &str) -> Result<Option<&'a [u8]>, String> {
    let len = get_i32_varint(buf, what)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if len > buf.len() {
        return Err(format!("{what} of {len} bytes runs past the record"));
    }
    let (b, rest) = buf.split_at(len);
    *buf = rest;
    Ok(Some(b))
}

fn parse_record<'a>(body: &'a [u8], raw: &'a [u8]) -> Result<RecordView<'a>, String> {
    let mut b = body;
    let Some((_attributes, rest)) = b.split_first() else {
        return Err("empty record".into());
    };
    b = rest;
    let timestamp_delta = get_varint(&mut b)?;
    let offset_delta = get_i32_varint(&mut b, "offset delta")?;
    let key = get_bytes(&mut b, "key")?;
    let value = get_bytes(&mut b, "value")?;
    let header_count = get_i32_varint(&mut b, "header count")?;
    if header_count < 0 || header_count as usize > b.len() {
        return Err(format!(
            "header count {header_count} does not fit the record"
        ));
    }
    let headers = b;
    for _ in 0..header_count {
        if get_bytes(&mut b, "header key")?.is_none() {
            return Err("a header key is null".into());
        }
        get_bytes(&mut b, "header value")?;
    }
    if !b.is_empty() {
        return Err(format!(
            "{} stray bytes after the record's headers",
            b.len()
        ));
    }
    Ok(RecordView {
        raw,
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
        header_count,
    })
}

/// Parses `count` records from an uncompressed payload; every length is checked against
/// the bytes left before it is used.
pub fn parse_records(payload: &[u8], count: i32) -> Result<Vec<RecordView<'_>>, String> {
    let count = usize::try_from(count).map_err(|_| "negative record count")?;
    if count > payload.len() {
        return Err(format!(
            "{count} records cannot fit in {} bytes",
            payload.len()
        ));
    }
    let mut out = Vec::with_capacity(count);
    let mut rest = payload;
    let mut prev_delta = -1i64;
    for _ in 0..count {
        let start = rest;
        let len = get_i32_varint(&mut rest, "record length")?;
        let len = usize::try_from(len).map_err(|_| "negative record length")?;
        if len > rest.len() {
            return Err(format!("record of {len} bytes runs past the batch"));
        }
        let prefix = start.len() - rest.len();
        let raw = &start[..prefix + len];
        let r = parse_record(&rest[..len], raw)?;
        if i64::from(r.offset_delta) <= prev_delta {
            return Err("record offset deltas do not increase".into());
        }
        prev_delta = i64::from(r.offset_delta);
        out.push(r);
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return Err(format!("{} stray bytes after the last record", rest.len()));
    }
    Ok(out)
}

/// The header and the uncompressed record payload of a whole, CRC-checked batch.
pub fn batch_payload(batch: &[u8]) -> Result<(BatchHeader, Vec<u8>), String> {
    let header = BatchHeader::parse(batch).map_err(|e| e.to_string())?;
    BatchHeader::verify_crc(batch).map_err(|e| e.to_string())?;
    let payload = codec::decompress(
        header.compression(),
        &batch[HEADER_BYTES..],
        MAX_RECORDS_BYTES,
    )?;
    Ok((header, payload))
}

/// Builds a v2 batch from `template`'s header fields and already-encoded records (the
/// concatenated `raw` of each), compressing them with the template's codec and computing
/// `batchLength` and the CRC. `recordsCount` is set from `records_count`.
pub fn build_batch(
    template: &BatchHeader,
    raw_records: &[u8],
    records_count: i32,
) -> Result<Vec<u8>, LogError> {
    let body =
        codec::compress(template.compression(), raw_records).map_err(LogError::InvalidBatch)?;
    let total = HEADER_BYTES + body.len();
    let batch_length = i32::try_from(total - LOG_OVERHEAD)
        .map_err(|_| LogError::InvalidBatch("batch larger than 2 GiB".into()))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&template.base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&template.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]); // CRC, filled below
    out.extend_from_slice(&template.attributes.to_be_bytes());
    out.extend_from_slice(&template.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&template.base_timestamp.to_be_bytes());
    out.extend_from_slice(&template.max_timestamp.to_be_bytes());
    out.extend_from_slice(&template.producer_id.to_be_bytes());
    out.extend_from_slice(&template.producer_epoch.to_be_bytes());
    out.extend_from_slice(&template.base_sequence.to_be_bytes());
    out.extend_from_slice(&records_count.to_be_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out[batch::CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Encodes one record (offset and timestamp relative to the batch's base).
pub fn encode_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    r: &NewRecord<'_>,
) {
    let mut body =
        Vec::with_capacity(16 + r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len));
    body.push(0); // attributes (unused)
    put_varint(&mut body, timestamp_delta);
    put_varint(&mut body, i64::from(offset_delta));
    for field in [r.key, r.value] {
        match field {
            Some(b) => {
                put_varint(&mut body, b.len() as i64);
                body.extend_from_slice(b);
            }
            None => put_varint(&mut body, -1),
        }
    }
    put_varint(&mut body, r.headers.len() as i64);
    for (key, value) in r.headers {
        put_varint(&mut body, key.len() as i64);
        body.extend_from_slice(key);
        match value {
            Some(v) => {
                put_varint(&mut body, v.len() as i64);
                body.extend_from_slice(v);
            }
            None => put_varint(&mut body, -1),
        }
    }
    put_varint(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// Encodes `records` as one v2 batch at base offset 0 (the log assigns offsets), with no
/// idempotent-producer fields, compressed with `compression`. What a simple producer sends.
pub fn encode_batch(
    records: &[NewRecord<'_>],
    compression: Compression,
) -> Result<Vec<u8>, LogError> {
    if records.is_empty() {
        return Err(LogError::InvalidBatch(
            "a batch needs at least one record".into(),
        ));
    }
    let count = i32::try_from(records.len())
        .map_err(|_| LogError::InvalidBatch("too many records for one batch".into()))?;
    let base_timestamp = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(-1);
    let max_timestamp = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(-1);
    let mut raw = Vec::new();
    for (i, r) in records.iter().enumerate() {
        encode_record(&mut raw, i as i32, r.timestamp_ms - base_timestamp, r);
    }
    let template = BatchHeader {
        base_offset: 0,
        batch_length: 0,
        partition_leader_epoch: -1,
        magic: 2,
        crc: 0,
        attributes: compression.code(),
        last_offset_delta: count - 1,
        base_timestamp,
        max_timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count: count,
    };
    build_batch(&template, &raw, count)
}

/// The offset of the first record in `batch` with a timestamp `>= ts_ms`, or `None` if the
/// records cannot be read (the caller falls back to the batch's base offset).
pub fn first_offset_at_or_after(batch: &[u8], ts_ms: i64) -> Option<i64> {
    let (header, payload) = batch_payload(batch).ok()?;
    let records = parse_records(&payload, header.records_count).ok()?;
    records
        .iter()
        .find(|r| header.base_timestamp.saturating_add(r.timestamp_delta) >= ts_ms)
        .map(|r| header.base_offset + i64::from(r.offset_delta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX.into(),
            i32::MIN.into(),
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut s = &out[..];
            assert_eq!(get_varint(&mut s).unwrap(), v);
            assert!(s.is_empty());
        }
        assert!(get_varint(&mut &[0x80u8; 11][..]).is_err());
        assert!(get_varint(&mut &[0x80u8][..]).is_err());
    }

    #[test]
    fn a_built_batch_parses_back_with_every_codec() {
        let recs = [
            NewRecord {
                key: Some(b"k1"),
                value: Some(b"v1"),
                timestamp_ms: 1000,
                headers: &[(b"trace", Some(b"abc")), (b"empty", None)],
            },
            NewRecord {
                key: None,
                value: Some(b"v2"),
                timestamp_ms: 1005,
                headers: &[],
            },
            NewRecord {
                key: Some(b"k1"),
                value: None,
                timestamp_ms: 1003,
                headers: &[],
            },
        ];
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = encode_batch(&recs, codec).unwrap();
            let (h, payload) = batch_payload(&batch).unwrap();
            assert_eq!(
                (h.records_count, h.last_offset_delta, h.max_timestamp),
                (3, 2, 1005)
            );
            assert_eq!(h.compression(), codec);
            let parsed = parse_records(&payload, h.records_count).unwrap();
            let got: Vec<_> = parsed
                .iter()
                .map(|r| (r.key, r.value, r.offset_delta, r.timestamp_delta))
                .collect();
            assert_eq!(
                got,
                vec![
                    (Some(&b"k1"[..]), Some(&b"v1"[..]), 0, 0),
                    (None, Some(&b"v2"[..]), 1, 5),
                    (Some(&b"k1"[..]), None, 2, 3),
                ]
            );
            assert_eq!(
                parsed[0].headers(),
                vec![(&b"trace"[..], Some(&b"abc"[..])), (&b"empty"[..], None)]
            );
            assert!(parsed[1].headers().is_empty());
            assert_eq!(first_offset_at_or_after(&batch, 1004), Some(1));
        }
    }

    #[test]
    fn lying_lengths_are_errors_not_allocations() {
        // A record claiming 2^30 bytes, a count larger than the payload.
        let mut p = Vec::new();
        put_varint(&mut p, 1 << 30);
        assert!(parse_records(&p, 1).is_err());
        assert!(parse_records(&p, i32::MAX).is_err());
        let mut body = vec![0u8];
        put_varint(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, 1 << 20); // key length past the end
        let mut rec = Vec::new();
        put_varint(&mut rec, body.len() as i64);
        rec.extend_from_slice(&body);
        assert!(parse_records(&rec, 1).is_err());
    }
}
