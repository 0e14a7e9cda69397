//! Differential tests of the stream commands against a real `redis-server`
//! (see `common/diff.rs`): fixed edge cases and seeded random command
//! streams with explicit ids (so replies are deterministic), compared byte
//! for byte in RESP2 and RESP3, on both engines. Idle times, delivery and
//! seen times (which differ by a millisecond between two servers) and
//! Redis's radix-tree internals are masked; everything else must match.

use crate::common;

use common::diff::{Client, Pair, RespConn, cmd, show, wait_blocked};

/// A parsed reply, enough to mask unstable numbers.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    /// `+ - : , # _ (` lines: the type byte and the text.
    Line(u8, Vec<u8>),
    /// A bulk string (`None`: nil).
    Bulk(Option<Vec<u8>>),
    /// An aggregate: its type byte and items (a map's keys and values flat).
    Agg(u8, Option<Vec<Resp>>),
}

fn parse(raw: &[u8], at: &mut usize) -> Resp {
    let end = raw[*at..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a line")
        + *at;
    let kind = raw[*at];
    let text = raw[*at + 1..end].to_vec();
    *at = end + 2;
    let n = || -> i64 {
        std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.parse().ok())
            .expect("a length")
    };
    match kind {
        b'$' | b'=' | b'!' => {
            let len = n();
            if len < 0 {
                return Resp::Bulk(None);
            }
            let body = raw[*at..*at + len as usize].to_vec();
            *at += len as usize + 2;
            Resp::Bulk(Some(body))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let len = n();
            if len < 0 {
                return Resp::Agg(kind, None);
            }
            let items = if kind == b'%' { len * 2 } else { len };
            Resp::Agg(kind, Some((0..items).map(|_| parse(raw, at)).collect()))
        }
        _ => Resp::Line(kind, text),
    }
}

const MASKED: Resp = Resp::Line(b'?', Vec::new());

/// Masks the values after these map keys, and (by shape) the times in
/// pending-entry arrays.
fn mask(reply: &mut Resp, command: &str) {
    let Resp::Agg(_, Some(items)) = reply else {
        return;
    };
    let mut i = 0;
    while i < items.len() {
        if let Resp::Bulk(Some(key)) = &items[i]
            && [
                &b"idle"[..],
                b"seen-time",
                b"radix-tree-keys",
                b"radix-tree-nodes",
            ]
            .contains(&key.as_slice())
            && i + 1 < items.len()
        {
            items[i + 1] = MASKED;
            i += 2;
            continue;
        }
        i += 1;
    }
    // XPENDING's extended form and XINFO FULL's group PEL: [id, owner, time, count];
    // XINFO FULL's consumer PEL: [id, time, count].
    let is_id =
        |r: &Resp| matches!(r, Resp::Bulk(Some(b)) if b.contains(&b'-') && b[0].is_ascii_digit());
    if command == "xpending" || command == "xinfo" {
        for item in items.iter_mut() {
            if let Resp::Agg(_, Some(inner)) = item
                && inner.first().is_some_and(is_id)
            {
                match inner.len() {
                    4 if matches!(inner[1], Resp::Bulk(Some(_))) => inner[2] = MASKED,
                    3 if command == "xinfo" && matches!(inner[1], Resp::Line(b':', _)) => {
                        inner[1] = MASKED
                    }
                    _ => {}
                }
            }
        }
    }
    for item in items.iter_mut() {
        mask(item, command);
    }
}

/// Sends a command to both and compares the masked replies.
fn check(pair: &mut Pair, args: &[&[u8]], context: &str) {
    let (redis, ours) = pair.both(args);
    if std::env::var("STREAM_DIFF_SHOW").is_ok() {
        eprintln!("{} => {:?}", show(args), String::from_utf8_lossy(&ours));
    }
    let command = String::from_utf8_lossy(args[0]).to_ascii_lowercase();
    let unstable = ["xpending", "xinfo"].contains(&command.as_str());
    if !unstable {
        assert!(
            redis == ours,
            "reply differs for {}\n  redis: {:?}\n  ours:  {:?}\n{context}",
            show(args),
            String::from_utf8_lossy(&redis),
            String::from_utf8_lossy(&ours)
        );
        return;
    }
    let (mut r, mut o) = (parse(&redis, &mut 0), parse(&ours, &mut 0));
    mask(&mut r, &command);
    mask(&mut o, &command);
    assert!(
        r == o,
        "reply differs for {}\n  redis: {:?}\n  ours:  {:?}\n{context}",
        show(args),
        String::from_utf8_lossy(&redis),
        String::from_utf8_lossy(&ours)
    );
}

fn run(pair: &mut Pair, commands: &[Vec<Vec<u8>>], label: &str) {
    for (i, command) in commands.iter().enumerate() {
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        let history: Vec<String> = commands[i.saturating_sub(12)..i]
            .iter()
            .map(|c| show(&c.iter().map(Vec::as_slice).collect::<Vec<_>>()))
            .collect();
        let context = format!(
            "{label}, command #{i}; before it:\n    {}",
            history.join("\n    ")
        );
        check(pair, &args, &context);
    }
}

fn words(lines: &str) -> Vec<Vec<Vec<u8>>> {
    lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| cmd(&l.split(' ').collect::<Vec<_>>()))
        .collect()
}

/// Hand-written cases: options, bad input, error texts, edge ids.
const CASES: &str = include_str!("diff_stream_cases.txt");

/// The engines to run on.
fn engines() -> [kv::config::EngineKind; 2] {
    Pair::engines()
}

fn hello3(pair: &mut Pair) {
    pair.both(&[b"HELLO", b"3"]);
}

#[test]
fn edge_cases_match_redis_in_resp2_and_resp3() {
    for engine in engines() {
        for resp3 in [false, true] {
            let mut pair = Pair::start(engine);
            if resp3 {
                hello3(&mut pair);
            }
            let cases = words(CASES);
            assert!(cases.len() > 200, "{}", cases.len());
            run(&mut pair, &cases, &format!("{engine:?} resp3={resp3}"));
        }
    }
}

/// A random command stream over 2 streams, 2 groups and 3 consumers, with
/// explicit ids (mostly increasing, so most `XADD`s succeed).
fn random_stream(seed: u64, len: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let keys = ["s1", "s2"];
    let groups = ["g1", "g2"];
    let consumers = ["c1", "c2", "c3"];
    let mut next_ms = [1u64, 1];
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let k = rng.usize(..keys.len());
        let key = keys[k];
        let other = keys[1 - k];
        let g = groups[rng.usize(..groups.len())];
        let c = consumers[rng.usize(..consumers.len())];
        let top = next_ms[k];
        let id = |rng: &mut fastrand::Rng| -> String {
            match rng.u8(..10) {
                0 => "-".into(),
                1 => "+".into(),
                2 => format!("({}", rng.u64(0..top + 2)),
                _ => format!("{}-{}", rng.u64(0..top + 2), rng.u64(0..3)),
            }
        };
        let plain_id =
            |rng: &mut fastrand::Rng| format!("{}-{}", rng.u64(0..top + 2), rng.u64(0..3));
        let n = rng.u64(0..6).to_string();
        let words: Vec<String> = match rng.u8(..30) {
            0..=7 => {
                let mut w = vec!["XADD".to_string(), key.to_string()];
                match rng.u8(..8) {
                    0 => w.extend(["MAXLEN".into(), "=".into(), rng.u64(0..8).to_string()]),
                    1 => w.extend(["MAXLEN".into(), "~".into(), rng.u64(0..8).to_string()]),
                    2 => w.extend(["MINID".into(), plain_id(&mut rng)]),
                    3 => w.push("NOMKSTREAM".into()),
                    _ => {}
                }
                let ms = next_ms[k];
                next_ms[k] += rng.u64(0..3);
                w.push(match rng.u8(..4) {
                    0 => format!("{ms}-*"),
                    1 => ms.to_string(),
                    _ => format!("{ms}-{}", rng.u64(0..4)),
                });
                for f in 0..rng.usize(1..3) {
                    w.push(format!("f{f}"));
                    w.push(rng.u32(0..100).to_string());
                }
                w
            }
            8 => vec![
                "XDEL".into(),
                key.into(),
                plain_id(&mut rng),
                plain_id(&mut rng),
            ],
            9 => vec![
                "XRANGE".into(),
                key.into(),
                id(&mut rng),
                id(&mut rng),
                "COUNT".into(),
                n,
            ],
            10 => vec!["XREVRANGE".into(), key.into(), id(&mut rng), id(&mut rng)],
            11 => vec!["XLEN".into(), key.into()],
            12 => vec![
                "XTRIM".into(),
                key.into(),
                "MAXLEN".into(),
                rng.u64(0..10).to_string(),
            ],
            13 => vec![
                "XTRIM".into(),
                key.into(),
                "MINID".into(),
                plain_id(&mut rng),
            ],
            14 => {
                let since = if rng.bool() {
                    "$".to_string()
                } else {
                    plain_id(&mut rng)
                };
                vec![
                    "XREAD".into(),
                    "COUNT".into(),
                    n,
                    "STREAMS".into(),
                    key.into(),
                    other.into(),
                    since,
                    "0".into(),
                ]
            }
            15 => {
                let start = ["0", "$", "1-1"][rng.usize(..3)];
                let mut w = vec![
                    "XGROUP".into(),
                    "CREATE".into(),
                    key.into(),
                    g.into(),
                    start.into(),
                ];
                if rng.bool() {
                    w.push("MKSTREAM".into());
                }
                w
            }
            16 => vec![
                "XGROUP".into(),
                "SETID".into(),
                key.into(),
                g.into(),
                plain_id(&mut rng),
            ],
            17 => match rng.u8(..3) {
                0 => vec!["XGROUP".into(), "DESTROY".into(), key.into(), g.into()],
                1 => vec![
                    "XGROUP".into(),
                    "CREATECONSUMER".into(),
                    key.into(),
                    g.into(),
                    c.into(),
                ],
                _ => vec![
                    "XGROUP".into(),
                    "DELCONSUMER".into(),
                    key.into(),
                    g.into(),
                    c.into(),
                ],
            },
            18..=20 => {
                let mut w = vec!["XREADGROUP".into(), "GROUP".into(), g.into(), c.into()];
                if rng.bool() {
                    w.extend(["COUNT".into(), rng.u64(1..4).to_string()]);
                }
                if rng.u8(..5) == 0 {
                    w.push("NOACK".into());
                }
                let since = if rng.u8(..3) == 0 {
                    "0".to_string()
                } else {
                    ">".to_string()
                };
                w.extend(["STREAMS".into(), key.into(), since]);
                w
            }
            21 => vec![
                "XACK".into(),
                key.into(),
                g.into(),
                plain_id(&mut rng),
                plain_id(&mut rng),
            ],
            22 => match rng.u8(..3) {
                0 => vec!["XPENDING".into(), key.into(), g.into()],
                1 => vec![
                    "XPENDING".into(),
                    key.into(),
                    g.into(),
                    "-".into(),
                    "+".into(),
                    n,
                ],
                _ => vec![
                    "XPENDING".into(),
                    key.into(),
                    g.into(),
                    "-".into(),
                    "+".into(),
                    n,
                    c.into(),
                ],
            },
            23 => {
                let mut w = vec!["XCLAIM".into(), key.into(), g.into(), c.into(), "0".into()];
                w.push(plain_id(&mut rng));
                w.push(plain_id(&mut rng));
                match rng.u8(..4) {
                    0 => w.push("JUSTID".into()),
                    1 => w.extend(["RETRYCOUNT".into(), n]),
                    2 => w.push("FORCE".into()),
                    _ => {}
                }
                w
            }
            24 => {
                let mut w = vec![
                    "XAUTOCLAIM".into(),
                    key.into(),
                    g.into(),
                    c.into(),
                    "0".into(),
                    plain_id(&mut rng),
                ];
                w.extend(["COUNT".into(), rng.u64(1..4).to_string()]);
                if rng.bool() {
                    w.push("JUSTID".into());
                }
                w
            }
            25 => match rng.u8(..4) {
                0 => vec!["XINFO".into(), "STREAM".into(), key.into()],
                1 => vec!["XINFO".into(), "STREAM".into(), key.into(), "FULL".into()],
                2 => vec!["XINFO".into(), "GROUPS".into(), key.into()],
                _ => vec!["XINFO".into(), "CONSUMERS".into(), key.into(), g.into()],
            },
            26 => {
                next_ms[k] += 1;
                vec!["XSETID".into(), key.into(), format!("{}-5", next_ms[k] - 1)]
            }
            27 if rng.u8(..4) == 0 => vec!["DEL".into(), key.into()],
            _ => vec![
                "XADD".into(),
                key.into(),
                format!("{}-*", next_ms[k]),
                "f".into(),
                "v".into(),
            ],
        };
        out.push(words.iter().map(|w| w.as_bytes().to_vec()).collect());
    }
    out
}

#[test]
fn random_streams_match_redis_in_resp2_and_resp3() {
    for engine in engines() {
        let mut pair = Pair::start(engine);
        for seed in 0..30 {
            let resp3 = seed % 2 == 1;
            pair.both(&[b"HELLO", if resp3 { b"3" } else { b"2" }]);
            pair.both(&[b"FLUSHALL"]);
            run(
                &mut pair,
                &random_stream(seed, 300),
                &format!("{engine:?} seed {seed}"),
            );
        }
    }
}

/// Reads a subscriber's messages up to the reply of a `PING` sent after
/// the commands.
fn drain(sub: &mut RespConn) -> Vec<String> {
    sub.send(&[b"PING"]);
    std::iter::from_fn(|| {
        let text = String::from_utf8_lossy(&sub.read_reply()).into_owned();
        (!text.contains("pong")).then_some(text)
    })
    .collect()
}

#[test]
fn stream_events_match_redis() {
    for engine in engines() {
        let mut pair = Pair::start(engine);
        pair.check(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"], "");
        let mut subs = [pair.redis_addr(), pair.ours_addr()].map(|addr| {
            let mut sub = RespConn::connect(addr);
            sub.call(&[b"PSUBSCRIBE", b"__key*@0__:*"]);
            sub
        });
        let cases = words(
            "XADD s 1-0 f v\nXADD s MAXLEN 1 2-0 f v\nXTRIM s MAXLEN 0\nXTRIM s MAXLEN 0\n\
             XADD s 3-0 f v\nXDEL s 3-0 9-0\nXDEL s 9-0\nXSETID s 5-0\n\
             XGROUP CREATE s g 0\nXGROUP CREATE t g 0 MKSTREAM\nXGROUP SETID s g 0\n\
             XADD s 6-0 f v\nXGROUP CREATECONSUMER s g a\nXGROUP CREATECONSUMER s g a\n\
             XREADGROUP GROUP g b STREAMS s >\nXREADGROUP GROUP g b STREAMS s 0\n\
             XACK s g 6-0\nXCLAIM s g c 0 6-0 FORCE\nXAUTOCLAIM s g d 0 0\n\
             XGROUP DELCONSUMER s g a\nXGROUP DELCONSUMER s g zz\nXGROUP DESTROY s g\n\
             XGROUP DESTROY s g\nXADD s 1-0 f v",
        );
        for case in &cases {
            let args: Vec<&[u8]> = case.iter().map(Vec::as_slice).collect();
            check(&mut pair, &args, "");
            let [theirs, ours] = &mut subs;
            assert_eq!(drain(ours), drain(theirs), "after {}", show(&args));
        }
    }
}

/// Blocked `XREAD`/`XREADGROUP` clients against real Redis: served by an
/// `XADD` (also one inside `MULTI`), `$` meaning "after the last id when I
/// blocked", groups handing each entry to one waiter, timeouts, and
/// `BLOCK` inside `MULTI` answering at once; RESP2 and RESP3.
#[test]
fn blocked_readers_are_served_as_redis_serves_them() {
    for engine in engines() {
        let mut pair = Pair::start(engine);
        for protocol in ["2", "3"] {
            pair.both(&[b"HELLO", protocol.as_bytes()]);
            pair.check(&[b"FLUSHALL"], "reset");
            let mut w: Vec<Client> = (0..3).map(|_| Client::connect(&pair, protocol)).collect();
            pair.check(&[b"XADD", b"s", b"1-0", b"f", b"old"], "seed");
            w[0].send(&["XREAD", "BLOCK", "0", "STREAMS", "other", "s", "$", "$"]);
            wait_blocked(&mut pair, 1);
            w[1].send(&["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "1-0"]);
            wait_blocked(&mut pair, 2);
            pair.check(&[b"XADD", b"s", b"2-0", b"f", b"new"], "wake");
            w[0].expect_same("XREAD $");
            w[1].expect_same("XREAD after 1-0");
            // A group: two consumers waiting on `>` get one entry each.
            pair.check(&[b"XGROUP", b"CREATE", b"s", b"g", b"$"], "group");
            for (i, consumer) in ["a", "b"].into_iter().enumerate() {
                let line = format!("XREADGROUP GROUP g {consumer} COUNT 1 BLOCK 0 STREAMS s >");
                w[i].send(&line.split(' ').collect::<Vec<_>>());
                wait_blocked(&mut pair, i + 1);
            }
            pair.check(&[b"MULTI"], "multi");
            pair.check(&[b"XADD", b"s", b"3-0", b"f", b"x"], "queued");
            pair.check(&[b"XADD", b"s", b"4-0", b"f", b"y"], "queued");
            pair.check(&[b"EXEC"], "exec");
            w[0].expect_same("XREADGROUP a");
            w[1].expect_same("XREADGROUP b");
            check(
                &mut pair,
                &[b"XPENDING", b"s", b"g", b"-", b"+", b"10", b"a"],
                "a's",
            );
            // Timeouts, and BLOCK inside MULTI answers at once.
            w[2].send(&["XREAD", "BLOCK", "20", "STREAMS", "s", "$"]);
            w[2].expect_same("XREAD timeout");
            w[2].send(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "20",
                "STREAMS",
                "s",
                ">",
            ]);
            w[2].expect_same("XREADGROUP timeout");
            pair.check(&[b"MULTI"], "multi");
            pair.check(
                &[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"],
                "queued",
            );
            pair.check(&[b"EXEC"], "BLOCK in MULTI");
            // A destroyed group ends its waiter with NOGROUP.
            w[0].send(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ]);
            wait_blocked(&mut pair, 1);
            pair.check(&[b"XGROUP", b"DESTROY", b"s", b"g"], "destroy");
            w[0].expect_same("XREADGROUP of a destroyed group");
        }
    }
}
