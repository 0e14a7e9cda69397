//! A hand-written HTTP/1.1 front for the one request a system is sized for,
//! with the full HTTP stack (hyper, axum) behind it for everything else.
//!
//! Why: a system's hot request (the gateway's plain `GET` to proxy, the
//! shortener's `GET /{code}` to redirect) is a few hundred bytes in and out,
//! and at that size a general HTTP stack's per-request machinery (a header
//! map, a router, a body type, the state machine's bookkeeping) costs as
//! much as the work itself; nginx is fast there because it parses the head
//! in place and writes the answer in one call. This loop does that for the
//! requests a [`Front`] recognizes and nothing more: the first request it
//! does not recognize hands the connection, bytes already read included
//! ([`Prefixed`]), to the full stack for the rest of the connection's life.
//! So the front never has to implement the long tail of HTTP; it only has
//! to be right about the heads it accepts.
//!
//! The loop bounds what a client can make it hold or wait for: a head must
//! arrive within `header_read` (slowloris, and idle keep-alive connections,
//! end there) and within `head_bytes_max` (beyond it the full stack answers,
//! with its 431); between requests it stops when `shutdown` is cancelled.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::Shutdown;

/// What a front makes of the bytes at the start of a connection's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<R> {
    /// The head is not complete yet: read more.
    Partial,
    /// A request the front answers itself.
    Fast(R),
    /// Anything else: the connection goes to the full stack (the reason is
    /// for traces).
    Full(&'static str),
}

/// How answering a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Answered; the connection can serve the next request.
    KeepAlive,
    /// Answered (or failed); close the connection.
    Close,
    /// Not answered after all: the request, still unread, and the
    /// connection go to the full stack.
    Full,
}

/// A system's hot path: recognizes its requests and answers them.
pub trait Front: Send + Sized + 'static {
    /// What [`Front::plan`] takes from a head (owned: the buffer moves on).
    type Request: Send;

    /// Looks at the unread bytes of the connection.
    fn plan(&mut self, buffer: &[u8]) -> Plan<Self::Request>;

    /// Bytes of `request`'s head in the buffer, consumed once it is answered.
    fn head_bytes(request: &Self::Request) -> usize;

    /// Answers `request` on `stream`.
    fn answer(
        &mut self,
        request: Self::Request,
        stream: &mut TcpStream,
    ) -> impl Future<Output = Answered> + Send;

    /// Serves the rest of the connection with the full stack.
    fn full(self, io: Prefixed<TcpStream>) -> impl Future<Output = ()> + Send;
}

/// The loop's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time for a whole request head, counted from when the loop starts
    /// waiting for it.
    pub header_read: Duration,
    /// Bytes of a request head.
    pub head_bytes_max: usize,
}

/// Serves `stream` with `front` until the connection closes, `shutdown`
/// is cancelled between requests, or the full stack takes over.
pub async fn serve<F: Front>(
    mut front: F,
    mut stream: TcpStream,
    limits: Limits,
    shutdown: Shutdown,
) {
    let mut input = BytesMut::with_capacity(4096);
    loop {
        let deadline = tokio::time::Instant::now() + limits.header_read;
        let request = loop {
            match front.plan(&input) {
                Plan::Fast(request) => break request,
                Plan::Full(reason) => {
                    tracing::trace!(reason, "connection handed to the full stack");
                    return front.full(Prefixed::new(input, stream)).await;
                }
                Plan::Partial if input.len() >= limits.head_bytes_max => {
                    return front.full(Prefixed::new(input, stream)).await;
                }
                Plan::Partial => {}
            }
            input.reserve(4096);
            let read = tokio::select! {
                biased;
                () = shutdown.cancelled(), if input.is_empty() => return,
                read = tokio::time::timeout_at(deadline, stream.read_buf(&mut input)) => read,
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                // Closed, failed, or too slow (slowloris, or idle keep-alive).
                _ => return,
            }
        };
        let head_bytes = F::head_bytes(&request);
        debug_assert!(head_bytes <= input.len());
        match front.answer(request, &mut stream).await {
            Answered::KeepAlive if !shutdown.is_cancelled() => input.advance(head_bytes),
            Answered::Full => return front.full(Prefixed::new(input, stream)).await,
            Answered::KeepAlive | Answered::Close => {
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// A connection with bytes already read from it put back in front, so the
/// full stack reads them first as if they had never been taken.
pub struct Prefixed<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, whose next bytes are `prefix`'s.
    pub fn new(prefix: BytesMut, inner: S) -> Self {
        Self { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let take = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..take]);
        self.prefix.advance(take);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn the_prefix_comes_first_then_the_stream() {
        let rest: &[u8] = b" world";
        let mut joined = Prefixed::new(BytesMut::from(&b"hello"[..]), rest);
        let mut text = String::new();
        joined.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "hello world");
    }

    /// Answers `ping\n` lines with `pong\n` itself; anything else goes to
    /// the "full stack", which echoes what it reads, prefix first.
    struct Ping;

    impl Front for Ping {
        type Request = usize;

        fn plan(&mut self, buffer: &[u8]) -> Plan<usize> {
            match buffer.iter().position(|b| *b == b'\n') {
                None => Plan::Partial,
                Some(end) if &buffer[..end] == b"ping" => Plan::Fast(end + 1),
                Some(_) => Plan::Full("not a ping"),
            }
        }

        fn head_bytes(request: &usize) -> usize {
            *request
        }

        async fn answer(&mut self, _: usize, stream: &mut TcpStream) -> Answered {
            match stream.write_all(b"pong\n").await {
                Ok(()) => Answered::KeepAlive,
                Err(_) => Answered::Close,
            }
        }

        async fn full(self, mut io: Prefixed<TcpStream>) {
            let mut rest = Vec::new();
            let _ = io.read_to_end(&mut rest).await;
            let _ = io.write_all(&rest).await;
        }
    }

    #[tokio::test]
    async fn fast_requests_then_the_rest_to_the_full_stack() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            header_read: Duration::from_secs(5),
            head_bytes_max: 64,
        };
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve(Ping, stream, limits, Shutdown::new()).await;
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"ping\nping\nhello\nping\n")
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "pong\npong\nhello\nping\n");
    }
}
