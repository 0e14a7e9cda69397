//! The in-memory block index of a table: which data block may hold a key.
//!
//! Why a module: every seek and point read starts with a binary search over the index
//! of each table it visits, and on tables of thousands of blocks that search was a
//! fifth of a seek's time, mostly cache misses chasing one heap key per probe. Here the
//! keys live back to back in one buffer, and the search runs first over a dense array
//! of 8-byte key prefixes taken after the prefix all the table's keys share (for the
//! workspace's zero-padded or namespaced keys, those 8 bytes are where keys differ),
//! comparing whole keys only among the few entries whose prefixes tie.
//!
//! On disk (the index block, unchanged since format 1): per data block, its last key
//! (varint length + bytes), that entry's sequence number (u64) and the block's handle
//! (u64 offset, u32 size).

use super::TableMeta;
use super::block::BlockHandle;
use crate::codec::{Reader, cmp_internal};

/// A table's block index.
pub(crate) struct BlockIndex {
    /// The last key of every block, back to back.
    keys: Vec<u8>,
    /// End of each key in `keys`.
    key_ends: Vec<u32>,
    /// Sequence number of each block's last entry.
    seqs: Vec<u64>,
    /// Where each block is.
    handles: Vec<BlockHandle>,
    /// Length of the prefix shared by every key (that of the first and the last).
    common: usize,
    /// Per block, the 8 bytes of its key after `common`, big-endian, zero-padded.
    prefixes: Vec<u64>,
}

/// The 8 bytes of `key` after `common` as a big-endian number (zero-padded): ordering
/// these orders the keys, except between equal numbers.
fn prefix64(key: &[u8], common: usize) -> u64 {
    let mut buf = [0u8; 8];
    let tail = key.get(common..).unwrap_or_default();
    let n = tail.len().min(8);
    buf[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(buf)
}

impl BlockIndex {
    /// Parses an index block; `None` when malformed.
    pub(crate) fn parse(bytes: &[u8]) -> Option<BlockIndex> {
        let mut r = Reader::new(bytes);
        let mut index = BlockIndex {
            keys: Vec::new(),
            key_ends: Vec::new(),
            seqs: Vec::new(),
            handles: Vec::new(),
            common: 0,
            prefixes: Vec::new(),
        };
        while !r.is_empty() {
            index.keys.extend_from_slice(r.len_prefixed()?);
            index.key_ends.push(u32::try_from(index.keys.len()).ok()?);
            index.seqs.push(r.u64()?);
            index.handles.push(BlockHandle {
                offset: r.u64()?,
                size: r.u32()?,
            });
        }
        let n = index.len();
        if n > 0 {
            let (first, last) = (index.key(0), index.key(n - 1));
            index.common = first.iter().zip(last).take_while(|(a, b)| a == b).count();
            index.prefixes = (0..n)
                .map(|i| prefix64(index.key(i), index.common))
                .collect();
        }
        Some(index)
    }

    /// Number of data blocks.
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// Last key of block `i`.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |p| self.key_ends[p] as usize);
        &self.keys[start..self.key_ends[i] as usize]
    }

    /// Sequence number of block `i`'s last entry.
    pub(crate) fn seq(&self, i: usize) -> u64 {
        self.seqs[i]
    }

    /// Where block `i` is.
    pub(crate) fn handle(&self, i: usize) -> BlockHandle {
        self.handles[i]
    }

    /// Index of the first block whose last internal key is >= (key, seq): the only
    /// block that can hold that position (`len()` when it is past the table).
    pub(crate) fn seek(&self, key: &[u8], seq: u64) -> usize {
        let n = self.len();
        if n == 0 {
            return 0;
        }
        // Keys between the first and the last share their common prefix; a key that
        // does not is outside the table's range: a plain search answers 0 or len.
        if key.len() < self.common || key[..self.common] != self.key(0)[..self.common] {
            return self.search(0, n, key, seq);
        }
        let p = prefix64(key, self.common);
        let lo = self.prefixes.partition_point(|&x| x < p);
        // Ties are rare (equal 8-byte windows): compare a few whole keys in order.
        for i in lo..(lo + 8).min(n) {
            if self.prefixes[i] != p {
                return i;
            }
            if cmp_internal(self.key(i), self.seqs[i], key, seq).is_ge() {
                return i;
            }
        }
        let hi = lo + self.prefixes[lo..].partition_point(|&x| x == p);
        self.search(lo, hi, key, seq)
    }

    /// [`BlockIndex::seek`] within `lo..hi` by whole-key comparisons.
    fn search(&self, mut lo: usize, mut hi: usize, key: &[u8], seq: u64) -> usize {
        while lo < hi {
            let mid = (lo + hi) / 2;
            if cmp_internal(self.key(mid), self.seqs[mid], key, seq).is_lt() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Checks what `Table::open` relies on: entries strictly increasing in internal
    /// order, data blocks back to back from offset 0 up to the index block, the last
    /// key the table's largest. Returns what is wrong.
    pub(crate) fn check(&self, meta: &TableMeta, index_offset: u64) -> Result<(), String> {
        let mut end = 0u64;
        for i in 0..self.len() {
            let h = self.handles[i];
            if h.offset != end {
                return Err(format!(
                    "index entry {i}: block at offset {} should start at {end}",
                    h.offset
                ));
            }
            end = end.saturating_add(u64::from(h.size));
            if i > 0
                && !cmp_internal(self.key(i - 1), self.seqs[i - 1], self.key(i), self.seqs[i])
                    .is_lt()
            {
                return Err(format!("index entries {} and {i} out of order", i - 1));
            }
        }
        if end != index_offset {
            return Err(format!(
                "data blocks end at {end}, the index block starts at {index_offset}"
            ));
        }
        match self.len() {
            0 if meta.entries == 0 => Ok(()),
            n if n > 0
                && meta.entries > 0
                && self.key(n - 1) == meta.largest
                && meta.smallest <= meta.largest =>
            {
                Ok(())
            }
            _ => Err("index and meta block disagree on the key range".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::put_len_prefixed;

    fn index_of(keys: &[(&[u8], u64)]) -> BlockIndex {
        let mut bytes = Vec::new();
        for (i, (k, seq)) in keys.iter().enumerate() {
            put_len_prefixed(&mut bytes, k);
            bytes.extend_from_slice(&seq.to_le_bytes());
            bytes.extend_from_slice(&(i as u64 * 10).to_le_bytes());
            bytes.extend_from_slice(&10u32.to_le_bytes());
        }
        BlockIndex::parse(&bytes).unwrap()
    }

    /// The prefix search answers what a plain binary search answers, for keys inside,
    /// outside, between and equal to the index keys, including keys that tie on their
    /// 8-byte window and keys shorter than the common prefix.
    #[test]
    fn seek_agrees_with_a_plain_binary_search() {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for i in 0..300u32 {
            keys.push(format!("user:{:08}", i * 7).into_bytes());
        }
        // Ties on the window after the common prefix: long keys equal in 8 bytes.
        for i in 0..20u32 {
            keys.push(format!("user:99999999-{i:03}").into_bytes());
        }
        keys.push(b"user:99999999-999\0".to_vec());
        keys.sort();
        let entries: Vec<(&[u8], u64)> = keys.iter().map(|k| (&k[..], 5)).collect();
        let index = index_of(&entries);
        assert_eq!(index.common, 5);
        let mut probes: Vec<Vec<u8>> = keys.clone();
        probes.extend(keys.iter().map(|k| [&k[..], b"\0"].concat()));
        probes.extend(keys.iter().map(|k| k[..k.len() - 1].to_vec()));
        probes.extend([
            b"".to_vec(),
            b"a".to_vec(),
            b"user".to_vec(),
            b"user:".to_vec(),
            b"zzz".to_vec(),
            b"user:99999999".to_vec(),
        ]);
        for probe in &probes {
            for seq in [0, 5, 9, u64::MAX >> 8] {
                assert_eq!(
                    index.seek(probe, seq),
                    index.search(0, index.len(), probe, seq),
                    "{:?} @{seq}",
                    String::from_utf8_lossy(probe)
                );
            }
        }
    }
}
