//! Strict request heads through the real gateway, over raw sockets: `Host`
//! rules (RFC 9112 §3.2), absolute-form targets, transfer codings.

use crate::support;

use gateway::config::Balance;
use support::{TestGateway, TestUpstream, config, header_of, raw, status_of};

async fn setup() -> (TestUpstream, TestGateway) {
    let a = TestUpstream::start("a").await;
    let gateway = TestGateway::start(config(&[&a], Balance::RoundRobin)).await;
    (a, gateway)
}

#[tokio::test]
async fn two_host_headers_get_400_and_never_reach_the_upstream() {
    let (a, gateway) = setup().await;
    let answer = raw(
        gateway.addr,
        b"GET /x HTTP/1.1\r\nhost: a.example\r\nhost: b.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("more than one Host"), "{answer}");
    assert_eq!(a.hits("/x"), 0);
}

#[tokio::test]
async fn http_11_without_host_gets_400_but_http_10_is_served() {
    let (a, gateway) = setup().await;
    let answer = raw(
        gateway.addr,
        b"GET /x HTTP/1.1\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("needs a Host"), "{answer}");
    assert_eq!(a.hits("/x"), 0);

    let answer = raw(gateway.addr, b"GET /x HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(a.hits("/x"), 1);
}

#[tokio::test]
async fn an_absolute_form_target_host_wins_over_the_host_header() {
    let (a, gateway) = setup().await;
    let answer = raw(
        gateway.addr,
        b"GET http://target.example:8080/x HTTP/1.1\r\nhost: header.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(
        header_of(&answer, "x-seen-host"),
        Some("target.example:8080")
    );
    assert_eq!(header_of(&answer, "x-seen-host-count"), Some("1"));
    assert_eq!(header_of(&answer, "x-seen-path"), Some("/x"));
    assert_eq!(a.hits("/x"), 1);
}

#[tokio::test]
async fn identity_chunked_gets_501_like_nginx() {
    let (a, gateway) = setup().await;
    let answer = raw(
        gateway.addr,
        b"POST /x HTTP/1.1\r\nhost: t\r\ntransfer-encoding: identity, chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 501, "{answer}");
    assert!(answer.contains("identity, chunked"), "{answer}");
    assert_eq!(a.hits("/x"), 0);

    // A plain chunked body still goes through.
    let answer = raw(
        gateway.addr,
        b"POST /x HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(header_of(&answer, "x-seen-body-bytes"), Some("5"));
}
