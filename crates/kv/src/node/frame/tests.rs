use tokio::io::{AsyncWriteExt, duplex};

use super::*;

fn secret(s: &str) -> Secret {
    Secret::new(s.as_bytes()).unwrap()
}

async fn pair(
    a: &str,
    b: &str,
) -> (
    Result<(Sealer, Opener), FrameError>,
    Result<(Sealer, Opener), FrameError>,
    tokio::io::DuplexStream,
    tokio::io::DuplexStream,
) {
    let nonces = Nonces::from_os().unwrap();
    let (mut x, mut y) = duplex(1 << 16);
    let (sa, sb) = (secret(a), secret(b));
    let (d, acc) = tokio::join!(
        dial(&mut x, &sa, &nonces, 1_000, 1 << 20),
        accept(&mut y, &sb, &nonces, 1_000, 1 << 20)
    );
    (d, acc, x, y)
}

#[tokio::test]
async fn peers_with_the_secret_exchange_frames() {
    let (d, a, mut x, mut y) = pair("0123456789abcdef!", "0123456789abcdef!").await;
    let (mut seal, _) = d.unwrap();
    let (_, mut open) = a.unwrap();
    let mut out = Vec::new();
    seal.seal(b"hello", &mut out);
    seal.seal(b"", &mut out);
    x.write_all(&out).await.unwrap();
    drop(x);
    assert_eq!(open.read(&mut y).await.unwrap(), Some(b"hello".to_vec()));
    assert_eq!(open.read(&mut y).await.unwrap(), Some(Vec::new()));
    assert_eq!(open.read(&mut y).await.unwrap(), None);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_on_both_sides() {
    let (d, a, _x, _y) = pair("0123456789abcdef!", "0123456789abcdef?").await;
    assert!(matches!(d, Err(FrameError::Auth(_))), "{:?}", d.err());
    // The acceptor never gets a valid proof (the dialer stopped).
    assert!(a.is_err());
}

#[tokio::test]
async fn altered_replayed_or_oversized_frames_are_refused() {
    let (d, a, mut x, mut y) = pair("0123456789abcdef!", "0123456789abcdef!").await;
    let (mut seal, _) = d.unwrap();
    let (_, mut open) = a.unwrap();
    let mut first = Vec::new();
    seal.seal(b"put k v", &mut first);
    // A bit flipped in the payload.
    let mut bad = first.clone();
    bad[5] ^= 1;
    x.write_all(&bad).await.unwrap();
    assert!(matches!(open.read(&mut y).await, Err(FrameError::Auth(_))));
    // The genuine frame sent twice: the second has the wrong sequence number.
    let (d, a, mut x, mut y) = pair("0123456789abcdef!", "0123456789abcdef!").await;
    let (mut seal, _) = d.unwrap();
    let (_, mut open) = a.unwrap();
    let mut frame = Vec::new();
    seal.seal(b"put k v", &mut frame);
    x.write_all(&frame).await.unwrap();
    x.write_all(&frame).await.unwrap();
    assert!(open.read(&mut y).await.unwrap().is_some());
    assert!(matches!(open.read(&mut y).await, Err(FrameError::Auth(_))));
    // A length above the limit, refused before allocating.
    let (_, a, mut x, mut y) = pair("0123456789abcdef!", "0123456789abcdef!").await;
    let (_, mut open) = a.unwrap();
    x.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(matches!(
        open.read(&mut y).await,
        Err(FrameError::TooLarge(_))
    ));
}

#[tokio::test]
async fn a_stranger_or_another_version_is_refused() {
    let nonces = Nonces::from_os().unwrap();
    let s = secret("0123456789abcdef!");
    let (mut x, mut y) = duplex(1 << 16);
    x.write_all(b"*1\r\n$4\r\nPING\r\n...........")
        .await
        .unwrap();
    assert!(matches!(
        accept(&mut y, &s, &nonces, 1_000, 1024).await,
        Err(FrameError::Version(0))
    ));
    let (mut x, mut y) = duplex(1 << 16);
    let mut hello = b"HSKV".to_vec();
    hello.push(VERSION + 1);
    hello.extend_from_slice(&[0; 16]);
    x.write_all(&hello).await.unwrap();
    assert!(matches!(
        accept(&mut y, &s, &nonces, 1_000, 1024).await,
        Err(FrameError::Version(v)) if v == VERSION + 1
    ));
    // Silence is a timeout, not a hang.
    let (_x, mut y) = duplex(1 << 16);
    assert!(matches!(
        accept(&mut y, &s, &nonces, 50, 1024).await,
        Err(FrameError::Timeout(50))
    ));
    assert!(Secret::new(b"short\n").is_err());
}
