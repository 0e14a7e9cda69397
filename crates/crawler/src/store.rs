//! Content storage (콘텐츠 저장소): page bodies as local files named by the
//! hash of their URL, metadata as a record in the crawl's LSM store (`d/<url>`,
//! written in the same batch that takes the URL off the frontier), and
//! optionally a WARC file (ISO 28500, WARC/1.1), the format web archives
//! (Heritrix, wget `--warc-file`, pywb, warcio) read. Each WARC record is its
//! own gzip member, as `.warc.gz` files are by convention, so a reader can
//! seek to any record and a torn last member (a `kill -9` mid-write) costs
//! only that record.
//!
//! The HTTP block of a WARC response holds the decoded body (reqwest has
//! already undone `Content-Encoding`), so `Content-Encoding` and
//! `Transfer-Encoding` are dropped from the stored headers and
//! `Content-Length` is rewritten to match.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

/// Key prefix of page records.
pub const DONE_PREFIX: &[u8] = b"d/";

/// What happened to a URL taken off the frontier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Fetched with an HTTP answer.
    Fetched,
    /// robots.txt disallows it (never requested).
    Robots,
    /// No HTTP answer (see `error`).
    Error,
    /// Dropped by a trap limit when handed out (pages per host).
    Trap,
}

/// The metadata of one page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageMeta {
    /// The URL.
    pub url: String,
    /// What happened.
    pub outcome: Outcome,
    /// HTTP status (0 without an answer).
    pub status: u16,
    /// Unix ms of the fetch.
    pub fetched_at_ms: u64,
    /// Media type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_type: String,
    /// Decoded body length.
    pub length: u64,
    /// xxh3-64 of the normalized body.
    #[serde(default)]
    pub content_hash: u64,
    /// SimHash fingerprint.
    #[serde(default)]
    pub simhash: u64,
    /// Links queued from this page (new ones).
    pub outlinks: u32,
    /// Links found on the page.
    pub links_found: u32,
    /// `Location` of a redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<String>,
    /// The page this one duplicates (exact or near).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// `exact` or `near`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_kind: Option<String>,
    /// `<link rel=canonical>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// `ETag` (for conditional recrawls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified` (for conditional recrawls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Error kind, when there was no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Body file under the pages directory, when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<String>,
    /// Depth from the seeds.
    pub depth: u32,
}

/// The key of a page record.
pub fn done_key(url: &str) -> Vec<u8> {
    let mut key = DONE_PREFIX.to_vec();
    key.extend_from_slice(url.as_bytes());
    key
}

/// Body files on local disk.
pub struct BodyStore {
    dir: PathBuf,
}

impl BodyStore {
    /// Under `dir` (created).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes `body` for `url`; returns the file name. Files are spread over
    /// 256 subdirectories so no directory grows past what filesystems like.
    pub fn put(&self, url: &str, body: &[u8]) -> std::io::Result<String> {
        let hash = xxhash_rust::xxh3::xxh3_64(url.as_bytes());
        let sub = format!("{:02x}", hash >> 56);
        std::fs::create_dir_all(self.dir.join(&sub))?;
        let name = format!("{sub}/{hash:016x}.body");
        std::fs::write(self.dir.join(&name), body)?;
        Ok(name)
    }
}

/// A WARC/1.1 writer, one gzip member per record.
pub struct WarcWriter {
    file: File,
    records: u64,
}

/// What a response record holds.
pub struct WarcResponse<'a> {
    /// Target URI.
    pub url: &'a str,
    /// Fetch time (Unix ms).
    pub fetched_at_ms: u64,
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: &'a [(String, String)],
    /// Decoded body.
    pub body: &'a [u8],
}

fn warc_date(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.replace_nanosecond(0)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

impl WarcWriter {
    /// Opens `path` for appending; a new file starts with a `warcinfo` record.
    pub fn open(path: &Path, software: &str) -> std::io::Result<Self> {
        let fresh = std::fs::metadata(path)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut writer = Self { file, records: 0 };
        if fresh {
            let body = format!("software: {software}\r\nformat: WARC File Format 1.1\r\n");
            writer.record(
                "warcinfo",
                None,
                "application/warc-fields",
                clock::now_ms(),
                body.as_bytes(),
            )?;
        }
        Ok(writer)
    }

    /// Records written by this writer.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends a `response` record.
    pub fn response(&mut self, r: &WarcResponse<'_>) -> std::io::Result<()> {
        let mut block = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status)).into_bytes();
        for (name, value) in r.headers {
            if matches!(
                name.as_str(),
                "content-encoding" | "transfer-encoding" | "content-length"
            ) {
                continue;
            }
            block.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        block.extend_from_slice(format!("content-length: {}\r\n\r\n", r.body.len()).as_bytes());
        block.extend_from_slice(r.body);
        self.record(
            "response",
            Some(r.url),
            "application/http;msgtype=response",
            r.fetched_at_ms,
            &block,
        )
    }

    fn record(
        &mut self,
        kind: &str,
        url: Option<&str>,
        content_type: &str,
        at_ms: u64,
        block: &[u8],
    ) -> std::io::Result<()> {
        let mut head = format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:{}>\r\nWARC-Date: {}\r\n",
            uuid::Uuid::new_v4(),
            warc_date(at_ms)
        );
        if let Some(url) = url {
            head.push_str(&format!("WARC-Target-URI: {url}\r\n"));
        }
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            block.len()
        ));
        let mut gz = GzEncoder::new(
            Vec::with_capacity(block.len() / 3 + 256),
            Compression::fast(),
        );
        gz.write_all(head.as_bytes())?;
        gz.write_all(block)?;
        gz.write_all(b"\r\n\r\n")?;
        let member = gz.finish()?;
        self.file.write_all(&member)?;
        self.records += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn warc_records_are_gzip_members_with_lengths_that_match() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.warc.gz");
        let headers = vec![
            ("content-type".to_string(), "text/html".to_string()),
            ("content-encoding".to_string(), "gzip".to_string()),
        ];
        {
            let mut w = WarcWriter::open(&path, "test").expect("open");
            w.response(&WarcResponse {
                url: "http://a.b/",
                fetched_at_ms: 1_700_000_000_123,
                status: 200,
                headers: &headers,
                body: b"<p>hi</p>",
            })
            .expect("write");
        }
        // Reopening appends without a second warcinfo.
        WarcWriter::open(&path, "test").expect("reopen");
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(&path).expect("file"))
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(text.matches("WARC/1.1\r\n").count(), 2);
        assert_eq!(text.matches("warcinfo").count(), 1);
        assert!(text.contains("WARC-Date: 2023-11-14T22:13:20Z"));
        assert!(!text.contains("content-encoding"));
        // Every Content-Length is the exact size of the block after the blank line.
        let record = text.split("WARC/1.1\r\n").nth(2).expect("response record");
        let (head, rest) = record.split_once("\r\n\r\n").expect("head");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("length")
            .parse()
            .expect("number");
        assert_eq!(&rest[len..], "\r\n\r\n");
        assert!(rest[..len].ends_with("<p>hi</p>"));
    }
}
