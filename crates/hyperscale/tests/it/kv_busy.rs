//! `hyperscale kv serve --threads 1` with an endless Lua script: other
//! clients still connect and get `BUSY`, `SCRIPT KILL` reaches the script,
//! and the server serves again. With one thread this needs the script's
//! worker to be handed over (kv's `command::scripting::offload`); the
//! current-thread scheduler the server used to pick for one thread froze
//! every client instead.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::serve;

/// A RESP client on a blocking socket with a read timeout.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.reader.get_mut().write_all(out.as_bytes()).unwrap();
    }

    /// The next reply line (a simple reply, an error or an integer).
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    fn call(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.line()
    }
}

#[test]
fn one_thread_answers_busy_and_script_kill_during_an_endless_script() {
    let args = [
        "kv",
        "serve",
        "--engine",
        "memory",
        "--threads",
        "1",
        "--bind",
        "127.0.0.1:0",
    ];
    let (_guard, _lines, banner) = serve(args, Duration::from_secs(30));
    let addr = banner
        .split_whitespace()
        .find(|word| word.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_string();

    let mut admin = Client::connect(&addr);
    assert_eq!(
        admin.call(&["CONFIG", "SET", "busy-reply-threshold", "100"]),
        "+OK"
    );
    let mut runner = Client::connect(&addr);
    runner.send(&["EVAL", "while true do end", "0"]);
    std::thread::sleep(Duration::from_millis(300));

    // A connection made while the script runs is accepted and answered.
    let mut other = Client::connect(&addr);
    assert!(
        other.call(&["GET", "k"]).starts_with("-BUSY "),
        "a command during the script must get BUSY"
    );
    assert_eq!(other.call(&["SCRIPT", "KILL"]), "+OK");
    let killed = runner.line();
    assert!(
        killed.starts_with("-ERR Script killed by user with SCRIPT KILL"),
        "{killed}"
    );
    assert_eq!(other.call(&["SET", "k", "v"]), "+OK");
    assert_eq!(runner.call(&["PING"]), "+PONG");
}
