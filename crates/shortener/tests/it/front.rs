//! The redirect front (`shortener::front`) against the hyper path on one
//! connection: pipelined requests, the front answering the first ones, an
//! unknown code handing the connection to hyper (the 404 page), and the
//! same redirect through hyper afterwards, byte for byte the same answer
//! (but the date).

use std::time::Duration;

use serde_json::json;
use support::{Server, config, shorten};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support;

/// The answers of a transcript, each without its `date` line.
fn split_answers(transcript: &str) -> Vec<String> {
    let mut answers = Vec::new();
    let mut rest = transcript;
    while !rest.is_empty() {
        let (head, after) = rest.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .map_or(0, |n| n.parse().unwrap());
        let is_head = answers.len() == 1;
        let body_length = if is_head { 0 } else { length };
        let head: Vec<&str> = head.lines().filter(|l| !l.starts_with("date: ")).collect();
        answers.push(format!(
            "{}\r\n\r\n{}",
            head.join("\r\n"),
            &after[..body_length]
        ));
        rest = &after[body_length..];
    }
    answers
}

#[tokio::test]
async fn redirects_are_answered_before_hyper_and_the_rest_goes_to_hyper() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir)).await;
    let (_, made) = shorten(
        &server.base,
        json!({"longUrl": "https://example.com/a?b=c"}),
    )
    .await;
    let code = made["code"].as_str().unwrap().to_string();
    let addr = server.base.strip_prefix("http://").unwrap().to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let requests = format!(
        "GET /{code} HTTP/1.1\r\nHost: s\r\n\r\n\
         HEAD /{code} HTTP/1.1\r\nHost: s\r\n\r\n\
         GET /nope123 HTTP/1.1\r\nHost: s\r\n\r\n\
         GET /{code} HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut transcript = String::new();
    let read = stream.read_to_string(&mut transcript);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the connection was never closed")
        .unwrap();
    let answers = split_answers(&transcript);
    assert_eq!(answers.len(), 4, "{transcript}");
    let statuses: Vec<&str> = answers.iter().map(|a| &a[9..12]).collect();
    assert_eq!(statuses, ["302", "302", "404", "302"], "{transcript}");
    assert!(
        answers[0].contains("location: https://example.com/a?b=c\r\n"),
        "{}",
        answers[0]
    );
    assert!(answers[0].contains("cache-control: private, max-age=0\r\n"));
    assert!(
        answers[2].contains("nope123"),
        "the 404 page: {}",
        answers[2]
    );
    // The front's answer (first) and hyper's (last, after the hand-off)
    // are the same bytes, but for the date and hyper's `connection: close`.
    assert_eq!(answers[0], answers[3].replace("connection: close\r\n", ""));
    assert!(transcript.matches("date: ").count() == 4, "{transcript}");
    server.stop().await;
}
