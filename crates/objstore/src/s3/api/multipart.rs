//! Multipart upload: create, upload part, complete, abort, list parts, list uploads.
//!
//! Why a module: a multipart upload is state that outlives requests (the upload row
//! and its part rows, in the shard of its (bucket, key)) until it completes into one
//! object row, atomically: completing writes the object row and deletes the upload's
//! rows in one `lsm` batch, so a crash leaves either the upload or the object. The
//! object's chunks are its parts' chunks in order, never copied; its ETag is S3's: the
//! MD5 of the parts' binary MD5s, then `-` and the part count.

use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Response, S3Result, s3_error};

use super::{Api, check_metadata, etag, headers, page_size, timestamp};
use crate::s3::blob::{self, blocking, hex, internal};
use crate::s3::limits;
use crate::s3::meta::{Chunk, ObjectRow, PartRow, UPLOAD_ID_LEN, UploadRow};

fn check_upload_id(id: &str) -> S3Result<()> {
    if id.len() == UPLOAD_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(s3_error!(NoSuchUpload))
    }
}

pub(super) fn check_part_number(n: i32) -> S3Result<u16> {
    if (1..=limits::PART_NUMBER_MAX).contains(&n) {
        Ok(n as u16)
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ))
    }
}

fn unquote(s: &str) -> &str {
    s.trim_matches('"')
}

impl Api {
    pub(super) async fn create_multipart_upload_impl(
        &self,
        input: CreateMultipartUploadInput,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let _bucket = self.store.bucket_lock.read().await;
        check_metadata(&input.metadata)?;
        self.need_bucket(&input.bucket).await?;
        let id = format!("{:032x}", fastrand::u128(..));
        let row = UploadRow {
            initiated_ms: clock::now_ms(),
            headers: headers(
                input.content_type.map(|c| c.to_string()),
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.metadata,
            ),
        };
        let meta = self.store.meta.clone();
        let (b, k, i) = (input.bucket.clone(), input.key.clone(), id.clone());
        blocking(move || meta.create_upload(&b, &k, &i, &row))
            .await?
            .map_err(internal)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    /// `NoSuchUpload` unless upload `id` of (`bucket`, `key`) is open.
    pub(super) async fn need_upload(&self, bucket: &str, key: &str, id: &str) -> S3Result<()> {
        check_upload_id(id)?;
        let meta = self.store.meta.clone();
        let (b, k, i) = (bucket.to_string(), key.to_string(), id.to_string());
        match blocking(move || meta.upload(&b, &k, &i))
            .await?
            .map_err(internal)?
        {
            Some(_) => Ok(()),
            None => Err(s3_error!(NoSuchUpload)),
        }
    }

    pub(super) async fn upload_part_impl(
        &self,
        input: UploadPartInput,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let part = check_part_number(input.part_number)?;
        self.need_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let stored = self
            .store_body(
                input.body,
                input.content_length,
                input.content_md5.as_deref(),
            )
            .await?;
        let tag = self
            .save_part(&input.bucket, &input.key, &input.upload_id, part, stored)
            .await?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&tag)),
            ..Default::default()
        }))
    }

    /// Records `stored` as part `part` of the upload (replacing an earlier part of that
    /// number, whose chunks are freed); returns its ETag. Frees `stored`'s chunks and
    /// says `NoSuchUpload` if the upload ended meanwhile.
    pub(super) async fn save_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: u16,
        stored: blob::Stored,
    ) -> S3Result<String> {
        let row = PartRow {
            etag: hex(&stored.md5),
            size: stored.size,
            modified_ms: clock::now_ms(),
            chunks: stored.chunks,
        };
        let tag = row.etag.clone();
        let meta = self.store.meta.clone();
        let (b, k, i) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        let chunks = row.chunks.clone();
        // Under the shard's lock, so a part never lands after its upload ended.
        let outcome = blocking(move || {
            let _g = meta.lock(&b, &k);
            if meta.upload(&b, &k, &i)?.is_none() {
                return Ok(None);
            }
            meta.put_part(&b, &k, &i, part, &row).map(Some)
        })
        .await?
        .map_err(internal)?;
        match outcome {
            None => {
                blob::free(&self.store.node, chunks).await;
                Err(s3_error!(NoSuchUpload))
            }
            Some(replaced) => {
                if let Some(old) = replaced {
                    blob::free(&self.store.node, old.chunks).await;
                }
                Ok(tag)
            }
        }
    }

    pub(super) async fn complete_multipart_upload_impl(
        &self,
        input: CompleteMultipartUploadInput,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let _bucket = self.store.bucket_lock.read().await;
        check_upload_id(&input.upload_id)?;
        let asked = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        if asked.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "You must specify at least one part"
            ));
        }
        if asked.len() > limits::PART_NUMBER_MAX as usize {
            return Err(s3_error!(MalformedXML, "at most 10000 parts"));
        }
        let mut wanted = Vec::with_capacity(asked.len());
        for p in &asked {
            let n = check_part_number(p.part_number.unwrap_or(0))?;
            if wanted.last().is_some_and(|(last, _)| *last >= n) {
                return Err(s3_error!(InvalidPartOrder));
            }
            let tag = p.e_tag.as_ref().map(|e| unquote(e.value()).to_string());
            wanted.push((n, tag));
        }
        let mode = self.versioning(&input.bucket).await?;
        let meta = self.store.meta.clone();
        let (b, k, i) = (
            input.bucket.clone(),
            input.key.clone(),
            input.upload_id.clone(),
        );
        let outcome = blocking(move || -> Result<S3Result<_>, lsm::Error> {
            let _g = meta.lock(&b, &k);
            let Some(upload) = meta.upload(&b, &k, &i)? else {
                return Ok(Err(s3_error!(NoSuchUpload)));
            };
            let stored = meta.parts(&b, &k, &i, 0, limits::PART_NUMBER_MAX as usize)?;
            let mut md5s = Md5::new();
            let mut chunks: Vec<Chunk> = Vec::new();
            let mut size = 0u64;
            let mut used = std::collections::HashSet::new();
            for (idx, (n, tag)) in wanted.iter().enumerate() {
                let Some((_, part)) = stored.iter().find(|(m, _)| m == n) else {
                    return Ok(Err(s3_error!(InvalidPart, "part {n} was not uploaded")));
                };
                if tag.as_deref().is_some_and(|t| t != part.etag) {
                    return Ok(Err(s3_error!(
                        InvalidPart,
                        "part {n}'s ETag does not match"
                    )));
                }
                if idx + 1 < wanted.len() && part.size < limits::PART_BYTES_MIN {
                    return Ok(Err(s3_error!(
                        EntityTooSmall,
                        "Your proposed upload is smaller than the minimum allowed size (part {n})"
                    )));
                }
                let raw: Vec<u8> = (0..part.etag.len())
                    .step_by(2)
                    .filter_map(|j| u8::from_str_radix(part.etag.get(j..j + 2)?, 16).ok())
                    .collect();
                md5s.update(&raw);
                chunks.extend(part.chunks.iter().cloned());
                size += part.size;
                used.insert(*n);
            }
            let unused: Vec<Chunk> = stored
                .into_iter()
                .filter(|(n, _)| !used.contains(n))
                .flat_map(|(_, p)| p.chunks)
                .collect();
            let row = ObjectRow {
                size,
                etag: format!("{}-{}", hex(&md5s.finalize()), wanted.len()),
                modified_ms: clock::now_ms(),
                chunks,
                headers: upload.headers,
                version_id: None,
                delete_marker: false,
            };
            let tag = row.etag.clone();
            let change = meta.finish_upload(&b, &k, &i, Some((row, mode)))?;
            Ok(Ok((tag, change, unused)))
        })
        .await?
        .map_err(internal)?;
        let (tag, change, unused) = outcome?;
        blob::free(&self.store.node, unused).await;
        blob::free(&self.store.node, change.freed).await;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(etag(&tag)),
            version_id: change.version_id,
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            ..Default::default()
        }))
    }

    pub(super) async fn abort_multipart_upload_impl(
        &self,
        input: AbortMultipartUploadInput,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        check_upload_id(&input.upload_id)?;
        let meta = self.store.meta.clone();
        let (b, k, i) = (input.bucket, input.key, input.upload_id);
        let chunks = blocking(move || -> Result<Option<Vec<Chunk>>, lsm::Error> {
            let _g = meta.lock(&b, &k);
            if meta.upload(&b, &k, &i)?.is_none() {
                return Ok(None);
            }
            let parts = meta.parts(&b, &k, &i, 0, limits::PART_NUMBER_MAX as usize)?;
            meta.finish_upload(&b, &k, &i, None)?;
            Ok(Some(
                parts.into_iter().flat_map(|(_, p)| p.chunks).collect(),
            ))
        })
        .await?
        .map_err(internal)?;
        let Some(chunks) = chunks else {
            return Err(s3_error!(NoSuchUpload));
        };
        blob::free(&self.store.node, chunks).await;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn list_parts_impl(
        &self,
        input: ListPartsInput,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        check_upload_id(&input.upload_id)?;
        let max = page_size(input.max_parts)?;
        let marker = match input.part_number_marker {
            None => 0,
            Some(m) if (0..=limits::PART_NUMBER_MAX).contains(&m) => m as u16,
            Some(_) => return Err(s3_error!(InvalidArgument, "invalid part-number-marker")),
        };
        let meta = self.store.meta.clone();
        let (b, k, i) = (
            input.bucket.clone(),
            input.key.clone(),
            input.upload_id.clone(),
        );
        let listed = blocking(move || -> Result<_, lsm::Error> {
            if meta.upload(&b, &k, &i)?.is_none() {
                return Ok(None);
            }
            meta.parts(&b, &k, &i, marker, max + 1).map(Some)
        })
        .await?
        .map_err(internal)?;
        let Some(mut parts) = listed else {
            return Err(s3_error!(NoSuchUpload));
        };
        let truncated = parts.len() > max;
        parts.truncate(max);
        let next = parts.last().map(|(n, _)| i32::from(*n));
        let parts = parts
            .into_iter()
            .map(|(n, p)| Part {
                part_number: Some(i32::from(n)),
                e_tag: Some(etag(&p.etag)),
                size: Some(p.size as i64),
                last_modified: Some(timestamp(p.modified_ms)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max as i32),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: next.filter(|_| truncated),
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    pub(super) async fn list_multipart_uploads_impl(
        &self,
        input: ListMultipartUploadsInput,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.need_bucket(&input.bucket).await?;
        let max = page_size(input.max_uploads)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let key_marker = input.key_marker.clone().unwrap_or_default();
        let meta = self.store.meta.clone();
        let b = input.bucket.clone();
        let p = prefix.clone();
        let mut uploads = blocking(move || meta.uploads(&b, &p, key_marker.as_str(), max + 1))
            .await?
            .map_err(internal)?;
        let truncated = uploads.len() > max;
        uploads.truncate(max);
        let (next_key, next_id) = match uploads.last() {
            Some((k, i, _)) if truncated => (Some(k.clone()), Some(i.clone())),
            _ => (None, None),
        };
        let uploads = uploads
            .into_iter()
            .map(|(key, id, row)| MultipartUpload {
                key: Some(key),
                upload_id: Some(id),
                initiated: Some(timestamp(row.initiated_ms)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            next_upload_id_marker: next_id,
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}
