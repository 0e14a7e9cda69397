//! Buckets (create, delete, list) and object listings (ListObjectsV2 and V1).
//!
//! Why a module: listings are the one operation that reads across every shard of the
//! object table ([`crate::s3::meta::list`]); this module maps S3's parameters
//! (prefix, delimiter, max-keys, continuation token, start-after, marker,
//! encoding-type) onto that merge.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::{Api, etag, page_size, timestamp};
use crate::s3::blob::{blocking, hex, internal};
use crate::s3::meta::BucketRow;
use crate::s3::meta::list::{Listing, prefix_end};

/// The opaque continuation token of a position: hex of the key.
fn token_of(position: &str) -> String {
    hex(position.as_bytes())
}

fn position_of(token: &str) -> S3Result<String> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The continuation token provided is incorrect"
        )
    };
    if !token.len().is_multiple_of(2) || token.len() > 4096 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// `encoding-type=url`: percent-encode all but unreserved characters and `/`.
fn encode_key(key: String, url: bool) -> String {
    if !url {
        return key;
    }
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_url(e: &Option<EncodingType>) -> bool {
    e.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL)
}

/// The first key strictly after `key`.
fn after(key: &str) -> String {
    format!("{key}\0")
}

fn contents(page: &mut Listing, url: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = page
        .objects
        .drain(..)
        .map(|(key, row)| Object {
            key: Some(encode_key(key, url)),
            size: Some(row.size as i64),
            e_tag: Some(etag(&row.etag)),
            last_modified: Some(timestamp(row.modified_ms)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            ..Default::default()
        })
        .collect();
    let prefixes = page
        .prefixes
        .drain(..)
        .map(|p| CommonPrefix {
            prefix: Some(encode_key(p, url)),
        })
        .collect();
    (objects, prefixes)
}

impl Api {
    pub(super) async fn create_bucket_impl(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let meta = self.store.meta.clone();
        let name = req.input.bucket.clone();
        let row = BucketRow {
            created_ms: clock::now_ms(),
            versioning: None,
            policy: None,
        };
        let created = blocking(move || meta.create_bucket(&name, &row))
            .await?
            .map_err(internal)?;
        if !created {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    pub(super) async fn delete_bucket_impl(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.need_bucket(&req.input.bucket).await?;
        let meta = self.store.meta.clone();
        let name = req.input.bucket.clone();
        let _guard = self.store.bucket_lock.write().await;
        let empty = blocking(move || {
            if !meta.bucket_is_empty(&name)? {
                return Ok(false);
            }
            meta.delete_bucket(&name)?;
            Ok::<_, lsm::Error>(true)
        })
        .await?
        .map_err(internal)?;
        self.store.policies.forget(&req.input.bucket);
        if !empty {
            return Err(s3_error!(BucketNotEmpty));
        }
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(super) async fn list_buckets_impl(&self) -> S3Result<S3Response<ListBucketsOutput>> {
        let meta = self.store.meta.clone();
        let buckets = blocking(move || meta.buckets()).await?.map_err(internal)?;
        let buckets = buckets
            .into_iter()
            .map(|(name, row)| Bucket {
                name: Some(name),
                creation_date: Some(timestamp(row.created_ms)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                display_name: Some("hyperscale".into()),
                id: Some("hyperscale".into()),
            }),
            ..Default::default()
        }))
    }

    async fn page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start: String,
        max: usize,
    ) -> S3Result<Listing> {
        self.need_bucket(bucket).await?;
        let meta = self.store.meta.clone();
        let (b, p, d) = (
            bucket.to_string(),
            prefix.to_string(),
            delimiter.map(str::to_string),
        );
        blocking(move || meta.list(&b, &p, d.as_deref(), &start, max))
            .await?
            .map_err(internal)
    }

    pub(super) async fn list_objects_v2_impl(
        &self,
        input: ListObjectsV2Input,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let max = page_size(input.max_keys)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let start = match (&input.continuation_token, &input.start_after) {
            (Some(t), _) => position_of(t)?,
            (None, Some(s)) => after(s),
            (None, None) => String::new(),
        };
        let mut page = self
            .page(
                &input.bucket,
                &prefix,
                input.delimiter.as_deref(),
                start,
                max,
            )
            .await?;
        let url = is_url(&input.encoding_type);
        let (objects, prefixes) = contents(&mut page, url);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode_key(prefix, url)),
            max_keys: Some(max as i32),
            key_count: Some((objects.len() + prefixes.len()) as i32),
            is_truncated: Some(page.next.is_some()),
            next_continuation_token: page.next.as_deref().map(token_of),
            continuation_token: input.continuation_token,
            contents: Some(objects),
            common_prefixes: Some(prefixes),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            start_after: input.start_after,
            ..Default::default()
        }))
    }

    pub(super) async fn list_objects_v1_impl(
        &self,
        input: ListObjectsInput,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let max = page_size(input.max_keys)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.as_deref().filter(|d| !d.is_empty());
        let start = match (&input.marker, delimiter) {
            // A marker that is a common prefix (V1's NextMarker) skips what is under it.
            (Some(m), Some(d)) if m.ends_with(d) => prefix_end(m.as_bytes())
                .and_then(|e| String::from_utf8(e).ok())
                .unwrap_or_else(|| after(m)),
            (Some(m), _) => after(m),
            (None, _) => String::new(),
        };
        let mut page = self
            .page(&input.bucket, &prefix, delimiter, start, max)
            .await?;
        let url = is_url(&input.encoding_type);
        let truncated = page.next.is_some();
        let last = page.last.take();
        let (objects, prefixes) = contents(&mut page, url);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encode_key(prefix, url)),
            marker: input.marker,
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            next_marker: last.filter(|_| truncated).map(|k| encode_key(k, url)),
            contents: Some(objects),
            common_prefixes: Some(prefixes),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}
