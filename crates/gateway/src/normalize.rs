//! Request-path normalization: one canonical spelling of every path, computed
//! once, before routing, rate limiting and forwarding.
//!
//! Why: an upstream web server resolves `//limited/`, `/./limited/`,
//! `/x/../limited/`, `/%6cimited/` and `/%2flimited/` to the same file as
//! `/limited/`. If the gateway matched routes and rate-limit rules on the raw
//! spelling, each variant would be a new, unlimited path to the same
//! resource, and `/../../../../etc/passwd` would reach upstreams as sent.
//! Like nginx, the gateway decodes, removes dot segments and merges slashes,
//! then matches and forwards only the result, so *two requests an upstream
//! resolves to the same file match the same route and the same limit*.
//!
//! # The rules, in order
//!
//! 1. The path must start with `/` (origin form; `*` and other targets are
//!    rejected).
//! 2. Every `%XX` is decoded; a `%` not followed by two hex digits, and an
//!    encoded NUL (`%00`), are rejected (400), as nginx does.
//! 3. **`%2F` policy: an encoded slash is a slash.** `%2F` / `%2f` decodes to
//!    `/` *before* dot segments are removed and slashes merged, so `/%2flimited/`
//!    is `//limited/` is `/limited/`. This is what nginx does for matching
//!    (with its default `merge_slashes on`), and what file-serving upstreams
//!    do (they decode the path, then resolve it), so the property above holds
//!    for them. The cost: an API that treats `a%2Fb` as one segment sees
//!    `a/b` instead. Rejecting `%2F` would keep such APIs unambiguous but
//!    break them outright; decoding keeps the common case working and can
//!    only make two spellings *share* a route and a limit, never escape one.
//! 4. Empty segments (`//`) and `.` segments are dropped; `..` removes the
//!    segment before it. A `..` with nothing left to remove (above the
//!    root) is rejected (400) instead of being clamped, so traversal
//!    attempts are visible as errors. A path that ended in `/`, `.` or `..`
//!    keeps a trailing `/` (RFC 3986 §5.2.4).
//! 5. Each segment is re-encoded one way: bytes a path may carry literally
//!    (RFC 3986 `pchar`: letters, digits, `-._~`, `!$&'()*+,;=`, `:`, `@`)
//!    are written as themselves, every other byte (space, `%`, `?`, `#`,
//!    `"`, non-ASCII, ...) as `%XX` with uppercase hex. So `%6c` and `l`,
//!    `%7e` and `~`, `%c3%a9` and `%C3%A9` all forward identically.
//!
//! The query string is not part of the path and is kept exactly as sent.
//!
//! A path already in canonical form (the overwhelming majority) is checked
//! in one pass and borrowed, with no allocation.

use std::borrow::Cow;
use std::fmt;

/// A path in canonical form: starts with `/`, no empty, `.` or `..`
/// segments, only `pchar` bytes and uppercase `%XX` escapes of the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath<'a>(Cow<'a, str>);

impl NormalizedPath<'_> {
    /// The canonical path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether normalizing changed nothing (the request can be forwarded
    /// with its target untouched).
    pub fn is_unchanged(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }
}

impl fmt::Display for NormalizedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a path cannot be normalized; each is a 400 for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The target is not a path starting with `/`.
    #[error("the request target must be a path starting with `/`")]
    NotAPath,
    /// A `%` not followed by two hexadecimal digits.
    #[error("the path has a `%` not followed by two hexadecimal digits")]
    BadEscape,
    /// `%00` in the path.
    #[error("the path contains an encoded NUL byte (`%00`)")]
    Nul,
    /// A `..` segment that would leave the root.
    #[error("the path climbs above the root with `..`")]
    AboveRoot,
}

/// Normalizes a request path; see the module doc for the rules.
pub fn normalize_path(path: &str) -> Result<NormalizedPath<'_>, Reject> {
    if !path.starts_with('/') {
        return Err(Reject::NotAPath);
    }
    if is_canonical(path) {
        return Ok(NormalizedPath(Cow::Borrowed(path)));
    }
    let decoded = decode(path.as_bytes())?;
    let mut segments: Vec<&[u8]> = Vec::new();
    // Whether the output ends with `/` after the last segment.
    let mut trailing_slash = false;
    for segment in decoded.split(|byte| *byte == b'/').skip(1) {
        match segment {
            b"" | b"." => trailing_slash = true,
            b".." => {
                segments.pop().ok_or(Reject::AboveRoot)?;
                trailing_slash = true;
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        encode_segment(segment, &mut out);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    debug_assert!(is_canonical(&out), "not canonical: {out}");
    Ok(NormalizedPath(Cow::Owned(out)))
}

/// Whether `byte` may appear literally in a path segment (RFC 3986 `pchar`
/// without `%`).
fn is_pchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)
}

/// Whether `path` is already canonical: `/`, `pchar` bytes and uppercase
/// escapes of the other bytes (not of NUL), no empty, `.` or `..` segment
/// except a final empty one (`/a/`).
fn is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let upper_hex = |b: &u8| matches!(b, b'0'..=b'9' | b'A'..=b'F');
            let (Some(high), Some(low)) = (bytes.get(index + 1), bytes.get(index + 2)) else {
                return false;
            };
            if !upper_hex(high) || !upper_hex(low) {
                return false;
            }
            let decoded = hex_value(*high).unwrap_or(0) << 4 | hex_value(*low).unwrap_or(0);
            if decoded == 0 || decoded == b'/' || is_pchar(decoded) {
                return false;
            }
            index += 3;
        } else if byte == b'/' || is_pchar(byte) {
            index += 1;
        } else {
            return false;
        }
    }
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." | ".." => return false,
            "" if !last => return false,
            _ => {}
        }
    }
    true
}

/// Decodes every `%XX` (including `%2F`, the slash policy).
fn decode(path: &[u8]) -> Result<Vec<u8>, Reject> {
    let mut out = Vec::with_capacity(path.len());
    let mut index = 0;
    while index < path.len() {
        let byte = path[index];
        if byte != b'%' {
            out.push(byte);
            index += 1;
            continue;
        }
        let high = path.get(index + 1).and_then(|b| hex_value(*b));
        let low = path.get(index + 2).and_then(|b| hex_value(*b));
        let (Some(high), Some(low)) = (high, low) else {
            return Err(Reject::BadEscape);
        };
        let decoded = high << 4 | low;
        if decoded == 0 {
            return Err(Reject::Nul);
        }
        out.push(decoded);
        index += 3;
    }
    Ok(out)
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

/// Appends `segment` (decoded bytes, no `/`) in canonical encoding.
fn encode_segment(segment: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in segment {
        debug_assert_ne!(byte, b'/');
        if is_pchar(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
}

#[cfg(test)]
mod tests;
