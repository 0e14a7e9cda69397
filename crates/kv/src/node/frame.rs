//! Authenticated frames between nodes: a shared-secret handshake, then
//! length-prefixed frames each carrying an HMAC tag.
//!
//! Why it exists: a node applies whatever a peer sends (states, hints,
//! repairs), so a stranger who can reach `--cluster-bind` must not be able
//! to send anything, and a frame altered on the way must be refused rather
//! than joined into a replica. The cluster secret (`--cluster-secret-file`)
//! is never sent; both sides prove they hold it.
//!
//! # Handshake (both sides prove the secret; nothing is applied before)
//!
//! ```text
//!  dialer   ── "HSKV" version nonce_d(16) ─────────────────────▶ acceptor
//!  dialer   ◀─ "HSKV" version nonce_a(16) HMAC(s, "acceptor"|nd|na) ─
//!  dialer   ── HMAC(s, "dialer"|nd|na) ─────────────────────────▶ acceptor
//! ```
//!
//! A wrong version or magic, or a proof that does not verify, closes the
//! connection (logged by the caller). Each direction then gets its own key,
//! `HMAC(s, "d2a"|nd|na)` and `HMAC(s, "a2d"|nd|na)`, so a frame cannot be
//! reflected back to its sender, and fresh nonces make every session's
//! keys new, so frames of an old session cannot be replayed into this one.
//!
//! # Frames
//!
//! `len: u32 big-endian | payload (len bytes) | tag (16 bytes)`, with
//! `tag = HMAC-SHA256(direction key, sequence number | payload)` truncated
//! to 128 bits. The sequence number counts frames per direction and is not
//! sent: a dropped, repeated or reordered frame fails its tag. The tag is
//! also the checksum (a flipped bit anywhere fails it). `len` is checked
//! against the frame limit before anything is allocated.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

type HmacSha256 = Hmac<Sha256>;

/// The first bytes of every handshake.
const MAGIC: &[u8; 4] = b"HSKV";
/// The internode protocol version; a peer speaking another is refused.
pub const VERSION: u8 = 1;
/// Bytes of a nonce.
const NONCE_BYTES: usize = 16;
/// Bytes of a frame's tag.
const TAG_BYTES: usize = 16;
/// The shortest secret accepted.
pub const SECRET_BYTES_MIN: usize = 16;

/// Why a connection was refused or closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// The peer does not speak this protocol (magic or version).
    #[error("not a cluster peer, or protocol version {0} (this node speaks {VERSION})")]
    Version(u8),
    /// The peer does not hold the cluster secret, or a frame was altered.
    #[error("authentication failed: {0}")]
    Auth(&'static str),
    /// A frame above the limit.
    #[error("frame of {0} bytes is above the limit")]
    TooLarge(usize),
    /// The peer took longer than the timeout.
    #[error("timed out after {0} ms")]
    Timeout(u64),
}

/// The shared cluster secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from the bytes of `--cluster-secret-file` (surrounding
    /// whitespace dropped); at least [`SECRET_BYTES_MIN`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Secret, String> {
        let text = bytes.trim_ascii();
        if text.len() < SECRET_BYTES_MIN {
            return Err(format!(
                "the cluster secret has {} bytes; use at least {SECRET_BYTES_MIN} (e.g. `head -c 32 /dev/urandom | base64`)",
                text.len()
            ));
        }
        Ok(Secret(text.to_vec()))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac(&self.0, parts)
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Compares in time independent of where the bytes differ.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fresh nonces: HMAC of a process key read once from the OS and a counter
/// (unpredictable to a peer, never repeated in a process).
#[derive(Debug)]
pub struct Nonces {
    key: [u8; 32],
    counter: std::sync::atomic::AtomicU64,
}

impl Nonces {
    /// Reads the process key from `/dev/urandom` (blocking, once at start).
    pub fn from_os() -> std::io::Result<Nonces> {
        let mut key = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)?;
        Ok(Nonces {
            key,
            counter: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The next nonce.
    pub fn next(&self) -> [u8; NONCE_BYTES] {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let full = mac(&self.key, &[&n.to_be_bytes()]);
        let mut out = [0u8; NONCE_BYTES];
        out.copy_from_slice(&full[..NONCE_BYTES]);
        out
    }

    /// 64 random bits (a fresh actor id's low half).
    pub fn random_u64(&self) -> u64 {
        let n = self.next();
        u64::from_be_bytes(n[..8].try_into().expect("16 bytes"))
    }
}

/// One direction of an authenticated session.
pub struct Sealer {
    key: [u8; 32],
    seq: u64,
}

impl Sealer {
    /// Appends `payload` as one frame to `out`.
    pub fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let len = u32::try_from(payload.len()).expect("payloads are below the frame limit");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        let tag = mac(&self.key, &[&self.seq.to_be_bytes(), payload]);
        out.extend_from_slice(&tag[..TAG_BYTES]);
        self.seq += 1;
    }
}

/// The receiving direction of an authenticated session.
pub struct Opener {
    key: [u8; 32],
    seq: u64,
    frame_bytes_max: usize,
}

impl Opener {
    /// Reads one frame and checks its tag; `Ok(None)` at a clean end of
    /// stream between frames.
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<Vec<u8>>, FrameError> {
        let mut len = [0u8; 4];
        match reader.read_exact(&mut len).await {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > self.frame_bytes_max {
            return Err(FrameError::TooLarge(len));
        }
        let mut body = vec![0u8; len + TAG_BYTES];
        reader.read_exact(&mut body).await?;
        let (payload, tag) = body.split_at(len);
        let expected = mac(&self.key, &[&self.seq.to_be_bytes(), payload]);
        if !equal(tag, &expected[..TAG_BYTES]) {
            return Err(FrameError::Auth("a frame's tag does not verify"));
        }
        self.seq += 1;
        body.truncate(len);
        Ok(Some(body))
    }
}

fn keys(secret: &Secret, nd: &[u8], na: &[u8]) -> ([u8; 32], [u8; 32]) {
    (
        secret.mac(&[b"hskv d2a", nd, na]),
        secret.mac(&[b"hskv a2d", nd, na]),
    )
}

async fn within<T>(
    timeout_ms: u64,
    work: impl Future<Output = Result<T, FrameError>>,
) -> Result<T, FrameError> {
    tokio::time::timeout(Duration::from_millis(timeout_ms), work)
        .await
        .map_err(|_| FrameError::Timeout(timeout_ms))?
}

async fn read_hello<R: AsyncRead + Unpin>(reader: &mut R) -> Result<[u8; NONCE_BYTES], FrameError> {
    let mut head = [0u8; 5];
    reader.read_exact(&mut head).await?;
    if &head[..4] != MAGIC {
        return Err(FrameError::Version(0));
    }
    if head[4] != VERSION {
        return Err(FrameError::Version(head[4]));
    }
    let mut nonce = [0u8; NONCE_BYTES];
    reader.read_exact(&mut nonce).await?;
    Ok(nonce)
}

/// The dialing side's handshake (see the module docs).
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &Secret,
    nonces: &Nonces,
    timeout_ms: u64,
    frame_bytes_max: usize,
) -> Result<(Sealer, Opener), FrameError> {
    within(timeout_ms, async {
        let nd = nonces.next();
        let mut hello = MAGIC.to_vec();
        hello.push(VERSION);
        hello.extend_from_slice(&nd);
        stream.write_all(&hello).await?;
        let na = read_hello(stream).await?;
        let mut proof = [0u8; 32];
        stream.read_exact(&mut proof).await?;
        if !equal(&proof, &secret.mac(&[b"hskv acceptor", &nd, &na])) {
            return Err(FrameError::Auth(
                "the peer does not hold the cluster secret",
            ));
        }
        stream
            .write_all(&secret.mac(&[b"hskv dialer", &nd, &na]))
            .await?;
        let (d2a, a2d) = keys(secret, &nd, &na);
        Ok((
            Sealer { key: d2a, seq: 0 },
            Opener {
                key: a2d,
                seq: 0,
                frame_bytes_max,
            },
        ))
    })
    .await
}

/// The accepting side's handshake (see the module docs).
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &Secret,
    nonces: &Nonces,
    timeout_ms: u64,
    frame_bytes_max: usize,
) -> Result<(Sealer, Opener), FrameError> {
    within(timeout_ms, async {
        let nd = read_hello(stream).await?;
        let na = nonces.next();
        let mut reply = MAGIC.to_vec();
        reply.push(VERSION);
        reply.extend_from_slice(&na);
        reply.extend_from_slice(&secret.mac(&[b"hskv acceptor", &nd, &na]));
        stream.write_all(&reply).await?;
        let mut proof = [0u8; 32];
        stream.read_exact(&mut proof).await?;
        if !equal(&proof, &secret.mac(&[b"hskv dialer", &nd, &na])) {
            return Err(FrameError::Auth(
                "the peer does not hold the cluster secret",
            ));
        }
        let (d2a, a2d) = keys(secret, &nd, &na);
        Ok((
            Sealer { key: a2d, seq: 0 },
            Opener {
                key: d2a,
                seq: 0,
                frame_bytes_max,
            },
        ))
    })
    .await
}

#[cfg(test)]
mod tests;
