//! The byte formats of a block's `chunks` and `index` files.
//!
//! Why a module: what is on disk is specified and checked in one place, and
//! every read is bounded and checksummed, so a bit flip is
//! [`crate::Error::Corrupt`], never a wrong answer or a panic.
//!
//! `chunks`: the magic `HSTSCHK1`, then records `len: u32 | crc32c: u32 |
//! kind: u8 | data` (`len` and the checksum cover kind and data). Kind 0 is one
//! Gorilla chunk of raw samples; kind 2 the same with values scaled to
//! integers (`k: u8` decimals, then the chunk; see [`chunk::decimal`]); kind 1
//! is a downsampled chunk: five Gorilla
//! chunks sharing timestamps (count, sum, min, max, last), each `len: u32 |
//! bytes`.
//!
//! `index` (version 2, magic `HSTSIDX2`): a symbol table (`u32` count, then
//! each distinct label name and value once, `u16` length + bytes, sorted),
//! then the series (sorted by labels, their position is their id): `labels:
//! v × (name symbol v, value symbol v) | chunks: v × (min_t − previous max_t
//! v, max_t − min_t v, offset − where the previous chunk ended v, len v)`,
//! then the postings: `v × (name symbol v, value symbol v, n v × id − previous
//! id v)`, then a crc32c of everything before it (`v`: a zigzag LEB128
//! varint). Symbols and deltas are what Prometheus's index does; they cut
//! the index to about a quarter of version 1, which wrote every label in
//! full and each chunk meta as 28 fixed bytes (`HSTSIDX1`, still read).
//! Fixed-width integers are little-endian.

use crate::chunk;
use crate::codec::{Reader, put_str, put_varint};
use crate::downsample::AggrPoint;
use crate::head::Sample;
use crate::index::Postings;
use crate::labels::{Label, Labels};

/// Magic of the chunks file.
pub const CHUNKS_MAGIC: &[u8; 8] = b"HSTSCHK1";
/// Magic of the index file written (version 2).
pub const INDEX_MAGIC: &[u8; 8] = b"HSTSIDX2";
/// Magic of the version-1 index file (still read).
pub const INDEX_MAGIC_V1: &[u8; 8] = b"HSTSIDX1";
/// Bytes of a chunk record header (len, crc).
pub const CHUNK_HEADER_BYTES: usize = 8;
/// Largest chunk record accepted on read.
pub const CHUNK_BYTES_MAX: u32 = 16 << 20;

const KIND_RAW: u8 = 0;
const KIND_AGGR: u8 = 1;
const KIND_RAW_DECIMAL: u8 = 2;

/// Where a chunk is and what it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    /// First timestamp.
    pub min_t: i64,
    /// Last timestamp.
    pub max_t: i64,
    /// Offset of its record in `chunks`.
    pub offset: u64,
    /// Bytes of its record (header included).
    pub len: u32,
}

/// A chunk's decoded content.
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkData {
    /// Raw samples.
    Raw(Vec<Sample>),
    /// Downsampled points.
    Aggr(Vec<AggrPoint>),
}

/// Appends a record of raw samples (strictly increasing timestamps) to `out`.
/// Values with few decimals are stored scaled to integers when that is
/// smaller and exact ([`chunk::decimal`]).
pub fn encode_raw(samples: &[Sample], out: &mut Vec<u8>) -> Option<()> {
    let data = chunk::encode(samples)?;
    let scaled = chunk::decimal::scale_for(samples.iter().map(|s| s.1))
        .and_then(|k| Some((k, chunk::decimal::encode_scaled(samples, k)?)))
        .filter(|(_, c)| c.len() < data.len());
    match scaled {
        Some((k, c)) => frame(KIND_RAW_DECIMAL, &[&[k], &c], out),
        None => frame(KIND_RAW, &[&data], out),
    }
    Some(())
}

/// Appends a record of downsampled points (strictly increasing times).
pub fn encode_aggr(points: &[AggrPoint], out: &mut Vec<u8>) -> Option<()> {
    let col = |f: fn(&AggrPoint) -> f64| {
        chunk::encode(&points.iter().map(|p| (p.t, f(p))).collect::<Vec<_>>())
    };
    let cols = [
        col(|p| p.count)?,
        col(|p| p.sum)?,
        col(|p| p.min)?,
        col(|p| p.max)?,
        col(|p| p.last)?,
    ];
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for c in cols {
        parts.push((c.len() as u32).to_le_bytes().to_vec());
        parts.push(c);
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    frame(KIND_AGGR, &refs, out);
    Some(())
}

fn frame(kind: u8, parts: &[&[u8]], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; CHUNK_HEADER_BYTES]);
    out.push(kind);
    for p in parts {
        out.extend_from_slice(p);
    }
    let body = &out[start + CHUNK_HEADER_BYTES..];
    let len = (body.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c(body).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Checks and decodes one chunk record.
pub fn decode_chunk(rec: &[u8]) -> Result<ChunkData, String> {
    let (h, body) = rec
        .split_at_checked(CHUNK_HEADER_BYTES)
        .ok_or("chunk record shorter than its header")?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if body.len() != len {
        return Err(format!("chunk record of {len} bytes, found {}", body.len()));
    }
    if crc32c::crc32c(body) != crc {
        return Err("chunk checksum mismatch".into());
    }
    match body.split_first() {
        Some((&KIND_RAW, data)) => Ok(ChunkData::Raw(chunk::decode(data)?)),
        Some((&KIND_RAW_DECIMAL, data)) => {
            let (k, c) = data
                .split_first()
                .ok_or("decimal chunk without its scale")?;
            Ok(ChunkData::Raw(chunk::decimal::decode_scaled(c, *k)?))
        }
        Some((&KIND_AGGR, mut rest)) => {
            let mut cols = Vec::with_capacity(5);
            for _ in 0..5 {
                let (n, r) = rest.split_at_checked(4).ok_or("short aggregate column")?;
                let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
                let (c, r) = r.split_at_checked(n).ok_or("short aggregate column")?;
                cols.push(chunk::decode(c)?);
                rest = r;
            }
            let n = cols[0].len();
            if cols.iter().any(|c| c.len() != n) {
                return Err("aggregate columns differ in length".into());
            }
            Ok(ChunkData::Aggr(
                (0..n)
                    .map(|i| AggrPoint {
                        t: cols[0][i].0,
                        count: cols[0][i].1,
                        sum: cols[1][i].1,
                        min: cols[2][i].1,
                        max: cols[3][i].1,
                        last: cols[4][i].1,
                    })
                    .collect(),
            ))
        }
        _ => Err("unknown chunk kind".into()),
    }
}

/// One series of a block's index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSeries {
    /// Its labels.
    pub labels: Labels,
    /// Its chunks, by time.
    pub chunks: Vec<ChunkMeta>,
}

/// Encodes the index file (series sorted by labels; their position is the id).
pub fn encode_index(series: &[IndexSeries], postings: &Postings) -> Vec<u8> {
    let entries: Vec<_> = postings.entries().collect();
    let mut symbols: Vec<&str> = series
        .iter()
        .flat_map(|s| {
            s.labels
                .iter()
                .flat_map(|l| [l.name.as_str(), l.value.as_str()])
        })
        .chain(entries.iter().flat_map(|(n, v, _)| [*n, *v]))
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    let sym = |s: &str| symbols.binary_search(&s).map_or(0, |i| i as i64);
    let mut out = INDEX_MAGIC.to_vec();
    out.extend_from_slice(&(symbols.len() as u32).to_le_bytes());
    for s in &symbols {
        put_str(&mut out, s);
    }
    put_varint(&mut out, series.len() as i64);
    let mut next_offset = CHUNKS_MAGIC.len() as u64;
    for s in series {
        put_varint(&mut out, s.labels.len() as i64);
        for l in s.labels.iter() {
            put_varint(&mut out, sym(&l.name));
            put_varint(&mut out, sym(&l.value));
        }
        put_varint(&mut out, s.chunks.len() as i64);
        let mut prev_max = 0i64;
        for c in &s.chunks {
            put_varint(&mut out, c.min_t.wrapping_sub(prev_max));
            put_varint(&mut out, c.max_t.wrapping_sub(c.min_t));
            put_varint(&mut out, c.offset.wrapping_sub(next_offset) as i64);
            put_varint(&mut out, i64::from(c.len));
            prev_max = c.max_t;
            next_offset = c.offset.wrapping_add(u64::from(c.len));
        }
    }
    put_varint(&mut out, entries.len() as i64);
    for (name, value, ids) in entries {
        put_varint(&mut out, sym(name));
        put_varint(&mut out, sym(value));
        put_varint(&mut out, ids.len() as i64);
        let mut prev = 0u64;
        for &id in ids {
            put_varint(&mut out, id.wrapping_sub(prev) as i64);
            prev = id;
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes version 2 after its magic (see the module docs).
fn decode_index_v2(mut c: Reader<'_>) -> Result<(Vec<IndexSeries>, Postings), String> {
    let short = || "index truncated".to_string();
    let ns = c.u32().ok_or_else(short)? as usize;
    if ns > c.remaining() / 2 {
        return Err("symbol count exceeds the file".into());
    }
    let mut symbols = Vec::with_capacity(ns);
    for _ in 0..ns {
        symbols.push(c.string().ok_or_else(short)?);
    }
    let count = |c: &mut Reader<'_>, per: usize, what: &str| -> Result<usize, String> {
        let n = c.varint().ok_or_else(short)?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= c.remaining() / per)
            .ok_or_else(|| format!("{what} count exceeds the file"))
    };
    let symbol = |c: &mut Reader<'_>| -> Result<String, String> {
        let i = c.varint().ok_or_else(short)?;
        usize::try_from(i)
            .ok()
            .and_then(|i| symbols.get(i))
            .cloned()
            .ok_or_else(|| format!("symbol {i} of {}", symbols.len()))
    };
    let n = count(&mut c, 2, "series")?;
    let mut series = Vec::with_capacity(n);
    let mut next_offset = CHUNKS_MAGIC.len() as u64;
    for _ in 0..n {
        let nl = count(&mut c, 2, "label")?;
        let mut labels = Vec::with_capacity(nl);
        for _ in 0..nl {
            let name = symbol(&mut c)?;
            let value = symbol(&mut c)?;
            labels.push(Label { name, value });
        }
        let nc = count(&mut c, 4, "chunk")?;
        let mut chunks = Vec::with_capacity(nc);
        let mut prev_max = 0i64;
        for _ in 0..nc {
            let min_t = prev_max.wrapping_add(c.varint().ok_or_else(short)?);
            let max_t = min_t.wrapping_add(c.varint().ok_or_else(short)?);
            let offset = next_offset.wrapping_add(c.varint().ok_or_else(short)? as u64);
            let len = u32::try_from(c.varint().ok_or_else(short)?)
                .map_err(|_| "chunk length out of range".to_string())?;
            chunks.push(ChunkMeta {
                min_t,
                max_t,
                offset,
                len,
            });
            prev_max = max_t;
            next_offset = offset.wrapping_add(u64::from(len));
        }
        series.push(IndexSeries {
            labels: Labels::from_stored(labels),
            chunks,
        });
    }
    let mut postings = Postings::default();
    let np = count(&mut c, 3, "postings")?;
    for _ in 0..np {
        let name = symbol(&mut c)?;
        let value = symbol(&mut c)?;
        let k = count(&mut c, 1, "postings list")?;
        let mut ids = Vec::with_capacity(k);
        let mut id = 0u64;
        for _ in 0..k {
            id = id.wrapping_add(c.varint().ok_or_else(short)? as u64);
            if id as usize >= series.len() {
                return Err(format!("postings name series {id} of {}", series.len()));
            }
            ids.push(id);
        }
        postings.insert_list(name, value, ids);
    }
    if c.remaining() != 0 {
        return Err("bytes after the postings".into());
    }
    postings.set_all((0..series.len() as u64).collect());
    Ok((series, postings))
}

/// Decodes and checks an index file.
pub fn decode_index(bytes: &[u8]) -> Result<(Vec<IndexSeries>, Postings), String> {
    let (body, crc) = bytes
        .split_at_checked(bytes.len().saturating_sub(4))
        .ok_or("index too short")?;
    if crc.len() != 4
        || crc32c::crc32c(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]])
    {
        return Err("index checksum mismatch".into());
    }
    let mut c = Reader(body);
    match c.take(8) {
        Some(m) if m == &INDEX_MAGIC[..] => return decode_index_v2(c),
        Some(m) if m == &INDEX_MAGIC_V1[..] => {}
        _ => return Err("not an index file (bad magic)".into()),
    }
    let short = || "index truncated".to_string();
    let n = c.u32().ok_or_else(short)? as usize;
    if n > body.len() / 6 {
        return Err("series count exceeds the file".into());
    }
    let mut series = Vec::with_capacity(n);
    for _ in 0..n {
        let nl = c.u16().ok_or_else(short)?;
        let mut labels = Vec::with_capacity(usize::from(nl));
        for _ in 0..nl {
            let name = c.string().ok_or_else(short)?;
            let value = c.string().ok_or_else(short)?;
            labels.push(Label { name, value });
        }
        let nc = c.u32().ok_or_else(short)? as usize;
        if nc > c.remaining() / 28 {
            return Err("chunk count exceeds the file".into());
        }
        let mut chunks = Vec::with_capacity(nc);
        for _ in 0..nc {
            chunks.push(ChunkMeta {
                min_t: c.u64().ok_or_else(short)? as i64,
                max_t: c.u64().ok_or_else(short)? as i64,
                offset: c.u64().ok_or_else(short)?,
                len: c.u32().ok_or_else(short)?,
            });
        }
        series.push(IndexSeries {
            labels: Labels::from_stored(labels),
            chunks,
        });
    }
    let mut postings = Postings::default();
    let np = c.u32().ok_or_else(short)?;
    for _ in 0..np {
        let name = c.string().ok_or_else(short)?;
        let value = c.string().ok_or_else(short)?;
        let k = c.u32().ok_or_else(short)? as usize;
        if k > c.remaining() / 4 {
            return Err("postings list exceeds the file".into());
        }
        let mut ids = Vec::with_capacity(k);
        for _ in 0..k {
            let id = u64::from(c.u32().ok_or_else(short)?);
            if id as usize >= series.len() {
                return Err(format!("postings name series {id} of {}", series.len()));
            }
            ids.push(id);
        }
        postings.insert_list(name, value, ids);
    }
    postings.set_all((0..series.len() as u64).collect());
    Ok((series, postings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Limits;

    /// Version 1 as it was written (blocks on disk still have it).
    fn encode_index_v1(series: &[IndexSeries], postings: &Postings) -> Vec<u8> {
        let mut out = INDEX_MAGIC_V1.to_vec();
        out.extend_from_slice(&(series.len() as u32).to_le_bytes());
        for s in series {
            out.extend_from_slice(&(s.labels.len() as u16).to_le_bytes());
            for l in s.labels.iter() {
                put_str(&mut out, &l.name);
                put_str(&mut out, &l.value);
            }
            out.extend_from_slice(&(s.chunks.len() as u32).to_le_bytes());
            for c in &s.chunks {
                for v in [c.min_t as u64, c.max_t as u64, c.offset] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&c.len.to_le_bytes());
            }
        }
        let entries: Vec<_> = postings.entries().collect();
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (name, value, ids) in entries {
            put_str(&mut out, name);
            put_str(&mut out, value);
            out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for &id in ids {
                out.extend_from_slice(&(id as u32).to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn index_v2_round_trips_is_smaller_and_v1_still_reads() {
        let mut series = Vec::new();
        let mut postings = Postings::default();
        let mut offset = CHUNKS_MAGIC.len() as u64;
        for i in 0..50u64 {
            let labels = Labels::new(
                [
                    ("__name__", "node_cpu_seconds_total".to_string()),
                    ("cpu", (i % 4).to_string()),
                    ("instance", format!("host-{}:9100", i / 4)),
                ],
                &Limits::default(),
            )
            .unwrap();
            let chunks = (0..4i64)
                .map(|k| {
                    let c = ChunkMeta {
                        min_t: 1_700_000_000_000 + k * 1_800_000,
                        max_t: 1_700_000_000_000 + k * 1_800_000 + 1_785_000,
                        offset,
                        len: 150 + (i as u32 % 7),
                    };
                    offset += u64::from(c.len);
                    c
                })
                .collect();
            series.push(IndexSeries { labels, chunks });
        }
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        for (id, s) in series.iter().enumerate() {
            postings.add(id as u64, &s.labels);
        }
        let v2 = encode_index(&series, &postings);
        let v1 = encode_index_v1(&series, &postings);
        for bytes in [&v2, &v1] {
            let (s, p) = decode_index(bytes).unwrap();
            assert_eq!(s, series);
            assert_eq!(
                p.entries().collect::<Vec<_>>(),
                postings.entries().collect::<Vec<_>>()
            );
        }
        assert!(
            v2.len() * 3 < v1.len(),
            "v2 {} B, v1 {} B",
            v2.len(),
            v1.len()
        );
        let mut bad = v2.clone();
        bad[20] ^= 1;
        assert!(decode_index(&bad).is_err());
    }
}
