//! Request bodies on their way upstream: streamed when they will not be
//! replayed, buffered when a retry may need them again, and the total
//! buffered bounded.
//!
//! Why not buffer everything (the first version did): 30 concurrent 10 MiB
//! uploads held ~210 MB of RSS, and a burst of uploads could take the
//! gateway's memory with it. Only a request that may be *retried* needs its
//! body twice ([`crate::proxy`]'s failover rules: idempotent methods or
//! `retry.idempotent_header`), so:
//!
//! - **Not replayable** (a plain POST): the body is streamed to the upstream
//!   as it arrives (nginx's `proxy_request_buffering off`). It can still be
//!   sent to a second upstream when the first could not even be connected
//!   to, because then not one byte of it was read.
//! - **Replayable**: buffered in memory up to `limits.body_memory_bytes_max`
//!   (default 1 MiB), then moved to an anonymous temporary file in
//!   `limits.body_spill_dir` (default: the OS temp dir; the OS deletes it
//!   when the request ends, even after a crash). Each attempt reads its own
//!   copy; file reads and writes run on tokio's blocking pool.
//! - **Bounded in total**: all buffered bodies together (memory and disk)
//!   hold at most `limits.body_buffer_total_bytes_max`. A replayable body
//!   that does not fit is *streamed without replay* rather than refused:
//!   the client is still served, it only loses failover for that request
//!   (counted in `request_bodies_total{handling="over_budget"}`). A 503
//!   would turn a memory safeguard into an outage under upload bursts.
//!
//! Either way the body is bounded by `limits.body_bytes_max` (413) and
//! `timeouts.body_read_ms` for the whole body (408), which is also the
//! slowloris defence for bodies. A streamed body that breaks a limit midway
//! aborts the upstream request (the upstream sees a truncated body, never a
//! complete one) and the client gets the 413 / 408.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::Poll;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, stream};
use http::request::Parts;
use http::{Response, StatusCode, header};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error;

mod budget;
pub use budget::Budget;
use budget::Reservation;

/// Errors of bodies sent upstream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every upstream request.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;
type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, BoxError>> + Send>>;

/// Bytes read from a spill file per chunk sent upstream.
const FILE_CHUNK_BYTES: u64 = 64 << 10;

/// Why a client's body could not be taken; each has its own status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyFault {
    /// Over `limits.body_bytes_max`.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// Not received within `timeouts.body_read_ms`.
    #[error("request body not received within {0} ms")]
    Timeout(u64),
    /// The client connection broke or the framing was invalid.
    #[error("cannot read request body: {0}")]
    Unreadable(String),
    /// The spill file could not be written.
    #[error("cannot buffer the request body ({0}); check limits.body_spill_dir")]
    Spill(String),
}

impl BodyFault {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unreadable(_) => StatusCode::BAD_REQUEST,
            Self::Spill(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `refused_total{reason}` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "body_too_large",
            Self::Timeout(_) => "body_timeout",
            Self::Unreadable(_) => "body_unreadable",
            Self::Spill(_) => "body_spill_failed",
        }
    }

    /// The JSON error response.
    pub fn response(&self) -> Response<Body> {
        error::json(self.status(), &self.to_string())
    }
}

/// How bodies are taken (from `limits` and `timeouts`).
#[derive(Debug, Clone)]
pub struct BodyPolicy {
    /// `limits.body_bytes_max`.
    pub bytes_max: u64,
    /// `timeouts.body_read_ms`.
    pub read_timeout: Duration,
    /// `limits.body_memory_bytes_max`: a replayable body larger than this
    /// goes to a temporary file.
    pub memory_bytes_max: u64,
    /// `limits.body_spill_dir`.
    pub spill_dir: PathBuf,
}

/// A client body read under the limits; records why it stopped, if it did.
struct Source<B> {
    body: Pin<Box<B>>,
    read_bytes: u64,
    bytes_max: u64,
    deadline: Instant,
    timeout_ms: u64,
    fault: Arc<OnceLock<BodyFault>>,
    done: watch::Sender<bool>,
}

impl<B> Source<B>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// The next frame; `None` at the end or after a fault.
    async fn next(&mut self) -> Option<Result<Frame<Bytes>, BodyFault>> {
        if self.fault.get().is_some() {
            return None;
        }
        let outcome = match tokio::time::timeout_at(self.deadline, self.body.frame()).await {
            Err(_) => Err(BodyFault::Timeout(self.timeout_ms)),
            Ok(None) => {
                self.done.send_replace(true);
                return None;
            }
            Ok(Some(Err(err))) => Err(BodyFault::Unreadable(err.into().to_string())),
            Ok(Some(Ok(frame))) => {
                let length = frame.data_ref().map_or(0, |data| data.len() as u64);
                self.read_bytes += length;
                if self.read_bytes > self.bytes_max {
                    Err(BodyFault::TooLarge(self.bytes_max))
                } else {
                    Ok(frame)
                }
            }
        };
        if let Err(fault) = &outcome {
            let _first = self.fault.set(fault.clone());
        }
        Some(outcome)
    }

    fn into_stream(self) -> FrameStream {
        Box::pin(stream::unfold(self, |mut source| async move {
            let frame = source.next().await?;
            Some((frame.map_err(BoxError::from), source))
        }))
    }
}

/// What was buffered of a replayable body.
enum Stored {
    Memory(Bytes),
    File(SpillFile),
}

/// A finished spill file: read at offsets, so attempts never share a
/// position; closed on the blocking pool.
struct SpillFile {
    file: Option<Arc<std::fs::File>>,
    length: u64,
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        // Closing the last descriptor frees the (unlinked) file's blocks.
        if let (Some(file), Ok(runtime)) = (self.file.take(), tokio::runtime::Handle::try_current())
        {
            drop(runtime.spawn_blocking(move || drop(file)));
        }
    }
}

/// A buffered body and the budget it holds.
struct Held {
    stored: Stored,
    _reservation: Reservation,
}

impl Held {
    fn length(&self) -> u64 {
        match &self.stored {
            Stored::Memory(bytes) => bytes.len() as u64,
            Stored::File(file) => file.length,
        }
    }

    /// A fresh read of the whole body; holds the buffer until dropped.
    fn stream(self: &Arc<Self>) -> FrameStream {
        let held = self.clone();
        Box::pin(stream::unfold((held, 0u64), |(held, offset)| async move {
            let length = held.length();
            if offset >= length {
                return None;
            }
            let (chunk, next) = match &held.stored {
                Stored::Memory(bytes) => (Ok(bytes.clone()), length),
                Stored::File(spill) => match read_at(spill, offset, length).await {
                    Ok(chunk) => {
                        let next = offset + chunk.len() as u64;
                        (Ok(chunk), next)
                    }
                    // Stop after the error: the attempt fails as a whole.
                    Err(err) => (Err(err), length),
                },
            };
            Some((chunk.map(Frame::data), (held, next)))
        }))
    }
}

async fn read_at(spill: &SpillFile, offset: u64, length: u64) -> Result<Bytes, BoxError> {
    use std::os::unix::fs::FileExt;
    let file = spill.file.clone().ok_or("spill file already closed")?;
    let size = FILE_CHUNK_BYTES.min(length - offset) as usize;
    let read = tokio::task::spawn_blocking(move || {
        let mut buffer = vec![0; size];
        file.read_exact_at(&mut buffer, offset).map(|()| buffer)
    })
    .await??;
    Ok(Bytes::from(read))
}

/// A spill file being written.
struct Spill {
    writer: tokio::fs::File,
    reader: Arc<std::fs::File>,
    length: u64,
}

impl Spill {
    async fn create(dir: PathBuf) -> Result<Self, BodyFault> {
        let fault = |err: std::io::Error| BodyFault::Spill(err.to_string());
        let (file, reader) = tokio::task::spawn_blocking(move || {
            let file = tempfile::tempfile_in(&dir)?;
            let reader = file.try_clone()?;
            Ok::<_, std::io::Error>((file, reader))
        })
        .await
        .map_err(|err| BodyFault::Spill(err.to_string()))?
        .map_err(fault)?;
        Ok(Self {
            writer: tokio::fs::File::from_std(file),
            reader: Arc::new(reader),
            length: 0,
        })
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), BodyFault> {
        self.writer
            .write_all(data)
            .await
            .map_err(|err| BodyFault::Spill(err.to_string()))?;
        self.length += data.len() as u64;
        Ok(())
    }

    async fn finish(mut self) -> Result<SpillFile, BodyFault> {
        self.writer
            .flush()
            .await
            .map_err(|err| BodyFault::Spill(err.to_string()))?;
        Ok(SpillFile {
            file: Some(self.reader),
            length: self.length,
        })
    }
}

/// A request body ready to be sent to one upstream or more.
pub struct Payload {
    kind: Kind,
    /// Shared with the reader of a streamed body; `None` for bodies already
    /// read (nothing to share, nothing allocated per request).
    fault: Option<Arc<OnceLock<BodyFault>>>,
    /// Flips to `true` once the client's body has been read to the end;
    /// `None` when nothing is left to read.
    done: Option<watch::Receiver<bool>>,
    /// When the client's body must have been read by (streamed bodies).
    deadline: Option<Instant>,
}

enum Kind {
    Empty,
    Held(Arc<Held>),
    /// Read from the client while sending: the first attempt that polls it
    /// takes it; until then it can still go to another upstream.
    Once(Arc<Mutex<Option<FrameStream>>>),
}

impl Payload {
    /// No body (the edge cache's origin requests).
    pub fn empty() -> Self {
        Self::new(Kind::Empty)
    }

    fn new(kind: Kind) -> Self {
        Self {
            kind,
            fault: None,
            done: None,
            deadline: None,
        }
    }

    fn once<B>(source: Source<B>, prefix: Option<FrameStream>) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let fault = source.fault.clone();
        let done = source.done.subscribe();
        let deadline = Some(source.deadline);
        let rest = source.into_stream();
        let stream = match prefix {
            Some(prefix) => Box::pin(prefix.chain(rest)),
            None => rest,
        };
        Self {
            kind: Kind::Once(Arc::new(Mutex::new(Some(stream)))),
            fault: Some(fault),
            done: Some(done),
            deadline,
        }
    }

    /// The body for one more attempt, or `None` if it cannot be sent again
    /// (a streamed body that an earlier attempt started reading).
    pub fn attempt_body(&self) -> Option<UpstreamBody> {
        match &self.kind {
            Kind::Empty => Some(Empty::new().map_err(|never| match never {}).boxed_unsync()),
            Kind::Held(held) => Some(StreamBody::new(held.stream()).boxed_unsync()),
            Kind::Once(slot) => {
                if lock(slot).is_none() {
                    return None;
                }
                let slot = slot.clone();
                let mut taken: Option<FrameStream> = None;
                let stream = stream::poll_fn(move |cx| {
                    if taken.is_none() {
                        taken = lock(&slot).take();
                    }
                    match taken.as_mut() {
                        Some(stream) => stream.as_mut().poll_next(cx),
                        None => Poll::Ready(None),
                    }
                });
                Some(StreamBody::new(stream).boxed_unsync())
            }
        }
    }

    /// The length of a buffered body (sent as `Content-Length`).
    pub fn buffered_length(&self) -> Option<u64> {
        match &self.kind {
            Kind::Held(held) => Some(held.length()),
            _ => None,
        }
    }

    /// Why reading the client's body failed, if it did.
    pub fn fault(&self) -> Option<BodyFault> {
        self.fault.as_ref().and_then(|fault| fault.get().cloned())
    }

    /// When a streamed body must have been read by (`timeouts.body_read_ms`
    /// after the gateway started reading it); `None` when already read.
    pub fn read_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Resolves once the client's body is fully read (at once for a
    /// buffered or empty body); never if it stops early.
    pub async fn read_to_end(&self) {
        let Some(done) = &self.done else {
            return;
        };
        let mut done = done.clone();
        if done.wait_for(|done| *done).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn lock(slot: &Mutex<Option<FrameStream>>) -> std::sync::MutexGuard<'_, Option<FrameStream>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes a client body: streamed if not `replayable`, buffered (memory,
/// then file) if it is and fits the budget; see the module doc.
pub async fn prepare<B>(
    parts: &Parts,
    body: B,
    replayable: bool,
    policy: &BodyPolicy,
    budget: &Arc<Budget>,
) -> Result<Payload, BodyFault>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > policy.bytes_max) {
        return Err(BodyFault::TooLarge(policy.bytes_max));
    }
    if body.is_end_stream() {
        return Ok(Payload::new(Kind::Empty));
    }
    let (done, _) = watch::channel(false);
    let source = Source {
        body: Box::pin(body),
        read_bytes: 0,
        bytes_max: policy.bytes_max,
        deadline: Instant::now() + policy.read_timeout,
        timeout_ms: policy.read_timeout.as_millis() as u64,
        fault: Arc::default(),
        done,
    };
    if !replayable {
        budget.metrics.count_body("streamed");
        return Ok(Payload::once(source, None));
    }
    // A declared length is reserved whole, so the decision is made before
    // reading a byte; a chunked body reserves as it arrives.
    let Some(reservation) = Reservation::new(budget, declared.unwrap_or(0)) else {
        budget.metrics.count_body("over_budget");
        return Ok(Payload::once(source, None));
    };
    buffer(source, reservation, declared, policy).await
}

/// Buffers a replayable body; see [`prepare`].
async fn buffer<B>(
    mut source: Source<B>,
    mut reservation: Reservation,
    declared: Option<u64>,
    policy: &BodyPolicy,
) -> Result<Payload, BodyFault>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let capacity = declared.unwrap_or(0).min(policy.memory_bytes_max);
    let mut memory = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut spill: Option<Spill> = None;
    while let Some(frame) = source.next().await {
        let Ok(data) = frame?.into_data() else {
            // Trailers are not forwarded (as before: the body is re-framed).
            continue;
        };
        let length = data.len() as u64;
        if !reservation.room_for(length) {
            // Over budget midway (chunked): send what is held, then the
            // rest as it comes, without replay.
            let budget = reservation.budget.clone();
            let held = finish(memory, spill, reservation).await?;
            budget.metrics.count_body("over_budget");
            let this_frame = stream::iter([Ok(Frame::data(data))]);
            let prefix: FrameStream = Box::pin(Arc::new(held).stream().chain(this_frame));
            return Ok(Payload::once(source, Some(prefix)));
        }
        match &mut spill {
            Some(file) => {
                file.write(&data).await?;
                reservation.hold("disk", length);
            }
            None if memory.len() as u64 + length <= policy.memory_bytes_max => {
                memory.extend_from_slice(&data);
                reservation.hold("memory", length);
            }
            None => {
                let mut file = Spill::create(policy.spill_dir.clone()).await?;
                file.write(&memory).await?;
                file.write(&data).await?;
                memory = BytesMut::new();
                reservation.memory_to_disk();
                reservation.hold("disk", length);
                spill = Some(file);
            }
        }
    }
    let budget = reservation.budget.clone();
    let held = finish(memory, spill, reservation).await?;
    budget.metrics.count_body(match held.stored {
        Stored::Memory(_) => "memory",
        Stored::File(_) => "disk",
    });
    Ok(Payload::new(Kind::Held(Arc::new(held))))
}

async fn finish(
    memory: BytesMut,
    spill: Option<Spill>,
    reservation: Reservation,
) -> Result<Held, BodyFault> {
    let stored = match spill {
        Some(spill) => Stored::File(spill.finish().await?),
        None => Stored::Memory(memory.freeze()),
    };
    Ok(Held {
        stored,
        _reservation: reservation,
    })
}

#[cfg(test)]
mod tests;
