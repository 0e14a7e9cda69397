//! The redirect, answered before hyper: `GET /{code}` is the request the
//! chapter sizes the system for (10 reads per write, ≈11,600/s), and an
//! answer is one 302 head with a `Location`, so it runs on the hand-written
//! HTTP/1.1 loop of `service::front` (nginx's way: parse the head in place,
//! write the answer in one call).
//!
//! The front takes a request only when it means exactly what the router
//! would make of it: `GET` or `HEAD`, HTTP/1.1, no body, a path of one
//! plain segment (no `/` or `%` in the code, the same rule as
//! [`crate::server`]'s hyper fast path), and a `Connection` naming nothing
//! but `close` or `keep-alive`. It answers only a code that resolves (with
//! the click recorded, through [`crate::http::resolve_redirect`], the one
//! implementation both paths use) and whose long URL is plain visible
//! ASCII; an unknown code, a store error or anything else leaves the
//! request unread and hands the connection to hyper and the router, which
//! answer it as they always have (the 404 page, the 503).

use service::front::{Answered, Front, Plan, Prefixed};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http::{ClickHeaders, HttpState};

/// Most request headers looked at; more goes to hyper.
const HEADERS_MAX: usize = 64;

/// A redirect request the front answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRequest {
    /// The code (the path without its `/`).
    pub code: String,
    /// `HEAD`.
    pub is_head: bool,
    /// The client asked to close the connection.
    pub close: bool,
    /// Bytes of the head.
    pub head_bytes: usize,
    /// `Referer` and `User-Agent`, kept when clicks are recorded.
    pub referer: Option<String>,
    /// See `referer`.
    pub user_agent: Option<String>,
}

/// Decides what to do with the bytes at the start of a connection's
/// buffer; `keep_click_headers` when analytics need them.
pub fn plan(buffer: &[u8], keep_click_headers: bool) -> Plan<RedirectRequest> {
    let mut storage = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let head = match service::front::parse_get(buffer, &mut storage) {
        Plan::Fast(head) => head,
        Plan::Partial => return Plan::Partial,
        Plan::Full(reason) => return Plan::Full(reason),
    };
    let Some(code) = head.target.strip_prefix('/') else {
        return Plan::Full("target");
    };
    if code.is_empty()
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Plan::Full("not a code");
    }
    let header_text = |name: &str| {
        let header = head
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))?;
        std::str::from_utf8(header.value).ok().map(str::to_owned)
    };
    let (referer, user_agent) = if keep_click_headers {
        (header_text("referer"), header_text("user-agent"))
    } else {
        (None, None)
    };
    Plan::Fast(RedirectRequest {
        code: code.to_owned(),
        is_head: head.is_head,
        close: head.close,
        head_bytes: head.head_bytes,
        referer,
        user_agent,
    })
}

/// The answer's bytes: the redirect head, no body.
pub fn redirect_bytes(redirect: &crate::http::Redirect, close: bool) -> Option<Vec<u8>> {
    let location = redirect.link.long_url.as_bytes();
    // Never let a stored URL write a header of its own.
    if !location.iter().all(|b| (0x21..0x7f).contains(b)) {
        return None;
    }
    let mut out = Vec::with_capacity(160 + location.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(redirect.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(redirect.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\nlocation: ");
    out.extend_from_slice(location);
    out.extend_from_slice(b"\r\ncache-control: ");
    out.extend_from_slice(redirect.cache_control.as_bytes());
    out.extend_from_slice(b"\r\ncontent-length: 0\r\n");
    service::front::push_date(&mut out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// One connection's front: the state, and what hyper needs if the
/// connection goes there.
pub(crate) struct RedirectFront<H> {
    pub state: HttpState,
    /// Serves the connection with hyper and the router.
    pub full: H,
}

impl<H, F> Front for RedirectFront<H>
where
    H: FnOnce(Prefixed<TcpStream>) -> F + Send + 'static,
    F: std::future::Future<Output = ()> + Send,
{
    type Request = RedirectRequest;

    fn plan(&mut self, buffer: &[u8]) -> Plan<RedirectRequest> {
        plan(buffer, self.state.recorder.is_some())
    }

    fn head_bytes(request: &RedirectRequest) -> usize {
        request.head_bytes
    }

    async fn answer(&mut self, request: RedirectRequest, stream: &mut TcpStream) -> Answered {
        let click = ClickHeaders {
            referer: request.referer.as_deref(),
            user_agent: request.user_agent.as_deref(),
            is_head: request.is_head,
        };
        let resolved = crate::http::resolve_redirect(&self.state, &request.code, click).await;
        let Some(bytes) = resolved
            .ok()
            .flatten()
            .and_then(|redirect| redirect_bytes(&redirect, request.close))
        else {
            // Unknown code, store error, odd URL: the router answers.
            return Answered::Full;
        };
        match stream.write_all(&bytes).await {
            Ok(()) if !request.close => Answered::KeepAlive,
            _ => Answered::Close,
        }
    }

    async fn full(self, io: Prefixed<TcpStream>) {
        (self.full)(io).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(text: &str) -> Option<RedirectRequest> {
        match plan(text.as_bytes(), true) {
            Plan::Fast(request) => Some(request),
            _ => None,
        }
    }

    #[test]
    fn only_plain_redirects_are_taken() {
        let taken =
            fast("GET /abc123 HTTP/1.1\r\nHost: s\r\nReferer: http://a.example/x\r\n\r\n").unwrap();
        assert_eq!(taken.code, "abc123");
        assert_eq!(taken.referer.as_deref(), Some("http://a.example/x"));
        assert!(!taken.close);
        assert!(
            fast("HEAD /abc HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .close
        );
        for other in [
            "POST /abc HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            "GET / HTTP/1.1\r\n\r\n",
            "GET /api/v1/abc HTTP/1.1\r\n\r\n",
            "GET /ab%41 HTTP/1.1\r\n\r\n",
            "GET /abc?x=1 HTTP/1.1\r\n\r\n",
            "GET /abc HTTP/1.0\r\n\r\n",
            "GET /abc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /abc HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        ] {
            assert_eq!(fast(other), None, "{other}");
        }
        assert_eq!(plan(b"GET /abc HTTP/1.1\r\n", false), Plan::Partial);
    }
}
