//! The S3 client of the cold tier: PUT, ranged GET, HEAD and DELETE of one
//! bucket's objects under a prefix.
//!
//! Why a module: the cold tier needs four S3 calls, nothing more. Requests are
//! signed by `rusty-s3` (SigV4 presigned URLs, sans-IO: no second HTTP stack
//! or async runtime) and sent with `reqwest`'s blocking client, since every
//! caller is already off the async workers (maintenance thread, queries in
//! `spawn_blocking`, the rule evaluator's thread). Works against our
//! `hyperscale s3 serve`, AWS S3, MinIO and anything else speaking SigV4.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::error::{Error, IoContext, Result};

/// How long a signed request stays valid (it is sent at once).
const SIGN_VALID: Duration = Duration::from_secs(300);

/// Where cold blocks go and how to reach it.
#[derive(Clone, PartialEq)]
pub struct ColdTarget {
    /// `s3://bucket/prefix` (the prefix may be empty).
    pub url: String,
    /// The S3 endpoint, e.g. `http://127.0.0.1:9000` (ours) or `https://s3.amazonaws.com`.
    pub endpoint: String,
    /// The region signed into requests (`us-east-1` unless the store needs another).
    pub region: String,
    /// Access key id (`AWS_ACCESS_KEY_ID`).
    pub access_key: String,
    /// Secret key (`AWS_SECRET_ACCESS_KEY`); never printed.
    pub secret_key: String,
    /// Session token (`AWS_SESSION_TOKEN`), if the keys are temporary.
    pub session_token: Option<String>,
    /// Timeout of one request, in ms.
    pub timeout_ms: u64,
}

impl std::fmt::Debug for ColdTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdTarget")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Splits `s3://bucket/prefix` into the bucket and the prefix (no slashes at
/// either end).
pub fn parse_url(url: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::InvalidArgument(format!("cold storage URL {url:?}: {why}"));
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("must start with s3://, as s3://bucket/prefix"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
        return Err(bad(
            "the bucket name must be 3-63 characters of a-z, 0-9, '-', '.'",
        ));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// A bucket and prefix on an S3 endpoint.
pub struct ObjectStore {
    bucket: Bucket,
    prefix: String,
    credentials: Credentials,
    http: reqwest::blocking::Client,
    url: String,
}

impl ObjectStore {
    /// Checks `target` and builds the client (no request yet).
    pub fn new(target: &ColdTarget) -> Result<Self> {
        let (bucket, prefix) = parse_url(&target.url)?;
        let bad = |why: String| Error::InvalidArgument(format!("cold storage: {why}"));
        let endpoint = target
            .endpoint
            .parse()
            .map_err(|e| bad(format!("endpoint {:?}: {e}", target.endpoint)))?;
        let bucket = Bucket::new(endpoint, UrlStyle::Path, bucket, target.region.clone())
            .map_err(|e| bad(format!("endpoint {:?}: {e}", target.endpoint)))?;
        if target.access_key.is_empty() || target.secret_key.is_empty() {
            return Err(bad(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            ));
        }
        let credentials = match &target.session_token {
            Some(t) => Credentials::new_with_token(&target.access_key, &target.secret_key, t),
            None => Credentials::new(&target.access_key, &target.secret_key),
        };
        let timeout = Duration::from_millis(target.timeout_ms.max(1));
        let build = move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
        };
        // The blocking client refuses to be built on an async runtime's
        // thread (it starts its own): build it on a plain thread there.
        let http = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::spawn(build)
                .join()
                .map_err(|_| bad("building the HTTP client panicked".into()))?
        } else {
            build()
        }
        .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            bucket,
            prefix,
            credentials,
            http,
            url: target.url.trim_end_matches('/').to_string(),
        })
    }

    /// The object key of `name` (prefix applied).
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// `s3://bucket/prefix/name`, for messages.
    pub fn display(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    fn fail(&self, what: &str, name: &str, e: impl std::fmt::Display) -> Error {
        Error::Cold(format!("{what} {}: {e}", self.display(name)))
    }

    fn check(
        &self,
        what: &str,
        name: &str,
        r: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<reqwest::blocking::Response> {
        let r = r.map_err(|e| self.fail(what, name, e))?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status();
        let body = r.text().unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        Err(self.fail(what, name, format!("HTTP {status}: {body}")))
    }

    /// Uploads the file at `path` as `name`, streamed (one PUT: up to 5 GiB on AWS).
    pub fn put_file(&self, name: &str, path: &Path) -> Result<()> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        let key = self.key(name);
        let url = self
            .bucket
            .put_object(Some(&self.credentials), &key)
            .sign(SIGN_VALID);
        let body = reqwest::blocking::Body::sized(file, len);
        self.check("uploading", name, self.http.put(url).body(body).send())?;
        Ok(())
    }

    /// The object's length and ETag, or `None` if there is no such object.
    pub fn head(&self, name: &str) -> Result<Option<(u64, String)>> {
        let key = self.key(name);
        let url = self
            .bucket
            .head_object(Some(&self.credentials), &key)
            .sign(SIGN_VALID);
        let r = self
            .http
            .head(url)
            .send()
            .map_err(|e| self.fail("checking", name, e))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = self.check("checking", name, Ok(r))?;
        let len = r
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .ok_or_else(|| self.fail("checking", name, "no Content-Length"))?;
        Ok(Some((len, etag(r.headers()))))
    }

    /// Bytes `[offset, offset + len)` of the object (exactly `len` of them).
    pub fn get_range(&self, name: &str, offset: u64, len: u32) -> Result<Vec<u8>> {
        let key = self.key(name);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &key)
            .sign(SIGN_VALID);
        let last = offset + u64::from(len.max(1)) - 1;
        let req = self
            .http
            .get(url)
            .header(reqwest::header::RANGE, format!("bytes={offset}-{last}"));
        let r = self.check("reading", name, req.send())?;
        let bytes = r.bytes().map_err(|e| self.fail("reading", name, e))?;
        if bytes.len() != len as usize {
            return Err(self.fail(
                "reading",
                name,
                format!("asked {len} bytes at {offset}, got {}", bytes.len()),
            ));
        }
        Ok(bytes.to_vec())
    }

    /// The whole object.
    pub fn get(&self, name: &str) -> Result<Vec<u8>> {
        let key = self.key(name);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &key)
            .sign(SIGN_VALID);
        let r = self.check("reading", name, self.http.get(url).send())?;
        Ok(r.bytes()
            .map_err(|e| self.fail("reading", name, e))?
            .to_vec())
    }

    /// Deletes the object (absent is fine: S3 answers 204 either way).
    pub fn delete(&self, name: &str) -> Result<()> {
        let key = self.key(name);
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), &key)
            .sign(SIGN_VALID);
        self.check("deleting", name, self.http.delete(url).send())?;
        Ok(())
    }
}

fn etag(h: &reqwest::header::HeaderMap) -> String {
    h.get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_matches('"')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_say_why() {
        assert_eq!(
            parse_url("s3://metrics/cold/").unwrap(),
            ("metrics".into(), "cold".into())
        );
        assert_eq!(parse_url("s3://abc").unwrap(), ("abc".into(), "".into()));
        for bad in ["http://x/y", "s3://", "s3://A_B/x", "s3://ab"] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains("cold storage URL"), "{bad}: {e}");
        }
    }
}
