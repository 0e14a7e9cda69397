//! Unit tests of the stream commands through a socket-less client: the
//! bookkeeping a differential test cannot see (subkeys left behind, counts
//! kept in step), bad input, and bounded work for huge counts.

use bytes::Bytes;

use crate::command::local::LocalClient;
use crate::config::Config;
use crate::protocol::Frame;

fn client() -> LocalClient {
    LocalClient::memory(Config::default())
}

fn run(c: &mut LocalClient, line: &str) -> Frame {
    let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    c.run(&words)
}

fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn array(frames: Vec<Frame>) -> Frame {
    Frame::Array(frames)
}

fn entry(id: &str, fields: &[&str]) -> Frame {
    array(vec![
        bulk(id),
        array(fields.iter().map(|f| bulk(f)).collect()),
    ])
}

fn fill(c: &mut LocalClient, key: &str, n: u64) {
    for i in 1..=n {
        assert_eq!(
            run(c, &format!("XADD {key} {i}-0 f {i}")),
            bulk(&format!("{i}-0"))
        );
    }
}

#[test]
fn an_emptied_stream_still_exists_with_its_last_id() {
    let mut c = client();
    fill(&mut c, "s", 2);
    assert_eq!(run(&mut c, "XDEL s 1-0 2-0"), int(2));
    assert_eq!(run(&mut c, "EXISTS s"), int(1));
    assert_eq!(run(&mut c, "TYPE s"), Frame::Simple("stream"));
    assert_eq!(run(&mut c, "XLEN s"), int(0));
    assert!(run(&mut c, "XADD s 2-0 f v").is_error());
    assert_eq!(run(&mut c, "XADD s 2-* f v"), bulk("2-1"));
    assert_eq!(run(&mut c, "XGROUP CREATE e g $ MKSTREAM"), Frame::OK);
    assert_eq!(run(&mut c, "EXISTS e"), int(1));
}

#[test]
fn auto_ids_use_the_clock_and_never_go_back() {
    let mut c = client();
    let now = clock::now_ms();
    let Frame::Bulk(id) = run(&mut c, "XADD s * f v") else {
        panic!("an id");
    };
    let ms: u64 = std::str::from_utf8(&id)
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ms >= now && ms < now + 60_000);
    let future = format!("{}-5", ms + 1_000_000);
    assert_eq!(run(&mut c, &format!("XADD s {future} f v")), bulk(&future));
    assert_eq!(
        run(&mut c, "XADD s * f v"),
        bulk(&format!("{}-6", ms + 1_000_000))
    );
}

#[test]
fn approximate_trimming_removes_whole_nodes_of_100() {
    let mut c = client();
    fill(&mut c, "s", 250);
    assert_eq!(run(&mut c, "XTRIM s MAXLEN ~ 120"), int(100));
    assert_eq!(run(&mut c, "XTRIM s MAXLEN ~ 120"), int(0));
    assert_eq!(run(&mut c, "XTRIM s MAXLEN ~ 120 LIMIT 99"), int(0));
    assert_eq!(run(&mut c, "XTRIM s MAXLEN = 120"), int(30));
    assert_eq!(run(&mut c, "XTRIM s MINID ~ 210"), int(70));
    assert_eq!(run(&mut c, "XTRIM s MINID 210"), int(9));
    assert_eq!(run(&mut c, "XLEN s"), int(41));
    // 251-0 joins the last node (51 entries so far), which then goes whole.
    assert_eq!(run(&mut c, "XADD s MAXLEN ~ 0 251-0 f v"), bulk("251-0"));
    assert_eq!(run(&mut c, "XLEN s"), int(0));
}

#[test]
fn huge_counts_are_bounded_by_the_data() {
    let mut c = client();
    fill(&mut c, "s", 3);
    let max = i64::MAX.to_string();
    for line in [
        format!("XRANGE s - + COUNT {max}"),
        format!("XREVRANGE s + - COUNT {max}"),
        format!("XREAD COUNT {max} STREAMS s 0"),
        format!("XINFO STREAM s FULL COUNT {max}"),
    ] {
        assert!(!run(&mut c, &line).is_error(), "{line}");
    }
    assert_eq!(run(&mut c, "XGROUP CREATE s g 0"), Frame::OK);
    let read = run(
        &mut c,
        &format!("XREADGROUP GROUP g c COUNT {max} STREAMS s >"),
    );
    assert!(!read.is_error());
    assert!(!run(&mut c, &format!("XPENDING s g - + {max}")).is_error());
    let claim = run(
        &mut c,
        &format!("XAUTOCLAIM s g c 0 0 COUNT {} JUSTID", i64::MAX / 16),
    );
    assert_eq!(
        claim,
        array(vec![
            bulk("0-0"),
            array(vec![bulk("1-0"), bulk("2-0"), bulk("3-0")]),
            array(vec![])
        ])
    );
    assert!(
        run(
            &mut c,
            &format!("XAUTOCLAIM s g c 0 0 COUNT {}", i64::MAX / 16 + 1)
        )
        .is_error()
    );
}

#[test]
fn group_counts_stay_in_step_with_the_pending_lists() {
    let mut c = client();
    fill(&mut c, "s", 6);
    assert_eq!(run(&mut c, "XGROUP CREATE s g 0"), Frame::OK);
    run(&mut c, "XREADGROUP GROUP g a COUNT 2 STREAMS s >");
    run(&mut c, "XREADGROUP GROUP g b COUNT 3 STREAMS s >");
    let summary = |c: &mut LocalClient| run(c, "XPENDING s g");
    assert_eq!(
        summary(&mut c),
        array(vec![
            int(5),
            bulk("1-0"),
            bulk("5-0"),
            array(vec![
                array(vec![bulk("a"), bulk("2")]),
                array(vec![bulk("b"), bulk("3")])
            ])
        ])
    );
    // b takes one of a's; a acks its other; b is deleted with its 3 + 1.
    assert_eq!(
        run(&mut c, "XCLAIM s g b 0 1-0 JUSTID"),
        array(vec![bulk("1-0")])
    );
    assert_eq!(run(&mut c, "XACK s g 2-0 2-0"), int(1));
    assert_eq!(run(&mut c, "XGROUP DELCONSUMER s g b"), int(4));
    assert_eq!(
        summary(&mut c),
        array(vec![int(0), Frame::Null, Frame::Null, Frame::NullArray])
    );
    // A re-created group sees none of the destroyed one's state.
    run(&mut c, "XREADGROUP GROUP g a STREAMS s >");
    assert_eq!(run(&mut c, "XGROUP DESTROY s g"), int(1));
    assert_eq!(run(&mut c, "XGROUP CREATE s g $"), Frame::OK);
    assert_eq!(
        summary(&mut c),
        array(vec![int(0), Frame::Null, Frame::Null, Frame::NullArray])
    );
    assert_eq!(run(&mut c, "XINFO CONSUMERS s g"), array(vec![]));
}

#[test]
fn history_reads_show_deleted_entries_as_nil() {
    let mut c = client();
    fill(&mut c, "s", 2);
    run(&mut c, "XGROUP CREATE s g 0");
    run(&mut c, "XREADGROUP GROUP g a STREAMS s >");
    run(&mut c, "XDEL s 1-0");
    let expected = array(vec![array(vec![
        bulk("s"),
        array(vec![
            array(vec![bulk("1-0"), Frame::NullArray]),
            entry("2-0", &["f", "2"]),
        ]),
    ])]);
    assert_eq!(run(&mut c, "XREADGROUP GROUP g a STREAMS s 0"), expected);
    // 2-0 was delivered twice now; 1-0 (deleted) keeps its count.
    let pending = run(&mut c, "XPENDING s g - + 10");
    let Frame::Array(items) = pending else {
        panic!()
    };
    let counts: Vec<Frame> = items
        .into_iter()
        .map(|i| match i {
            Frame::Array(mut f) => f.remove(3),
            other => other,
        })
        .collect();
    assert_eq!(counts, vec![int(1), int(2)]);
}

#[test]
fn xread_answers_a_map_in_resp3() {
    let mut c = client();
    fill(&mut c, "s", 1);
    run(&mut c, "HELLO 3");
    assert_eq!(
        run(&mut c, "XREAD STREAMS s missing 0 0"),
        Frame::Map(vec![(bulk("s"), array(vec![entry("1-0", &["f", "1"])]))])
    );
    assert_eq!(run(&mut c, "XREAD STREAMS s $"), Frame::NullArray);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut c = client();
    fill(&mut c, "s", 2);
    run(&mut c, "XGROUP CREATE s g 0");
    let long = "9".repeat(200);
    for line in [
        format!("XADD s {long} f v"),
        format!("XRANGE s {long} +"),
        "XADD s 1-18446744073709551616 f v".to_string(),
        "XREAD COUNT -1 BLOCK -1 STREAMS s 0".to_string(),
        "XREAD BLOCK x STREAMS s 0".to_string(),
        "XCLAIM s g c 0 1-0 TIME -5 RETRYCOUNT -9".to_string(),
        "XPENDING s g IDLE -5 - + -5 c".to_string(),
        "XGROUP SETID s g ( ENTRIESREAD 0".to_string(),
        "XINFO STREAM s FULL COUNT -9".to_string(),
        "XSETID s 1-0".to_string(),
    ] {
        let _ = run(&mut c, &line);
    }
    assert_eq!(run(&mut c, "XLEN s"), int(2));
    let weird: &[&[u8]] = &[b"XADD", b"s", b"3-0", b"\r\n\0", b"\xff"];
    assert_eq!(c.run(weird), bulk("3-0"));
    let nogroup = c.run(&[
        b"XREADGROUP",
        b"GROUP",
        b"a\r\nb",
        b"c",
        b"STREAMS",
        b"s",
        b">",
    ]);
    assert!(matches!(nogroup, Frame::Error(e) if e.starts_with("NOGROUP") && !e.contains('\n')));
}
