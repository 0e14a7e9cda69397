//! Fuzzes the resumable RESP request parser (`kv::protocol::RequestParser`).
//!
//! An input is a 5-byte header followed by the request stream a client
//! would send (so the seed corpus is real `redis-cli` / `redis-benchmark`
//! traffic with a header in front):
//!
//! | byte | meaning |
//! | ---- | ------- |
//! | 0 | flags: bit 0 unauthenticated, bit 1 default (large) limits, bit 2 insert a ~64 KiB run, bit 3 feed one byte per read (1021 with the run) |
//! | 1 | `bulk_len_max` when the limits are small (0..=255) |
//! | 2 | `multibulk_len_max` when the limits are small (0..=255) |
//! | 3 | seed for where the stream is cut into reads; also where the run goes |
//! | 4 | length of the run around `INLINE_LEN_MAX` (low 4 bits) |
//!
//! The small limits make the bulk/multibulk limit paths reachable from short
//! inputs; the run reaches the 64 KiB line limits, which are constants.
//!
//! The stream is parsed twice: all at once, and cut into reads at arbitrary
//! points. Invariants checked:
//! - nothing panics (debug assertions and overflow checks are on);
//! - the cut run yields exactly the commands and the error of the whole run,
//!   so resuming across reads never loses, duplicates or misreads bytes;
//! - a "need more data" answer (`Ok(None)`) consumed nothing but whole empty
//!   commands (`*0`, blank lines), and a command always consumes bytes;
//! - every command parses back from its own bytes alone; a multibulk command
//!   is byte-for-byte the canonical encoding of its arguments (lengths are
//!   strict integers) and respects the limits; every command re-encodes as
//!   multibulk and as a quoted inline line and parses back identically;
//! - every error renders as one Redis-shaped `-ERR Protocol error: ...` line,
//!   and the unauthenticated errors only happen to unauthenticated clients.
#![no_main]

use bytes::{Bytes, BytesMut};
use kv::protocol::parse::INLINE_LEN_MAX;
use kv::protocol::{
    Frame, ParseLimits, ProtocolError, ProtocolVersion, RequestParser, encode_request,
};
use libfuzzer_sys::fuzz_target;

/// Mirrors the parser's private limits for clients that have not authenticated.
const UNAUTH_MULTIBULK_LEN_MAX: usize = 10;
const UNAUTH_BULK_LEN_MAX: usize = 16 * 1024;
const HEADER_LEN: usize = 5;

/// One decoded fuzz input.
struct Case {
    limits: ParseLimits,
    authenticated: bool,
    stream: Vec<u8>,
    /// Ends of the reads the stream is cut into (ascending, last = len).
    cuts: Vec<usize>,
}

fn decode(data: &[u8]) -> Option<Case> {
    let (header, payload) = data.split_first_chunk::<HEADER_LEN>()?;
    let [flags, bulk, multibulk, seed, run] = *header;
    let limits = if flags & 2 != 0 {
        ParseLimits::default()
    } else {
        ParseLimits {
            bulk_len_max: usize::from(bulk),
            multibulk_len_max: usize::from(multibulk),
        }
    };
    let mut stream = payload.to_vec();
    if flags & 4 != 0 {
        // A run of the byte at the insertion point, long enough to straddle
        // the 64 KiB line limit: `*1\r\n` becomes `*111...1\r\n`.
        let at = usize::from(seed).min(stream.len());
        let fill = stream.get(at).copied().unwrap_or(b'a');
        let len = INLINE_LEN_MAX - 8 + usize::from(run & 15);
        stream.splice(at..at, std::iter::repeat_n(fill, len));
    }
    let cuts = if flags & 8 != 0 {
        // One byte per read; over the 64 KiB run 1021-byte reads, as 65,000
        // instrumented calls would cost ~80 ms per input (the unit test
        // `slow_lines_are_searched_once` covers the byte-wise long line).
        let step = if flags & 4 != 0 { 1021 } else { 1 };
        let mut cuts: Vec<usize> = (step..stream.len()).step_by(step).collect();
        cuts.push(stream.len());
        cuts
    } else {
        // Deterministic cut points from the seed.
        let mut rng = fastrand::Rng::with_seed(
            u64::from(seed) << 32 | u64::from(run) << 16 | stream.len() as u64,
        );
        let mut cuts: Vec<usize> = (0..seed & 7).map(|_| rng.usize(..=stream.len())).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        cuts
    };
    Some(Case {
        limits,
        authenticated: flags & 1 == 0,
        stream,
        cuts,
    })
}

/// What parsing a whole stream produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    commands: Vec<Vec<Bytes>>,
    /// The stream offset where each command ends. (Where it starts depends
    /// on whether an earlier read already skipped the empty commands before
    /// it.)
    ends: Vec<usize>,
    error: Option<ProtocolError>,
    /// Bytes left unconsumed at the end (only compared without an error).
    leftover: usize,
}

/// Feeds `case.stream` in reads ending at `cuts`, checking every answer;
/// the costly per-command checks only when `check_commands` (the cut run is
/// compared with the whole run instead, command for command).
fn run(case: &Case, cuts: &[usize], check_commands: bool) -> Outcome {
    let mut parser = RequestParser::new(case.limits);
    let mut buf = BytesMut::new();
    let mut out = Outcome {
        commands: Vec::new(),
        ends: Vec::new(),
        error: None,
        leftover: 0,
    };
    let mut fed = 0;
    for &cut in cuts {
        buf.extend_from_slice(&case.stream[fed..cut]);
        fed = cut;
        loop {
            let start = fed - buf.len();
            let result = parser.next_command(&mut buf, case.authenticated);
            let consumed = &case.stream[start..fed - buf.len()];
            match result {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "empty commands must be skipped");
                    assert!(!consumed.is_empty(), "a command must consume bytes");
                    if check_commands {
                        check_command(case, consumed, &args);
                    }
                    out.commands.push(args);
                    out.ends.push(fed - buf.len());
                }
                Ok(None) => {
                    assert_only_empty_commands(consumed);
                    break;
                }
                Err(err) => {
                    check_error(case, &err);
                    out.error = Some(err);
                    return out;
                }
            }
        }
    }
    out.leftover = buf.len();
    out
}

/// Bytes consumed by an `Ok(None)` must be whole empty commands only.
fn assert_only_empty_commands(consumed: &[u8]) {
    if consumed.is_empty() {
        return;
    }
    let mut buf = BytesMut::from(consumed);
    let got = RequestParser::new(ParseLimits::default()).next_command(&mut buf, true);
    assert!(
        matches!(got, Ok(None)),
        "Ok(None) consumed {consumed:?}, which parses as {got:?}"
    );
    assert!(
        buf.is_empty(),
        "Ok(None) consumed part of a command: {consumed:?}"
    );
}

/// Checks one command against the bytes it was parsed from.
fn check_command(case: &Case, consumed: &[u8], args: &[Bytes]) {
    // With no multibulk allowed, an inline command parses again and a
    // multibulk one fails on its count: that tells the two apart.
    let no_multibulk = ParseLimits {
        multibulk_len_max: 0,
        ..case.limits
    };
    let mut buf = BytesMut::from(consumed);
    match RequestParser::new(no_multibulk).next_command(&mut buf, true) {
        Ok(Some(again)) => {
            assert_eq!(again, args, "inline command parses differently alone");
            assert!(
                buf.is_empty(),
                "an inline command's bytes hold more than one command"
            );
            assert!(
                consumed.ends_with(b"\n"),
                "an inline command ends with its LF"
            );
        }
        Err(ProtocolError::InvalidMultibulkLength) => check_multibulk(case, consumed, args),
        other => panic!("bytes of {args:?} parse alone as {other:?}"),
    }
    let wire = encode_request(&args.iter().map(|a| &a[..]).collect::<Vec<_>>());
    assert_eq!(
        parse_one(&wire, ParseLimits::default()),
        args,
        "multibulk re-encoding"
    );
    let line = encode_inline(args);
    if line.len() <= INLINE_LEN_MAX {
        assert_eq!(
            parse_one(&line, ParseLimits::default()),
            args,
            "inline re-encoding {line:?}"
        );
    }
}

/// A multibulk command is its canonical encoding (after skipped empties),
/// except the bytes Redis skips unchecked, and obeys the limits.
fn check_multibulk(case: &Case, consumed: &[u8], args: &[Bytes]) {
    let max = if case.authenticated {
        usize::MAX
    } else {
        UNAUTH_MULTIBULK_LEN_MAX
    };
    assert!(
        args.len() <= case.limits.multibulk_len_max.min(max),
        "{} args",
        args.len()
    );
    let max = if case.authenticated {
        usize::MAX
    } else {
        UNAUTH_BULK_LEN_MAX
    };
    for arg in args {
        assert!(
            arg.len() <= case.limits.bulk_len_max.min(max),
            "{}-byte arg",
            arg.len()
        );
    }
    assert_eq!(
        parse_one(consumed, case.limits),
        args,
        "multibulk parses differently alone"
    );
    let (canonical, checked) = encode_with_mask(args);
    assert!(
        consumed.len() >= canonical.len(),
        "shorter than the canonical encoding"
    );
    let (empties, own) = consumed.split_at(consumed.len() - canonical.len());
    assert_only_empty_commands(empties);
    for (i, ((&got, &want), &check)) in own.iter().zip(&canonical).zip(&checked).enumerate() {
        assert!(
            !check || got == want,
            "byte {i} of {own:?} differs from {canonical:?}"
        );
    }
}

/// `encode_request`, plus which bytes the parser checks: like Redis, it
/// skips the byte after each length line's CR and the two bytes after each
/// argument unchecked.
fn encode_with_mask(args: &[Bytes]) -> (Vec<u8>, Vec<bool>) {
    let wire = encode_request(&args.iter().map(|a| &a[..]).collect::<Vec<_>>());
    let mut checked = vec![true; wire.len()];
    let mut at = format!("*{}\r\n", args.len()).len();
    checked[at - 1] = false;
    for arg in args {
        at += format!("${}\r\n", arg.len()).len();
        checked[at - 1] = false;
        at += arg.len();
        checked[at] = false;
        checked[at + 1] = false;
        at += 2;
    }
    assert_eq!(at, wire.len());
    (wire, checked)
}

/// Every argument double-quoted, bytes outside printable ASCII as `\xHH`.
fn encode_inline(args: &[Bytes]) -> Vec<u8> {
    let mut line = Vec::new();
    for arg in args {
        line.extend_from_slice(b" \"");
        for &b in arg.iter() {
            match b {
                b'"' | b'\\' => line.extend_from_slice(&[b'\\', b]),
                b' '..=b'~' => line.push(b),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let (high, low) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]);
                    line.extend_from_slice(&[b'\\', b'x', high, low]);
                }
            }
        }
        line.push(b'"');
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Parses exactly one command that must fill `wire`.
fn parse_one(wire: &[u8], limits: ParseLimits) -> Vec<Bytes> {
    let mut buf = BytesMut::from(wire);
    let args = RequestParser::new(limits).next_command(&mut buf, true);
    let args = args
        .unwrap_or_else(|e| panic!("{wire:?}: {e}"))
        .expect("a whole command");
    assert!(buf.is_empty(), "{wire:?} holds more than one command");
    args
}

/// The error reaches the client as `-ERR Protocol error: ...\r\n`.
fn check_error(case: &Case, err: &ProtocolError) {
    let text = format!("ERR {err}");
    assert!(text.starts_with("ERR Protocol error: "), "{text:?}");
    // `Frame::error` debug-asserts the one-line rule too.
    let mut wire = BytesMut::new();
    Frame::error(text.clone()).encode(ProtocolVersion::Resp3, &mut wire);
    assert_eq!(
        wire.iter().filter(|&&b| b == b'\r' || b == b'\n').count(),
        2,
        "{text:?}"
    );
    assert!(wire.starts_with(b"-ERR Protocol error: ") && wire.ends_with(b"\r\n"));
    let unauth = matches!(
        err,
        ProtocolError::UnauthenticatedBulkLength | ProtocolError::UnauthenticatedMultibulkLength
    );
    assert!(
        !unauth || !case.authenticated,
        "{err:?} for an authenticated client"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some(case) = decode(data) else { return };
    let whole = run(&case, &[case.stream.len()], true);
    let cut = run(&case, &case.cuts, false);
    assert_eq!(
        cut.commands, whole.commands,
        "cutting the stream changed the commands"
    );
    assert_eq!(
        cut.ends, whole.ends,
        "cutting the stream changed what each command consumed"
    );
    assert_eq!(
        cut.error, whole.error,
        "cutting the stream changed the error"
    );
    if whole.error.is_none() {
        assert_eq!(
            cut.leftover, whole.leftover,
            "cutting the stream changed what is left"
        );
    }
});
