//! The S3 operations: `s3s` parses and authenticates each request and calls the
//! [`S3`] trait implemented here, whose methods delegate to one module per group
//! (buckets and listings, objects, multipart uploads).
//!
//! Why a module: it is the chapter's stateless API service. It owns no state of its
//! own: a request becomes metadata lookups ([`super::meta`]) and data-store reads or
//! writes ([`super::blob`]), blocking work on blocking threads.

mod buckets;
mod multipart;
mod objects;
mod part_copy;
mod policy;
mod versioning;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use super::S3Store;
use super::blob::{blocking, internal};
use super::meta::{Headers, ObjectRow, Versioning};

/// The S3 service over a store.
pub(crate) struct Api {
    pub(crate) store: Arc<S3Store>,
}

/// An S3 timestamp of unix milliseconds.
fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

/// Unix seconds of an S3 timestamp.
fn unix_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn etag(s: &str) -> ETag {
    ETag::Strong(s.to_string())
}

/// A client's page size: S3 clamps to 1000 and refuses negatives.
fn page_size(n: Option<i32>) -> S3Result<usize> {
    match n {
        None => Ok(super::limits::PAGE_MAX),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must be non-negative")),
        Some(n) => Ok((n as usize).min(super::limits::PAGE_MAX)),
    }
}

/// Checks a `Content-MD5` header against the body's MD5.
fn check_md5(content_md5: Option<&str>, md5: &[u8; 16]) -> S3Result<()> {
    let Some(want) = content_md5 else {
        return Ok(());
    };
    let want = base64_simd::STANDARD
        .decode_to_vec(want.trim())
        .map_err(|_| s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid"))?;
    if want.len() != 16 {
        return Err(s3_error!(
            InvalidDigest,
            "The Content-MD5 you specified is not valid"
        ));
    }
    if want != md5 {
        return Err(s3_error!(
            BadDigest,
            "The Content-MD5 you specified did not match what we received"
        ));
    }
    Ok(())
}

/// The `If-*` conditions of a GET, a HEAD or a copy's source.
pub(super) struct Conditions<'a> {
    pub(super) if_match: Option<&'a ETagCondition>,
    pub(super) if_none_match: Option<&'a ETagCondition>,
    pub(super) if_modified_since: Option<&'a Timestamp>,
    pub(super) if_unmodified_since: Option<&'a Timestamp>,
}

/// `Conditions` from an input's four fields (`if_match`, ... or
/// `copy_source_if_match`, ...), by their common suffixes.
macro_rules! conditions {
    ($input:expr) => {
        super::Conditions {
            if_match: $input.if_match.as_ref(),
            if_none_match: $input.if_none_match.as_ref(),
            if_modified_since: $input.if_modified_since.as_ref(),
            if_unmodified_since: $input.if_unmodified_since.as_ref(),
        }
    };
    (copy_source $input:expr) => {
        super::Conditions {
            if_match: $input.copy_source_if_match.as_ref(),
            if_none_match: $input.copy_source_if_none_match.as_ref(),
            if_modified_since: $input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: $input.copy_source_if_unmodified_since.as_ref(),
        }
    };
}
pub(super) use conditions;

/// Preconditions, in S3's order: `If-Match` (else `If-Unmodified-Since`) fails with
/// 412; `If-None-Match` (else `If-Modified-Since`) with 304.
fn check_preconditions(row: &ObjectRow, c: &Conditions<'_>) -> S3Result<()> {
    let ours = etag(&row.etag);
    let modified = (row.modified_ms / 1000) as i64;
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => ours.weak_cmp(e),
    };
    if let Some(m) = c.if_match {
        if !matches(m) {
            return Err(s3_error!(PreconditionFailed));
        }
    } else if let Some(t) = c.if_unmodified_since
        && modified > unix_secs(t)
    {
        return Err(s3_error!(PreconditionFailed));
    }
    if let Some(m) = c.if_none_match {
        if matches(m) {
            return Err(s3_error!(NotModified));
        }
    } else if let Some(t) = c.if_modified_since
        && modified <= unix_secs(t)
    {
        return Err(s3_error!(NotModified));
    }
    Ok(())
}

/// S3's bound on user metadata: keys and values together at most 2 KB.
fn check_metadata(m: &Option<Metadata>) -> S3Result<()> {
    let bytes: usize = m.iter().flatten().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > super::limits::METADATA_BYTES_MAX {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size (2048 bytes)"
        ));
    }
    Ok(())
}

/// The headers of a PUT, CreateMultipartUpload or CopyObject (REPLACE).
fn headers(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    metadata: Option<Metadata>,
) -> Headers {
    Headers {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        metadata: metadata.unwrap_or_default().into_iter().collect(),
    }
}

fn metadata_of(h: &Headers) -> Option<Metadata> {
    (!h.metadata.is_empty()).then(|| h.metadata.clone().into_iter().collect())
}

impl Api {
    /// [`Api::need_object`], then its preconditions.
    async fn need_object_if(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        conditions: &Conditions<'_>,
    ) -> S3Result<ObjectRow> {
        let row = self.need_object(bucket, key, version_id).await?;
        check_preconditions(&row, conditions)?;
        Ok(row)
    }

    /// `NoSuchBucket` unless `bucket` exists.
    async fn need_bucket(&self, bucket: &str) -> S3Result<()> {
        let meta = self.store.meta.clone();
        let b = bucket.to_string();
        match blocking(move || meta.bucket(&b)).await?.map_err(internal)? {
            Some(_) => Ok(()),
            None => Err(s3_error!(NoSuchBucket)),
        }
    }

    /// The bucket's versioning mode (`NoSuchBucket` when it is missing).
    async fn versioning(&self, bucket: &str) -> S3Result<Versioning> {
        let meta = self.store.meta.clone();
        let b = bucket.to_string();
        match blocking(move || meta.bucket(&b)).await?.map_err(internal)? {
            Some(row) => Ok(Versioning::from_word(row.versioning.as_deref())),
            None => Err(s3_error!(NoSuchBucket)),
        }
    }

    /// The object's current version, or version `version_id`: `NoSuchKey` when absent
    /// or a delete marker, `NoSuchVersion` for an unknown version, `MethodNotAllowed`
    /// for a delete marker asked by version (`NoSuchBucket` when the bucket is missing).
    async fn need_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<ObjectRow> {
        let meta = self.store.meta.clone();
        let (b, k) = (bucket.to_string(), key.to_string());
        let v = version_id.map(str::to_string);
        let row = blocking(move || match v {
            Some(v) => meta.version(&b, &k, &v),
            None => meta.object(&b, &k),
        })
        .await?
        .map_err(internal)?;
        match row {
            Some(row) if !row.delete_marker => Ok(row),
            Some(_) if version_id.is_some() => Err(s3_error!(
                MethodNotAllowed,
                "The specified method is not allowed against this resource"
            )),
            _ => {
                self.need_bucket(bucket).await?;
                match version_id {
                    Some(_) => Err(s3_error!(NoSuchVersion)),
                    None => Err(s3_error!(NoSuchKey)),
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl S3 for Api {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.create_bucket_impl(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.delete_bucket_impl(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.need_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.need_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.list_buckets_impl().await
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        self.put_bucket_policy_impl(req).await
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        self.get_bucket_policy_impl(req).await
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        self.delete_bucket_policy_impl(req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        self.put_bucket_versioning_impl(req.input).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.get_bucket_versioning_impl(req.input).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        self.list_object_versions_impl(req.input).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.list_objects_v2_impl(req.input).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.list_objects_v1_impl(req.input).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.put_object_impl(req.input).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.get_object_impl(req.input).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.head_object_impl(req.input).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.delete_object_impl(req.input).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.delete_objects_impl(req.input).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.copy_object_impl(req.input).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.create_multipart_upload_impl(req.input).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.upload_part_impl(req.input).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.upload_part_copy_impl(req.input).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.complete_multipart_upload_impl(req.input).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.abort_multipart_upload_impl(req.input).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.list_parts_impl(req.input).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.list_multipart_uploads_impl(req.input).await
    }
}
