//! Differential testing against a real `redis-server`: the same commands go
//! to Redis and to our server, and the replies must be byte-for-byte equal
//! (raw RESP, so a score's last digit, an error's exact text and a reply's
//! RESP2/RESP3 shape all count).
//!
//! Each family's test file (`tests/diff_*.rs`) generates command streams
//! (seeded, so a failure names its seed) and calls [`Pair::check`] or
//! [`Pair::run_stream`]. Commands whose replies are random by design
//! (`SPOP`, `SRANDMEMBER`, `RANDOMKEY`, ids from `XADD *`...) are either left
//! out of streams or compared by a property (e.g. a reply's length) with
//! [`Pair::both`].
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use kv::config::EngineKind;

use super::TestServer;

/// One blocking RESP connection that returns each reply's raw bytes.
pub struct RespConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RespConn {
    /// Connects (bounded by a 10 s timeout on every read).
    pub fn connect(addr: SocketAddr) -> RespConn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        RespConn {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// Sends one command without reading.
    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).expect("send");
    }

    /// Sends one command and returns its reply's raw bytes.
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// Reads one complete reply (any RESP2/RESP3 type, nested).
    pub fn read_reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_into(&mut out);
        out
    }

    fn read_line(&mut self, out: &mut Vec<u8>) -> Vec<u8> {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .expect("read a reply line");
        assert!(line.ends_with(b"\r\n"), "truncated reply: {line:?}");
        out.extend_from_slice(&line);
        line[1..line.len() - 2].to_vec()
    }

    fn read_into(&mut self, out: &mut Vec<u8>) {
        let line = self.read_line(out);
        let kind = *out.get(out.len() - line.len() - 3).expect("a type byte");
        let number = || -> i64 {
            std::str::from_utf8(&line)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1)
        };
        match kind {
            b'$' | b'=' | b'!' | b'?' => {
                let len = number();
                if len >= 0 {
                    let mut body = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut body).expect("bulk body");
                    out.extend_from_slice(&body);
                }
            }
            b'*' | b'~' | b'>' => {
                for _ in 0..number().max(0) {
                    self.read_into(out);
                }
            }
            b'%' | b'|' => {
                for _ in 0..number().max(0) * 2 {
                    self.read_into(out);
                }
                if kind == b'|' {
                    self.read_into(out); // the attributed reply itself
                }
            }
            _ => {} // + - : , # _ (
        }
    }
}

/// A real Redis and our server side by side (see the module docs).
pub struct Pair {
    /// Connection to `redis-server`.
    pub redis: RespConn,
    /// Connection to our server.
    pub ours: RespConn,
    _redis_server: testkit::RedisServer,
    _server: TestServer,
    _runtime: tokio::runtime::Runtime,
    _dir: Option<tempfile::TempDir>,
}

impl Pair {
    /// Starts both, ours on `engine` (lsm in a temp dir, `--fsync no`).
    pub fn start(engine: EngineKind) -> Pair {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = (engine == EngineKind::Lsm).then(|| tempfile::tempdir().expect("tempdir"));
        let data_dir = dir.as_ref().map(|d| d.path().to_path_buf());
        let server = runtime.block_on(TestServer::with(|config| {
            config.engine = engine;
            if let Some(data_dir) = data_dir {
                config.data_dir = data_dir;
                config.fsync = kv::config::FsyncPolicy::No;
            }
        }));
        let redis_server = testkit::RedisServer::start();
        let redis = RespConn::connect(
            format!("127.0.0.1:{}", redis_server.port)
                .parse()
                .expect("addr"),
        );
        let ours = RespConn::connect(server.addr);
        Pair {
            redis,
            ours,
            _redis_server: redis_server,
            _server: server,
            _runtime: runtime,
            _dir: dir,
        }
    }

    /// The real Redis's address (for extra connections).
    pub fn redis_addr(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self._redis_server.port)
            .parse()
            .expect("addr")
    }

    /// Our server's address.
    pub fn ours_addr(&self) -> SocketAddr {
        self._server.addr
    }

    /// Both engines, one after the other.
    pub fn engines() -> [EngineKind; 2] {
        [EngineKind::Memory, EngineKind::Lsm]
    }

    /// Runs one command on both; panics (with `context`) unless the raw
    /// replies are equal. Returns the reply.
    pub fn check(&mut self, args: &[&[u8]], context: &str) -> Vec<u8> {
        let expected = self.redis.call(args);
        let got = self.ours.call(args);
        assert!(
            expected == got,
            "reply differs from redis-server for {}\n  redis: {:?}\n  ours:  {:?}\n{context}",
            show(args),
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&got),
        );
        got
    }

    /// [`Pair::check`]s each command, given as words, in order.
    pub fn check_words(&mut self, commands: &[&[&str]]) {
        for command in commands {
            let args: Vec<&[u8]> = command.iter().map(|w| w.as_bytes()).collect();
            self.check(&args, "");
        }
    }

    /// Runs one command on both and returns both replies (for replies that
    /// are random by design: compare a property of them).
    pub fn both(&mut self, args: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        (self.redis.call(args), self.ours.call(args))
    }

    /// Runs a command stream, checking every reply; a mismatch reports the
    /// seed and the last commands before it.
    pub fn run_stream(&mut self, seed: u64, commands: &[Vec<Vec<u8>>]) {
        for (i, command) in commands.iter().enumerate() {
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            let from = i.saturating_sub(15);
            let history: Vec<String> = commands[from..i]
                .iter()
                .map(|c| show(&c.iter().map(Vec::as_slice).collect::<Vec<_>>()))
                .collect();
            let context = format!(
                "seed {seed}, command #{i}; the commands before it:\n    {}",
                history.join("\n    ")
            );
            self.check(&args, &context);
        }
    }
}

impl Pair {
    /// Runs `generate(seed)`'s stream for each seed of `resp2`, each on an
    /// emptied keyspace; then switches both connections to RESP3 and does
    /// the same for `resp3` (the connections stay in RESP3).
    pub fn run_seeds(
        &mut self,
        resp2: std::ops::Range<u64>,
        resp3: std::ops::Range<u64>,
        generate: &dyn Fn(u64) -> Vec<Vec<Vec<u8>>>,
    ) {
        for seed in resp2 {
            self.run_stream(seed, &generate(seed));
            self.check(&[b"FLUSHALL"], "reset");
        }
        self.both(&[b"HELLO", b"3"]);
        for seed in resp3 {
            self.run_stream(seed, &generate(seed));
            self.check(&[b"FLUSHALL"], "reset");
        }
    }
}

/// Runs `cases` in order on a fresh pair per engine, in RESP2 and then
/// RESP3 (each from an emptied keyspace), checking every reply.
pub fn check_cases(cases: &[&[&str]]) {
    for engine in Pair::engines() {
        let mut pair = Pair::start(engine);
        for protocol in ["2", "3"] {
            pair.both(&[b"HELLO", protocol.as_bytes()]);
            pair.check(&[b"FLUSHALL"], "reset");
            for case in cases {
                let args: Vec<&[u8]> = case.iter().map(|a| a.as_bytes()).collect();
                pair.check(&args, &format!("RESP{protocol}"));
            }
        }
    }
}

/// A stream of `len` commands, each made by `next` as words.
pub fn stream_of(len: usize, mut next: impl FnMut() -> Vec<String>) -> Vec<Vec<Vec<u8>>> {
    (0..len)
        .map(|_| next().into_iter().map(String::into_bytes).collect())
        .collect()
}

/// A command as one readable line.
pub fn show(args: &[&[u8]]) -> String {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command from words.
pub fn cmd(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// The length of the first complete reply in `raw` (any RESP2/RESP3 type).
fn reply_len(raw: &[u8]) -> usize {
    let line_end = raw
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a reply line")
        + 2;
    let number = || -> i64 {
        std::str::from_utf8(&raw[1..line_end - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1)
    };
    match raw[0] {
        b'$' | b'=' | b'!' | b'?' if number() >= 0 => line_end + number() as usize + 2,
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = number().max(0) as usize;
            let n = match raw[0] {
                b'%' => 2 * n,
                b'|' => 2 * n + 1,
                _ => n,
            };
            let mut at = line_end;
            for _ in 0..n {
                at += reply_len(&raw[at..]);
            }
            at
        }
        _ => line_end,
    }
}

/// The raw top-level elements of an aggregate reply (empty for others).
pub fn elements(raw: &[u8]) -> Vec<Vec<u8>> {
    if !matches!(raw.first(), Some(b'*' | b'~' | b'>' | b'%')) {
        return Vec::new();
    }
    let mut at = raw.windows(2).position(|w| w == b"\r\n").expect("a line") + 2;
    let mut out = Vec::new();
    while at < raw.len() {
        let len = reply_len(&raw[at..]);
        out.push(raw[at..at + len].to_vec());
        at += len;
    }
    out
}

/// The payload of a bulk string reply.
pub fn bulk_value(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.first() != Some(&b'$') {
        return None;
    }
    let line_end = raw.windows(2).position(|w| w == b"\r\n")? + 2;
    raw.get(line_end..raw.len() - 2).map(<[u8]>::to_vec)
}

/// A reply with its top-level elements sorted, single ones or (`pairs`:
/// a map, or a flat field/value array) two by two: the form to compare
/// replies whose order Redis does not specify (`SMEMBERS`, `HGETALL`...).
pub fn canonical(raw: &[u8], pairs: bool) -> Vec<u8> {
    let items = elements(raw);
    if items.is_empty() {
        return raw.to_vec();
    }
    let header_len = raw.windows(2).position(|w| w == b"\r\n").expect("a line") + 2;
    let mut groups: Vec<Vec<u8>> = items
        .chunks(if pairs { 2 } else { 1 })
        .map(|group| group.concat())
        .collect();
    groups.sort();
    let mut out = raw[..header_len].to_vec();
    out.extend(groups.concat());
    out
}

/// A reply's shape: its types and lengths, with bulk payloads left out
/// (the form to compare replies that are random by design).
pub fn shape(raw: &[u8]) -> String {
    let line_end = raw.windows(2).position(|w| w == b"\r\n").expect("a line");
    let line = String::from_utf8_lossy(&raw[..line_end]).into_owned();
    match raw[0] {
        b'$' | b'=' | b'!' | b'?' if line != "$-1" => "$".to_string(),
        b'*' | b'~' | b'>' | b'%' => {
            let inner: Vec<String> = elements(raw).iter().map(|e| shape(e)).collect();
            format!("{line}[{}]", inner.join(","))
        }
        _ => line,
    }
}

impl Pair {
    /// [`Pair::check`] for a reply whose order Redis does not specify: the
    /// replies must be equal once put in [`canonical`] form.
    pub fn check_unordered(&mut self, args: &[&[u8]], pairs: bool, context: &str) -> Vec<u8> {
        let (expected, got) = self.both(args);
        let (expected, got) = (canonical(&expected, pairs), canonical(&got, pairs));
        assert!(
            expected == got,
            "reply differs from redis-server (order aside) for {}\n  redis: {:?}\n  ours:  {:?}\n{context}",
            show(args),
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&got),
        );
        got
    }

    /// [`Pair::check`] for a reply that is random by design: the replies
    /// must have the same [`shape`].
    pub fn check_shape(&mut self, args: &[&[u8]], context: &str) -> (Vec<u8>, Vec<u8>) {
        let (expected, got) = self.both(args);
        assert!(
            shape(&expected) == shape(&got),
            "reply shape differs from redis-server for {}\n  redis: {:?}\n  ours:  {:?}\n{context}",
            show(args),
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&got),
        );
        (expected, got)
    }
}

/// One more client on both servers.
pub struct Client {
    /// The connection to `redis-server`.
    pub redis: RespConn,
    /// The connection to our server.
    pub ours: RespConn,
}

impl Client {
    /// Connects to both and says `HELLO protocol`.
    pub fn connect(pair: &Pair, protocol: &str) -> Client {
        let mut client = Client {
            redis: RespConn::connect(pair.redis_addr()),
            ours: RespConn::connect(pair.ours_addr()),
        };
        client.send(&["HELLO", protocol]);
        client.redis.read_reply();
        client.ours.read_reply();
        client
    }

    /// Sends a command to both without reading (it may block).
    pub fn send(&mut self, words: &[&str]) {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.redis.send(&args);
        self.ours.send(&args);
    }

    /// Reads one reply from both and compares them.
    pub fn expect_same(&mut self, context: &str) {
        let (expected, got) = (self.redis.read_reply(), self.ours.read_reply());
        assert!(
            expected == got,
            "reply differs from redis-server ({context})\n  redis: {:?}\n  ours:  {:?}",
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&got),
        );
    }
}

/// Waits until both servers have `n` blocked clients.
pub fn wait_blocked(pair: &mut Pair, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for conn in [&mut pair.redis, &mut pair.ours] {
        while !String::from_utf8_lossy(&conn.call(&[b"INFO", b"clients"])).contains(&want) {
            assert!(std::time::Instant::now() < deadline, "never {n} blocked");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
