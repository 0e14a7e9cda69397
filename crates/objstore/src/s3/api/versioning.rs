//! Bucket versioning: turning it on or suspending it, and ListObjectVersions.
//!
//! Why a module: versioning changes what PUT and DELETE write ([`crate::s3::meta::versions`]);
//! this module is the bucket-level switch and the listing of every version and delete
//! marker, merged across shards like object listings.

use s3s::dto::*;
use s3s::{S3Response, S3Result, s3_error};

use super::{Api, etag, page_size, timestamp};
use crate::s3::blob::{blocking, internal};
use crate::s3::meta::{NULL_VERSION, Versioning};

impl Api {
    pub(super) async fn put_bucket_versioning_impl(
        &self,
        input: PutBucketVersioningInput,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let word = match input
            .versioning_configuration
            .status
            .as_ref()
            .map(|s| s.as_str())
        {
            Some(BucketVersioningStatus::ENABLED) => "Enabled",
            Some(BucketVersioningStatus::SUSPENDED) => "Suspended",
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "Status must be Enabled or Suspended"
                ));
            }
        };
        let meta = self.store.meta.clone();
        let b = input.bucket.clone();
        if !blocking(move || meta.set_versioning(&b, word))
            .await?
            .map_err(internal)?
        {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    pub(super) async fn get_bucket_versioning_impl(
        &self,
        input: GetBucketVersioningInput,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let status = match self.versioning(&input.bucket).await? {
            Versioning::Off => None,
            Versioning::Enabled => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            Versioning::Suspended => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..Default::default()
        }))
    }

    pub(super) async fn list_object_versions_impl(
        &self,
        input: ListObjectVersionsInput,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        self.versioning(&input.bucket).await?;
        let max = page_size(input.max_keys)?;
        let meta = self.store.meta.clone();
        let (b, p, d) = (
            input.bucket.clone(),
            input.prefix.clone().unwrap_or_default(),
            input.delimiter.clone(),
        );
        let (km, vm) = (
            input.key_marker.clone().unwrap_or_default(),
            input.version_id_marker.clone(),
        );
        let (page, latest) = blocking(move || -> Result<_, lsm::Error> {
            let page = meta.list_versions(&b, &p, d.as_deref(), &km, vm.as_deref(), max)?;
            // Which listed version is its key's current one.
            let mut latest = Vec::with_capacity(page.versions.len());
            for (key, _, row) in &page.versions {
                let current = meta.object(&b, key)?;
                latest.push(current.is_some_and(|c| c.version_id == row.version_id));
            }
            Ok((page, latest))
        })
        .await?
        .map_err(internal)?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for ((key, _, row), is_latest) in page.versions.into_iter().zip(latest) {
            let version_id = Some(row.version_id.unwrap_or_else(|| NULL_VERSION.into()));
            if row.delete_marker {
                markers.push(DeleteMarkerEntry {
                    key: Some(key),
                    version_id,
                    is_latest: Some(is_latest),
                    last_modified: Some(timestamp(row.modified_ms)),
                    owner: None,
                });
            } else {
                versions.push(ObjectVersion {
                    key: Some(key),
                    version_id,
                    is_latest: Some(is_latest),
                    e_tag: Some(etag(&row.etag)),
                    size: Some(row.size as i64),
                    last_modified: Some(timestamp(row.modified_ms)),
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    ..Default::default()
                });
            }
        }
        let (next_key, next_version) = match page.last.filter(|_| page.truncated) {
            Some((k, v)) => (Some(k), v),
            None => (None, None),
        };
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            key_marker: input.key_marker,
            version_id_marker: input.version_id_marker,
            max_keys: Some(max as i32),
            is_truncated: Some(page.truncated),
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            versions: Some(versions),
            delete_markers: Some(markers),
            common_prefixes: Some(
                page.prefixes
                    .into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect(),
            ),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}
