//! Feeds arbitrary bytes to the RESP request parser, split at an arbitrary
//! point, and checks it never panics, never loops, and that whatever it
//! accepts re-encodes to a request it parses back identically.
#![no_main]

use bytes::BytesMut;
use kv::protocol::{ParseLimits, RequestParser, encode_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let split = usize::from(split).min(data.len());
    let limits = ParseLimits { bulk_len_max: 4096, multibulk_len_max: 64 };
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            match parser.next_command(&mut buf, true) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "empty commands are skipped");
                    commands.push(args);
                }
                Ok(None) => break,
                Err(_) => return, // a protocol error closes the connection
            }
        }
    }
    for args in commands {
        let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        let mut again = BytesMut::from(&encode_request(&refs)[..]);
        // Inline lines are bounded by length only, so reparse with default limits.
        let reparsed = RequestParser::new(ParseLimits::default()).next_command(&mut again, true).unwrap().unwrap();
        assert_eq!(reparsed, args);
    }
});
