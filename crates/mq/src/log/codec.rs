//! The four record compression codecs of Kafka, for the one place the log looks inside
//! batches: compaction. Appends and fetches never decompress (batches are stored and
//! served as the producer compressed them).
//!
//! Decompression is bounded: a batch that inflates beyond the caller's limit is an error,
//! not an allocation (a small gzip batch can claim gigabytes). Snappy is read in both the
//! xerial framing Kafka's Java client writes and raw blocks (what some clients send), and
//! written in the xerial framing, which every client reads. LZ4 is the frame format.

use std::io::{Read, Write};

use super::batch::Compression;

/// xerial snappy-java's stream header: magic, version 1, compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Block size xerial writes (32 KiB).
const XERIAL_BLOCK_BYTES: usize = 32 << 10;

fn read_bounded(mut r: impl Read, limit_bytes: usize, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let read = r
        .by_ref()
        .take(limit_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{what} data is damaged: {e}"))?;
    if read > limit_bytes {
        return Err(format!("{what} records inflate beyond {limit_bytes} bytes"));
    }
    Ok(out)
}

fn snappy_raw(block: &[u8], limit_bytes: usize) -> Result<Vec<u8>, String> {
    let len = snap::raw::decompress_len(block).map_err(|e| format!("snappy: {e}"))?;
    if len > limit_bytes {
        return Err(format!("snappy records inflate beyond {limit_bytes} bytes"));
    }
    snap::raw::Decoder::new()
        .decompress_vec(block)
        .map_err(|e| format!("snappy: {e}"))
}

fn snappy_xerial(data: &[u8], limit_bytes: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = &data[XERIAL_HEADER.len()..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("snappy: truncated xerial block length".into());
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if len > rest.len() {
            return Err("snappy: xerial block runs past the batch".into());
        }
        let block = snappy_raw(&rest[..len], limit_bytes - out.len())?;
        out.extend_from_slice(&block);
        rest = &rest[len..];
    }
    Ok(out)
}

/// Decompresses a batch's records (everything after the 61-byte header), refusing to
/// produce more than `limit_bytes`.
pub fn decompress(codec: Compression, data: &[u8], limit_bytes: usize) -> Result<Vec<u8>, String> {
    match codec {
        Compression::None => {
            if data.len() > limit_bytes {
                return Err(format!("records exceed {limit_bytes} bytes"));
            }
            Ok(data.to_vec())
        }
        Compression::Gzip => {
            read_bounded(flate2::read::MultiGzDecoder::new(data), limit_bytes, "gzip")
        }
        Compression::Snappy => {
            if data.starts_with(XERIAL_HEADER) {
                snappy_xerial(data, limit_bytes)
            } else {
                snappy_raw(data, limit_bytes)
            }
        }
        Compression::Lz4 => {
            read_bounded(lz4_flex::frame::FrameDecoder::new(data), limit_bytes, "lz4")
        }
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(data)
                .map_err(|e| format!("zstd data is damaged: {e}"))?;
            read_bounded(decoder, limit_bytes, "zstd")
        }
    }
}

/// Compresses records with `codec` (as the producer did, when compaction rewrites a batch).
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, String> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).map_err(|e| format!("gzip: {e}"))?;
            enc.finish().map_err(|e| format!("gzip: {e}"))
        }
        Compression::Snappy => {
            let mut out = XERIAL_HEADER.to_vec();
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK_BYTES) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| format!("snappy: {e}"))?;
                let len = u32::try_from(block.len()).map_err(|_| "snappy block too large")?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(data).map_err(|e| format!("lz4: {e}"))?;
            enc.finish().map_err(|e| format!("lz4: {e}"))
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            data,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed, data.len()).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn inflating_past_the_limit_is_refused() {
        let data = vec![0u8; 1 << 20];
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            let err = decompress(codec, &packed, 4096).unwrap_err();
            assert!(
                err.contains("4096") || err.contains("exceed"),
                "{codec:?}: {err}"
            );
        }
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let data = b"hello hello hello hello".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1 << 20).unwrap(),
            data
        );
    }

    #[test]
    fn damaged_data_is_an_error_not_a_panic() {
        for codec in ALL[1..].iter() {
            let mut packed = compress(*codec, &[7u8; 5000]).unwrap();
            let mid = packed.len() / 2;
            packed.truncate(mid);
            let _ = decompress(*codec, &packed, 1 << 20);
            let _ = decompress(*codec, &[0xff; 40], 1 << 20);
        }
    }
}
