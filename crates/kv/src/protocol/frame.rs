//! Reply frames and their encoding in RESP2 or RESP3.
//!
//! Command handlers build one [`Frame`] per reply without knowing which
//! protocol the client speaks; the connection encodes it for the version the
//! client chose with `HELLO`. RESP3 types that RESP2 lacks degrade the way
//! Redis degrades them: maps flatten to arrays, sets become arrays, doubles
//! become bulk strings, booleans become integers, pushes become arrays and
//! the typed null becomes `$-1` (or `*-1` for a null array).

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version a connection speaks (`HELLO 2` / `HELLO 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolVersion {
    /// RESP2, the default for a new connection.
    #[default]
    Resp2,
    /// RESP3, chosen with `HELLO 3`.
    Resp3,
}

/// One reply, independent of the protocol version.
///
/// Depth is bounded by whoever builds a frame: commands nest a few levels,
/// a script's reply at most about a thousand (`DEPTH_MAX` in the scripting
/// conversion). Encoding never recurses past `RECURSION_MAX` levels; the
/// derived drop and clone do recurse, which at a thousand levels takes
/// under 256 KiB of stack in a debug build (measured), an eighth of a
/// tokio worker's.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK`: a short status line (must not contain CR or LF).
    Simple(&'static str),
    /// A status line built at run time (e.g. `TYPE`'s answer).
    SimpleOwned(String),
    /// `-ERR ...`: the text after the dash, including the error code.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`: binary-safe string.
    Bulk(Bytes),
    /// The null reply: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// The null array: `*-1` in RESP2 (EXEC aborted by WATCH), `_` in RESP3.
    NullArray,
    /// `*N` followed by N frames.
    Array(Vec<Frame>),
    /// `%N` in RESP3, a flat array of 2N frames in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// `~N` in RESP3, an array in RESP2.
    Set(Vec<Frame>),
    /// `,1.5` in RESP3, a bulk string in RESP2, printed as Redis 7.0's
    /// `addReplyDouble` prints it ([`format_double_reply`]).
    Double(f64),
    /// A double Redis formats its own way (GEO coordinates: `%.17Lf` with
    /// trailing zeros cut): `,text` in RESP3, a bulk string in RESP2.
    DoubleText(String),
    /// `#t` in RESP3, `:1` in RESP2.
    Boolean(bool),
    /// `>N` in RESP3 (out-of-band pub/sub messages), an array in RESP2.
    Push(Vec<Frame>),
    /// Not a RESP type: several replies sent back to back. `SUBSCRIBE a b`
    /// answers once per channel, so its handler returns one of these.
    Sequence(Vec<Frame>),
}

impl Frame {
    /// `+OK`, the most common reply.
    pub const OK: Frame = Frame::Simple("OK");

    /// An error reply; `msg` starts with the error code (`ERR`, `WRONGTYPE`...).
    pub fn error(msg: impl Into<String>) -> Frame {
        let msg = msg.into();
        debug_assert!(!msg.contains(['\r', '\n']), "error text must be one line");
        Frame::Error(msg)
    }

    /// A bulk string copied from a byte slice.
    pub fn bulk(data: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// A bulk string or the null reply.
    pub fn optional(data: Option<Bytes>) -> Frame {
        data.map_or(Frame::Null, Frame::Bulk)
    }

    /// Whether this frame is an error reply (used by `EXEC`'s bookkeeping and metrics).
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// Appends the wire form of this frame, for `version`, to `out`.
    pub fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) {
        self.encode_at(version, out, 0);
    }

    /// Encodes recursively while shallow (every command's reply: no
    /// allocation on the hot path), then hands a subtree deeper than
    /// [`RECURSION_MAX`] to [`Frame::encode_deep`], which does not recurse:
    /// a script can return arrays nested a thousand deep.
    fn encode_at(&self, version: ProtocolVersion, out: &mut BytesMut, depth: usize) {
        if depth > RECURSION_MAX {
            return self.encode_deep(version, out);
        }
        match self.open(version, out) {
            Open::Leaf => {}
            Open::Items(items) => {
                for item in items {
                    item.encode_at(version, out, depth + 1);
                }
            }
            Open::Pairs(pairs) => {
                for (key, value) in pairs {
                    key.encode_at(version, out, depth + 1);
                    value.encode_at(version, out, depth + 1);
                }
            }
        }
    }

    /// Encoding with an explicit stack of frames still to write instead of
    /// the call stack.
    fn encode_deep(&self, version: ProtocolVersion, out: &mut BytesMut) {
        let mut todo: Vec<&Frame> = vec![self];
        while let Some(frame) = todo.pop() {
            match frame.open(version, out) {
                Open::Leaf => {}
                Open::Items(items) => todo.extend(items.rev()),
                Open::Pairs(pairs) => {
                    for (key, value) in pairs.rev() {
                        todo.push(value);
                        todo.push(key);
                    }
                }
            }
        }
    }

    /// Writes this frame if it is a leaf, or its aggregate header, and
    /// returns what is left to write inside it.
    fn open(&self, version: ProtocolVersion, out: &mut BytesMut) -> Open<'_> {
        let resp3 = version == ProtocolVersion::Resp3;
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            Frame::SimpleOwned(s) => line(out, b'+', s.as_bytes()),
            Frame::Error(s) => line(out, b'-', s.as_bytes()),
            Frame::Integer(n) => integer(out, b':', *n),
            Frame::Bulk(data) => bulk(out, data),
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(items) => return aggregate(out, b'*', items),
            Frame::Set(items) => return aggregate(out, if resp3 { b'~' } else { b'*' }, items),
            Frame::Push(items) => return aggregate(out, if resp3 { b'>' } else { b'*' }, items),
            Frame::Map(pairs) => {
                if resp3 {
                    integer(out, b'%', pairs.len() as i64);
                } else {
                    integer(out, b'*', 2 * pairs.len() as i64);
                }
                return Open::Pairs(pairs.iter());
            }
            Frame::Double(d) => {
                let text = format_double_reply(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Frame::DoubleText(text) if resp3 => line(out, b',', text.as_bytes()),
            Frame::DoubleText(text) => bulk(out, text.as_bytes()),
            Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => integer(out, b':', i64::from(*b)),
            Frame::Sequence(frames) => return Open::Items(frames.iter()),
        }
        Open::Leaf
    }
}

/// Aggregate levels [`Frame::encode`] recurses through before it switches
/// to an explicit stack.
const RECURSION_MAX: usize = 32;

/// What remains to encode inside a frame whose header is written.
enum Open<'a> {
    /// Nothing: the frame was a leaf.
    Leaf,
    /// The elements of an array, set, push or sequence.
    Items(std::slice::Iter<'a, Frame>),
    /// The pairs of a map.
    Pairs(std::slice::Iter<'a, (Frame, Frame)>),
}

/// Formats a double as Redis 7.0's `addReplyDouble` does (scores, `ZSCORE`,
/// `ZRANGE ... WITHSCORES`): C's `%.17g` (17 significant digits, trailing
/// zeros removed, exponent form below 1e-4 and from 1e17), `inf` / `-inf`,
/// `nan`. So `1.1` prints as `1.1000000000000001`, exactly as Redis 7.0
/// does (7.2 switched to the shortest round-trip form).
pub fn format_double_reply(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format_g(d, 17)
}

/// C's `%.{precision}g` for a finite double (precision at least 1).
pub fn format_g(d: f64, precision: usize) -> String {
    let precision = precision.max(1);
    // Scientific form with `precision` significant digits, correctly
    // rounded (Rust's formatting is exact, like glibc's printf).
    let sci = format!("{:.*e}", precision - 1, d);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        trim_fraction(&format!("{d:.decimals$}")).to_string()
    }
}

/// Removes trailing zeros after a decimal point, and the point if bare.
fn trim_fraction(text: &str) -> &str {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.')
}

fn line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(prefix);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn integer(out: &mut BytesMut, prefix: u8, n: i64) {
    let buf = itoa_buf(n);
    line(out, prefix, buf.as_bytes());
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    integer(out, b'$', data.len() as i64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn aggregate<'a>(out: &mut BytesMut, prefix: u8, items: &'a [Frame]) -> Open<'a> {
    integer(out, prefix, items.len() as i64);
    Open::Items(items.iter())
}

/// A stack buffer holding the decimal form of an integer (no allocation on
/// the hot path: every bulk reply writes its length, every `INCR` its number).
pub struct ItoaBuf {
    bytes: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    /// The digits (and sign).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// The decimal form of `n`, as Redis prints integers.
pub fn itoa_buf(n: i64) -> ItoaBuf {
    let mut buf = ItoaBuf {
        bytes: [0; 20],
        start: 20,
    };
    let negative = n < 0;
    let mut value = n.unsigned_abs();
    loop {
        buf.start -= 1;
        buf.bytes[buf.start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    if negative {
        buf.start -= 1;
        buf.bytes[buf.start] = b'-';
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(frame: &Frame, version: ProtocolVersion) -> String {
        let mut out = BytesMut::new();
        frame.encode(version, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn integers_encode_at_the_extremes() {
        for n in [0, 7, -7, i64::MAX, i64::MIN] {
            assert_eq!(
                wire(&Frame::Integer(n), ProtocolVersion::Resp2),
                format!(":{n}\r\n")
            );
        }
    }

    #[test]
    fn resp3_types_degrade_in_resp2() {
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(
            wire(&map, ProtocolVersion::Resp2),
            "*2\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            wire(&map, ProtocolVersion::Resp3),
            "%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(wire(&Frame::Null, ProtocolVersion::Resp2), "$-1\r\n");
        assert_eq!(wire(&Frame::NullArray, ProtocolVersion::Resp2), "*-1\r\n");
        assert_eq!(wire(&Frame::Null, ProtocolVersion::Resp3), "_\r\n");
        assert_eq!(
            wire(&Frame::Double(1.5), ProtocolVersion::Resp2),
            "$3\r\n1.5\r\n"
        );
        assert_eq!(
            wire(&Frame::Double(1.5), ProtocolVersion::Resp3),
            ",1.5\r\n"
        );
        assert_eq!(
            wire(&Frame::Boolean(true), ProtocolVersion::Resp2),
            ":1\r\n"
        );
        let push = Frame::Push(vec![Frame::bulk("x")]);
        assert_eq!(wire(&push, ProtocolVersion::Resp3), ">1\r\n$1\r\nx\r\n");
    }

    #[test]
    fn doubles_print_as_redis_7_0_prints_them() {
        // Each expected text is what redis-server 7.0 replies to ZSCORE.
        for (d, text) in [
            (1.1, "1.1000000000000001"),
            (0.1, "0.10000000000000001"),
            (3.0, "3"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0"),
            (0.0, "0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "4.9406564584124654e-324"),
        ] {
            assert_eq!(format_double_reply(d), text, "{d:e}");
        }
        assert_eq!(
            wire(&Frame::Double(1.1), ProtocolVersion::Resp3),
            ",1.1000000000000001\r\n"
        );
    }

    #[test]
    fn deep_frames_encode_past_the_recursion_limit_in_order() {
        // Levels alternate map / array / sequence, so both encoders (the
        // recursive one near the top, the explicit stack below
        // RECURSION_MAX) see every aggregate kind.
        let depth = 3 * RECURSION_MAX;
        let mut frame = Frame::Integer(7);
        for level in (0..depth).rev() {
            frame = match level % 3 {
                0 => Frame::Map(vec![
                    (Frame::bulk("k"), frame),
                    (Frame::Null, Frame::Boolean(true)),
                ]),
                1 => Frame::Array(vec![Frame::Integer(1), frame, Frame::Simple("OK")]),
                _ => Frame::Sequence(vec![frame, Frame::Double(1.5)]),
            };
        }
        let mut expected = (String::new(), String::new());
        let mut tails = Vec::new();
        for level in 0..depth {
            let (open2, open3, tail2, tail3) = match level % 3 {
                0 => (
                    "*4\r\n$1\r\nk\r\n",
                    "%2\r\n$1\r\nk\r\n",
                    "$-1\r\n:1\r\n",
                    "_\r\n#t\r\n",
                ),
                1 => ("*3\r\n:1\r\n", "*3\r\n:1\r\n", "+OK\r\n", "+OK\r\n"),
                _ => ("", "", "$3\r\n1.5\r\n", ",1.5\r\n"),
            };
            expected.0.push_str(open2);
            expected.1.push_str(open3);
            tails.push((tail2, tail3));
        }
        expected.0.push_str(":7\r\n");
        expected.1.push_str(":7\r\n");
        for (tail2, tail3) in tails.into_iter().rev() {
            expected.0.push_str(tail2);
            expected.1.push_str(tail3);
        }
        assert_eq!(wire(&frame, ProtocolVersion::Resp2), expected.0);
        assert_eq!(wire(&frame, ProtocolVersion::Resp3), expected.1);
    }
}
