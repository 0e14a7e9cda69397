//! The relay (`gateway::relay`) against the full hyper path on the same
//! requests: two gateways, one with `relay = true` and one with `relay =
//! false`, in front of one raw upstream that answers in every framing
//! (length, chunked with trailers, until close, 204, a 103 first, split
//! writes) and records the request heads it receives. Both gateways must
//! give the client the same statuses, end-to-end headers and bodies, and
//! the upstream the same headers; header-name case tells which path ran
//! (the relay forwards names as the client wrote them, hyper lowercases).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{TestGateway, WAIT, raw};

/// Request heads the raw upstream received, in order.
type Heads = Arc<Mutex<Vec<String>>>;

/// Starts the raw upstream; returns its address and what it saw.
async fn raw_upstream() -> (SocketAddr, Heads) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads: Heads = Arc::default();
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_connection(stream, seen.clone()));
        }
    });
    (addr, heads)
}

/// Answers requests on one connection by path; see the module doc.
async fn answer_connection(mut stream: TcpStream, heads: Heads) {
    let mut buffer = Vec::new();
    loop {
        let end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end);
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while buffer.len() < length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..length);
        let is_head = head.starts_with("HEAD ");
        heads.lock().unwrap().push(head.clone());
        let target = head.split(' ').nth(1).unwrap_or("/").to_string();
        let path = target.split('?').next().unwrap_or("/").to_string();
        let body = format!("you asked for {target}\n");
        let plain = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Up: raw\r\n\r\n{}",
            body.len(),
            if is_head { "" } else { &body }
        );
        let reply = match path.as_str() {
            "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: raw\r\n\r\n\
                 5;ext=1\r\nhello\r\n7\r\n, world\r\n1\r\n\n\r\n0\r\nX-Sum: 13\r\n\r\n"
                .to_string(),
            "/until-close" => {
                let reply = format!("HTTP/1.1 200 OK\r\nX-Up: raw\r\n\r\n{body}");
                let _ = stream.write_all(reply.as_bytes()).await;
                return;
            }
            "/no-content" => "HTTP/1.1 204 No Content\r\nX-Up: raw\r\n\r\n".to_string(),
            "/early" => format!("HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n{plain}"),
            "/hop" => format!(
                "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\n\
                 Keep-Alive: timeout=5\r\nContent-Length: {}\r\nX-Up: raw\r\n\r\n{body}",
                body.len()
            ),
            "/split" => {
                for piece in plain.as_bytes().chunks(7) {
                    let _ = stream.write_all(piece).await;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                continue;
            }
            "/one-shot" => {
                // Keep-alive by the book, then closed: the next request a
                // proxy sends on this socket finds it dead.
                let _ = stream.write_all(plain.as_bytes()).await;
                return;
            }
            "/garbage" => {
                let _ = stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
                return;
            }
            _ => plain,
        };
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A gateway in front of `upstream` with the relay on or off.
async fn gateway(upstream: SocketAddr, relay: bool) -> TestGateway {
    gateway_with(upstream, |config| config.relay = relay).await
}

/// A gateway in front of `upstream`, its config changed by `adjust`.
async fn gateway_with(
    upstream: SocketAddr,
    adjust: impl FnOnce(&mut gateway::Config),
) -> TestGateway {
    let mut config = gateway::Config {
        access_log: false,
        ..Default::default()
    };
    let mut pool = gateway::config::Pool {
        upstreams: vec![upstream.to_string()],
        ..Default::default()
    };
    pool.health.enabled = false;
    config.pools.insert("web".into(), pool);
    config.routes.push(gateway::config::Route {
        prefix: "/".into(),
        pool: "web".into(),
        ..Default::default()
    });
    adjust(&mut config);
    TestGateway::start(config).await
}

/// One response of a transcript, framing removed: status, end-to-end
/// headers (lowercase names, sorted, no `date`), decoded body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Splits a transcript of responses to requests whose methods are
/// `methods`, in order.
fn answers(mut bytes: &[u8], methods: &[&str]) -> Vec<Answer> {
    let mut out = Vec::new();
    for method in methods {
        let mut storage = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut storage);
        let Ok(httparse::Status::Complete(head)) = response.parse(bytes) else {
            panic!(
                "no complete response in {:?}",
                String::from_utf8_lossy(bytes)
            );
        };
        let status = response.code.unwrap();
        let mut headers = Vec::new();
        let (mut length, mut chunked) = (None, false);
        for header in response.headers.iter() {
            let name = header.name.to_ascii_lowercase();
            let value = String::from_utf8_lossy(header.value).into_owned();
            match name.as_str() {
                "content-length" => length = Some(value.parse::<usize>().unwrap()),
                "transfer-encoding" => chunked = true,
                "date" | "connection" => {}
                _ => headers.push((name, value)),
            }
        }
        headers.sort();
        bytes = &bytes[head..];
        let mut body = Vec::new();
        if *method == "HEAD" || status == 204 || status == 304 {
        } else if chunked {
            loop {
                let line_end = find(bytes, b"\r\n").unwrap();
                let line = std::str::from_utf8(&bytes[..line_end]).unwrap();
                let size = usize::from_str_radix(line.split(';').next().unwrap(), 16).unwrap();
                bytes = &bytes[line_end + 2..];
                if size == 0 {
                    // Trailers (not compared: hyper drops them), then CRLF.
                    let end = find(bytes, b"\r\n\r\n")
                        .map(|e| e + 4)
                        .filter(|_| !bytes.starts_with(b"\r\n"))
                        .unwrap_or(2);
                    bytes = &bytes[end..];
                    break;
                }
                body.extend_from_slice(&bytes[..size]);
                bytes = &bytes[size + 2..];
            }
        } else if let Some(length) = length {
            body.extend_from_slice(&bytes[..length]);
            bytes = &bytes[length..];
        } else {
            body.extend_from_slice(bytes);
            bytes = &[];
        }
        out.push(Answer {
            status,
            headers,
            body,
        });
    }
    assert!(
        bytes.is_empty(),
        "left over: {:?}",
        String::from_utf8_lossy(bytes)
    );
    out
}

/// Request heads as a proxy-independent list: lowercase names, sorted.
fn normalized(head: &str) -> (String, Vec<(String, String)>) {
    let mut lines = head.split("\r\n").filter(|line| !line.is_empty());
    let request_line = lines.next().unwrap().to_string();
    let mut headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    headers.sort();
    (request_line, headers)
}

/// Pipelined requests in one write, the last closing; returns the
/// transcript and the heads the upstream received for them.
async fn run(gateway: &TestGateway, heads: &Heads, requests: &[(&str, &str)]) -> Vec<u8> {
    heads.lock().unwrap().clear();
    let mut bytes = Vec::new();
    for (index, (method, target)) in requests.iter().enumerate() {
        let last = index + 1 == requests.len();
        let connection = if last { "close" } else { "keep-alive" };
        bytes.extend_from_slice(
            format!(
                "{method} {target} HTTP/1.1\r\nHost: app.example\r\nX-Custom-Case: Kept\r\n\
                 X-Forwarded-For: 203.0.113.9\r\nConnection: {connection}\r\n\r\n"
            )
            .as_bytes(),
        );
    }
    raw(gateway.addr, &bytes).await.into_bytes()
}

#[tokio::test]
async fn the_relay_answers_as_hyper_does_in_every_framing() {
    let (upstream, heads) = raw_upstream().await;
    let relay = gateway(upstream, true).await;
    let hyper = gateway(upstream, false).await;
    let requests = [
        ("GET", "/plain?x=1&y=%2F"),
        ("HEAD", "/plain"),
        ("GET", "/chunked"),
        ("GET", "/no-content"),
        ("GET", "/early"),
        ("GET", "/hop"),
        ("GET", "/split"),
        ("GET", "/until-close"),
    ];
    let methods: Vec<&str> = requests.iter().map(|(m, _)| *m).collect();
    let through_relay = run(&relay, &heads, &requests).await;
    let relay_heads = heads.lock().unwrap().clone();
    let through_hyper = run(&hyper, &heads, &requests).await;
    let hyper_heads = heads.lock().unwrap().clone();

    let relayed = answers(&through_relay, &methods);
    assert_eq!(relayed, answers(&through_hyper, &methods));
    assert_eq!(relayed[0].body, b"you asked for /plain?x=1&y=%2F\n");
    assert_eq!(relayed[2].body, b"hello, world\n");
    assert_eq!(relayed[7].body, b"you asked for /until-close\n");
    for answer in &relayed {
        assert!(
            answer
                .headers
                .contains(&("via".into(), "1.1 hyperscale".into()))
        );
        assert!(
            !answer
                .headers
                .iter()
                .any(|(n, _)| n == "x-secret" || n == "keep-alive")
        );
    }
    // The client's headers arrive the same way, forwarding headers included.
    assert_eq!(relay_heads.len(), requests.len());
    let relay_norm: Vec<_> = relay_heads.iter().map(|h| normalized(h)).collect();
    let hyper_norm: Vec<_> = hyper_heads.iter().map(|h| normalized(h)).collect();
    assert_eq!(relay_norm, hyper_norm);
    let forwarded = &relay_norm[0].1;
    assert!(forwarded.contains(&("x-forwarded-for".into(), "203.0.113.9, 127.0.0.1".into())));
    assert!(forwarded.contains(&("x-forwarded-host".into(), "app.example".into())));
    assert!(!forwarded.iter().any(|(n, _)| n == "connection"));
    // The relay really served them: it keeps the client's header case.
    assert!(
        relay_heads[0].contains("X-Custom-Case: Kept"),
        "{}",
        relay_heads[0]
    );
    assert!(
        hyper_heads[0].contains("x-custom-case: Kept"),
        "{}",
        hyper_heads[0]
    );
}

#[tokio::test]
async fn requests_the_relay_does_not_take_go_to_hyper_on_the_same_connection() {
    let (upstream, heads) = raw_upstream().await;
    let relay = gateway(upstream, true).await;
    // A GET (relayed), a POST with a body, a non-canonical path, then a GET
    // again: once handed to hyper, the connection stays there.
    let request = b"GET /a HTTP/1.1\r\nHost: h\r\nX-Case: 1\r\n\r\n\
        POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
        GET /c/./d HTTP/1.1\r\nHost: h\r\n\r\n\
        GET /e HTTP/1.1\r\nHost: h\r\nX-Case: 1\r\nConnection: close\r\n\r\n";
    let transcript = raw(relay.addr, request).await;
    let answered = answers(transcript.as_bytes(), &["GET", "POST", "GET", "GET"]);
    let bodies: Vec<_> = answered
        .iter()
        .map(|a| String::from_utf8_lossy(&a.body).into_owned())
        .collect();
    assert_eq!(
        bodies,
        [
            "you asked for /a\n",
            "you asked for /b\n",
            "you asked for /c/d\n",
            "you asked for /e\n"
        ]
    );
    let seen = heads.lock().unwrap().clone();
    assert!(seen[0].contains("X-Case: 1"), "relayed: {}", seen[0]);
    assert!(seen[3].contains("x-case: 1"), "hyper: {}", seen[3]);
}

#[tokio::test]
async fn a_pooled_socket_closed_by_the_upstream_is_not_a_failure() {
    let (upstream, _heads) = raw_upstream().await;
    let relay = gateway(upstream, true).await;
    let client = crate::support::client();
    // Each answer closes the upstream socket the relay pools: every next
    // request finds a dead socket first and must go out on a new one.
    for round in 0..20 {
        let response = client
            .get(relay.url(&format!("/one-shot?round={round}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "round {round}");
        // Odd rounds race the upstream's FIN (found after the write), even
        // rounds let it land first (found at checkout).
        if round % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let metrics = relay.metrics().await;
    let failures = metrics
        .lines()
        .find(|line| line.starts_with("hyperscale_gateway_upstream_failures_total{"))
        .unwrap();
    assert!(failures.ends_with(" 0"), "no failure counted: {failures}");
    assert!(metrics.contains("hyperscale_gateway_requests_total{route=\"/\",status=\"200\"} 20"));
}

#[tokio::test]
async fn an_invalid_upstream_answer_is_a_502_and_a_dead_upstream_a_503() {
    let (upstream, _heads) = raw_upstream().await;
    let relay = gateway(upstream, true).await;
    let answer = raw(
        relay.addr,
        b"GET /garbage HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    assert!(answer.contains("invalid response"), "{answer}");
    // A port nobody listens on: connect errors eject it, then 503s.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let gone = gateway(dead_addr, true).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let answer = raw(
            gone.addr,
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        )
        .await;
        statuses.push(crate::support::status_of(&answer));
    }
    assert_eq!(statuses[0], 502);
    assert_eq!(*statuses.last().unwrap(), 503, "{statuses:?}");
}

#[tokio::test]
async fn an_idle_relayed_connection_is_closed_after_the_header_timeout() {
    let (upstream, _heads) = raw_upstream().await;
    let relay = gateway_with(upstream, |config| config.timeouts.header_read_ms = 300).await;
    let mut stream = TcpStream::connect(relay.addr).await.unwrap();
    // Half a head, then silence (slowloris).
    stream.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection was never closed");
}
