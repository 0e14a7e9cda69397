//! Objects: PUT, GET (ranges, preconditions), HEAD, DELETE, DeleteObjects, CopyObject.
//!
//! Why a module: these are the operations that join the two halves of the design, the
//! object table and the data store, and they fix the order that makes a crash safe:
//! bytes first (fsynced), then the row that names them (fsynced), then the old bytes
//! freed.

use s3s::dto::*;
use s3s::{S3Response, S3Result, s3_error};

use super::{Api, check_md5, check_metadata, conditions, etag, headers, metadata_of, timestamp};
use crate::s3::blob::{self, blocking, hex, internal};
use crate::s3::limits;
use crate::s3::meta::versions::is_sort_key;
use crate::s3::meta::{Change, Chunk, Headers, NULL_VERSION, ObjectRow};

impl Api {
    /// Writes `row` as the new version of (bucket, key) under the bucket's versioning
    /// mode, and frees the chunks no row names any more.
    pub(super) async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        row: ObjectRow,
    ) -> S3Result<Change> {
        let mode = self.versioning(bucket).await?;
        let meta = self.store.meta.clone();
        let (b, k) = (bucket.to_string(), key.to_string());
        let mut change = blocking(move || meta.put_version(&b, &k, row, mode))
            .await?
            .map_err(internal)?;
        blob::free(&self.store.node, std::mem::take(&mut change.freed)).await;
        Ok(change)
    }

    /// Deletes (bucket, key): a delete marker when versioning is on, else the object;
    /// with `version_id`, that version for good.
    async fn remove_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<Change> {
        let meta = self.store.meta.clone();
        let (b, k) = (bucket.to_string(), key.to_string());
        let mut change = match version_id {
            Some(v) => {
                if v != NULL_VERSION && !is_sort_key(v) {
                    return Err(s3_error!(InvalidArgument, "Invalid version id specified"));
                }
                let v = v.to_string();
                blocking(move || meta.delete_version(&b, &k, &v))
                    .await?
                    .map_err(internal)?
                    .unwrap_or_default()
            }
            None => {
                let mode = self.versioning(bucket).await?;
                let marker = ObjectRow {
                    size: 0,
                    etag: String::new(),
                    modified_ms: clock::now_ms(),
                    chunks: Vec::new(),
                    headers: Headers::default(),
                    version_id: None,
                    delete_marker: true,
                };
                blocking(move || meta.put_version(&b, &k, marker, mode))
                    .await?
                    .map_err(internal)?
            }
        };
        blob::free(&self.store.node, std::mem::take(&mut change.freed)).await;
        Ok(change)
    }

    /// Stores a PUT's or a part's body; checks its length against `Content-Length`
    /// (`IncompleteBody`) and its `Content-MD5` (`BadDigest`), freeing it on failure.
    pub(super) async fn store_body(
        &self,
        body: Option<StreamingBlob>,
        content_length: Option<i64>,
        content_md5: Option<&str>,
    ) -> S3Result<blob::Stored> {
        let body = body.ok_or_else(|| s3_error!(IncompleteBody))?;
        let stored = blob::store(
            &self.store.node,
            body,
            self.store.opts.object_size_bytes_max,
            self.store.opts.chunk_bytes,
        )
        .await?;
        let checked = if content_length.is_some_and(|len| len as u64 != stored.size) {
            Err(s3_error!(IncompleteBody))
        } else {
            check_md5(content_md5, &stored.md5)
        };
        if let Err(e) = checked {
            blob::free(&self.store.node, stored.chunks).await;
            return Err(e);
        }
        Ok(stored)
    }

    pub(super) async fn put_object_impl(
        &self,
        input: PutObjectInput,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let _bucket = self.store.bucket_lock.read().await;
        check_metadata(&input.metadata)?;
        self.versioning(&input.bucket).await?;
        if let Some(len) = input.content_length
            && len as u64 > self.store.opts.object_size_bytes_max
        {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size"
            ));
        }
        let stored = self
            .store_body(
                input.body,
                input.content_length,
                input.content_md5.as_deref(),
            )
            .await?;
        let row = ObjectRow {
            size: stored.size,
            etag: hex(&stored.md5),
            modified_ms: clock::now_ms(),
            chunks: stored.chunks,
            headers: headers(
                input.content_type.map(|c| c.to_string()),
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.metadata,
            ),
            version_id: None,
            delete_marker: false,
        };
        let tag = row.etag.clone();
        let change = self.commit_object(&input.bucket, &input.key, row).await?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&tag)),
            version_id: change.version_id,
            ..Default::default()
        }))
    }

    pub(super) async fn get_object_impl(
        &self,
        input: GetObjectInput,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let row = self
            .need_object_if(
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                &conditions!(input),
            )
            .await?;
        let (range, content_range) = match &input.range {
            None => (0..row.size, None),
            Some(r) => {
                let range = r.check(row.size)?;
                let cr = format!("bytes {}-{}/{}", range.start, range.end - 1, row.size);
                (range, Some(cr))
            }
        };
        let len = range.end - range.start;
        let stream = blob::read(self.store.node.clone(), row.chunks.clone(), range);
        let h = &row.headers;
        Ok(S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::wrap(stream)),
            content_length: Some(len as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            last_modified: Some(timestamp(row.modified_ms)),
            e_tag: Some(etag(&row.etag)),
            version_id: row.version_id.clone(),
            metadata: metadata_of(h),
            content_type: input
                .response_content_type
                .or_else(|| h.content_type.as_deref().and_then(|c| c.parse().ok())),
            content_encoding: input
                .response_content_encoding
                .or_else(|| h.content_encoding.clone()),
            content_disposition: input
                .response_content_disposition
                .or_else(|| h.content_disposition.clone()),
            content_language: input
                .response_content_language
                .or_else(|| h.content_language.clone()),
            cache_control: input
                .response_cache_control
                .or_else(|| h.cache_control.clone()),
            ..Default::default()
        }))
    }

    pub(super) async fn head_object_impl(
        &self,
        input: HeadObjectInput,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let row = self
            .need_object_if(
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                &conditions!(input),
            )
            .await?;
        let h = &row.headers;
        Ok(S3Response::new(HeadObjectOutput {
            version_id: row.version_id.clone(),
            content_length: Some(row.size as i64),
            accept_ranges: Some("bytes".into()),
            last_modified: Some(timestamp(row.modified_ms)),
            e_tag: Some(etag(&row.etag)),
            metadata: metadata_of(h),
            content_type: h.content_type.as_deref().and_then(|c| c.parse().ok()),
            content_encoding: h.content_encoding.clone(),
            content_disposition: h.content_disposition.clone(),
            content_language: h.content_language.clone(),
            cache_control: h.cache_control.clone(),
            ..Default::default()
        }))
    }

    pub(super) async fn delete_object_impl(
        &self,
        input: DeleteObjectInput,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.need_bucket(&input.bucket).await?;
        let change = self
            .remove_object(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: change.delete_marker.then_some(true),
            version_id: change.version_id,
            ..Default::default()
        }))
    }

    pub(super) async fn delete_objects_impl(
        &self,
        input: DeleteObjectsInput,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.need_bucket(&input.bucket).await?;
        let objects = input.delete.objects;
        if objects.len() > limits::DELETE_KEYS_MAX {
            return Err(s3_error!(
                MalformedXML,
                "a DeleteObjects request names at most 1000 keys"
            ));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in objects {
            match self
                .remove_object(&input.bucket, &o.key, o.version_id.as_deref())
                .await
            {
                Ok(_) if quiet => {}
                Ok(change) => deleted.push(DeletedObject {
                    key: Some(o.key),
                    delete_marker: change.delete_marker.then_some(true),
                    delete_marker_version_id: change
                        .version_id
                        .clone()
                        .filter(|_| change.delete_marker && o.version_id.is_none()),
                    version_id: o.version_id,
                }),
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(o.key),
                    message: e.message().map(str::to_string),
                    ..Default::default()
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    /// Copies the bytes of `chunks` into new chunks (so the copy lives on when the
    /// source is deleted).
    pub(super) async fn copy_chunks(&self, chunks: Vec<Chunk>) -> S3Result<Vec<Chunk>> {
        let node = self.store.node.clone();
        let copied = blocking(move || {
            let mut out = Vec::with_capacity(chunks.len());
            for c in chunks {
                let data = match node.get(c.id, ..) {
                    Ok(Some(d)) => d,
                    Ok(None) => return (out, Err(format!("chunk {} is missing", c.id))),
                    Err(e) => return (out, Err(e.to_string())),
                };
                match node.put(&data) {
                    Ok(id) => out.push(Chunk { id, len: c.len }),
                    Err(e) => return (out, Err(e.to_string())),
                }
            }
            (out, Ok(()))
        })
        .await?;
        match copied {
            (out, Ok(())) => Ok(out),
            (out, Err(e)) => {
                blob::free(&self.store.node, out).await;
                Err(s3_error!(InternalError, "copying the object failed: {e}"))
            }
        }
    }

    pub(super) async fn copy_object_impl(
        &self,
        input: CopyObjectInput,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let _bucket = self.store.bucket_lock.read().await;
        self.need_bucket(&input.bucket).await?;
        let (src_bucket, src_key, src_version, src) = self
            .copy_source(&input.copy_source, &conditions!(copy_source input))
            .await?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if !replace && src_bucket == input.bucket && src_key == input.key && src_version.is_none() {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata"
            ));
        }
        if replace {
            check_metadata(&input.metadata)?;
        }
        let headers: Headers = if replace {
            headers(
                input.content_type.map(|c| c.to_string()),
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.metadata,
            )
        } else {
            src.headers.clone()
        };
        let chunks = self.copy_chunks(src.chunks.clone()).await?;
        let row = ObjectRow {
            size: src.size,
            etag: src.etag.clone(),
            modified_ms: clock::now_ms(),
            chunks,
            headers,
            version_id: None,
            delete_marker: false,
        };
        let modified = row.modified_ms;
        let change = self.commit_object(&input.bucket, &input.key, row).await?;
        Ok(S3Response::new(CopyObjectOutput {
            version_id: change.version_id,
            copy_source_version_id: src.version_id.clone(),
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&src.etag)),
                last_modified: Some(timestamp(modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
}
