//! How a chunk becomes what each data node stores: whole copies (replication) or
//! erasure-coded shards, each behind a 16-byte header saying which.
//!
//! Why a header: a stored record then describes itself (scheme, shard index, the
//! chunk's length), so a read can check it got what it asked for, and a node's
//! contents can be rebuilt without the metadata service. Erasure coding splits a chunk
//! into `data` shards of equal, even length (the `reed-solomon-simd` crate's rule; the
//! last is zero-padded) and computes `parity` recovery shards; any `data` of the
//! `data + parity` shards give the chunk back. 4+2 stores 1.5x the bytes and survives
//! any two lost nodes; 3-way replication stores 3x and survives two as well.

use crate::{Error, Result};

/// Bytes of the header in front of every stored copy or shard.
pub const HEADER_BYTES: usize = 16;
const MAGIC: u8 = 0xC5;
const VERSION: u8 = 1;

/// A bucket's durability target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `copies` whole copies; a write is acknowledged once `write_quorum` are fsynced.
    Replicate {
        /// Copies kept.
        copies: u8,
        /// Copies fsynced before a write is acknowledged.
        write_quorum: u8,
    },
    /// `data + parity` shards on as many nodes; acknowledged once `data + 1` are fsynced
    /// (so an acknowledged chunk survives one more loss before repair).
    Erasure {
        /// Data shards.
        data: u8,
        /// Recovery shards.
        parity: u8,
    },
}

impl Durability {
    /// 3 copies, acknowledged on 2 (a majority: any 2 surviving nodes hold one).
    pub const REPLICATE_3: Durability = Durability::Replicate {
        copies: 3,
        write_quorum: 2,
    };
    /// 4 data + 2 parity shards.
    pub const EC_4_2: Durability = Durability::Erasure { data: 4, parity: 2 };

    /// Nodes a chunk is written to.
    pub fn width(self) -> usize {
        match self {
            Durability::Replicate { copies, .. } => copies as usize,
            Durability::Erasure { data, parity } => (data + parity) as usize,
        }
    }

    /// Writes that must be fsynced before acknowledging.
    pub fn write_quorum(self) -> usize {
        match self {
            Durability::Replicate { write_quorum, .. } => write_quorum as usize,
            Durability::Erasure { data, parity } => {
                (data as usize + 1).min((data + parity) as usize)
            }
        }
    }

    /// Parses `replicate3`, `replicate<N>`, `ec4+2` or `ec<K>+<M>`.
    pub fn parse(s: &str) -> Option<Durability> {
        if let Some(n) = s.strip_prefix("replicate") {
            let copies: u8 = n.parse().ok().filter(|&c| (1..=7).contains(&c))?;
            return Some(Durability::Replicate {
                copies,
                write_quorum: copies / 2 + 1,
            });
        }
        let (k, m) = s.strip_prefix("ec")?.split_once('+')?;
        let data: u8 = k.parse().ok().filter(|&k| (1..=16).contains(&k))?;
        let parity: u8 = m.parse().ok().filter(|&m| (1..=8).contains(&m))?;
        Some(Durability::Erasure { data, parity })
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Durability::Replicate { copies, .. } => write!(f, "replicate{copies}"),
            Durability::Erasure { data, parity } => write!(f, "ec{data}+{parity}"),
        }
    }
}

/// The parsed header of a stored copy or shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The scheme (a replica's `write_quorum` is not stored: reported as 0).
    pub durability: Durability,
    /// Shard index (0 for a copy).
    pub index: u8,
    /// The whole chunk's length in bytes.
    pub len: u64,
}

fn header(durability: Durability, index: u8, len: u64) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0] = MAGIC;
    h[1] = VERSION;
    match durability {
        Durability::Replicate { copies, .. } => {
            h[2] = 1;
            h[3] = copies;
        }
        Durability::Erasure { data, parity } => {
            h[2] = 2;
            h[3] = data;
            h[4] = parity;
        }
    }
    h[5] = index;
    h[8..].copy_from_slice(&len.to_be_bytes());
    h
}

/// Splits a stored record into its header and body.
pub fn parse(record: &[u8]) -> Result<(Header, &[u8])> {
    let bad = |d: &str| Error::InvalidArgument(format!("stored chunk record: {d}"));
    if record.len() < HEADER_BYTES || record[0] != MAGIC || record[1] != VERSION {
        return Err(bad("no layout header"));
    }
    let durability = match record[2] {
        1 => Durability::Replicate {
            copies: record[3],
            write_quorum: 0,
        },
        2 => Durability::Erasure {
            data: record[3],
            parity: record[4],
        },
        _ => return Err(bad("unknown scheme")),
    };
    let mut len = [0u8; 8];
    len.copy_from_slice(&record[8..16]);
    Ok((
        Header {
            durability,
            index: record[5],
            len: u64::from_be_bytes(len),
        },
        &record[HEADER_BYTES..],
    ))
}

/// The record each of the `durability.width()` places stores, in place order.
pub fn encode(durability: Durability, chunk: &[u8]) -> Result<Vec<Vec<u8>>> {
    let len = chunk.len() as u64;
    match durability {
        Durability::Replicate { copies, .. } => {
            let mut rec = header(durability, 0, len).to_vec();
            rec.extend_from_slice(chunk);
            Ok(vec![rec; copies as usize])
        }
        Durability::Erasure { data, parity } => {
            let shards = data_shards(chunk, data as usize);
            let recovery = reed_solomon_simd::encode(data as usize, parity as usize, &shards)
                .map_err(|e| Error::InvalidArgument(format!("erasure coding: {e}")))?;
            Ok(shards
                .into_iter()
                .chain(recovery)
                .enumerate()
                .map(|(i, s)| {
                    let mut rec = header(durability, i as u8, len).to_vec();
                    rec.extend_from_slice(&s);
                    rec
                })
                .collect())
        }
    }
}

/// Bytes of each shard of a `len`-byte chunk cut into `data` shards (even, ≥ 2).
pub fn shard_bytes(len: u64, data: usize) -> usize {
    let per = (len as usize).div_ceil(data.max(1));
    (per + (per & 1)).max(2)
}

fn data_shards(chunk: &[u8], data: usize) -> Vec<Vec<u8>> {
    let size = shard_bytes(chunk.len() as u64, data);
    (0..data)
        .map(|i| {
            let from = (i * size).min(chunk.len());
            let to = ((i + 1) * size).min(chunk.len());
            let mut s = chunk[from..to].to_vec();
            s.resize(size, 0);
            s
        })
        .collect()
}

/// The chunk back from the shards at hand (`shards[i]`: shard `i`'s body, if read
/// intact), or `None` if fewer than `data` are at hand.
pub fn decode(
    data: usize,
    parity: usize,
    len: u64,
    shards: &[Option<Vec<u8>>],
) -> Result<Option<Vec<u8>>> {
    let size = shard_bytes(len, data);
    if shards.len() != data + parity || shards.iter().flatten().any(|s| s.len() != size) {
        return Err(Error::InvalidArgument(
            "erasure-coded shards of unequal size".into(),
        ));
    }
    if shards.iter().flatten().count() < data {
        return Ok(None);
    }
    let mut originals: Vec<Option<Vec<u8>>> = shards[..data].to_vec();
    if originals.iter().any(Option::is_none) {
        let have_orig = shards[..data]
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)));
        let have_rec = shards[data..]
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)));
        let restored = reed_solomon_simd::decode(data, parity, have_orig, have_rec)
            .map_err(|e| Error::InvalidArgument(format!("erasure decoding: {e}")))?;
        for (i, s) in restored {
            if let Some(slot) = originals.get_mut(i) {
                *slot = Some(s);
            }
        }
    }
    let mut out = Vec::with_capacity(size * data);
    for s in originals {
        out.extend_from_slice(
            &s.ok_or_else(|| Error::InvalidArgument("a shard was not restored".into()))?,
        );
    }
    out.truncate(len as usize);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_round_trips_with_any_two_shards_lost() {
        for len in [0usize, 1, 3, 8, 1000, 4097] {
            let chunk: Vec<u8> = (0..len).map(|_| fastrand::u8(..)).collect();
            let recs = encode(Durability::EC_4_2, &chunk).expect("encode");
            let bodies: Vec<Vec<u8>> = recs
                .iter()
                .map(|r| parse(r).expect("header").1.to_vec())
                .collect();
            for a in 0..6 {
                for b in a + 1..6 {
                    let mut at_hand: Vec<Option<Vec<u8>>> =
                        bodies.iter().cloned().map(Some).collect();
                    at_hand[a] = None;
                    at_hand[b] = None;
                    let got = decode(4, 2, len as u64, &at_hand).expect("decode");
                    assert_eq!(got.as_deref(), Some(&chunk[..]), "len {len} lost {a},{b}");
                }
            }
            let mut three: Vec<Option<Vec<u8>>> = bodies.into_iter().map(Some).collect();
            three[0] = None;
            three[3] = None;
            three[5] = None;
            assert_eq!(decode(4, 2, len as u64, &three).expect("decode"), None);
        }
    }

    #[test]
    fn durability_parses() {
        assert_eq!(
            Durability::parse("replicate3"),
            Some(Durability::REPLICATE_3)
        );
        assert_eq!(Durability::parse("ec4+2"), Some(Durability::EC_4_2));
        assert_eq!(Durability::parse("ec0+2"), None);
        assert_eq!(Durability::parse("replicate99"), None);
    }
}
