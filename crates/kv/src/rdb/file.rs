//! A whole RDB file: the `REDIS0010` header, auxiliary fields, database
//! selectors, keys with their expiry, the EOF opcode and the CRC-64.
//!
//! This is what a full resynchronization sends. [`read_file`] checks the
//! checksum before it parses anything and returns every entry only if the
//! whole file parsed, so a replica handed a corrupt snapshot refuses it and
//! keeps what it had instead of loading half of it.

use bytes::Bytes;

use super::{
    Cursor, RDB_VERSION, RdbError, RdbValue, crc64, decode_value, encode_value, put_len, put_string,
};

const OP_FUNCTION2: u8 = 0xf5;
const OP_FUNCTION: u8 = 0xf6;
const OP_MODULE_AUX: u8 = 0xf7;
const OP_IDLE: u8 = 0xf8;
const OP_FREQ: u8 = 0xf9;
const OP_AUX: u8 = 0xfa;
const OP_RESIZEDB: u8 = 0xfb;
const OP_EXPIRETIME_MS: u8 = 0xfc;
const OP_EXPIRETIME: u8 = 0xfd;
const OP_SELECTDB: u8 = 0xfe;
const OP_EOF: u8 = 0xff;

/// Builds an RDB file in memory, one key at a time.
pub struct FileWriter {
    out: Vec<u8>,
}

impl FileWriter {
    /// The header, `aux` fields (`redis-ver`, `repl-id`, ...), and database 0.
    pub fn new(aux: &[(&str, String)], keys: u64, expires: u64) -> Self {
        let mut out = format!("REDIS{RDB_VERSION:04}").into_bytes();
        for (name, value) in aux {
            out.push(OP_AUX);
            put_string(&mut out, name.as_bytes());
            put_string(&mut out, value.as_bytes());
        }
        out.push(OP_SELECTDB);
        put_len(&mut out, 0);
        out.push(OP_RESIZEDB);
        put_len(&mut out, keys);
        put_len(&mut out, expires);
        FileWriter { out }
    }

    /// Appends one key.
    pub fn entry(&mut self, key: &[u8], value: &RdbValue, expire_at_ms: Option<u64>) {
        if let Some(at) = expire_at_ms {
            self.out.push(OP_EXPIRETIME_MS);
            self.out.extend_from_slice(&at.to_le_bytes());
        }
        let mut body = Vec::new();
        encode_value(&mut body, value);
        // The type byte comes before the key.
        self.out.push(body[0]);
        put_string(&mut self.out, key);
        self.out.extend_from_slice(&body[1..]);
    }

    /// The finished file: EOF opcode and checksum.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(OP_EOF);
        let crc = crc64(&self.out);
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out
    }
}

/// One key of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    /// The database it belongs to (`SELECT` index).
    pub db: u64,
    /// The key.
    pub key: Bytes,
    /// Its value.
    pub value: RdbValue,
    /// Absolute expiry, Unix milliseconds.
    pub expire_at_ms: Option<u64>,
}

/// A parsed file: its auxiliary fields and keys.
#[derive(Debug, Default)]
pub struct Parsed {
    /// `AUX` name/value pairs in file order.
    pub aux: Vec<(Bytes, Bytes)>,
    /// Every key, in file order.
    pub entries: Vec<FileEntry>,
    /// Function libraries' code (`FUNCTION2` records); not loaded here.
    pub functions: Vec<Bytes>,
}

/// Parses a whole file; nothing is returned unless all of it is valid.
pub fn read_file(data: &[u8]) -> Result<Parsed, RdbError> {
    if data.len() < 9 + 1 + 8 || &data[..5] != b"REDIS" {
        return Err(RdbError::Format("not an RDB file"));
    }
    let version: u16 = std::str::from_utf8(&data[5..9])
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(RdbError::Format("RDB version"))?;
    if version > RDB_VERSION {
        return Err(RdbError::Version(version));
    }
    let (body, footer) = data.split_at(data.len() - 8);
    let crc = u64::from_le_bytes(footer.try_into().map_err(|_| RdbError::Truncated)?);
    // A zero checksum means "not computed" (`rdbchecksum no`), as in Redis.
    if version >= 5 && crc != 0 && crc64(body) != crc {
        return Err(RdbError::Checksum);
    }
    let mut cur = Cursor::new(&body[9..]);
    let mut parsed = Parsed::default();
    let mut db = 0;
    let mut expire_at_ms = None;
    loop {
        let op = cur.u8()?;
        match op {
            OP_EOF => break,
            OP_AUX => parsed.aux.push((cur.string()?, cur.string()?)),
            OP_SELECTDB => db = cur.length()?,
            OP_RESIZEDB => {
                cur.length()?;
                cur.length()?;
            }
            OP_EXPIRETIME_MS => expire_at_ms = Some(cur.u64_le()?),
            OP_EXPIRETIME => {
                let raw = cur.take(4)?;
                let secs = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                expire_at_ms = Some(u64::from(secs) * 1000);
            }
            OP_IDLE => {
                cur.length()?;
            }
            OP_FREQ => {
                cur.u8()?;
            }
            OP_FUNCTION2 => parsed.functions.push(cur.string()?),
            OP_FUNCTION | OP_MODULE_AUX => return Err(RdbError::Unsupported(op)),
            kind if super::is_value_type(kind) => {
                let key = cur.string()?;
                let value = decode_value(kind, &mut cur)?;
                parsed.entries.push(FileEntry {
                    db,
                    key,
                    value,
                    expire_at_ms: expire_at_ms.take(),
                });
            }
            _ => return Err(RdbError::Format("unknown opcode")),
        }
    }
    if cur.remaining() != 0 {
        return Err(RdbError::Format("bytes after EOF"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_corruption_is_refused() {
        let mut w = FileWriter::new(&[("redis-ver", "7.0.0".into())], 2, 1);
        w.entry(
            b"s",
            &RdbValue::String(Bytes::from("v")),
            Some(1_900_000_000_000),
        );
        w.entry(
            b"h",
            &RdbValue::Hash(vec![(Bytes::from("f"), Bytes::from("1"))]),
            None,
        );
        let file = w.finish();
        let parsed = read_file(&file).unwrap();
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.entries[0].expire_at_ms, Some(1_900_000_000_000));
        assert_eq!(parsed.entries[1].key, Bytes::from("h"));
        assert_eq!(parsed.aux[0].1, Bytes::from("7.0.0"));
        for i in 9..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            assert!(read_file(&bad).is_err(), "flipped byte {i} accepted");
        }
        assert!(read_file(&file[..file.len() - 1]).is_err());
    }
}
