//! Sessions in a shared store: what makes a web tier stateless.
//!
//! Chapter 1 moves session data out of the web servers ("상태 정보를 웹
//! 계층에서 제거") into a shared store, so that any server behind the load
//! balancer serves any user and servers can come and go. [`SessionStore`]
//! keeps each session under `session:{id}` in a [`KvClient`] (our kv, Redis,
//! a replicated pair) with a TTL that slides on every use.
//!
//! The cookie carries only the id, signed: `{id}.{tag}` where `id` is 32 hex
//! characters from a keyed PRF (HMAC-SHA256 of a counter under a key read
//! from `/dev/urandom` once, so ids are unpredictable without a per-request
//! syscall) and `tag` is HMAC-SHA256 of the id under the shared `secret`
//! (every server of the tier has the same). A forged or altered cookie is
//! rejected before the store is asked. The cookie is `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, has `Max-Age`, and `Secure` unless the tier is
//! configured for plain HTTP (local runs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use kvclient::KvClient;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a session id (hex-encoded in the cookie: twice as many chars).
const ID_BYTES: usize = 16;
/// Bytes of the signature tag kept in the cookie.
const TAG_BYTES: usize = 16;
/// Largest session accepted from the store or from the caller, in bytes.
pub const SESSION_BYTES_MAX: usize = 16 * 1024;
/// The shortest secret accepted.
pub const SECRET_BYTES_MIN: usize = 16;

/// A session's data: string keys and values (a user name, a cart id).
pub type Data = BTreeMap<String, String>;

/// What a session operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed (answer 503: the user is not logged out).
    #[error(transparent)]
    Store(#[from] kvclient::Error),
    /// The session is larger than [`SESSION_BYTES_MAX`].
    #[error("the session is {0} bytes; at most {SESSION_BYTES_MAX} are kept")]
    TooLarge(usize),
}

/// Sessions of a web tier (see the module docs).
pub struct SessionStore {
    kv: Arc<dyn KvClient>,
    secret: Vec<u8>,
    ttl: Duration,
    cookie_name: String,
    secure: bool,
    prf_key: [u8; 32],
    counter: AtomicU64,
}

impl SessionStore {
    /// Sessions in `kv` living `ttl` after their last use, cookies signed
    /// with `secret` (the same on every server); `secure` adds the `Secure`
    /// attribute (set it whenever clients reach the tier over HTTPS).
    /// Reads 32 bytes of `/dev/urandom` (call it at start, not per request).
    pub fn new(
        kv: Arc<dyn KvClient>,
        secret: &[u8],
        ttl: Duration,
        secure: bool,
    ) -> std::io::Result<Self> {
        if secret.len() < SECRET_BYTES_MIN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the session secret has {} bytes; use at least {SECRET_BYTES_MIN} \
                     (e.g. `head -c 32 /dev/urandom | base64`)",
                    secret.len()
                ),
            ));
        }
        assert!(!ttl.is_zero(), "a session must live some time");
        let mut prf_key = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut prf_key)?;
        Ok(SessionStore {
            kv,
            secret: secret.to_vec(),
            ttl,
            cookie_name: "hs_session".into(),
            secure,
            prf_key,
            counter: AtomicU64::new(0),
        })
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    fn new_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut mac = HmacSha256::new_from_slice(&self.prf_key).expect("any key length");
        mac.update(&n.to_le_bytes());
        hex(&mac.finalize().into_bytes()[..ID_BYTES])
    }

    fn tag(&self, id: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(id.as_bytes());
        mac
    }

    /// The id in a cookie value, if its signature holds.
    pub fn verify(&self, value: &str) -> Option<String> {
        let (id, tag) = value.split_once('.')?;
        if id.len() != ID_BYTES * 2 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let tag = unhex(tag)?;
        if tag.len() != TAG_BYTES {
            return None;
        }
        self.tag(id).verify_truncated_left(&tag).ok()?;
        Some(id.to_string())
    }

    fn signed(&self, id: &str) -> String {
        let tag = self.tag(id).finalize().into_bytes();
        format!("{id}.{}", hex(&tag[..TAG_BYTES]))
    }

    /// The session id in a `Cookie` header, if one is there and signed.
    pub fn id_from_cookies(&self, header: &str) -> Option<String> {
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.cookie_name)
            .find_map(|(_, value)| self.verify(value))
    }

    fn key(id: &str) -> Vec<u8> {
        format!("session:{id}").into_bytes()
    }

    /// Starts a session holding `data`; returns its id and the `Set-Cookie`
    /// value.
    pub async fn create(&self, data: &Data) -> Result<(String, String), Error> {
        let id = self.new_id();
        self.save(&id, data).await?;
        let cookie = self.cookie(&id);
        Ok((id, cookie))
    }

    /// Replaces the session's data and restarts its TTL.
    pub async fn save(&self, id: &str, data: &Data) -> Result<(), Error> {
        let json = serde_json::to_vec(data).expect("a map of strings serializes");
        if json.len() > SESSION_BYTES_MAX {
            return Err(Error::TooLarge(json.len()));
        }
        self.kv.set(&Self::key(id), &json, Some(self.ttl)).await?;
        Ok(())
    }

    /// The session's data, if it exists (a corrupt or oversized record
    /// counts as none: the user signs in again). Does not extend the TTL;
    /// [`Self::save`] does.
    pub async fn load(&self, id: &str) -> Result<Option<Data>, Error> {
        let Some(bytes) = self.kv.get(&Self::key(id)).await? else {
            return Ok(None);
        };
        if bytes.len() > SESSION_BYTES_MAX {
            return Ok(None);
        }
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// Ends a session; returns the `Set-Cookie` value that clears the cookie.
    pub async fn destroy(&self, id: &str) -> Result<String, Error> {
        self.kv.delete(&Self::key(id)).await?;
        Ok(format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
            self.cookie_name,
            if self.secure { "; Secure" } else { "" }
        ))
    }

    /// The `Set-Cookie` value carrying session `id`.
    pub fn cookie(&self, id: &str) -> String {
        format!(
            "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.cookie_name,
            self.signed(id),
            self.ttl.as_secs().max(1),
            if self.secure { "; Secure" } else { "" }
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 2 * TAG_BYTES {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &std::path::Path, secret: &[u8]) -> SessionStore {
        let kv: Arc<dyn KvClient> = Arc::new(kvclient::embedded::Embedded::open(dir).unwrap());
        SessionStore::new(kv, secret, Duration::from_secs(600), true).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_round_trips_and_a_forged_cookie_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = store(dir.path(), b"0123456789abcdef0123");
        let data = Data::from([("user".to_string(), "ada".to_string())]);
        let (id, cookie) = sessions.create(&data).await.unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("Secure"),
            "{cookie}"
        );
        assert!(cookie.contains("SameSite=Lax") && cookie.contains("Max-Age=600"));
        let value = cookie.split(';').next().unwrap();
        let header = format!("other=1; {value}");
        assert_eq!(sessions.id_from_cookies(&header).as_deref(), Some(&*id));
        assert_eq!(sessions.load(&id).await.unwrap(), Some(data));
        // Another id with the same tag, a flipped tag, junk: refused.
        let (_, tag) = value.split_once('.').unwrap();
        let other = format!("hs_session={}.{tag}", "0".repeat(32));
        assert_eq!(sessions.id_from_cookies(&other), None);
        let mut flipped = value.to_string();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(sessions.id_from_cookies(&flipped), None);
        assert_eq!(sessions.id_from_cookies("hs_session=zz.zz"), None);
        assert_eq!(sessions.id_from_cookies("hs_session=é.é"), None);
        // A server with another secret does not accept it either.
        let dir2 = tempfile::tempdir().unwrap();
        let stranger = store(dir2.path(), b"another secret, also long");
        assert_eq!(stranger.id_from_cookies(&header), None);
        // Ids differ and destroy clears.
        let (id2, _) = sessions.create(&Data::new()).await.unwrap();
        assert_ne!(id, id2);
        let clear = sessions.destroy(&id).await.unwrap();
        assert!(clear.contains("Max-Age=0"));
        assert_eq!(sessions.load(&id).await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn short_secrets_and_huge_sessions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn KvClient> =
            Arc::new(kvclient::embedded::Embedded::open(dir.path()).unwrap());
        let err = SessionStore::new(kv, b"short", Duration::from_secs(1), false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("/dev/urandom"), "{err}");
        let dir2 = tempfile::tempdir().unwrap();
        let sessions = store(dir2.path(), b"0123456789abcdef");
        let huge = Data::from([("x".to_string(), "y".repeat(SESSION_BYTES_MAX))]);
        assert!(matches!(
            sessions.create(&huge).await,
            Err(Error::TooLarge(_))
        ));
    }
}
