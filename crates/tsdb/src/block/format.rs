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
//! `index`: the magic `HSTSIDX1`, then the series (sorted by labels, their
//! position is their id): `labels: n u16 × (u16 len, bytes) × 2 | chunks: u32 ×
//! (min_t i64, max_t i64, offset u64, len u32)`; then the postings: `u32 ×
//! (name, value, n u32 × id u32)`, then a crc32c of everything before it. All
//! integers little-endian.

use crate::chunk;
use crate::codec::{Reader, put_str};
use crate::downsample::AggrPoint;
use crate::head::Sample;
use crate::index::Postings;
use crate::labels::{Label, Labels};

/// Magic of the chunks file.
pub const CHUNKS_MAGIC: &[u8; 8] = b"HSTSCHK1";
/// Magic of the index file.
pub const INDEX_MAGIC: &[u8; 8] = b"HSTSIDX1";
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
    let mut out = INDEX_MAGIC.to_vec();
    out.extend_from_slice(&(series.len() as u32).to_le_bytes());
    for s in series {
        out.extend_from_slice(&(s.labels.len() as u16).to_le_bytes());
        for l in s.labels.iter() {
            put_str(&mut out, &l.name);
            put_str(&mut out, &l.value);
        }
        out.extend_from_slice(&(s.chunks.len() as u32).to_le_bytes());
        for c in &s.chunks {
            out.extend_from_slice(&c.min_t.to_le_bytes());
            out.extend_from_slice(&c.max_t.to_le_bytes());
            out.extend_from_slice(&c.offset.to_le_bytes());
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
    if c.take(8) != Some(&INDEX_MAGIC[..]) {
        return Err("not an index file (bad magic)".into());
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
