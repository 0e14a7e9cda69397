//! The request parser: RESP multibulk arrays and inline commands, with limits.
//!
//! Clients send commands as arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! or, from `telnet`/`nc`, as one inline line (`GET k\r\n`). The parser is
//! *resumable*: a command split over many TCP reads is scanned once, not
//! re-scanned on every read, because it remembers how far it got. Nothing is
//! consumed from the buffer until a whole command is there; then the command's
//! bytes are split off and frozen, so every argument is a zero-copy [`Bytes`]
//! slice of the read buffer.
//!
//! Every length a client announces is checked before the parser believes it,
//! with Redis's limits and error texts (`proto-max-bulk-len`, 1M arguments,
//! 64 KiB inline lines, tighter limits before `AUTH`). A protocol error is
//! fatal for the connection, as in Redis: after garbage the stream cannot be
//! re-synchronised, so the server replies with the error and closes.

use bytes::{Bytes, BytesMut};

/// Longest inline command or length line accepted (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_LEN_MAX: usize = 64 * 1024;
/// Most arguments an unauthenticated client may send in one command (as Redis).
const UNAUTH_MULTIBULK_LEN_MAX: i64 = 10;
/// Longest argument an unauthenticated client may send (as Redis).
const UNAUTH_BULK_LEN_MAX: i64 = 16 * 1024;
/// Above this announced size the parser reserves the whole argument up front,
/// so a large value is read into one allocation instead of many regrowths.
const BULK_PREALLOCATE_MIN: usize = 32 * 1024;
/// Most the parser reserves ahead of data actually received.
const BULK_PREALLOCATE_MAX: usize = 1024 * 1024;

/// Limits the parser enforces (see [`crate::config::Config`] for the knobs).
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Largest bulk argument, in bytes (`proto-max-bulk-len`).
    pub bulk_len_max: usize,
    /// Most arguments in one command.
    pub multibulk_len_max: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            bulk_len_max: 512 * 1024 * 1024,
            multibulk_len_max: 1024 * 1024,
        }
    }
}

/// Why a request could not be parsed; the text is Redis's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An inline line longer than [`INLINE_LEN_MAX`].
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    /// An inline line with a quote that never closes.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A `*N` line too long to be a number.
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    /// A `*N` that is not a number or exceeds the limit.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// More than 10 arguments before `AUTH`.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// An argument that does not start with `$`.
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// A `$N` line too long to be a number.
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    /// A `$N` that is not a number or exceeds `proto-max-bulk-len`.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An argument over 16 KiB before `AUTH`.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}

/// Progress through a multibulk command that has not fully arrived yet.
#[derive(Debug, Default)]
struct Progress {
    /// Arguments still to come; `None` until the `*N` line has been read.
    remaining: Option<usize>,
    /// Offset in the buffer where the next unparsed line starts.
    pos: usize,
    /// Byte ranges of the arguments parsed so far.
    ranges: Vec<(usize, usize)>,
    /// How many bytes of the line being read (inline, `*N` or `$N`) were
    /// already searched for its end. Without it a line arriving one byte
    /// per read is searched from its start every time: quadratic, 2^31
    /// comparisons for one 64 KiB line (found by the fuzz target).
    scanned: usize,
}

/// A resumable parser for one connection's request stream.
#[derive(Debug, Default)]
pub struct RequestParser {
    limits: ParseLimits,
    progress: Progress,
    /// The argument vector [`RequestParser::next_args`] fills, reused from
    /// command to command (one allocation less per command).
    args: Vec<Bytes>,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: ParseLimits) -> Self {
        RequestParser {
            limits,
            progress: Progress::default(),
            args: Vec::new(),
        }
    }

    /// Takes the next whole command off the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed. Empty commands (`*0`,
    /// blank inline lines) are skipped, as Redis skips them.
    pub fn next_command(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let mut args = Vec::new();
        Ok(self
            .parse_into(buf, authenticated, &mut args)?
            .then_some(args))
    }

    /// [`RequestParser::next_command`] into a vector the parser keeps and
    /// reuses; the caller may take it (`std::mem::take`) to keep the command.
    pub fn next_args(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<&mut Vec<Bytes>>, ProtocolError> {
        let mut args = std::mem::take(&mut self.args);
        args.clear();
        let parsed = self.parse_into(buf, authenticated, &mut args);
        self.args = args;
        Ok(parsed?.then_some(&mut self.args))
    }

    /// Parses the next whole command into `args` (empty); `false` if more
    /// bytes are needed.
    fn parse_into(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
        args: &mut Vec<Bytes>,
    ) -> Result<bool, ProtocolError> {
        loop {
            if buf.is_empty() {
                return Ok(false);
            }
            let parsed = if buf[0] == b'*' {
                self.multibulk(buf, authenticated, args)?
            } else {
                inline(buf, &mut self.progress.scanned, args)?
            };
            match parsed {
                Parsed::Incomplete => return Ok(false),
                Parsed::Empty => continue,
                Parsed::Command => return Ok(true),
            }
        }
    }

    fn multibulk(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
        args: &mut Vec<Bytes>,
    ) -> Result<Parsed, ProtocolError> {
        let progress = &mut self.progress;
        let remaining = match progress.remaining {
            Some(n) => n,
            None => {
                let too_big = ProtocolError::MultibulkCountTooBig;
                let Some((count, next)) = length_line(buf, 0, &mut progress.scanned, too_big)?
                else {
                    return Ok(Parsed::Incomplete);
                };
                let count = count.ok_or(ProtocolError::InvalidMultibulkLength)?;
                if count > self.limits.multibulk_len_max as i64 {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if !authenticated && count > UNAUTH_MULTIBULK_LEN_MAX {
                    return Err(ProtocolError::UnauthenticatedMultibulkLength);
                }
                if count <= 0 {
                    let _ = buf.split_to(next);
                    return Ok(Parsed::Empty);
                }
                progress.pos = next;
                // Cap the up-front allocation: the count is the client's claim.
                // Reuse the allocation; cap growth by the client's claim.
                progress.ranges.clear();
                progress.ranges.reserve((count as usize).min(1024));
                count as usize
            }
        };
        progress.remaining = Some(remaining);
        while progress.remaining != Some(0) {
            if progress.pos >= buf.len() {
                return Ok(Parsed::Incomplete);
            }
            if buf[progress.pos] != b'$' {
                return Err(ProtocolError::ExpectedBulk(error_char(buf[progress.pos])));
            }
            let too_big = ProtocolError::BulkCountTooBig;
            let Some((len, start)) =
                length_line(buf, progress.pos, &mut progress.scanned, too_big)?
            else {
                return Ok(Parsed::Incomplete);
            };
            let len = match len {
                Some(len) if len >= 0 && len as u64 <= self.limits.bulk_len_max as u64 => len,
                _ => return Err(ProtocolError::InvalidBulkLength),
            };
            if !authenticated && len > UNAUTH_BULK_LEN_MAX {
                return Err(ProtocolError::UnauthenticatedBulkLength);
            }
            let end = start + len as usize;
            if buf.len() < end + 2 {
                if len as usize >= BULK_PREALLOCATE_MIN {
                    // Capped: the length is only the client's claim, and ten
                    // thousand clients claiming 512 MiB must not reserve it.
                    buf.reserve((end + 2 - buf.len()).min(BULK_PREALLOCATE_MAX));
                }
                return Ok(Parsed::Incomplete);
            }
            // Like Redis, the two bytes after the payload are skipped unchecked.
            progress.ranges.push((start, end));
            progress.pos = end + 2;
            progress.remaining = progress.remaining.map(|n| n - 1);
        }
        let frozen = buf.split_to(progress.pos).freeze();
        args.extend(
            progress
                .ranges
                .iter()
                .map(|&(start, end)| frozen.slice(start..end)),
        );
        debug_assert_eq!(
            progress.scanned, 0,
            "every line of the command was consumed"
        );
        progress.remaining = None;
        progress.pos = 0;
        progress.ranges.clear();
        Ok(Parsed::Command)
    }
}

/// The outcome of one parse attempt.
enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A command with no arguments was consumed and must be skipped.
    Empty,
    /// A whole command (in the caller's vector).
    Command,
}

/// Where the end of a line is, as far as the buffer tells.
enum LineEnd {
    /// The terminator is at this offset from the line's start.
    Found(usize),
    /// Not yet arrived, and the line may still end within the limit.
    Pending,
    /// Over [`INLINE_LEN_MAX`] bytes without a terminator.
    TooLong,
}

/// Searches the line starting at `at` for `needle`, skipping the `*scanned`
/// bytes earlier reads already searched, so every byte of a slowly arriving
/// line is searched once. The caller resets `*scanned` when the line is
/// consumed.
fn find_line_end(buf: &[u8], at: usize, needle: u8, scanned: &mut usize) -> LineEnd {
    debug_assert!(at < buf.len(), "a line starts inside the buffer");
    let end = buf.len().min(at + INLINE_LEN_MAX + 1);
    let from = (at + *scanned).min(end);
    match memchr(needle, &buf[from..end]) {
        Some(i) => {
            *scanned = from + i - at;
            LineEnd::Found(from + i - at)
        }
        None if end - at > INLINE_LEN_MAX => LineEnd::TooLong,
        None => {
            *scanned = end - at;
            LineEnd::Pending
        }
    }
}

/// Reads a `*N` / `$N` line starting at `at`: `Ok(None)` if it has not fully
/// arrived, else the parsed number (`None` if not a strict integer) and the
/// offset just past the line's CRLF.
#[allow(clippy::type_complexity)]
fn length_line(
    buf: &[u8],
    at: usize,
    scanned: &mut usize,
    too_big: ProtocolError,
) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    if let Some(line) = short_length_line(buf, at) {
        *scanned = 0;
        return Ok(Some(line));
    }
    general_length_line(buf, at, scanned, too_big)
}

/// [`length_line`] for any line.
#[allow(clippy::type_complexity)]
fn general_length_line(
    buf: &[u8],
    at: usize,
    scanned: &mut usize,
    too_big: ProtocolError,
) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    let cr = match find_line_end(buf, at, b'\r', scanned) {
        LineEnd::Found(cr) => cr,
        LineEnd::Pending => return Ok(None),
        LineEnd::TooLong => return Err(too_big),
    };
    if at + cr + 1 >= buf.len() {
        return Ok(None); // the LF has not arrived yet
    }
    // The line is done; a payload still to come re-reads only this short
    // (at most 21-digit, else invalid) line.
    *scanned = 0;
    let number = parse_i64_strict(&buf[at + 1..at + cr]);
    Ok(Some((number, at + cr + 2)))
}

/// [`length_line`]'s common case in one pass: a whole line holding a
/// positive number of at most 18 digits (no sign, no leading zero), so it
/// cannot overflow. Anything else (`None`) takes the general path, which
/// gives the same answer for these lines.
#[inline]
fn short_length_line(buf: &[u8], at: usize) -> Option<(Option<i64>, usize)> {
    let digits = buf.get(at + 1..)?;
    let mut value: i64 = 0;
    for (i, &byte) in digits.iter().enumerate().take(19) {
        match byte {
            b'1'..=b'9' if i < 18 => value = value * 10 + i64::from(byte - b'0'),
            b'0' if i > 0 && i < 18 => value *= 10,
            // As in the general path, the byte after CR must have arrived
            // but is not checked.
            b'\r' if i > 0 && at + 1 + i + 1 < buf.len() => {
                return Some((Some(value), at + 1 + i + 2));
            }
            _ => return None,
        }
    }
    None
}

fn inline(
    buf: &mut BytesMut,
    scanned: &mut usize,
    out: &mut Vec<Bytes>,
) -> Result<Parsed, ProtocolError> {
    let lf = match find_line_end(buf, 0, b'\n', scanned) {
        LineEnd::Found(lf) => lf,
        LineEnd::Pending => return Ok(Parsed::Incomplete),
        LineEnd::TooLong => return Err(ProtocolError::InlineTooBig),
    };
    *scanned = 0;
    let line = buf.split_to(lf + 1);
    let mut text = &line[..lf];
    if text.last() == Some(&b'\r') {
        text = &text[..text.len() - 1];
    }
    let args = split_inline(text)?;
    Ok(if args.is_empty() {
        Parsed::Empty
    } else {
        out.extend(args);
        Parsed::Command
    })
}

/// Splits an inline line into arguments with Redis's `sdssplitargs` rules:
/// C `isspace` separates arguments, but only space, tab, CR and LF end an
/// unquoted one; a quote starts a quoted part even mid-argument
/// (`a"b c"` is `ab c`); `"..."` understands `\n \r \t \b \a \xHH` and
/// `\` before any other byte (`"\xZZ"` is `xZZ`), `'...'` only `\'`; a
/// closing quote must be followed by whitespace or the end of the line.
/// Unlike Redis, which reads the line as a C string, NUL is an ordinary byte.
/// The fuzz target `inline_args` checks this against a port of the C code.
pub fn split_inline(mut text: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let mut args = Vec::new();
    loop {
        while let Some((first, rest)) = text.split_first() {
            if !is_c_space(*first) {
                break;
            }
            text = rest;
        }
        if text.is_empty() {
            return Ok(args);
        }
        let (arg, rest) = one_inline_arg(text)?;
        args.push(Bytes::from(arg));
        text = rest;
    }
}

/// C's `isspace` in the C locale, which `sdssplitargs` skips between
/// arguments and requires after a closing quote (Rust's
/// `is_ascii_whitespace` lacks the vertical tab).
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn one_inline_arg(text: &[u8]) -> Result<(Vec<u8>, &[u8]), ProtocolError> {
    let mut arg = Vec::new();
    let mut quote = None;
    let mut i = 0;
    loop {
        let Some(&c) = text.get(i) else {
            return match quote {
                Some(_) => Err(ProtocolError::UnbalancedQuotes),
                None => Ok((arg, &text[i..])),
            };
        };
        match quote {
            None => match c {
                b' ' | b'\t' | b'\r' | b'\n' => return Ok((arg, &text[i..])),
                b'"' | b'\'' => quote = Some(c),
                _ => arg.push(c),
            },
            Some(q) if c == q => {
                // The closing quote must end the argument.
                if text.get(i + 1).is_some_and(|&n| !is_c_space(n)) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                return Ok((arg, &text[i + 1..]));
            }
            Some(b'"') if c == b'\\' => i += double_quoted_escape(&text[i..], &mut arg),
            Some(_) if c == b'\\' && text.get(i + 1) == Some(&b'\'') => {
                i += 1;
                arg.push(b'\'');
            }
            Some(_) => arg.push(c),
        }
        i += 1;
    }
}

/// Decodes the escape starting at the backslash `text[0]` inside double
/// quotes into `arg`; returns how many bytes after the backslash it used.
fn double_quoted_escape(text: &[u8], arg: &mut Vec<u8>) -> usize {
    debug_assert_eq!(text[0], b'\\');
    let digit = |i: usize| text.get(i).and_then(|&c| hex(c));
    match (text.get(1), digit(2), digit(3)) {
        (Some(b'x'), Some(high), Some(low)) => {
            arg.push(high * 16 + low);
            3
        }
        (Some(&escaped), _, _) => {
            arg.push(match escaped {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 0x08,
                b'a' => 0x07,
                other => other,
            });
            1
        }
        // A trailing backslash is literal; the missing quote errors next.
        (None, _, _) => {
            arg.push(b'\\');
            0
        }
    }
}

/// A client's byte as shown in an error reply. CR or LF would end the reply
/// line early and desynchronise the client, so they become spaces, as
/// Redis's `addReplyErrorFormat` does (found by the fuzz target).
fn error_char(byte: u8) -> char {
    match byte {
        b'\r' | b'\n' => ' ',
        other => char::from(other),
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
thread_local! {
    /// Bytes handed to [`memchr`] on this thread, for the test that line
    /// scanning stays linear.
    pub(crate) static BYTES_SEARCHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    #[cfg(test)]
    BYTES_SEARCHED.with(|n| n.set(n.get() + haystack.len()));
    haystack.iter().position(|&b| b == needle)
}

/// Parses a decimal i64 with Redis's `string2ll` strictness: no sign other
/// than a leading `-`, no leading zeros, no spaces, at most 20 characters.
pub fn parse_i64_strict(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast path answers only where the general path does, and the
        /// same.
        #[test]
        fn short_length_lines_agree(
            body in proptest::collection::vec(prop_oneof![
                8 => b'0'..=b'9',
                1 => Just(b'-'),
                1 => Just(b'\r'),
                1 => Just(b'\n'),
                1 => any::<u8>(),
            ], 0..24),
        ) {
            let mut buf = vec![b'$'];
            buf.extend_from_slice(&body);
            if let Some(fast) = short_length_line(&buf, 0) {
                let general = general_length_line(&buf, 0, &mut 0, ProtocolError::BulkCountTooBig);
                prop_assert_eq!(general, Ok(Some(fast)));
            }
        }
    }

    #[test]
    fn short_length_lines() {
        assert_eq!(short_length_line(b"$12\r\n", 0), Some((Some(12), 5)));
        assert_eq!(short_length_line(b"*3\r\n$3", 0), Some((Some(3), 4)));
        assert_eq!(
            short_length_line(b"$999999999999999999\r\n", 0),
            Some((Some(999_999_999_999_999_999), 21))
        );
        for general in [
            &b"$0\r\n"[..],
            b"$-1\r\n",
            b"$01\r\n",
            b"$12\r",
            b"$12",
            b"$1234567890123456789\r\n",
            b"$\r\n",
        ] {
            assert_eq!(short_length_line(general, 0), None, "{general:?}");
        }
    }
}
