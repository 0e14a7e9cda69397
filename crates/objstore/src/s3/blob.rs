//! Object bytes in the data store: a request body goes in as chunks, a range comes out
//! as a stream.
//!
//! Why a module: S3 objects reach 5 GiB, the data node stores objects of at most
//! `object_size_bytes_max` and checks a whole record on every read; so an S3 object is
//! a list of chunks of at most `chunk_bytes` (8 MiB: one chunk per aws-cli multipart
//! part), each a data-node object. A body is hashed (MD5, the ETag) and stored chunk by
//! chunk on a blocking thread while the next chunk is read off the socket, so memory
//! per upload stays at two chunks; each chunk is fsynced by the data node's group
//! commit before the metadata row naming it is written. A read streams the chunks
//! overlapping the range, one at a time.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use s3s::{S3Error, S3Result, s3_error};

use super::meta::Chunk;
use crate::ObjectId;
use crate::cluster::DataStore;

/// What storing a body produced.
pub struct Stored {
    /// The chunks, in order.
    pub chunks: Vec<Chunk>,
    /// Total bytes.
    pub size: u64,
    /// MD5 of the bytes.
    pub md5: [u8; 16],
}

/// Runs blocking `f` off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> S3Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| s3_error!(e, InternalError))
}

/// An internal error with its cause logged.
pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> S3Error {
    tracing::error!(error = %e, "s3 internal error");
    s3_error!(e, InternalError)
}

/// Deletes `chunks` from the data store (their bytes become garbage for GC).
pub async fn free(node: &Arc<DataStore>, chunks: Vec<Chunk>) {
    if chunks.is_empty() {
        return;
    }
    let node = node.clone();
    let r = blocking(move || {
        for c in chunks {
            node.delete(c.id)?;
        }
        Ok::<(), crate::Error>(())
    })
    .await;
    let e = match r {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(error = %e, "freeing chunks failed; their bytes stay until repaired");
}

type Pending = tokio::task::JoinHandle<(Md5, crate::Result<ObjectId>, u64)>;

/// Stores `body` (at most `limit` bytes, else `EntityTooLarge`) as chunks of at most
/// `chunk_bytes`. On any failure the chunks already stored are freed.
pub async fn store<S, E>(
    node: &Arc<DataStore>,
    mut body: S,
    limit: u64,
    chunk_bytes: usize,
) -> S3Result<Stored>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut chunks = Vec::new();
    let mut hasher = Some(Md5::new());
    let mut pending: Option<Pending> = None;
    let mut buf: Vec<u8> = Vec::new();
    let mut size = 0u64;
    let mut failure: Option<S3Error> = None;
    loop {
        let item = body.next().await;
        let last = item.is_none();
        match item {
            Some(Ok(bytes)) => {
                size += bytes.len() as u64;
                if size > limit {
                    failure = Some(s3_error!(
                        EntityTooLarge,
                        "Your proposed upload exceeds the maximum allowed size ({limit} bytes)"
                    ));
                    break;
                }
                buf.extend_from_slice(&bytes);
            }
            Some(Err(e)) => {
                failure = Some(s3_error!(IncompleteBody, "reading the request body: {e}"));
                break;
            }
            None => {}
        }
        while buf.len() >= chunk_bytes || (last && !buf.is_empty()) {
            let rest = if buf.len() > chunk_bytes {
                buf.split_off(chunk_bytes)
            } else {
                Vec::new()
            };
            let piece = std::mem::replace(&mut buf, rest);
            // One chunk in flight: wait for the previous before starting this one.
            if let Some(p) = pending.take() {
                match finish(p, &mut chunks).await {
                    Ok(h) => hasher = Some(h),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            let mut h = hasher.take().expect("the hasher is back after each chunk");
            let node = node.clone();
            pending = Some(tokio::task::spawn_blocking(move || {
                h.update(&piece);
                let r = node.put(&piece);
                (h, r, piece.len() as u64)
            }));
        }
        if last || failure.is_some() {
            break;
        }
    }
    if let Some(p) = pending.take() {
        match finish(p, &mut chunks).await {
            Ok(h) => hasher = Some(h),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        free(node, chunks).await;
        return Err(e);
    }
    let md5 = hasher
        .expect("the hasher is back after the last chunk")
        .finalize();
    Ok(Stored {
        chunks,
        size,
        md5: md5.into(),
    })
}

async fn finish(p: Pending, chunks: &mut Vec<Chunk>) -> S3Result<Md5> {
    let (h, r, len) = p.await.map_err(|e| s3_error!(e, InternalError))?;
    let id = r.map_err(|e| match e {
        crate::Error::Full(_) => s3_error!(e, ServiceUnavailable, "the data store is full"),
        crate::Error::Unavailable(_) => {
            tracing::warn!(error = %e, "too few data nodes for a chunk");
            s3_error!(
                e,
                ServiceUnavailable,
                "too few data nodes are reachable; retry"
            )
        }
        e => internal(e),
    })?;
    chunks.push(Chunk { id, len });
    Ok(h)
}

/// The bytes `range` of an object made of `chunks`, as a stream read one chunk at a time.
pub fn read(
    node: Arc<DataStore>,
    chunks: Vec<Chunk>,
    range: Range<u64>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    // (chunk index, the chunk's start in the object)
    futures::stream::unfold((0usize, 0u64), move |(i, start)| {
        let node = node.clone();
        let chunks = chunks.clone();
        let range = range.clone();
        async move {
            let mut i = i;
            let mut start = start;
            while let Some(c) = chunks.get(i) {
                let end = start + c.len;
                if end <= range.start {
                    i += 1;
                    start = end;
                    continue;
                }
                if start >= range.end {
                    return None;
                }
                let from = range.start.max(start) - start;
                let to = range.end.min(end) - start;
                let id = c.id;
                let got = tokio::task::spawn_blocking(move || node.get(id, from..to)).await;
                let item = match got {
                    Ok(Ok(Some(data))) => Ok(Bytes::from(data)),
                    Ok(Ok(None)) => Err(std::io::Error::other(format!("chunk {id} is missing"))),
                    Ok(Err(e)) => Err(std::io::Error::other(e)),
                    Err(e) => Err(std::io::Error::other(e)),
                };
                let stop = item.is_err();
                if stop {
                    tracing::error!(%id, "reading an object's chunk failed");
                }
                return Some((item, (if stop { chunks.len() } else { i + 1 }, end)));
            }
            None
        }
    })
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
