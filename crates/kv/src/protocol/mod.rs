//! RESP, the Redis serialization protocol, in both versions.
//!
//! Requests always arrive in the RESP2 shape (arrays of bulk strings, or
//! inline lines), whatever version the client negotiated; replies differ
//! between RESP2 and RESP3. So the module has two halves: [`parse`], a
//! resumable request parser with hard limits, and [`frame`], the reply type
//! with an encoder per version.
//!
//! Why hand-written rather than a codec crate: the server needs
//! Redis's exact limits and error texts, the unauthenticated-client limits,
//! zero-copy arguments, and resumption across reads; the parser is ~300
//! lines and is fuzzed (`crates/kv/fuzz`) and property-tested below.

pub mod frame;
pub mod parse;

pub use frame::{Frame, ProtocolVersion};
pub use parse::{ParseLimits, ProtocolError, RequestParser};

/// Encodes `args` as a RESP multibulk request (what a client sends).
pub fn encode_request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use proptest::prelude::*;

    fn parse_all(input: &[u8], limits: ParseLimits) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut parser = RequestParser::new(limits);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = parser.next_command(&mut buf, true)? {
            out.push(cmd);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_commands_parse() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n  set  \"a b\" 'c\\'d' \"\\x41\\n\"\r\n\r\n*0\r\n";
        let cmds = parse_all(input, ParseLimits::default()).unwrap();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(cmds[1], vec![Bytes::from("PING")]);
        assert_eq!(
            cmds[2],
            vec![
                Bytes::from("set"),
                Bytes::from("a b"),
                Bytes::from("c'd"),
                Bytes::from("A\n")
            ]
        );
    }

    #[test]
    fn limits_and_garbage_give_redis_errors() {
        let small = ParseLimits {
            bulk_len_max: 10,
            multibulk_len_max: 4,
        };
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*5\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*x\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\r\n$11\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$-1\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n:1\r\n", ProtocolError::ExpectedBulk(':')),
            (b"set \"a\r\n", ProtocolError::UnbalancedQuotes),
            (b"set \"a\"b\r\n", ProtocolError::UnbalancedQuotes),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_all(input, small).unwrap_err(), *expected, "{input:?}");
        }
        let long = vec![b'a'; parse::INLINE_LEN_MAX + 1];
        assert_eq!(
            parse_all(&long, small).unwrap_err(),
            ProtocolError::InlineTooBig
        );
    }

    /// Fuzzer find (`parse`): a CR or LF where `$` belongs went into the
    /// error line verbatim, so the reply broke mid-line. Redis 7 answers
    /// `-ERR Protocol error: expected '$', got ' '` here.
    #[test]
    fn expected_bulk_error_stays_one_line() {
        for input in [&b"*1\r\n\r\n"[..], b"*2\r\n$1\r\nk\r\n\nx"] {
            let err = parse_all(input, ParseLimits::default()).unwrap_err();
            assert_eq!(err, ProtocolError::ExpectedBulk(' '), "{input:?}");
            assert_eq!(err.to_string(), "Protocol error: expected '$', got ' '");
        }
    }

    /// Fuzzer finds (`inline_args`, against a port of `sdssplitargs`), each
    /// checked against Redis 7: quotes open mid-argument, a `\` before a
    /// non-hex `x` is dropped, vertical tab and form feed separate arguments
    /// but do not end an unquoted one.
    #[test]
    fn inline_splitting_matches_sdssplitargs() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"set a\"b c\" d", &[b"set", b"ab c", b"d"]),
            (b"x'y z'", &[b"xy z"]),
            (b"echo \"\\xZZ\" \"\\x4\"", &[b"echo", b"xZZ", b"x4"]),
            (b"echo a\x0cb", &[b"echo", b"a\x0cb"]),
            (b"\x0becho x\x0b", &[b"echo", b"x\x0b"]),
            (b"echo \"a\"\x0bb", &[b"echo", b"a", b"b"]),
            (b"echo \"a\\", &[]),
        ];
        for (line, want) in cases {
            let got = parse::split_inline(line);
            if want.is_empty() {
                assert_eq!(got, Err(ProtocolError::UnbalancedQuotes), "{line:?}");
                continue;
            }
            let want: Vec<Bytes> = want.iter().map(|a| Bytes::copy_from_slice(a)).collect();
            assert_eq!(got.as_ref(), Ok(&want), "{line:?}");
        }
    }

    /// Fuzzer find (`parse`, a timeout): a line arriving one byte per read
    /// was searched from its start on every read, so one 64 KiB line cost
    /// ~2^31 comparisons. Counted, not timed: each byte is searched once.
    #[test]
    fn slow_lines_are_searched_once() {
        let long = parse::INLINE_LEN_MAX - 16;
        let mut inline = vec![b'a'; long];
        inline.extend_from_slice(b" b\r\n");
        let mut count = b"*".to_vec();
        count.extend(std::iter::repeat_n(b'1', long));
        count.extend_from_slice(b"\r\n");
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.extend(std::iter::repeat_n(b'2', long));
        bulk.extend_from_slice(b"\r\n");
        for (stream, last) in [
            (inline, Ok(Some(2))),
            (count, Err(ProtocolError::InvalidMultibulkLength)),
            (bulk, Err(ProtocolError::InvalidBulkLength)),
        ] {
            parse::BYTES_SEARCHED.with(|n| n.set(0));
            let mut parser = RequestParser::new(ParseLimits::default());
            let mut buf = BytesMut::new();
            for (i, &byte) in stream.iter().enumerate() {
                buf.extend_from_slice(&[byte]);
                let got = parser.next_command(&mut buf, true);
                if i + 1 < stream.len() {
                    assert_eq!(got, Ok(None), "byte {i}");
                } else {
                    assert_eq!(got.map(|c| c.map(|args| args.len())), last);
                }
            }
            let searched = parse::BYTES_SEARCHED.with(|n| n.get());
            assert!(searched <= 2 * stream.len(), "{searched} bytes searched");
        }
    }

    #[test]
    fn unauthenticated_clients_get_tighter_limits() {
        let mut parser = RequestParser::new(ParseLimits::default());
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            parser.next_command(&mut buf, false).unwrap_err(),
            ProtocolError::UnauthenticatedMultibulkLength
        );
    }

    #[test]
    fn strict_integers_match_string2ll() {
        use parse::parse_i64_strict as p;
        assert_eq!(p(b"0"), Some(0));
        assert_eq!(p(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(p(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"9223372036854775808"[..],
            b"01",
            b"+1",
            b"-0",
            b" 1",
            b"",
            b"1a",
            b"-",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    proptest! {
        /// Any command, split into any chunks, parses back to itself.
        #[test]
        fn split_multibulk_roundtrips(
            args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let mut wire = encode_request(&refs);
            wire.extend_from_slice(&encode_request(&refs));
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % wire.len()).collect();
            cuts.sort_unstable();
            let mut parser = RequestParser::new(ParseLimits::default());
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut last = 0;
            for cut in cuts.into_iter().chain([wire.len()]) {
                buf.extend_from_slice(&wire[last..cut]);
                last = cut;
                while let Some(cmd) = parser.next_command(&mut buf, true).unwrap() {
                    got.push(cmd);
                }
            }
            prop_assert_eq!(got.len(), 2);
            for cmd in got {
                let cmd: Vec<Vec<u8>> = cmd.iter().map(|b| b.to_vec()).collect();
                prop_assert_eq!(&cmd, &args);
            }
            prop_assert!(buf.is_empty());
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_all(&data, ParseLimits { bulk_len_max: 64, multibulk_len_max: 8 });
        }
    }
}
