//! The upstream's side of the relay, as plain functions of bytes: parse a
//! response head, decide how its body is framed (RFC 9112 §6.3), and write
//! the head the client gets ([`parse`]).
//!
//! The body is forwarded in the framing the upstream chose: a
//! `Content-Length` body as that many bytes, a chunked body chunk for chunk
//! (the client of the relay is always HTTP/1.1, which must accept chunked),
//! and a body delimited by the upstream closing its connection the same way
//! to the client. Headers go through as [`crate::headers::to_client`]
//! leaves them: hop-by-hop headers (and those `Connection` names) removed,
//! `Via` appended; `Transfer-Encoding: chunked` stays, since the chunks are
//! relayed as they are.

use super::request::push_header;
use crate::headers::{HOP_BY_HOP_NAMES, VIA};

/// Most response headers accepted (hyper's client allows 100).
pub const HEADERS_MAX: usize = 100;

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked coding.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: http::StatusCode,
    /// Bytes of the head in the upstream buffer.
    pub head_bytes: usize,
    /// How the body ends.
    pub framing: Framing,
    /// The upstream connection can serve another request afterwards.
    pub reusable: bool,
    /// The head for the client (without the final CRLF, so the relay can
    /// add `Connection: close`).
    pub client_head: Vec<u8>,
}

/// Why a response head is unusable: the upstream answered something that
/// is not a valid HTTP/1.1 response (a 502 for the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid upstream response: {0}")]
pub struct Invalid(pub &'static str);

/// Parses the response head at the start of `buffer`; `Ok(None)` until it
/// is complete. `is_head`: the request was `HEAD`.
pub fn parse(buffer: &[u8], is_head: bool) -> Result<Option<Head>, Invalid> {
    let mut storage = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut response = httparse::Response::new(&mut storage);
    let head_bytes = match response.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Invalid("unparsable head")),
    };
    let status = response.code.ok_or(Invalid("no status"))?;
    if status == 101 {
        return Err(Invalid(
            "101 Switching Protocols to a request without Upgrade",
        ));
    }
    let version = response.version.ok_or(Invalid("no version"))?;
    let headers = &*response.headers;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = version == 0;
    let mut has_date = false;
    for header in headers {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(Invalid("bad Content-Length"))?;
            if length.is_some_and(|earlier| earlier != value) {
                return Err(Invalid("conflicting Content-Length"));
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked || !header.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(Invalid("a transfer coding other than a single chunked"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            let tokens = std::str::from_utf8(header.value).unwrap_or("");
            if version == 0 {
                close &= !has_token(tokens, "keep-alive");
            }
            close |= has_token(tokens, "close");
        } else if name.eq_ignore_ascii_case("date") {
            has_date = true;
        }
    }
    let framing = if is_head || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    // A message with both is a smuggling attempt or a broken server: the
    // connection cannot be trusted afterwards (RFC 9112 §6.3).
    let smuggled = chunked && length.is_some();
    let reusable = !(close || smuggled) && framing != Framing::UntilClose;
    let mut client_head = Vec::with_capacity(head_bytes + 32);
    client_head.extend_from_slice(b"HTTP/1.1 ");
    let code = http::StatusCode::from_u16(status).map_err(|_| Invalid("bad status code"))?;
    client_head.extend_from_slice(code.as_str().as_bytes());
    client_head.push(b' ');
    let reason = response.reason.unwrap_or("");
    let canonical = code.canonical_reason();
    client_head.extend_from_slice(
        match (reason, canonical) {
            ("", Some(canonical)) => canonical,
            (reason, _) => reason,
        }
        .as_bytes(),
    );
    client_head.extend_from_slice(b"\r\n");
    let connection_values: Vec<&[u8]> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .map(|h| h.value)
        .collect();
    for header in headers {
        let keep_te = chunked && header.name.eq_ignore_ascii_case("transfer-encoding");
        if !keep_te && hop_by_hop(header.name, &connection_values) {
            continue;
        }
        if chunked && header.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        push_header(&mut client_head, header.name.as_bytes(), header.value);
    }
    if !has_date {
        service::front::push_date(&mut client_head);
    }
    push_header(&mut client_head, b"via", VIA.as_bytes());
    Ok(Some(Head {
        status: code,
        head_bytes,
        framing,
        reusable,
        client_head,
    }))
}

/// Whether `tokens` (a `Connection` value) lists `token`.
fn has_token(tokens: &str, token: &str) -> bool {
    tokens
        .split(',')
        .any(|candidate| candidate.trim().eq_ignore_ascii_case(token))
}

/// Whether a response header is hop-by-hop: one of RFC 9110's, or named in
/// one of the `Connection` values.
fn hop_by_hop(name: &str, connection_values: &[&[u8]]) -> bool {
    HOP_BY_HOP_NAMES
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
        || connection_values
            .iter()
            .any(|value| std::str::from_utf8(value).is_ok_and(|tokens| has_token(tokens, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, is_head: bool) -> Head {
        parse(text.as_bytes(), is_head).unwrap().unwrap()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let length = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false);
        assert_eq!(length.framing, Framing::Length(5));
        assert!(length.reusable);
        let as_head = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true);
        assert_eq!(as_head.framing, Framing::Empty);
        let chunked = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        );
        assert_eq!(chunked.framing, Framing::Chunked);
        let close = head("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!(close.framing, Framing::UntilClose);
        assert!(!close.reusable);
        for status in ["204 No Content", "304 Not Modified", "103 Early Hints"] {
            let text = format!("HTTP/1.1 {status}\r\ncontent-length: 9\r\n\r\n");
            assert_eq!(head(&text, false).framing, Framing::Empty, "{status}");
        }
        let old = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", false);
        assert!(!old.reusable);
        let kept = head(
            "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\n",
            false,
        );
        assert!(kept.reusable);
        let closing = head(
            "HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 1\r\n\r\n",
            false,
        );
        assert!(!closing.reusable);
        let both = head(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
            false,
        );
        assert_eq!(both.framing, Framing::Chunked);
        assert!(!both.reusable);
        assert!(
            !String::from_utf8(both.client_head)
                .unwrap()
                .contains("content-length")
        );
    }

    #[test]
    fn bad_heads_are_invalid() {
        for bad in [
            "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "SMTP ready\r\n\r\n",
        ] {
            assert!(parse(bad.as_bytes(), false).is_err(), "{bad}");
        }
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\n", false), Ok(None));
    }

    #[test]
    fn hop_by_hop_headers_go_and_via_and_date_come() {
        let text = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
                    Keep-Alive: timeout=5\r\nX-Kept: yes\r\ncontent-length: 0\r\n\r\n";
        let client = String::from_utf8(head(text, false).client_head).unwrap();
        assert!(client.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(client.contains("X-Kept: yes\r\n"));
        assert!(client.contains("via: 1.1 hyperscale\r\n"));
        assert!(client.contains("date: "));
        for gone in ["X-Secret", "Keep-Alive", "Connection"] {
            assert!(!client.contains(gone), "{gone} in {client}");
        }
        let dated = "HTTP/1.1 404 \r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let client = String::from_utf8(head(dated, false).client_head).unwrap();
        assert!(client.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert_eq!(client.matches("ate: ").count(), 1);
    }
}
