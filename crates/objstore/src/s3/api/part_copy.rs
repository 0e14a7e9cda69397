//! UploadPartCopy, and the copy-source lookup it shares with CopyObject.
//!
//! Why a module: a part copied from an existing object (all of it, or the
//! `x-amz-copy-source-range` bytes) is read from the data store and written as new
//! chunks, exactly as an uploaded part's body would be, so the part owns its bytes
//! (the source may be deleted before the upload completes) and its ETag is the MD5 of
//! those bytes, as S3 computes it.

use s3s::dto::*;
use s3s::{S3Response, S3Result, s3_error};

use super::multipart::check_part_number;
use super::{Api, Conditions, check_preconditions, conditions, etag, timestamp};
use crate::s3::blob;
use crate::s3::meta::ObjectRow;

/// Parses `bytes=FIRST-LAST` (both inclusive, both required) against a source of
/// `size` bytes: `InvalidArgument` when malformed, `InvalidRange` past the end.
fn parse_copy_range(text: &str, size: u64) -> S3Result<std::ops::Range<u64>> {
    let malformed = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (first, last) = text
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(malformed)?;
    let first: u64 = first.trim().parse().map_err(|_| malformed())?;
    let last: u64 = last.trim().parse().map_err(|_| malformed())?;
    if first > last {
        return Err(malformed());
    }
    if last >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        ));
    }
    Ok(first..last + 1)
}

impl Api {
    /// The object a copy reads (its version, if named), after its conditions: a failed
    /// condition is `PreconditionFailed` (S3 never answers a copy with 304).
    pub(super) async fn copy_source(
        &self,
        source: &CopySource,
        conditions: &Conditions<'_>,
    ) -> S3Result<(String, String, Option<String>, ObjectRow)> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(s3_error!(NotImplemented, "only bucket/key copy sources"));
        };
        let version = version_id.as_deref().map(str::to_string);
        let row = self.need_object(bucket, key, version.as_deref()).await?;
        check_preconditions(&row, conditions).map_err(|e| match e.code() {
            s3s::S3ErrorCode::NotModified => s3_error!(PreconditionFailed),
            _ => e,
        })?;
        Ok((bucket.to_string(), key.to_string(), version, row))
    }

    pub(super) async fn upload_part_copy_impl(
        &self,
        input: UploadPartCopyInput,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let part = check_part_number(input.part_number)?;
        self.need_upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let (_, _, _, src) = self
            .copy_source(&input.copy_source, &conditions!(copy_source input))
            .await?;
        let range = match &input.copy_source_range {
            Some(text) => parse_copy_range(text, src.size)?,
            None => 0..src.size,
        };
        if range.end - range.start > self.store.opts.object_size_bytes_max {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size"
            ));
        }
        let bytes = blob::read(self.store.node.clone(), src.chunks.clone(), range);
        let stored = blob::store(
            &self.store.node,
            std::pin::pin!(bytes),
            self.store.opts.object_size_bytes_max,
            self.store.opts.chunk_bytes,
        )
        .await?;
        let tag = self
            .save_part(&input.bucket, &input.key, &input.upload_id, part, stored)
            .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_source_version_id: src.version_id.clone(),
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&tag)),
                last_modified: Some(timestamp(clock::now_ms())),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges_are_checked() {
        assert_eq!(parse_copy_range("bytes=0-9", 10).unwrap(), 0..10);
        assert_eq!(parse_copy_range("bytes=5-5", 10).unwrap(), 5..6);
        for bad in ["0-9", "bytes=9-0", "bytes=-5", "bytes=a-b", "bytes=1-"] {
            let e = parse_copy_range(bad, 10).unwrap_err();
            assert_eq!(*e.code(), s3s::S3ErrorCode::InvalidArgument, "{bad}");
        }
        let e = parse_copy_range("bytes=0-10", 10).unwrap_err();
        assert_eq!(*e.code(), s3s::S3ErrorCode::InvalidRange);
    }
}
