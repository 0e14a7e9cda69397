//! Block framing: checksum, optional LZ4 compression, and positioned reads.
//!
//! Why a module: data, index, bloom and meta blocks share one framing, so one function
//! verifies every byte that comes off the disk.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::options::Compression;

/// Bytes after every block payload: compression byte + crc32c.
pub(crate) const BLOCK_TRAILER_BYTES: usize = 5;
/// Compression byte: stored as is.
const RAW: u8 = 0;
/// Compression byte: LZ4 block with prepended size.
const LZ4: u8 = 1;
/// Largest block we agree to read (guards against a corrupt handle asking for GiBs).
const BLOCK_BYTES_MAX: u64 = 1 << 30;

/// Where a block lives in the file (size includes the trailer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockHandle {
    /// Byte offset.
    pub offset: u64,
    /// Byte length including the trailer.
    pub size: u32,
}

/// File name of table `id`.
pub(crate) fn table_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.sst"))
}

/// Frames a payload: compress if asked and worthwhile, then add the trailer.
pub(crate) fn frame_block(payload: &[u8], compression: Compression) -> Vec<u8> {
    let (mut out, kind) = match compression {
        Compression::Lz4 => {
            let packed = lz4_flex::compress_prepend_size(payload);
            // Keep LZ4 only when it saves at least 1/8: decompression is not free.
            if packed.len() < payload.len() - payload.len() / 8 {
                (packed, LZ4)
            } else {
                (payload.to_vec(), RAW)
            }
        }
        Compression::None => (payload.to_vec(), RAW),
    };
    out.push(kind);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads, verifies and decompresses the block at `handle`.
pub(crate) fn read_block(file: &File, path: &Path, handle: BlockHandle) -> Result<Vec<u8>> {
    let size = u64::from(handle.size);
    if (size as usize) < BLOCK_TRAILER_BYTES || size > BLOCK_BYTES_MAX {
        return Err(Error::corruption(
            path,
            format!("bad block size {size} at offset {}", handle.offset),
        ));
    }
    let mut buf = vec![0u8; size as usize];
    file.read_exact_at(&mut buf, handle.offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corruption(
                path,
                format!(
                    "block at offset {} runs past the end of the file",
                    handle.offset
                ),
            )
        } else {
            Error::io(path, e)
        }
    })?;
    unframe_block(buf, path, handle.offset)
}

/// Verifies and decompresses a framed block read from `offset`.
pub(crate) fn unframe_block(mut buf: Vec<u8>, path: &Path, offset: u64) -> Result<Vec<u8>> {
    let crc_at = buf.len() - 4;
    let stored = u32::from_le_bytes(buf[crc_at..].try_into().expect("4 bytes"));
    if crc32c::crc32c(&buf[..crc_at]) != stored {
        return Err(Error::corruption(
            path,
            format!("block checksum mismatch at offset {offset}"),
        ));
    }
    let kind = buf[crc_at - 1];
    buf.truncate(crc_at - 1);
    match kind {
        RAW => Ok(buf),
        LZ4 => lz4_flex::decompress_size_prepended(&buf)
            .map_err(|e| Error::corruption(path, format!("LZ4 block at offset {offset}: {e}"))),
        other => Err(Error::corruption(
            path,
            format!("unknown compression {other} at offset {offset}"),
        )),
    }
}
