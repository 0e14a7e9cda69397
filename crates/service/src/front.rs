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

/// A bodiless `GET` or `HEAD` on HTTP/1.1, parsed in place: what a front
/// usually answers itself.
#[derive(Debug)]
pub struct GetHead<'h, 'b> {
    /// `HEAD` (the answer carries no body).
    pub is_head: bool,
    /// The request target as sent.
    pub target: &'b str,
    /// The client asked to close the connection after the answer.
    pub close: bool,
    /// Bytes of the head.
    pub head_bytes: usize,
    /// Every header, as sent.
    pub headers: &'h [httparse::Header<'b>],
}

/// Parses the head at the start of `buffer` into `storage` when it is a
/// [`GetHead`]: `GET`/`HEAD`, HTTP/1.1, no body (`Content-Length` absent
/// or 0, no `Transfer-Encoding`), no `Upgrade` or `Expect`, and a
/// `Connection` naming nothing but `close` or `keep-alive` (so no other
/// header is hop-by-hop). Anything else is [`Plan::Full`].
pub fn parse_get<'h, 'b>(
    buffer: &'b [u8],
    storage: &'h mut [httparse::Header<'b>],
) -> Plan<GetHead<'h, 'b>> {
    let mut request = httparse::Request::new(storage);
    let head_bytes = match request.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Plan::Partial,
        Err(_) => return Plan::Full("unparsed"),
    };
    let (Some(method), Some(target), Some(1)) = (request.method, request.path, request.version)
    else {
        return Plan::Full("not HTTP/1.1");
    };
    let is_head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Plan::Full("method"),
    };
    let headers: &'h [httparse::Header<'b>] = request.headers;
    let mut close = false;
    for header in headers {
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            let Ok(tokens) = std::str::from_utf8(header.value) else {
                return Plan::Full("connection");
            };
            for token in tokens.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if !token.is_empty() && !token.eq_ignore_ascii_case("keep-alive") {
                    return Plan::Full("connection");
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if header.value != b"0" {
                return Plan::Full("body");
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return Plan::Full("body, upgrade or expect");
        }
    }
    Plan::Fast(GetHead {
        is_head,
        target,
        close,
        head_bytes,
        headers,
    })
}

/// Appends a `date: ...\r\n` header line for now (what hyper adds to every
/// answer), formatted at most once a second per thread.
pub fn push_date(out: &mut Vec<u8>) {
    thread_local! {
        static CACHED: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            *cached = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(cached.1.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
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

    fn get(text: &str) -> Option<(bool, String, bool)> {
        let mut storage = [httparse::EMPTY_HEADER; 16];
        match parse_get(text.as_bytes(), &mut storage) {
            Plan::Fast(head) => Some((head.is_head, head.target.to_string(), head.close)),
            _ => None,
        }
    }

    #[test]
    fn only_bodiless_gets_on_http_1_1_are_get_heads() {
        assert_eq!(
            get("GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n"),
            Some((false, "/a?b".into(), false))
        );
        assert_eq!(
            get("HEAD / HTTP/1.1\r\nConnection: Keep-Alive, close\r\nContent-Length: 0\r\n\r\n"),
            Some((true, "/".into(), true))
        );
        for other in [
            "POST / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: x-secret\r\n\r\n",
            "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            assert_eq!(get(other), None, "{other}");
        }
        let mut storage = [httparse::EMPTY_HEADER; 4];
        assert!(matches!(
            parse_get(b"GET / HTTP/1.1\r\nHo", &mut storage),
            Plan::Partial
        ));
    }

    #[test]
    fn the_date_line_is_an_http_date() {
        let mut out = Vec::new();
        push_date(&mut out);
        let line = String::from_utf8(out).unwrap();
        let value = line
            .strip_prefix("date: ")
            .unwrap()
            .strip_suffix("\r\n")
            .unwrap();
        assert!(httpdate::parse_http_date(value).is_ok(), "{line}");
    }

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
