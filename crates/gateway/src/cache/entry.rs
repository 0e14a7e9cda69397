//! One stored object: the response (status, headers, body), the request
//! values it was selected by (`Vary`), its `Surrogate-Key` tags, and the
//! times RFC 9111 needs to compute its age and freshness later.
//!
//! Objects are immutable once stored (an `Arc` shared by every hit); a
//! revalidation stores a new one. [`encode`] / [`decode`] are the disk
//! tier's format: length-prefixed fields, checked on read (a truncated or
//! foreign file decodes to an error, never to a wrong object).

use bytes::{Buf, BufMut, Bytes};
use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::stale::StalePolicy;
use super::vary::Selection;

/// A stored response.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The status.
    pub status: StatusCode,
    /// Response headers, hop-by-hop ones removed.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The request values that selected this variant.
    pub vary: Selection,
    /// `Surrogate-Key` tags, for purging by tag.
    pub tags: Vec<String>,
    /// When the response arrived (Unix ms).
    pub response_time_ms: u64,
    /// Its age on arrival (§4.2.3 `corrected_initial_age`).
    pub initial_age_ms: u64,
    /// Its freshness lifetime.
    pub lifetime_ms: u64,
    /// What it allows once stale.
    pub stale: StalePolicy,
}

impl Entry {
    /// The current age (§4.2.3).
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        self.initial_age_ms + now_ms.saturating_sub(self.response_time_ms)
    }

    /// How far past its lifetime it is (0 while fresh).
    pub fn staleness_ms(&self, now_ms: u64) -> u64 {
        self.age_ms(now_ms).saturating_sub(self.lifetime_ms)
    }

    /// Bytes it costs in memory (body, headers, bookkeeping).
    pub fn size_bytes(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        let vary: usize = self
            .vary
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        let tags: usize = self.tags.iter().map(String::len).sum();
        (self.body.len() + headers + vary + tags + 128) as u64
    }
}

/// The tags of a response's `Surrogate-Key` headers (space-separated).
pub fn surrogate_keys(headers: &HeaderMap) -> Vec<String> {
    let mut tags: Vec<String> = headers
        .get_all("surrogate-key")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(str::split_whitespace)
        .take(64)
        .map(str::to_string)
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// Magic and version of the disk format.
const MAGIC: &[u8; 4] = b"HCE1";

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.put_u32(bytes.len() as u32);
    out.put_slice(bytes);
}

/// Serialises `entries` (the variants of one key `key`).
pub fn encode(key: &super::key::Key, entries: &[std::sync::Arc<Entry>]) -> Vec<u8> {
    let body_bytes: usize = entries.iter().map(|e| e.body.len()).sum();
    let mut out = Vec::with_capacity(body_bytes + 1024);
    out.put_slice(MAGIC);
    for part in [&key.host, &key.path, &key.query, &key.full] {
        put_bytes(&mut out, part.as_bytes());
    }
    out.put_u32(entries.len() as u32);
    for entry in entries {
        out.put_u16(entry.status.as_u16());
        out.put_u64(entry.response_time_ms);
        out.put_u64(entry.initial_age_ms);
        out.put_u64(entry.lifetime_ms);
        out.put_u8(entry.stale.forbidden as u8);
        out.put_u64(entry.stale.while_revalidate_ms);
        out.put_u64(entry.stale.if_error_ms);
        out.put_u32(entry.headers.len() as u32);
        for (name, value) in &entry.headers {
            put_bytes(&mut out, name.as_str().as_bytes());
            put_bytes(&mut out, value.as_bytes());
        }
        out.put_u32(entry.vary.len() as u32);
        for (name, value) in &entry.vary {
            put_bytes(&mut out, name.as_str().as_bytes());
            put_bytes(&mut out, value.as_bytes());
        }
        out.put_u32(entry.tags.len() as u32);
        for tag in &entry.tags {
            put_bytes(&mut out, tag.as_bytes());
        }
        put_bytes(&mut out, &entry.body);
    }
    out
}

/// A reader that fails instead of panicking on short input.
struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> Result<(), String> {
        if self.0.remaining() < n {
            return Err("truncated cache file".into());
        }
        Ok(())
    }
    fn u8(&mut self) -> Result<u8, String> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }
    fn u16(&mut self) -> Result<u16, String> {
        self.need(2)?;
        Ok(self.0.get_u16())
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }
    fn u64(&mut self) -> Result<u64, String> {
        self.need(8)?;
        Ok(self.0.get_u64())
    }
    fn bytes(&mut self) -> Result<Bytes, String> {
        let n = self.u32()? as usize;
        self.need(n)?;
        Ok(self.0.split_to(n))
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "bad utf-8 in cache file".into())
    }
    fn count(&mut self) -> Result<usize, String> {
        let n = self.u32()? as usize;
        // Every counted item takes at least 4 bytes: a bound from the input.
        if n > self.0.remaining() / 4 + 1 {
            return Err("corrupt count in cache file".into());
        }
        Ok(n)
    }
}

/// Reads what [`encode`] wrote.
pub fn decode(data: Bytes) -> Result<(super::key::Key, Vec<Entry>), String> {
    let mut r = Reader(data);
    r.need(4)?;
    if &r.0.split_to(4)[..] != MAGIC {
        return Err("not a cache file".into());
    }
    let key = super::key::Key {
        host: r.string()?,
        path: r.string()?,
        query: r.string()?,
        full: r.string()?,
    };
    let mut entries = Vec::new();
    for _ in 0..r.count()? {
        let status = StatusCode::from_u16(r.u16()?).map_err(|e| e.to_string())?;
        let response_time_ms = r.u64()?;
        let initial_age_ms = r.u64()?;
        let lifetime_ms = r.u64()?;
        let stale = StalePolicy {
            forbidden: r.u8()? != 0,
            while_revalidate_ms: r.u64()?,
            if_error_ms: r.u64()?,
        };
        let mut headers = HeaderMap::new();
        for _ in 0..r.count()? {
            let name = HeaderName::from_bytes(&r.bytes()?).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_maybe_shared(r.bytes()?).map_err(|e| e.to_string())?;
            headers.append(name, value);
        }
        let mut vary = Vec::new();
        for _ in 0..r.count()? {
            let name = HeaderName::from_bytes(&r.bytes()?).map_err(|e| e.to_string())?;
            vary.push((name, r.string()?));
        }
        let mut tags = Vec::new();
        for _ in 0..r.count()? {
            tags.push(r.string()?);
        }
        let body = r.bytes()?;
        entries.push(Entry {
            status,
            headers,
            body,
            vary,
            tags,
            response_time_ms,
            initial_age_ms,
            lifetime_ms,
            stale,
        });
    }
    Ok((key, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn encode_decode_round_trips_and_rejects_truncation() {
        let mut headers = HeaderMap::new();
        headers.insert("etag", HeaderValue::from_static("\"v1\""));
        let entry = Entry {
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(b"hello"),
            vary: vec![(HeaderName::from_static("accept"), "text/html".into())],
            tags: vec!["a".into(), "b".into()],
            response_time_ms: 5,
            initial_age_ms: 6,
            lifetime_ms: 7,
            stale: StalePolicy {
                forbidden: true,
                while_revalidate_ms: 8,
                if_error_ms: 9,
            },
        };
        let key = super::super::key::Key {
            host: "h".into(),
            path: "/p".into(),
            query: "q=1".into(),
            full: "h/p?q=1".into(),
        };
        let data = encode(&key, &[Arc::new(entry.clone())]);
        let (decoded_key, decoded) = decode(Bytes::from(data.clone())).unwrap();
        assert_eq!(decoded_key, key);
        assert_eq!(decoded.len(), 1);
        let got = &decoded[0];
        assert_eq!(
            (got.body.clone(), got.tags.clone()),
            (entry.body, entry.tags)
        );
        assert_eq!(got.headers, entry.headers);
        assert_eq!(got.stale, entry.stale);
        assert_eq!(got.vary, entry.vary);
        for cut in [0, 3, 10, data.len() - 1] {
            assert!(
                decode(Bytes::copy_from_slice(&data[..cut])).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn surrogate_keys_split_on_spaces() {
        let mut headers = HeaderMap::new();
        headers.append("surrogate-key", HeaderValue::from_static("b a"));
        headers.append("surrogate-key", HeaderValue::from_static("a  c"));
        assert_eq!(surrogate_keys(&headers), ["a", "b", "c"]);
    }
}
