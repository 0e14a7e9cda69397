//! Stream entry ids (`<ms>-<seq>`): parsing exactly as Redis does, text
//! form, and the 16-byte big-endian form whose byte order is id order (so
//! entries and pending lists come back from the engine sorted).

use bytes::Bytes;

use crate::protocol::Frame;
use crate::protocol::parse::parse_i64_strict;

/// A stream entry id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) struct Id {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

/// Bytes of [`Id::to_bytes`].
pub(super) const ID_BYTES: usize = 16;

impl Id {
    /// The smallest id (`-`).
    pub const MIN: Id = Id { ms: 0, seq: 0 };
    /// The largest id (`+`).
    pub const MAX: Id = Id {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// An id from its parts.
    pub fn new(ms: u64, seq: u64) -> Id {
        Id { ms, seq }
    }

    /// Whether this is `0-0`.
    pub fn is_zero(self) -> bool {
        self == Id::MIN
    }

    /// The next id, or `None` after the last one.
    pub fn next(self) -> Option<Id> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(Id::new(ms + 1, 0)),
            (ms, seq) => Some(Id::new(ms, seq + 1)),
        }
    }

    /// The previous id, or `None` before the first one.
    pub fn prev(self) -> Option<Id> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(Id::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(Id::new(ms, seq - 1)),
        }
    }

    /// The order-preserving binary form.
    pub fn to_bytes(self) -> [u8; ID_BYTES] {
        let mut out = [0; ID_BYTES];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// Reads [`Id::to_bytes`]'s form from the start of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Option<Id> {
        let ms = bytes.get(..8)?.try_into().ok()?;
        let seq = bytes.get(8..16)?.try_into().ok()?;
        Some(Id::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq)))
    }

    /// The reply form: a bulk string `ms-seq`.
    pub fn frame(self) -> Frame {
        Frame::Bulk(Bytes::from(self.to_string()))
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// `ERR Invalid stream ID specified as stream command argument`.
pub(super) fn invalid_id() -> Frame {
    Frame::error("ERR Invalid stream ID specified as stream command argument")
}

/// How an id argument may be written.
#[derive(Clone, Copy)]
pub(super) struct IdRules {
    /// The sequence assumed for `<ms>` alone.
    pub missing_seq: u64,
    /// Refuse `-` and `+`.
    pub strict: bool,
    /// Accept `<ms>-*` (XADD).
    pub auto_seq: bool,
}

impl IdRules {
    /// `-`/`+` refused, a bare `<ms>` means `<ms>-0`.
    pub const STRICT: IdRules = IdRules {
        missing_seq: 0,
        strict: true,
        auto_seq: false,
    };
    /// `-`/`+` accepted, a bare `<ms>` means `<ms>-0`.
    pub const LAX: IdRules = IdRules {
        missing_seq: 0,
        strict: false,
        auto_seq: false,
    };
}

/// Parses an id argument as Redis's `streamGenericParseIDOrReply` does; the
/// flag says whether the sequence was given (false only for `<ms>-*`).
pub(super) fn parse_id(arg: &[u8], rules: IdRules) -> Result<(Id, bool), Frame> {
    // Redis copies the argument into a C string: a NUL ends it.
    let text = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match text {
        b"-" if !rules.strict => return Ok((Id::MIN, true)),
        b"+" if !rules.strict => return Ok((Id::MAX, true)),
        b"-" | b"+" => return Err(invalid_id()),
        _ => {}
    }
    let (ms_text, seq_text) = match text.iter().position(|&b| b == b'-') {
        Some(dash) => (&text[..dash], Some(&text[dash + 1..])),
        None => (text, None),
    };
    let ms = parse_u64(ms_text).ok_or_else(invalid_id)?;
    match seq_text {
        Some(b"*") if rules.auto_seq => Ok((Id::new(ms, 0), false)),
        Some(seq) => Ok((Id::new(ms, parse_u64(seq).ok_or_else(invalid_id)?), true)),
        None => Ok((Id::new(ms, rules.missing_seq), true)),
    }
}

/// Parses every argument as a strict id (`XDEL`, `XACK`): all or an error.
pub(super) fn parse_ids(args: &[Bytes]) -> Result<Vec<Id>, Frame> {
    args.iter()
        .map(|arg| parse_id(arg, IdRules::STRICT).map(|(id, _)| id))
        .collect()
}

/// Parses a range bound (`XRANGE`, `XPENDING`, `XAUTOCLAIM`): `(` makes it
/// exclusive (and then `-`/`+` are refused). Returns the id and whether it
/// was exclusive.
pub(super) fn parse_bound(arg: &[u8], missing_seq: u64) -> Result<(Id, bool), Frame> {
    if arg.len() > 1 && arg[0] == b'(' {
        let rules = IdRules {
            missing_seq,
            strict: true,
            auto_seq: false,
        };
        return parse_id(&arg[1..], rules).map(|(id, _)| (id, true));
    }
    let rules = IdRules {
        missing_seq,
        strict: false,
        auto_seq: false,
    };
    parse_id(arg, rules).map(|(id, _)| (id, false))
}

/// The inclusive start of a range from its bound (`(` moves it up).
pub(super) fn range_start(arg: &[u8]) -> Result<Id, Frame> {
    match parse_bound(arg, 0)? {
        (id, false) => Ok(id),
        (id, true) => id
            .next()
            .ok_or_else(|| Frame::error("ERR invalid start ID for the interval")),
    }
}

/// The inclusive end of a range from its bound (`(` moves it down).
pub(super) fn range_end(arg: &[u8]) -> Result<Id, Frame> {
    match parse_bound(arg, u64::MAX)? {
        (id, false) => Ok(id),
        (id, true) => id
            .prev()
            .ok_or_else(|| Frame::error("ERR invalid end ID for the interval")),
    }
}

/// Redis's `string2ull`: a strict decimal `i64` if it is one (negative
/// refused), else C's `strtoull` (leading spaces, a sign, leading zeros;
/// a minus sign negates modulo 2^64, as in C).
fn parse_u64(text: &[u8]) -> Option<u64> {
    if let Some(n) = parse_i64_strict(text) {
        return u64::try_from(n).ok();
    }
    let mut rest = text;
    while let Some((first, tail)) = rest.split_first()
        && matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
    {
        rest = tail;
    }
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &d in rest {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> Option<Id> {
        parse_id(text.as_bytes(), IdRules::LAX)
            .ok()
            .map(|(id, _)| id)
    }

    #[test]
    fn ids_parse_as_redis_does() {
        assert_eq!(id("5"), Some(Id::new(5, 0)));
        assert_eq!(id("5-3"), Some(Id::new(5, 3)));
        assert_eq!(id("-"), Some(Id::MIN));
        assert_eq!(id("+"), Some(Id::MAX));
        assert_eq!(
            id("18446744073709551615-18446744073709551615"),
            Some(Id::MAX)
        );
        assert_eq!(id("007-01"), Some(Id::new(7, 1)));
        assert_eq!(id(" 7"), Some(Id::new(7, 0)));
        for bad in [
            "",
            "x",
            "5-",
            "5-x",
            "-5",
            "5--1",
            "18446744073709551616",
            "1-2-3",
            "5-*",
        ] {
            assert_eq!(id(bad), None, "{bad}");
        }
        let xadd = IdRules {
            auto_seq: true,
            ..IdRules::STRICT
        };
        assert_eq!(parse_id(b"5-*", xadd).ok(), Some((Id::new(5, 0), false)));
        assert!(parse_id(b"+", IdRules::STRICT).is_err());
        assert!(parse_id(&[b'1'; 200], IdRules::LAX).is_err());
    }

    #[test]
    fn binary_form_sorts_as_ids_do() {
        let ids = [
            Id::new(0, 1),
            Id::new(1, 0),
            Id::new(1, u64::MAX),
            Id::new(256, 0),
        ];
        for pair in ids.windows(2) {
            assert!(pair[0].to_bytes() < pair[1].to_bytes());
            assert_eq!(Id::from_bytes(&pair[0].to_bytes()), Some(pair[0]));
        }
        assert_eq!(Id::MAX.next(), None);
        assert_eq!(Id::MIN.prev(), None);
        assert_eq!(Id::new(1, u64::MAX).next(), Some(Id::new(2, 0)));
    }
}
