//! Who may do what: every request, signed or anonymous, passes [`Access::check`]
//! (the `s3s` access hook) before its body is read.
//!
//! Why a module: SigV4 (checked by `s3s` with [`super::iam`]) says who signed; this
//! says whether they may. Every access key is the store's owner, so a signed request
//! proceeds unless its bucket's policy explicitly denies it; an anonymous (unsigned)
//! request proceeds only where the bucket's policy allows `Principal: "*"` (or the
//! request's action and resource) and nothing denies it. The policy operations
//! themselves (Get/Put/DeleteBucketPolicy) always need a signature and are never
//! denied to a key, so an owner cannot lock themselves out (AWS keeps the same escape
//! for the account root). CopyObject and UploadPartCopy also need `s3:GetObject` on
//! their source; DeleteObjects needs `s3:DeleteObject` on every key it names.
//!
//! Policies are cached per bucket (a bounded LRU) so a request does not read the
//! bucket table; a generation counter keeps a fill that raced a change from caching
//! the old policy. There is one API node, so its cache is the only one to keep fresh.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};

use super::S3Store;
use super::blob::{blocking, internal};
use super::policy::{Decision, Policy};

/// Buckets whose policy (or its absence) is kept in memory.
const CACHED_BUCKETS: usize = 4096;

/// Parsed policies by bucket (`None`: the bucket has none, or does not exist).
pub(crate) struct PolicyCache {
    entries: Mutex<lru::LruCache<String, Option<Arc<Policy>>>>,
    generation: AtomicU64,
}

impl Default for PolicyCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(CACHED_BUCKETS).expect("non-zero"),
            )),
            generation: AtomicU64::new(0),
        }
    }
}

impl PolicyCache {
    /// Drops `bucket`'s entry: call after changing its policy or deleting it.
    pub(crate) fn forget(&self, bucket: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.lock().pop(bucket);
    }
}

/// The access hook over a store.
pub(crate) struct Access {
    pub(crate) store: Arc<S3Store>,
}

/// The IAM action of an S3 operation (`s3:` + the operation's name, except where AWS
/// names the permission differently).
fn action_of(op: &str) -> String {
    let name = match op {
        "HeadObject" => "GetObject",
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "ListBucket",
        "ListObjectVersions" => "ListBucketVersions",
        "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => "PutObject",
        "DeleteObjects" => "DeleteObject",
        "ListParts" => "ListMultipartUploadParts",
        "ListMultipartUploads" => "ListBucketMultipartUploads",
        "ListBuckets" => "ListAllMyBuckets",
        other => other,
    };
    format!("s3:{name}")
}

fn is_policy_op(op: &str) -> bool {
    matches!(
        op,
        "GetBucketPolicy" | "PutBucketPolicy" | "DeleteBucketPolicy"
    )
}

fn denied() -> s3s::S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

impl Access {
    /// The parsed policy of `bucket` (cached).
    async fn policy(&self, bucket: &str) -> S3Result<Option<Arc<Policy>>> {
        let cache = &self.store.policies;
        if let Some(hit) = cache.entries.lock().get(bucket) {
            return Ok(hit.clone());
        }
        let generation = cache.generation.load(Ordering::SeqCst);
        let meta = self.store.meta.clone();
        let name = bucket.to_string();
        let row = blocking(move || meta.bucket(&name))
            .await?
            .map_err(internal)?;
        let policy = match row.and_then(|r| r.policy) {
            // Stored policies were validated; one that no longer parses denies
            // nothing and allows nothing rather than failing every request.
            Some(text) => match Policy::parse(&text, bucket) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    tracing::warn!(bucket, error = %e, "stored bucket policy does not parse");
                    None
                }
            },
            None => None,
        };
        let mut entries = cache.entries.lock();
        if cache.generation.load(Ordering::SeqCst) == generation {
            entries.put(bucket.to_string(), policy.clone());
        }
        Ok(policy)
    }

    /// What `bucket`'s policy says about `who` doing `action` on `resource`.
    async fn decide(
        &self,
        bucket: &str,
        who: Option<&str>,
        action: &str,
        resource: &str,
    ) -> S3Result<Decision> {
        Ok(match self.policy(bucket).await? {
            Some(p) => p.decide(who, action, resource),
            None => Decision::Silent,
        })
    }

    /// Allows or refuses one request of `who` for `action` on `bucket` (and `key`).
    async fn allow(
        &self,
        who: Option<&str>,
        action: &str,
        bucket: &str,
        key: Option<&str>,
    ) -> S3Result<()> {
        let resource = match key {
            Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        match (self.decide(bucket, who, action, &resource).await?, who) {
            (Decision::Deny, _) => Err(denied()),
            (_, Some(_)) | (Decision::Allow, None) => Ok(()),
            (Decision::Silent, None) => Err(denied()),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let who = cx.credentials().map(|c| c.access_key.clone());
        let op = cx.s3_op().name();
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => {
                return match who {
                    Some(_) => Ok(()),
                    None => Err(denied()),
                };
            }
            S3Path::Bucket { bucket } => (bucket.to_string(), None),
            S3Path::Object { bucket, key } => (bucket.to_string(), Some(key.to_string())),
        };
        if op == "DeleteObjects" {
            // Decided per key once the body is parsed (`delete_objects` below).
            return Ok(());
        }
        if is_policy_op(op) {
            return match who {
                Some(_) => Ok(()),
                None => Err(denied()),
            };
        }
        let action = action_of(op);
        self.allow(who.as_deref(), &action, &bucket, key.as_deref())
            .await?;
        if matches!(op, "CopyObject" | "UploadPartCopy")
            && let Some(source) = cx.headers().get("x-amz-copy-source")
        {
            let source = source
                .to_str()
                .ok()
                .and_then(|s| s3s::dto::CopySource::parse(s).ok());
            if let Some(s3s::dto::CopySource::Bucket { bucket, key, .. }) = source {
                self.allow(who.as_deref(), "s3:GetObject", &bucket, Some(&key))
                    .await?;
            }
        }
        Ok(())
    }

    /// DeleteObjects needs `s3:DeleteObject` on every key it names (all or nothing).
    async fn delete_objects(
        &self,
        req: &mut s3s::S3Request<s3s::dto::DeleteObjectsInput>,
    ) -> S3Result<()> {
        let objects = &req.input.delete.objects;
        if objects.len() > super::limits::DELETE_KEYS_MAX {
            return Ok(()); // refused as MalformedXML by the operation itself
        }
        let who = req.credentials.as_ref().map(|c| c.access_key.as_str());
        for o in objects {
            self.allow(who, "s3:DeleteObject", &req.input.bucket, Some(&o.key))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_use_aws_permission_names() {
        assert_eq!(action_of("GetObject"), "s3:GetObject");
        assert_eq!(action_of("HeadObject"), "s3:GetObject");
        assert_eq!(action_of("ListObjectsV2"), "s3:ListBucket");
        assert_eq!(action_of("UploadPart"), "s3:PutObject");
        assert_eq!(action_of("DeleteObjects"), "s3:DeleteObject");
    }
}
