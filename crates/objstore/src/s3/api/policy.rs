//! PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy.
//!
//! Why a module: a policy is validated here ([`crate::s3::policy`], `MalformedPolicy`
//! with the reason) before it is stored in the bucket's row, and the access hook's
//! cache is told when it changes.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::Api;
use crate::s3::blob::{blocking, internal};
use crate::s3::policy::Policy;

impl Api {
    /// Stores `policy` (or removes it) as `bucket`'s; `NoSuchBucket` when missing.
    async fn set_policy(&self, bucket: &str, policy: Option<String>) -> S3Result<()> {
        let meta = self.store.meta.clone();
        let b = bucket.to_string();
        let found = blocking(move || meta.set_policy(&b, policy))
            .await?
            .map_err(internal)?;
        self.store.policies.forget(bucket);
        if !found {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(())
    }

    pub(super) async fn put_bucket_policy_impl(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let input = req.input;
        self.need_bucket(&input.bucket).await?;
        if let Err(e) = Policy::parse(&input.policy, &input.bucket) {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::MalformedPolicy,
                e.0,
            ));
        }
        self.set_policy(&input.bucket, Some(input.policy)).await?;
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    pub(super) async fn get_bucket_policy_impl(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let meta = self.store.meta.clone();
        let b = req.input.bucket.clone();
        let row = blocking(move || meta.bucket(&b))
            .await?
            .map_err(internal)?
            .ok_or_else(|| s3_error!(NoSuchBucket))?;
        match row.policy {
            Some(policy) => Ok(S3Response::new(GetBucketPolicyOutput {
                policy: Some(policy),
            })),
            None => Err(s3_error!(
                NoSuchBucketPolicy,
                "The bucket policy does not exist"
            )),
        }
    }

    pub(super) async fn delete_bucket_policy_impl(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        self.set_policy(&req.input.bucket, None).await?;
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }
}
