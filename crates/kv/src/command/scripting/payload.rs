//! Redis's `FUNCTION DUMP` payload, both ways: one `RDB_OPCODE_FUNCTION2`
//! record per library (its code as an RDB string), the RDB version (2 bytes)
//! and a CRC64 of everything before it (8 bytes, Jones polynomial).
//!
//! Our dumps store the code as plain RDB strings, which every Redis reads.
//! Redis compresses strings over 20 bytes with LZF (`rdbcompression yes`,
//! the default), so reading one of its dumps needs the RDB string
//! encodings: lengths in 1, 2, 5 or 9 bytes, integers stored as strings,
//! and LZF. The LZF decoder is a dozen lines of a fixed format, written here
//! with bounds on every length a payload claims.

use bytes::{BufMut, Bytes, BytesMut};

/// `RDB_OPCODE_FUNCTION2`.
const OPCODE_FUNCTION: u8 = 245;
/// The RDB version Redis 7.0 writes (`RDB_VERSION`); newer payloads are refused.
const RDB_VERSION: u16 = 10;
/// `RDB_ENC_INT8`, `RDB_ENC_INT16`, `RDB_ENC_INT32`, `RDB_ENC_LZF`.
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;
/// The largest string a payload may decompress to (Redis's default
/// `proto-max-bulk-len`).
const STRING_MAX_BYTES: usize = 512 << 20;

/// The payload of these libraries' code.
pub(super) fn encode<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    for code in codes {
        out.put_u8(OPCODE_FUNCTION);
        put_length(&mut out, code.len());
        out.put_slice(code);
    }
    out.put_u16_le(RDB_VERSION);
    let crc = crc64(&out);
    out.put_u64_le(crc);
    out.freeze()
}

/// The libraries' code in a payload, or Redis's error text.
pub(super) fn decode(payload: &[u8]) -> Result<Vec<Bytes>, &'static str> {
    const BAD: &str = "ERR DUMP payload version or checksum are wrong";
    if payload.len() < 10 {
        return Err(BAD);
    }
    let (body, footer) = payload.split_at(payload.len() - 8);
    let crc = u64::from_le_bytes(footer.try_into().map_err(|_| BAD)?);
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    if version > RDB_VERSION || (crc != 0 && crc != crc64(body)) {
        return Err(BAD);
    }
    let records = &body[..body.len() - 2];
    let mut codes = Vec::new();
    let mut at = 0;
    while at < records.len() {
        if records[at] != OPCODE_FUNCTION {
            return Err("ERR given type is not a function");
        }
        at += 1;
        let code = read_string(records, &mut at).ok_or("ERR can not read data type")?;
        codes.push(code);
    }
    Ok(codes)
}

/// An RDB string at `at`: plain, an integer, or LZF-compressed.
fn read_string(data: &[u8], at: &mut usize) -> Option<Bytes> {
    let first = *data.get(*at)?;
    if first >> 6 != 3 {
        let len = read_length(data, at)?;
        let text = data.get(*at..at.checked_add(len)?)?;
        *at += len;
        return Some(Bytes::copy_from_slice(text));
    }
    *at += 1;
    let mut int = |width: usize| -> Option<i64> {
        let bytes = data.get(*at..*at + width)?;
        *at += width;
        let mut buf = [0u8; 8];
        buf[..width].copy_from_slice(bytes);
        let shift = 64 - 8 * width as u32;
        Some((i64::from_le_bytes(buf) << shift) >> shift)
    };
    let number = match first & 0x3f {
        ENC_INT8 => int(1)?,
        ENC_INT16 => int(2)?,
        ENC_INT32 => int(4)?,
        ENC_LZF => {
            let compressed_len = read_length(data, at)?;
            let len = read_length(data, at)?;
            let compressed = data.get(*at..at.checked_add(compressed_len)?)?;
            *at += compressed_len;
            return lzf_decompress(compressed, len).map(Bytes::from);
        }
        _ => return None,
    };
    Some(Bytes::from(number.to_string()))
}

/// liblzf's format: a control byte below 32 starts a run of that many + 1
/// literal bytes; otherwise its top 3 bits (7: plus the next byte) + 2 are
/// the length of a copy from earlier output, at the distance given by its
/// low 5 bits and the next byte, + 1. `None` unless exactly `len` bytes
/// come out.
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    // A back-reference of at most 264 bytes takes 3 input bytes: nothing
    // decompresses to more than 88 times its size.
    if len > STRING_MAX_BYTES || len > input.len().saturating_mul(88) {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    let mut at = 0;
    while at < input.len() {
        let control = usize::from(input[at]);
        at += 1;
        if control < 32 {
            let run = input.get(at..at + control + 1)?;
            at += run.len();
            out.extend_from_slice(run);
        } else {
            let mut copy = control >> 5;
            if copy == 7 {
                copy += usize::from(*input.get(at)?);
                at += 1;
            }
            let distance = ((control & 0x1f) << 8) + usize::from(*input.get(at)?) + 1;
            at += 1;
            let from = out.len().checked_sub(distance)?;
            for i in 0..copy + 2 {
                out.push(out[from + i]);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// Redis's CRC64 (Jones polynomial, reflected), as DUMP payloads carry it.
fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &byte in data {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn put_length(out: &mut BytesMut, len: usize) {
    if len < 1 << 6 {
        out.put_u8(len as u8);
    } else if len < 1 << 14 {
        out.put_u16(0x4000 | len as u16);
    } else if len <= u32::MAX as usize {
        out.put_u8(0x80);
        out.put_u32(len as u32);
    } else {
        out.put_u8(0x81);
        out.put_u64(len as u64);
    }
}

fn read_length(data: &[u8], at: &mut usize) -> Option<usize> {
    let first = *data.get(*at)?;
    let (len, used) = match first >> 6 {
        0 => (usize::from(first & 0x3f), 1),
        1 => (
            (usize::from(first & 0x3f) << 8) | usize::from(*data.get(*at + 1)?),
            2,
        ),
        _ if first == 0x80 => (
            u32::from_be_bytes(data.get(*at + 1..*at + 5)?.try_into().ok()?) as usize,
            5,
        ),
        _ if first == 0x81 => (
            usize::try_from(u64::from_be_bytes(
                data.get(*at + 1..*at + 9)?.try_into().ok()?,
            ))
            .ok()?,
            9,
        ),
        _ => return None, // an encoded (compressed or integer) string
    };
    *at += used;
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis_jones() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn lengths_round_trip() {
        for len in [0, 63, 64, 16383, 16384, 1 << 20] {
            let mut out = BytesMut::new();
            put_length(&mut out, len);
            let mut at = 0;
            assert_eq!(read_length(&out, &mut at), Some(len));
            assert_eq!(at, out.len());
        }
    }

    #[test]
    fn lzf_literals_and_overlapping_copies() {
        // "abcabcabcabc": 3 literals, then a copy of 9 at distance 3.
        let input = [2, b'a', b'b', b'c', (7 << 5), 9 - 2 - 7, 2];
        assert_eq!(
            lzf_decompress(&input, 12).as_deref(),
            Some(&b"abcabcabcabc"[..])
        );
        // Claimed sizes that do not match, distances before the start and
        // truncated input are refused.
        assert_eq!(lzf_decompress(&input, 11), None);
        assert_eq!(lzf_decompress(&[0, b'a', 32, 5], 4), None);
        assert_eq!(lzf_decompress(&[5, b'a'], 6), None);
        assert_eq!(lzf_decompress(&[0, b'a'], usize::MAX), None);
    }

    #[test]
    fn integers_stored_as_strings() {
        for (bytes, text) in [
            (&[0xc0, 0xff][..], "-1"),
            (&[0xc1, 0x39, 0x30][..], "12345"),
            (&[0xc2, 0, 0, 0, 0x80][..], "-2147483648"),
        ] {
            let mut at = 0;
            assert_eq!(
                read_string(bytes, &mut at).as_deref(),
                Some(text.as_bytes())
            );
            assert_eq!(at, bytes.len());
        }
    }

    #[test]
    fn our_payloads_round_trip_and_damage_is_refused() {
        let codes: [&[u8]; 2] = [
            b"#!lua name=a\nredis.register_function('f', function() return 1 end)",
            b"x",
        ];
        let payload = encode(codes.into_iter());
        let back = decode(&payload).expect("decodes");
        assert_eq!(back.iter().map(|c| &c[..]).collect::<Vec<_>>(), codes);
        let mut damaged = payload.to_vec();
        damaged[3] ^= 1;
        assert!(decode(&damaged).is_err());
        assert!(decode(&payload[..5]).is_err());
    }
}
