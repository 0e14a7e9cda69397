//! Finding the end of a chunked body (RFC 9112 §7.1) without decoding it.
//!
//! The relay forwards an upstream's chunked response to the client byte for
//! byte, framing included, so it never copies chunk data out of the stream
//! or re-frames it. It only has to know where the message ends, to reuse
//! the upstream connection for the next request and to start the client's
//! next response at the right byte. [`Scanner`] is that: a state machine fed
//! the bytes as they arrive, answering how many of them belong to the body.
//!
//! Limits: a chunk-size line (size, extensions) and each trailer line are at
//! most [`LINE_BYTES_MAX`]; sizes have at most 16 hex digits (a `u64`).
//! Anything else is malformed and ends the exchange with an error.

/// The longest chunk-size or trailer line accepted, CRLF included.
pub const LINE_BYTES_MAX: usize = 4096;

/// Where the scanner is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line: `size` so far, `digits` seen, `line` bytes
    /// of the line consumed, `in_ext` once past the size (extensions).
    Size {
        size: u64,
        digits: u8,
        line: usize,
        in_ext: bool,
    },
    /// Expecting the LF that ends a chunk-size line.
    SizeLf { size: u64 },
    /// Inside a chunk's data: bytes still to come.
    Data { remaining: u64 },
    /// Expecting the CR after a chunk's data.
    DataCr,
    /// Expecting the LF after a chunk's data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line: `line` bytes consumed.
    Trailer { line: usize },
    /// Expecting the LF that ends a trailer line.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// The body is not valid chunked coding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub struct Malformed(pub &'static str);

/// Tracks a chunked body's framing as its bytes go by.
#[derive(Debug, Clone)]
pub struct Scanner {
    state: State,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    /// A scanner at the start of a body.
    pub fn new() -> Self {
        Self {
            state: State::Size {
                size: 0,
                digits: 0,
                line: 0,
                in_ext: false,
            },
        }
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes the start of `bytes`; returns how many belong to the body
    /// (all of them unless the body ends inside `bytes`).
    pub fn advance(&mut self, bytes: &[u8]) -> Result<usize, Malformed> {
        let mut at = 0;
        while at < bytes.len() && self.state != State::Done {
            if let State::Data { remaining } = self.state {
                // The bulk of the body: skip data without looking at it.
                let take = remaining.min((bytes.len() - at) as u64);
                at += take as usize;
                self.state = if take == remaining {
                    State::DataCr
                } else {
                    State::Data {
                        remaining: remaining - take,
                    }
                };
                continue;
            }
            self.state = step(self.state, bytes[at])?;
            at += 1;
        }
        debug_assert!(at <= bytes.len());
        Ok(at)
    }
}

/// One byte of framing.
fn step(state: State, byte: u8) -> Result<State, Malformed> {
    Ok(match state {
        State::Size {
            size,
            digits,
            line,
            in_ext,
        } => {
            if line + 1 >= LINE_BYTES_MAX {
                return Err(Malformed("chunk-size line too long"));
            }
            let line = line + 1;
            match byte {
                b'\r' if digits > 0 => State::SizeLf { size },
                _ if in_ext => {
                    if byte == b'\n' {
                        return Err(Malformed("bare LF in a chunk-size line"));
                    }
                    State::Size {
                        size,
                        digits,
                        line,
                        in_ext,
                    }
                }
                b';' | b' ' | b'\t' if digits > 0 => State::Size {
                    size,
                    digits,
                    line,
                    in_ext: true,
                },
                _ => {
                    let digit = (byte as char)
                        .to_digit(16)
                        .ok_or(Malformed("chunk size is not hexadecimal"))?;
                    if digits >= 16 {
                        return Err(Malformed("chunk size over 16 hex digits"));
                    }
                    State::Size {
                        size: (size << 4) | u64::from(digit),
                        digits: digits + 1,
                        line,
                        in_ext,
                    }
                }
            }
        }
        State::SizeLf { size } => match byte {
            b'\n' if size == 0 => State::TrailerStart,
            b'\n' => State::Data { remaining: size },
            _ => return Err(Malformed("chunk-size line not ended by CRLF")),
        },
        State::Data { .. } => unreachable!("data is skipped in bulk"),
        State::DataCr => match byte {
            b'\r' => State::DataLf,
            _ => return Err(Malformed("chunk data not followed by CRLF")),
        },
        State::DataLf => match byte {
            b'\n' => State::Size {
                size: 0,
                digits: 0,
                line: 0,
                in_ext: false,
            },
            _ => return Err(Malformed("chunk data not followed by CRLF")),
        },
        State::TrailerStart => match byte {
            b'\r' => State::EndLf,
            b'\n' => return Err(Malformed("bare LF in the trailer section")),
            _ => State::Trailer { line: 1 },
        },
        State::Trailer { line } => match byte {
            b'\r' => State::TrailerLf,
            b'\n' => return Err(Malformed("bare LF in the trailer section")),
            _ if line + 1 >= LINE_BYTES_MAX => return Err(Malformed("trailer line too long")),
            _ => State::Trailer { line: line + 1 },
        },
        State::TrailerLf => match byte {
            b'\n' => State::TrailerStart,
            _ => return Err(Malformed("trailer line not ended by CRLF")),
        },
        State::EndLf => match byte {
            b'\n' => State::Done,
            _ => return Err(Malformed("chunked body not ended by CRLF")),
        },
        State::Done => State::Done,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `chunks` in chunked coding, with a trailer when given.
    fn encode(chunks: &[Vec<u8>], trailer: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks.iter().filter(|c| !c.is_empty()) {
            out.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        if let Some(trailer) = trailer {
            out.extend_from_slice(format!("{trailer}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    fn scan_in_pieces(bytes: &[u8], piece: usize) -> Result<usize, Malformed> {
        let mut scanner = Scanner::new();
        let mut total = 0;
        for part in bytes.chunks(piece.max(1)) {
            total += scanner.advance(part)?;
            if scanner.is_done() {
                return Ok(total);
            }
        }
        Err(Malformed("ended early"))
    }

    #[test]
    fn finds_the_end_and_leaves_what_follows() {
        let mut body = encode(&[b"hello".to_vec(), b", world".to_vec()], Some("x-sum: 1"));
        let end = body.len();
        body.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        let mut scanner = Scanner::new();
        assert_eq!(scanner.advance(&body), Ok(end));
        assert!(scanner.is_done());
    }

    #[test]
    fn refuses_malformed_framing() {
        for bad in [
            &b"g\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"5\nhello",
            b"11111111111111111\r\n",
            b"0\r\nbad\n",
        ] {
            assert!(Scanner::new().advance(bad).is_err(), "{bad:?}");
        }
        let long = vec![b'a'; LINE_BYTES_MAX + 1];
        let mut line = b"1;".to_vec();
        line.extend_from_slice(&long);
        assert!(Scanner::new().advance(&line).is_err());
    }

    proptest! {
        #[test]
        fn any_split_finds_the_same_end(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
            trailer in proptest::option::of("[a-z]{1,8}: [a-z0-9]{0,8}"),
            piece in 1usize..64,
        ) {
            let body = encode(&chunks, trailer.as_deref());
            prop_assert_eq!(scan_in_pieces(&body, piece), Ok(body.len()));
            // Cut short, it is never done.
            let mut scanner = Scanner::new();
            let cut = &body[..body.len() - 1];
            prop_assert_eq!(scanner.advance(cut), Ok(cut.len()));
            prop_assert!(!scanner.is_done());
        }
    }
}
