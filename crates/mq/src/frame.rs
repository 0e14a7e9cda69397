//! Kafka's framing: every request and response is a 4-byte big-endian length
//! followed by that many bytes.
//!
//! The length is a number the client chose, so it is checked against
//! `socket_request_max_bytes` before anything is allocated, and the body is
//! read into a buffer that grows with the bytes that actually arrive (a
//! client announcing 100 MiB and sending 10 bytes holds 10 bytes, not 100
//! MiB). A request also needs at least its fixed header prefix (api key,
//! version, correlation id: 8 bytes).

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes every request starts with: api key (2), api version (2), correlation id (4).
pub const REQUEST_PREFIX_BYTES: usize = 8;
/// Bytes every response starts with: its correlation id.
pub const RESPONSE_PREFIX_BYTES: usize = 4;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The client closed the connection between frames (the normal end).
    #[error("connection closed")]
    Closed,
    /// The length prefix is negative, too small or above the limit.
    #[error("frame of {length} bytes is outside [{min_bytes}, {max_bytes}]")]
    BadLength {
        /// The announced length.
        length: i64,
        /// The smallest frame.
        min_bytes: usize,
        /// The limit (`socket_request_max_bytes` for requests).
        max_bytes: usize,
    },
    /// The socket failed or closed in the middle of a frame.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks an announced request length: a pure decision, separate from I/O.
pub fn check_length(length: i32, max_bytes: usize) -> Result<usize, FrameError> {
    check_length_within(length, REQUEST_PREFIX_BYTES, max_bytes)
}

fn check_length_within(
    length: i32,
    min_bytes: usize,
    max_bytes: usize,
) -> Result<usize, FrameError> {
    match usize::try_from(length) {
        Ok(len) if (min_bytes..=max_bytes).contains(&len) => Ok(len),
        _ => Err(FrameError::BadLength {
            length: i64::from(length),
            min_bytes,
            max_bytes,
        }),
    }
}

/// Reads one request frame (without its length prefix).
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<Bytes, FrameError> {
    let len = read_length(reader, max_bytes).await?;
    read_body(reader, len).await
}

/// Reads and checks a frame's length prefix.
pub async fn read_length<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<usize, FrameError> {
    read_length_within(reader, REQUEST_PREFIX_BYTES, max_bytes).await
}

/// Reads one response frame (without its length prefix): the client side.
pub async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<Bytes, FrameError> {
    let len = read_length_within(reader, RESPONSE_PREFIX_BYTES, max_bytes).await?;
    read_body(reader, len).await
}

async fn read_length_within<R: AsyncRead + Unpin>(
    reader: &mut R,
    min_bytes: usize,
    max_bytes: usize,
) -> Result<usize, FrameError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed);
        }
        Err(err) => return Err(err.into()),
    }
    check_length_within(i32::from_be_bytes(prefix), min_bytes, max_bytes)
}

/// Reads a frame body of `len` bytes (already checked by [`read_length`]).
pub async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
) -> Result<Bytes, FrameError> {
    // Grow with the data: never trust the prefix with an allocation.
    let mut body = BytesMut::with_capacity(len.min(64 * 1024));
    let mut limited = reader.take(len as u64);
    while body.len() < len {
        if body.capacity() == body.len() {
            body.reserve((len - body.len()).min(body.len().max(64 * 1024)));
        }
        if limited.read_buf(&mut body).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok(body.freeze())
}

/// Writes one frame: its length, then `body`.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let len = i32::try_from(body.len())
        .map_err(|_| std::io::Error::other("response larger than 2 GiB"))?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_bounded_both_ways() {
        assert_eq!(check_length(8, 100).unwrap(), 8);
        assert_eq!(check_length(100, 100).unwrap(), 100);
        assert!(check_length(101, 100).is_err());
        assert!(check_length(-1, 100).is_err());
        assert!(check_length(7, 100).is_err());
        assert!(check_length(i32::MAX, 100 << 20).is_err());
    }

    #[tokio::test]
    async fn frames_roundtrip_and_truncation_is_an_error() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"0123456789").await.unwrap();
        let mut reader = &wire[..];
        assert_eq!(
            &read_frame(&mut reader, 1024).await.unwrap()[..],
            b"0123456789"
        );
        assert!(matches!(
            read_frame(&mut reader, 1024).await,
            Err(FrameError::Closed)
        ));
        let mut truncated = &wire[..wire.len() - 1];
        assert!(matches!(
            read_frame(&mut truncated, 1024).await,
            Err(FrameError::Io(_))
        ));
    }

    #[tokio::test]
    async fn a_huge_prefix_is_refused_before_reading_the_body() {
        let wire = [0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut reader = &wire[..];
        assert!(matches!(
            read_frame(&mut reader, 100 << 20).await,
            Err(FrameError::BadLength { .. })
        ));
    }
}
