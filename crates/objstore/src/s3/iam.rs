//! IAM: access keys and their secrets, which SigV4 needs to check a signature.
//!
//! Why a module: every request is signed (SigV4, verified by `s3s`), and the verifier
//! asks for the secret of the request's access key id. Keys live in their own `lsm`
//! store (fsynced, so a key handed out survives a crash); `hyperscale s3 keys
//! create|list|delete` manages them, and the server creates one on first start.
//! Secrets are stored as given (the signature scheme needs the secret itself, as AWS
//! and MinIO keep it); the directory's permissions protect them.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One access key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessKey {
    /// The access key id (`AWS_ACCESS_KEY_ID`).
    pub id: String,
    /// The secret (`AWS_SECRET_ACCESS_KEY`).
    pub secret: String,
    /// Creation time, unix milliseconds.
    pub created_ms: u64,
}

/// The key store.
pub struct Keys {
    db: lsm::Db,
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random(chars: &[u8], n: usize) -> String {
    let mut rng = fastrand::Rng::new();
    (0..n)
        .map(|_| chars[rng.usize(..chars.len())] as char)
        .collect()
}

impl Keys {
    /// Opens (or creates) the key store in `dir`.
    pub fn open(dir: &Path) -> lsm::Result<Self> {
        let opts = lsm::Options {
            create_if_missing: true,
            sync: lsm::SyncPolicy::Always,
            memtable_size_bytes: 256 << 10,
            ..lsm::Options::default()
        };
        Ok(Self {
            db: lsm::Db::open(dir, opts)?,
        })
    }

    /// Creates a key with a random id (`HS` + 18 characters) and a 40-character secret.
    pub fn create(&self) -> lsm::Result<AccessKey> {
        let key = AccessKey {
            id: format!("HS{}", random(ALNUM, 18)),
            secret: random(SECRET_CHARS, 40),
            created_ms: clock::now_ms(),
        };
        self.insert(&key)?;
        Ok(key)
    }

    /// Stores `key` (replacing a key of the same id).
    pub fn insert(&self, key: &AccessKey) -> lsm::Result<()> {
        let value = serde_json::to_vec(key).expect("keys serialize");
        self.db.put(key.id.as_bytes(), &value)
    }

    /// The key `id`.
    pub fn get(&self, id: &str) -> lsm::Result<Option<AccessKey>> {
        match self.db.get(id.as_bytes())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| lsm::Error::Corruption {
                    path: self.db.path().to_path_buf(),
                    detail: format!("access key {id}: {e}"),
                }),
        }
    }

    /// Every key, by id.
    pub fn list(&self) -> lsm::Result<Vec<AccessKey>> {
        let mut out = Vec::new();
        for kv in self.db.scan(..)? {
            let kv = kv?;
            out.push(
                serde_json::from_slice(&kv.value).map_err(|e| lsm::Error::Corruption {
                    path: self.db.path().to_path_buf(),
                    detail: format!("access key: {e}"),
                })?,
            );
        }
        Ok(out)
    }

    /// Deletes key `id`; false if there was none.
    pub fn delete(&self, id: &str) -> lsm::Result<bool> {
        if self.db.get(id.as_bytes())?.is_none() {
            return Ok(false);
        }
        self.db.delete(id.as_bytes())?;
        Ok(true)
    }
}

/// SigV4's secret lookup over the key store.
pub(crate) struct Auth(pub(crate) std::sync::Arc<Keys>);

#[async_trait::async_trait]
impl s3s::auth::S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        // A point lookup in a small store: quick enough for the async thread.
        match self.0.get(access_key) {
            Ok(Some(k)) => Ok(s3s::auth::SecretKey::from(k.secret)),
            Ok(None) => Err(s3s::s3_error!(InvalidAccessKeyId)),
            Err(e) => Err(s3s::s3_error!(e, InternalError)),
        }
    }
}
