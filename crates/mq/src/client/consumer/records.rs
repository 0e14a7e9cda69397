//! What a fetched `records` field becomes for the consumer: [`Message`]s
//! decoded from whole record batches, from an offset on. Kept apart from the
//! group and fetch loop in `consumer` as it is a plain function of bytes.

use anyhow::anyhow;
use serde::Serialize;

use crate::log::batch::{BatchHeader, HEADER_BYTES, LOG_OVERHEAD};
use crate::log::records::{batch_payload, parse_records};

/// One record received.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (ms since 1970).
    pub timestamp_ms: i64,
    /// Its key, if any.
    #[serde(serialize_with = "lossy")]
    pub key: Option<Vec<u8>>,
    /// Its value (None: a tombstone).
    #[serde(serialize_with = "lossy")]
    pub value: Option<Vec<u8>>,
    /// Its headers, in order (keys as text, lossy; a null value is None).
    #[serde(serialize_with = "lossy_headers")]
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Message {
    /// The value of the last header named `key` (Kafka allows repeats; the
    /// last one wins, as in most clients' `lastHeader`).
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn lossy<S: serde::Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&String::from_utf8_lossy(b)),
        None => s.serialize_none(),
    }
}

fn lossy_headers<S: serde::Serializer>(
    headers: &[(String, Option<Vec<u8>>)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(headers.len()))?;
    for (key, value) in headers {
        map.serialize_entry(key, &value.as_deref().map(String::from_utf8_lossy))?;
    }
    map.end()
}

/// The records of a fetched `records` field from `from` on: whole batches
/// are decoded (CRC checked), control batches skipped, a trailing partial
/// batch ignored (the next fetch starts at it).
pub fn decode_records(
    topic: &str,
    partition: i32,
    mut data: &[u8],
    from: i64,
) -> anyhow::Result<Vec<Message>> {
    let mut out = Vec::new();
    while data.len() >= LOG_OVERHEAD {
        let length = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let total =
            usize::try_from(length).map_err(|_| anyhow!("negative batch length"))? + LOG_OVERHEAD;
        if total < HEADER_BYTES || total > data.len() {
            break;
        }
        let (batch, rest) = data.split_at(total);
        data = rest;
        let header = BatchHeader::parse(batch).map_err(|e| anyhow!("{topic}-{partition}: {e}"))?;
        if header.is_control() {
            continue;
        }
        let (header, payload) =
            batch_payload(batch).map_err(|e| anyhow!("{topic}-{partition}: {e}"))?;
        for r in parse_records(&payload, header.records_count)
            .map_err(|e| anyhow!("{topic}-{partition}: {e}"))?
        {
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset < from {
                continue;
            }
            let timestamp_ms = if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp + r.timestamp_delta
            };
            let headers = r
                .headers()
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        v.map(<[u8]>::to_vec),
                    )
                })
                .collect();
            out.push(Message {
                topic: topic.to_string(),
                partition,
                offset,
                timestamp_ms,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Compression;
    use crate::log::records::{NewRecord, encode_batch};

    #[test]
    fn records_decode_from_an_offset_and_a_partial_tail_is_left() {
        let records = [b"a", b"b", b"c"].map(|v| NewRecord {
            key: None,
            value: Some(v),
            timestamp_ms: 5,
            headers: &[],
        });
        let mut batch = encode_batch(&records, Compression::None).unwrap();
        crate::log::batch::set_base_offset(&mut batch, 10);
        let mut data = batch.clone();
        data.extend_from_slice(&batch[..20]);
        let got = decode_records("t", 0, &data, 11).unwrap();
        assert_eq!(
            got.iter().map(|m| m.offset).collect::<Vec<_>>(),
            vec![11, 12]
        );
        assert_eq!(got[0].value.as_deref(), Some(&b"b"[..]));
        assert_eq!(got[0].timestamp_ms, 5);
        let mut corrupt = batch.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(
            decode_records("t", 0, &corrupt, 0).is_err(),
            "CRC is checked"
        );
    }
}
