//! The bytes of a data file: file header, object records, seal footer. Pure encode and
//! decode, no I/O, so every check is unit-tested on byte arrays.
//!
//! ```text
//! file    = header record* [footer]
//! header  = magic "HSOBDAT1" (8) | file id u64 (8)                        16 bytes
//! record  = magic "HSOB" (4) | flags u32 (4) | object id (16) | len u64 (8)
//!           | header crc u32 (4)                                          36 bytes
//!           | object bytes (len)
//!           | record crc u32 (4) = CRC-32C(the 36 header bytes ‖ object bytes)
//! footer  = magic "HSOBSEAL" (8) | data end u64 (8) | file crc u32 (4)
//!           | footer crc u32 (4)                                          24 bytes
//! ```
//! Integers are little-endian. The *header crc* lets a scan trust a record's length
//! (and so find the next record) even when the object bytes are damaged; the *record
//! crc*, after the object, is what every read verifies, and the mapping table keeps a
//! copy of it so a read also proves it found the record it was looking for. The
//! footer's *file crc* covers every byte before it: a sealed file can be verified
//! whole (scrubbing) without the mapping. `flags` is reserved (0) for later formats
//! (compression, erasure-coded shards); a record with other flags is refused.

use crate::ObjectId;

/// Magic at the start of every data file (format version 1).
pub const FILE_MAGIC: &[u8; 8] = b"HSOBDAT1";
/// Bytes of the file header.
pub const FILE_HEADER_BYTES: u64 = 16;
/// Magic at the start of every record.
pub const RECORD_MAGIC: &[u8; 4] = b"HSOB";
/// Bytes of a record header (with its crc).
pub const RECORD_HEADER_BYTES: u64 = 36;
/// Bytes a record adds to its object: header and trailing crc.
pub const RECORD_OVERHEAD_BYTES: u64 = RECORD_HEADER_BYTES + 4;
/// Magic of the seal footer.
pub const FOOTER_MAGIC: &[u8; 8] = b"HSOBSEAL";
/// Bytes of the seal footer.
pub const FOOTER_BYTES: u64 = 24;

/// The file header of data file `file_id`.
pub fn file_header(file_id: u64) -> [u8; FILE_HEADER_BYTES as usize] {
    let mut h = [0u8; FILE_HEADER_BYTES as usize];
    h[..8].copy_from_slice(FILE_MAGIC);
    h[8..].copy_from_slice(&file_id.to_le_bytes());
    h
}

/// The fixed part of a record, in front of the object bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The object stored.
    pub id: ObjectId,
    /// Reserved, 0.
    pub flags: u32,
    /// Object bytes that follow.
    pub len: u64,
}

impl RecordHeader {
    /// Bytes of the whole record (header, object, crc).
    pub fn record_bytes(&self) -> u64 {
        self.len.saturating_add(RECORD_OVERHEAD_BYTES)
    }

    /// The 36 header bytes (with the header crc).
    pub fn encode(&self) -> [u8; RECORD_HEADER_BYTES as usize] {
        let mut h = [0u8; RECORD_HEADER_BYTES as usize];
        h[..4].copy_from_slice(RECORD_MAGIC);
        h[4..8].copy_from_slice(&self.flags.to_le_bytes());
        h[8..24].copy_from_slice(&self.id.to_bytes());
        h[24..32].copy_from_slice(&self.len.to_le_bytes());
        let crc = crc32c::crc32c(&h[..32]);
        h[32..36].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Parses and checks 36 header bytes: magic, header crc, flags.
    pub fn decode(h: &[u8; RECORD_HEADER_BYTES as usize]) -> Result<Self, String> {
        if &h[..4] != RECORD_MAGIC {
            return Err("no record magic".into());
        }
        let stored = u32::from_le_bytes(h[32..36].try_into().expect("4 bytes"));
        if crc32c::crc32c(&h[..32]) != stored {
            return Err("record header checksum mismatch".into());
        }
        let flags = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
        if flags != 0 {
            return Err(format!("unknown record flags {flags:#x}"));
        }
        Ok(Self {
            id: ObjectId::from_bytes(h[8..24].try_into().expect("16 bytes")),
            flags,
            len: u64::from_le_bytes(h[24..32].try_into().expect("8 bytes")),
        })
    }
}

/// The record crc: CRC-32C over the header bytes and then the object bytes.
pub fn record_crc(header: &[u8], data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header), data)
}

/// The two parts around the object bytes in the record of `id` holding `data`: the
/// header in front and the record crc after.
pub fn frame(id: ObjectId, data: &[u8]) -> ([u8; RECORD_HEADER_BYTES as usize], u32) {
    let header = RecordHeader {
        id,
        flags: 0,
        len: data.len() as u64,
    }
    .encode();
    let crc = record_crc(&header, data);
    (header, crc)
}

/// Checks a whole record read back from disk (`record` = header ‖ object ‖ crc):
/// it must be the record of `id`, of `len` object bytes, and its crc must match both
/// the bytes and `expected_crc` (the mapping's copy). Returns the object's byte range
/// within `record`.
pub fn check_record(
    record: &[u8],
    id: ObjectId,
    len: u64,
    expected_crc: u32,
) -> Result<std::ops::Range<usize>, String> {
    let hb = RECORD_HEADER_BYTES as usize;
    let header: &[u8; RECORD_HEADER_BYTES as usize] = record
        .get(..hb)
        .and_then(|h| h.try_into().ok())
        .ok_or("record shorter than its header")?;
    let h = RecordHeader::decode(header)?;
    if h.id != id {
        return Err(format!("record holds object {}, not {id}", h.id));
    }
    if h.len != len || record.len() as u64 != h.record_bytes() {
        return Err(format!(
            "record length {} does not match the mapping's {len}",
            h.len
        ));
    }
    let end = hb + len as usize;
    let stored = u32::from_le_bytes(record[end..end + 4].try_into().expect("4 bytes"));
    let computed = record_crc(&record[..hb], &record[hb..end]);
    if computed != stored {
        return Err(format!(
            "record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    if stored != expected_crc {
        return Err(format!(
            "record checksum {stored:#010x} differs from the mapping's {expected_crc:#010x}"
        ));
    }
    Ok(hb..end)
}

/// The seal footer of a file whose data ends at `data_end` with whole-file crc `file_crc`.
pub fn footer(data_end: u64, file_crc: u32) -> [u8; FOOTER_BYTES as usize] {
    let mut f = [0u8; FOOTER_BYTES as usize];
    f[..8].copy_from_slice(FOOTER_MAGIC);
    f[8..16].copy_from_slice(&data_end.to_le_bytes());
    f[16..20].copy_from_slice(&file_crc.to_le_bytes());
    let crc = crc32c::crc32c(&f[..20]);
    f[20..24].copy_from_slice(&crc.to_le_bytes());
    f
}

/// A valid footer read from the last 24 bytes of a file of `file_len` bytes: its
/// `(data_end, file_crc)`, or `None` when the bytes are not a footer of this file (an
/// unsealed file ends in a record; a damaged footer is treated as no footer).
pub fn parse_footer(f: &[u8; FOOTER_BYTES as usize], file_len: u64) -> Option<(u64, u32)> {
    if &f[..8] != FOOTER_MAGIC {
        return None;
    }
    let stored = u32::from_le_bytes(f[20..24].try_into().expect("4 bytes"));
    if crc32c::crc32c(&f[..20]) != stored {
        return None;
    }
    let data_end = u64::from_le_bytes(f[8..16].try_into().expect("8 bytes"));
    let file_crc = u32::from_le_bytes(f[16..20].try_into().expect("4 bytes"));
    (data_end.checked_add(FOOTER_BYTES) == Some(file_len) && data_end >= FILE_HEADER_BYTES)
        .then_some((data_end, file_crc))
}

/// Whether a record of `record_bytes` must go to a new file: appending it at `end`
/// would take the file (with its future footer) past `file_size_bytes_max`, and the
/// file already holds a record (an empty file always takes one: the options guarantee
/// the largest object fits in an empty file).
pub fn must_roll(end: u64, record_bytes: u64, file_size_bytes_max: u64) -> bool {
    end > FILE_HEADER_BYTES
        && end
            .saturating_add(record_bytes)
            .saturating_add(FOOTER_BYTES)
            > file_size_bytes_max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: ObjectId, data: &[u8]) -> (Vec<u8>, u32) {
        let (h, crc) = frame(id, data);
        let mut r = h.to_vec();
        r.extend_from_slice(data);
        r.extend_from_slice(&crc.to_le_bytes());
        (r, crc)
    }

    #[test]
    fn a_record_round_trips_and_every_bit_flip_is_caught() {
        let id = ObjectId::from_parts(42, 7);
        let (r, crc) = record(id, b"hello, object");
        assert_eq!(check_record(&r, id, 13, crc), Ok(36..49));
        for byte in 0..r.len() {
            for bit in 0..8 {
                let mut bad = r.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    check_record(&bad, id, 13, crc).is_err(),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn a_record_is_checked_against_the_mapping() {
        let id = ObjectId::from_parts(42, 7);
        let (r, crc) = record(id, b"abc");
        let other = ObjectId::from_parts(42, 8);
        assert!(
            check_record(&r, other, 3, crc)
                .unwrap_err()
                .contains("holds object")
        );
        assert!(check_record(&r, id, 4, crc).unwrap_err().contains("length"));
        assert!(
            check_record(&r, id, 3, crc ^ 1)
                .unwrap_err()
                .contains("mapping")
        );
        assert!(check_record(&r[..10], id, 3, crc).is_err());
    }

    #[test]
    fn headers_with_unknown_flags_or_damage_are_refused() {
        let h = RecordHeader {
            id: ObjectId::from_parts(1, 2),
            flags: 0,
            len: 5,
        };
        assert_eq!(RecordHeader::decode(&h.encode()), Ok(h));
        let flagged = RecordHeader { flags: 1, ..h }.encode();
        assert!(
            RecordHeader::decode(&flagged)
                .unwrap_err()
                .contains("flags")
        );
        let mut bad = h.encode();
        bad[25] ^= 4; // the length
        assert!(RecordHeader::decode(&bad).unwrap_err().contains("checksum"));
        assert!(
            RecordHeader::decode(&[0; 36])
                .unwrap_err()
                .contains("magic")
        );
    }

    #[test]
    fn footers_are_recognised_only_at_the_end_of_their_file() {
        let f = footer(1000, 0xABCD);
        assert_eq!(parse_footer(&f, 1024), Some((1000, 0xABCD)));
        assert_eq!(parse_footer(&f, 1025), None, "not where the footer says");
        let mut bad = f;
        bad[9] ^= 1;
        assert_eq!(parse_footer(&bad, 1024), None);
        assert_eq!(parse_footer(&[0; 24], 24), None);
    }

    #[test]
    fn roll_when_the_record_and_footer_would_pass_the_cap() {
        let cap = 1000;
        assert!(
            !must_roll(FILE_HEADER_BYTES, 2000, cap),
            "an empty file takes any record"
        );
        assert!(!must_roll(100, 876, cap));
        assert!(must_roll(100, 877, cap));
        assert!(must_roll(100, u64::MAX, cap));
    }
}
