//! The compact encodings Redis nests inside RDB values: listpacks (7.0's
//! small hashes, sorted sets and quicklist nodes), ziplists and zipmaps
//! (what older servers, and so older RDB files, still carry), intsets, and
//! LZF-compressed strings.
//!
//! Decoders, and one encoder: [`super::encode_value`] writes the plain RDB
//! types, which every Redis since 2.x loads and re-encodes compactly itself,
//! except streams, which have no plain form and are written as listpacks
//! ([`ListpackWriter`]). Every
//! decoder reads a blob it was handed and checks each length against what is
//! left of it before reading, so a corrupt blob ends in [`RdbError`], never
//! in a panic or an allocation the blob's size does not justify.

use bytes::Bytes;

use super::RdbError;

/// The largest string an LZF blob may expand to (Redis's `proto-max-bulk-len`).
pub const LZF_EXPANDED_BYTES_MAX: usize = 512 << 20;

fn bad(what: &'static str) -> RdbError {
    RdbError::Format(what)
}

/// Expands an LZF blob (`lzf_d.c`'s format) to exactly `expanded_len` bytes.
pub fn lzf_decompress(input: &[u8], expanded_len: usize) -> Result<Vec<u8>, RdbError> {
    // An LZF back-reference expands 3 bytes to at most 264: a claimed length
    // past that ratio is a lie, refused before allocating for it.
    if expanded_len > LZF_EXPANDED_BYTES_MAX || expanded_len > input.len().saturating_mul(88) + 64 {
        return Err(bad("LZF length out of range"));
    }
    let mut out = Vec::with_capacity(expanded_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let literal = input
                .get(i..i + run)
                .ok_or(bad("LZF literal past the end"))?;
            if out.len() + run > expanded_len {
                return Err(bad("LZF output too long"));
            }
            out.extend_from_slice(literal);
            i += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i).ok_or(bad("LZF truncated"))? as usize;
                i += 1;
            }
            len += 2;
            let low = *input.get(i).ok_or(bad("LZF truncated"))? as usize;
            i += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            if back > out.len() || out.len() + len > expanded_len {
                return Err(bad("LZF back-reference out of range"));
            }
            let start = out.len() - back;
            for k in 0..len {
                let byte = out[start + k];
                out.push(byte);
            }
        }
    }
    if out.len() != expanded_len {
        return Err(bad("LZF length mismatch"));
    }
    Ok(out)
}

fn int_bytes(value: i64) -> Bytes {
    Bytes::from(value.to_string())
}

fn le_int(bytes: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    let raw = i64::from_le_bytes(buf);
    let shift = 64 - 8 * bytes.len() as u32;
    (raw << shift) >> shift
}

fn slice(blob: &[u8], at: usize, len: usize) -> Result<&[u8], RdbError> {
    blob.get(at..at.checked_add(len).ok_or(bad("length overflow"))?)
        .ok_or(bad("compact entry past the end"))
}

/// The entries of a listpack (`listpack.c`), integers rendered as decimal.
pub fn listpack_entries(blob: &[u8]) -> Result<Vec<Bytes>, RdbError> {
    let header = slice(blob, 0, 6)?;
    let total = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if total != blob.len() {
        return Err(bad("listpack size mismatch"));
    }
    let mut at = 6;
    let mut out = Vec::new();
    loop {
        let first = *blob.get(at).ok_or(bad("listpack without terminator"))?;
        if first == 0xff {
            if at + 1 != blob.len() {
                return Err(bad("listpack trailing bytes"));
            }
            return Ok(out);
        }
        let (entry, encoded_len) = match first {
            0x00..=0x7f => (int_bytes(i64::from(first)), 1),
            0x80..=0xbf => {
                let len = usize::from(first & 0x3f);
                (Bytes::copy_from_slice(slice(blob, at + 1, len)?), 1 + len)
            }
            0xc0..=0xdf => {
                let low = slice(blob, at + 1, 1)?[0];
                let raw = (i64::from(first & 0x1f) << 8) | i64::from(low);
                let value = if raw >= 1 << 12 { raw - (1 << 13) } else { raw };
                (int_bytes(value), 2)
            }
            0xe0..=0xef => {
                let low = slice(blob, at + 1, 1)?[0];
                let len = (usize::from(first & 0x0f) << 8) | usize::from(low);
                (Bytes::copy_from_slice(slice(blob, at + 2, len)?), 2 + len)
            }
            0xf0 => {
                let raw = slice(blob, at + 1, 4)?;
                let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
                (Bytes::copy_from_slice(slice(blob, at + 5, len)?), 5 + len)
            }
            0xf1..=0xf4 => {
                let width = [2, 3, 4, 8][usize::from(first - 0xf1)];
                (int_bytes(le_int(slice(blob, at + 1, width)?)), 1 + width)
            }
            _ => return Err(bad("listpack entry encoding")),
        };
        let backlen_bytes = match encoded_len {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2_097_150 => 3,
            2_097_151..=268_435_454 => 4,
            _ => 5,
        };
        at += encoded_len + backlen_bytes;
        out.push(entry);
    }
}

/// Builds a listpack (`listpack.c`): integers in their smallest encoding,
/// strings as they are.
#[derive(Debug)]
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ListpackWriter {
    /// An empty listpack (header reserved).
    pub fn new() -> Self {
        ListpackWriter {
            buf: vec![0; 6],
            count: 0,
        }
    }

    fn entry(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
        // The back-length (`lpEncodeBacklen`): 7 bits a byte, high first.
        let len = encoded.len() as u64;
        let width = match len {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2_097_150 => 3,
            2_097_151..=268_435_454 => 4,
            _ => 5,
        };
        for i in (0..width).rev() {
            self.buf.push(((len >> (7 * i)) & 127) as u8);
        }
        // Every byte but the first of a multi-byte back-length has bit 7 set.
        if width > 1 {
            let end = self.buf.len();
            for byte in &mut self.buf[end - width + 1..end] {
                *byte |= 128;
            }
        }
        self.count += 1;
    }

    /// Appends an integer.
    pub fn int(&mut self, v: i64) {
        if (0..=127).contains(&v) {
            self.entry(&[v as u8]);
        } else if (-4096..=4095).contains(&v) {
            let raw = if v < 0 { (1 << 13) + v } else { v } as u16;
            self.entry(&[0xc0 | (raw >> 8) as u8, raw as u8]);
        } else if i16::try_from(v).is_ok() {
            let b = (v as i16).to_le_bytes();
            self.entry(&[0xf1, b[0], b[1]]);
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            let b = (v as i32).to_le_bytes();
            self.entry(&[0xf2, b[0], b[1], b[2]]);
        } else if i32::try_from(v).is_ok() {
            let mut e = vec![0xf3];
            e.extend_from_slice(&(v as i32).to_le_bytes());
            self.entry(&e);
        } else {
            let mut e = vec![0xf4];
            e.extend_from_slice(&v.to_le_bytes());
            self.entry(&e);
        }
    }

    /// Appends a string.
    pub fn string(&mut self, s: &[u8]) {
        let len = s.len();
        let mut e = Vec::with_capacity(len + 5);
        if len < 64 {
            e.push(0x80 | len as u8);
        } else if len < 4096 {
            e.push(0xe0 | (len >> 8) as u8);
            e.push(len as u8);
        } else {
            e.push(0xf0);
            e.extend_from_slice(&(len as u32).to_le_bytes());
        }
        e.extend_from_slice(s);
        self.entry(&e);
    }

    /// The finished listpack: header (total bytes, count), entries, 0xff.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(65535) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// The entries of a ziplist (`ziplist.c`, Redis < 7), integers as decimal.
pub fn ziplist_entries(blob: &[u8]) -> Result<Vec<Bytes>, RdbError> {
    let header = slice(blob, 0, 10)?;
    let total = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if total != blob.len() {
        return Err(bad("ziplist size mismatch"));
    }
    let mut at = 10;
    let mut out = Vec::new();
    loop {
        let first = *blob.get(at).ok_or(bad("ziplist without terminator"))?;
        if first == 0xff {
            return Ok(out);
        }
        at += if first == 0xfe { 5 } else { 1 };
        let enc = *blob.get(at).ok_or(bad("ziplist truncated"))?;
        let (entry, len) = match enc >> 6 {
            0 => {
                let len = usize::from(enc & 0x3f);
                (Bytes::copy_from_slice(slice(blob, at + 1, len)?), 1 + len)
            }
            1 => {
                let low = slice(blob, at + 1, 1)?[0];
                let len = (usize::from(enc & 0x3f) << 8) | usize::from(low);
                (Bytes::copy_from_slice(slice(blob, at + 2, len)?), 2 + len)
            }
            2 => {
                let raw = slice(blob, at + 1, 4)?;
                let len = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
                (Bytes::copy_from_slice(slice(blob, at + 5, len)?), 5 + len)
            }
            _ => {
                let width = match enc {
                    0xc0 => 2,
                    0xd0 => 4,
                    0xe0 => 8,
                    0xf0 => 3,
                    0xfe => 1,
                    0xf1..=0xfd => 0,
                    _ => return Err(bad("ziplist entry encoding")),
                };
                let value = if width == 0 {
                    i64::from(enc & 0x0f) - 1
                } else {
                    le_int(slice(blob, at + 1, width)?)
                };
                (int_bytes(value), 1 + width)
            }
        };
        at += len;
        out.push(entry);
    }
}

/// The members of an intset (`intset.c`), as decimal strings.
pub fn intset_members(blob: &[u8]) -> Result<Vec<Bytes>, RdbError> {
    let header = slice(blob, 0, 8)?;
    let width = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let count = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || Some(blob.len()) != count.checked_mul(width).map(|n| n + 8) {
        return Err(bad("intset header"));
    }
    Ok(blob[8..]
        .chunks_exact(width)
        .map(|raw| int_bytes(le_int(raw)))
        .collect())
}

/// The field/value pairs of a zipmap (`zipmap.c`, Redis < 2.6 hashes).
pub fn zipmap_pairs(blob: &[u8]) -> Result<Vec<(Bytes, Bytes)>, RdbError> {
    let mut at = 1;
    let mut flat = Vec::new();
    loop {
        let first = *blob.get(at).ok_or(bad("zipmap without terminator"))?;
        if first == 0xff {
            break;
        }
        let len = if first < 254 {
            at += 1;
            usize::from(first)
        } else if first == 254 {
            let raw = slice(blob, at + 1, 4)?;
            at += 5;
            u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize
        } else {
            return Err(bad("zipmap length"));
        };
        // A value is followed by a "free" byte count and that many spare bytes.
        let is_value = flat.len() % 2 == 1;
        let free = if is_value {
            let free = usize::from(slice(blob, at, 1)?[0]);
            at += 1;
            free
        } else {
            0
        };
        flat.push(Bytes::copy_from_slice(slice(blob, at, len)?));
        at += len + free;
    }
    pairs(flat)
}

/// Pairs up a flat `[field, value, field, value, ...]` list.
pub fn pairs(flat: Vec<Bytes>) -> Result<Vec<(Bytes, Bytes)>, RdbError> {
    if !flat.len().is_multiple_of(2) {
        return Err(bad("odd number of entries in a map encoding"));
    }
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(field), Some(value)) = (it.next(), it.next()) {
        out.push((field, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzf_literal_and_backreference() {
        // "abcabcabc": literal "abc", then a back-reference of 6 bytes at distance 3.
        let blob = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(lzf_decompress(&blob, 9).unwrap(), b"abcabcabc");
        assert!(lzf_decompress(&blob, 8).is_err());
        assert!(
            lzf_decompress(&[0xe0, 5, 0], 10).is_err(),
            "reference before the start"
        );
    }

    #[test]
    fn listpack_reads_every_encoding() {
        let mut lp = vec![0u8; 6];
        for (enc, backlen) in [
            (vec![5u8], 1u8),                        // 7-bit uint
            (vec![0x82, b'h', b'i'], 3),             // 6-bit string
            (vec![0xdf, 0xff], 2),                   // 13-bit int -1
            (vec![0xf1, 0x00, 0x80], 3),             // int16 -32768
            (vec![0xf4, 1, 0, 0, 0, 0, 0, 0, 0], 9), // int64 1
        ] {
            lp.extend_from_slice(&enc);
            lp.push(backlen);
        }
        lp.push(0xff);
        let total = lp.len() as u32;
        lp[..4].copy_from_slice(&total.to_le_bytes());
        let got = listpack_entries(&lp).unwrap();
        let want: Vec<&[u8]> = vec![b"5", b"hi", b"-1", b"-32768", b"1"];
        assert_eq!(got.iter().map(|b| &b[..]).collect::<Vec<_>>(), want);
        lp[0] += 1;
        assert!(
            listpack_entries(&lp).is_err(),
            "a wrong total size is refused"
        );
    }

    #[test]
    fn listpack_writer_round_trips_every_encoding() {
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -32768,
            32767,
            1 << 23,
            -(1 << 23),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ];
        let strings = [
            vec![],
            vec![b'a'; 63],
            vec![b'b'; 64],
            vec![b'c'; 4095],
            vec![b'd'; 4096],
            vec![b'e'; 20_000],
        ];
        let mut lp = ListpackWriter::new();
        let mut want = Vec::new();
        for v in ints {
            lp.int(v);
            want.push(Bytes::from(v.to_string()));
        }
        for s in &strings {
            lp.string(s);
            want.push(Bytes::from(s.clone()));
        }
        assert_eq!(listpack_entries(&lp.finish()).unwrap(), want);
    }

    #[test]
    fn intset_checks_its_header() {
        let mut blob = vec![2, 0, 0, 0, 2, 0, 0, 0];
        blob.extend_from_slice(&(-3i16).to_le_bytes());
        blob.extend_from_slice(&7i16.to_le_bytes());
        let got = intset_members(&blob).unwrap();
        assert_eq!(got, vec![Bytes::from("-3"), Bytes::from("7")]);
        blob[4] = 200;
        assert!(intset_members(&blob).is_err());
    }
}
