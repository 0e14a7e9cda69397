//! Data files: many objects packed into one large append-only file.
//!
//! Why a module: this is the chapter's answer to small objects. A file per object
//! wastes the rest of its last disk block and spends an inode (and a directory
//! entry, and a descriptor to read it) on every object, and file systems slow down
//! with millions of tiny files; so objects are appended as *records* to one
//! read-write file until it reaches a size cap, and the file is then *sealed*
//! (read-only, with a footer). A record is found again through the object-mapping
//! table (`crate::mapping`), which holds its file, offset, size and checksum.
//!
//! The byte format is in [`mod@format`]; this module does the file I/O: create, append
//! (cut back on failure), read one record checked against its checksum, scan a file's
//! record headers (for garbage collection), seal, and cut a torn tail.

pub mod format;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ObjectId;
use crate::error::{Error, IoContext, Result};
use format::{
    FILE_HEADER_BYTES, FOOTER_BYTES, RECORD_HEADER_BYTES, RecordHeader, check_record, footer,
    parse_footer,
};

/// Where a stored object's record lives: the value of the object-mapping table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The data file (its number).
    pub file_id: u64,
    /// Byte offset of the record in that file.
    pub offset: u64,
    /// Object bytes (the record is [`format::RECORD_OVERHEAD_BYTES`] longer).
    pub len: u64,
    /// The record's CRC-32C (checked against the record on every read).
    pub crc: u32,
}

impl Location {
    /// Bytes of the whole record on disk.
    pub fn record_bytes(&self) -> u64 {
        self.len + format::RECORD_OVERHEAD_BYTES
    }

    /// Offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset + self.record_bytes()
    }
}

/// Where a data file is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// The read-write file: records are appended to it.
    Active,
    /// Full (or sealed on request): no more appends; its footer and the mappings of
    /// its last records are being committed. Not yet eligible for compaction.
    Sealing,
    /// Read-only with a footer, every record's mapping committed: garbage collection
    /// may compact it.
    Sealed,
}

/// One data file as the node sees it (the input of the garbage-collection planner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The file's number.
    pub file_id: u64,
    /// Read-write, sealing or sealed.
    pub state: FileState,
    /// Bytes on disk (header, records live and dead, footer).
    pub size_bytes: u64,
    /// Bytes of records the mapping still points at.
    pub live_bytes: u64,
    /// Objects the mapping still points at.
    pub live_objects: u64,
}

impl FileInfo {
    /// Bytes a compaction would give back: everything but the live records.
    pub fn garbage_bytes(&self) -> u64 {
        self.size_bytes.saturating_sub(self.live_bytes)
    }
}

/// The name of data file `file_id`: 16 hex digits, so names sort like numbers.
pub fn file_name(file_id: u64) -> String {
    format!("{file_id:016x}.dat")
}

/// The number of a data file from its name (`None` for any other file).
pub fn parse_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".dat")?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// The read-write file: where appends go, and what they need to know about it.
#[derive(Debug)]
pub struct ActiveFile {
    /// The file, shared with the group commit that fsyncs it.
    pub file: Arc<File>,
    /// Its path (for errors).
    pub path: PathBuf,
    /// Its number.
    pub file_id: u64,
    /// Its length: where the next record goes.
    pub end: u64,
    /// CRC-32C of its bytes so far (the seal footer's whole-file checksum).
    pub crc: u32,
}

impl ActiveFile {
    /// Creates data file `file_id` in `dir` with its header (no fsync: the caller's
    /// group commit fsyncs the directory and the file before any mapping refers to it).
    pub fn create(dir: &Path, file_id: u64) -> Result<Self> {
        let path = dir.join(file_name(file_id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        let header = format::file_header(file_id);
        if let Err(e) = file.write_all_at(&header, 0) {
            let _ = std::fs::remove_file(&path);
            return Err(Error::io(&path, e));
        }
        Ok(Self {
            file: Arc::new(file),
            path,
            file_id,
            end: FILE_HEADER_BYTES,
            crc: crc32c::crc32c(&header),
        })
    }

    /// Appends the record of object `id` holding `data` and returns its location. A
    /// failed write is cut back, so the file holds no partial record;
    /// `Err((error, cut_failed))` says whether that cut failed too (then the file's
    /// tail is unknown and the caller must stop writing to it).
    pub fn append(
        &mut self,
        id: ObjectId,
        data: &[u8],
    ) -> std::result::Result<Location, (Error, bool)> {
        let (header, crc) = format::frame(id, data);
        let (file, end) = (&self.file, self.end);
        let written = if data.len() <= 64 << 10 {
            // Small objects (the common case): one write system call.
            let mut buf = Vec::with_capacity(header.len() + data.len() + 4);
            buf.extend_from_slice(&header);
            buf.extend_from_slice(data);
            buf.extend_from_slice(&crc.to_le_bytes());
            file.write_all_at(&buf, end)
        } else {
            // Large ones: no copy of the object.
            let data_at = end + RECORD_HEADER_BYTES;
            file.write_all_at(&header, end)
                .and_then(|()| file.write_all_at(data, data_at))
                .and_then(|()| file.write_all_at(&crc.to_le_bytes(), data_at + data.len() as u64))
        };
        if let Err(e) = written {
            let cut_failed = file.set_len(end).is_err();
            return Err((Error::io(&self.path, e), cut_failed));
        }
        self.crc = crc32c::crc32c_append(self.crc, &header);
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.crc = crc32c::crc32c_append(self.crc, &crc.to_le_bytes());
        let loc = Location {
            file_id: self.file_id,
            offset: end,
            len: data.len() as u64,
            crc,
        };
        self.end = loc.end();
        Ok(loc)
    }

    /// True when the file holds no record yet.
    pub fn is_empty(&self) -> bool {
        self.end <= FILE_HEADER_BYTES
    }
}

/// Reads the record at `loc` and returns bytes `range` of object `id` (the whole
/// record is read and checked first: a damaged record is [`Error::Corrupt`], never
/// served). `range` must lie within `0..loc.len`.
pub fn read_object(
    file: &File,
    path: &Path,
    id: ObjectId,
    loc: &Location,
    range: std::ops::Range<u64>,
) -> Result<Vec<u8>> {
    // Bound the allocation by the file, not by what the mapping claims.
    let file_len = file.metadata().at(path)?.len();
    if loc.end() > file_len {
        return Err(Error::corrupt(
            path,
            loc.offset,
            format!("the record runs past the end of the file ({file_len} bytes)"),
        ));
    }
    let record_len = usize::try_from(loc.record_bytes())
        .map_err(|_| Error::corrupt(path, loc.offset, "record larger than memory"))?;
    let mut record = vec![0u8; record_len];
    file.read_exact_at(&mut record, loc.offset)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                Error::corrupt(path, loc.offset, "record runs past the end of the file")
            }
            _ => Error::io(path, e),
        })?;
    let object = check_record(&record, id, loc.len, loc.crc)
        .map_err(|detail| Error::corrupt(path, loc.offset, detail))?;
    let start = object.start + range.start as usize;
    let end = object.start + range.end as usize;
    record.truncate(end);
    record.drain(..start);
    Ok(record)
}

/// The footer of a sealed file: `(data_end, file_crc)`, or `None` if `file` (of
/// `len` bytes) has no valid footer.
pub fn read_footer(file: &File, path: &Path, len: u64) -> Result<Option<(u64, u32)>> {
    if len < FILE_HEADER_BYTES + FOOTER_BYTES {
        return Ok(None);
    }
    let mut f = [0u8; FOOTER_BYTES as usize];
    file.read_exact_at(&mut f, len - FOOTER_BYTES).at(path)?;
    Ok(parse_footer(&f, len))
}

/// CRC-32C of the first `len` bytes of `file` (read in 1 MiB chunks).
pub fn crc_of_prefix(file: &File, path: &Path, len: u64) -> Result<u32> {
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], pos).at(path)?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        pos += n as u64;
    }
    Ok(crc)
}

/// Seals a file whose records end at `data_end` (whole-file crc `file_crc`): writes
/// the footer there and fsyncs. After this the file is never written again.
pub fn seal(file: &File, path: &Path, data_end: u64, file_crc: u32) -> Result<()> {
    file.write_all_at(&footer(data_end, file_crc), data_end)
        .at(path)?;
    file.set_len(data_end + FOOTER_BYTES).at(path)?;
    file.sync_data().at(path)
}

/// Verifies a sealed file whole: its footer, and the footer's crc over every byte
/// before it (a scrub that needs no mapping). Returns the number of data bytes.
pub fn verify_sealed(path: &Path) -> Result<u64> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    let (data_end, file_crc) = read_footer(&file, path, len)?.ok_or_else(|| {
        Error::corrupt(
            path,
            len.saturating_sub(FOOTER_BYTES),
            "no valid seal footer",
        )
    })?;
    let crc = crc_of_prefix(&file, path, data_end)?;
    if crc != file_crc {
        return Err(Error::corrupt(
            path,
            0,
            format!("file checksum mismatch (footer {file_crc:#010x}, computed {crc:#010x})"),
        ));
    }
    Ok(data_end)
}

/// Walks the record headers of a file from its first record to `data_end`, checking
/// each header's own crc (not the object bytes: that is the reader's job). Garbage
/// collection uses it to find every record of a sealed file.
pub struct Scan<'a> {
    file: &'a File,
    path: &'a Path,
    pos: u64,
    data_end: u64,
}

impl<'a> Scan<'a> {
    /// A scan over `file`'s records up to `data_end`.
    pub fn new(file: &'a File, path: &'a Path, data_end: u64) -> Self {
        Self {
            file,
            path,
            pos: FILE_HEADER_BYTES,
            data_end,
        }
    }
}

impl Iterator for Scan<'_> {
    /// `(offset, header)` of the next record; an error ends the scan (a damaged
    /// header hides where the next record starts).
    type Item = Result<(u64, RecordHeader)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data_end {
            return None;
        }
        let at = self.pos;
        let fail = |this: &mut Self, detail: String| {
            this.pos = this.data_end;
            Some(Err(Error::corrupt(this.path, at, detail)))
        };
        if self.data_end - at < RECORD_HEADER_BYTES {
            return fail(
                self,
                "a partial record header at the end of the data".into(),
            );
        }
        let mut h = [0u8; RECORD_HEADER_BYTES as usize];
        if let Err(e) = self.file.read_exact_at(&mut h, at) {
            self.pos = self.data_end;
            return Some(Err(Error::io(self.path, e)));
        }
        let header = match RecordHeader::decode(&h) {
            Ok(header) => header,
            Err(detail) => return fail(self, detail),
        };
        if header.record_bytes() > self.data_end - at {
            return fail(
                self,
                format!("record of {} bytes runs past the data", header.len),
            );
        }
        self.pos = at + header.record_bytes();
        Some(Ok((at, header)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_numbers_and_only_ours_parse() {
        assert_eq!(file_name(255), "00000000000000ff.dat");
        assert_eq!(parse_file_name("00000000000000ff.dat"), Some(255));
        assert!(file_name(9) < file_name(10));
        for other in [
            "ff.dat",
            "00000000000000ff.tmp",
            "0000000000000xff.dat",
            "LOCK",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn append_read_scan_and_seal() {
        let dir = tempfile::tempdir().unwrap();
        let mut active = ActiveFile::create(dir.path(), 7).unwrap();
        assert!(active.is_empty());
        assert!(
            ActiveFile::create(dir.path(), 7).is_err(),
            "never reuses a file"
        );
        let (file, path) = (active.file.clone(), active.path.clone());
        let mut locs = Vec::new();
        let big = vec![9u8; 100 << 10];
        for (i, data) in [&b"one"[..], b"", &big, b"four"].into_iter().enumerate() {
            let id = ObjectId::from_parts(1, i as u128);
            let loc = active.append(id, data).unwrap();
            assert_eq!(
                read_object(&file, &path, id, &loc, 0..loc.len).unwrap(),
                data
            );
            locs.push((id, loc));
        }
        let end = active.end;
        let (id, loc) = locs[3];
        assert_eq!(read_object(&file, &path, id, &loc, 1..3).unwrap(), b"ou");
        let scanned: Vec<u64> = Scan::new(&file, &path, end).map(|r| r.unwrap().0).collect();
        assert_eq!(
            scanned,
            locs.iter().map(|(_, l)| l.offset).collect::<Vec<_>>()
        );
        assert_eq!(read_footer(&file, &path, end).unwrap(), None);
        let crc = crc_of_prefix(&file, &path, end).unwrap();
        assert_eq!(crc, active.crc, "the running crc is the file's");
        seal(&file, &path, end, crc).unwrap();
        assert_eq!(
            read_footer(&file, &path, end + FOOTER_BYTES).unwrap(),
            Some((end, crc))
        );
        assert_eq!(verify_sealed(&path).unwrap(), end);
        // A flipped bit anywhere before the footer fails the whole-file check.
        file.write_all_at(&[0xFF], 20).unwrap();
        assert!(matches!(verify_sealed(&path), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn a_damaged_header_ends_the_scan_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut active = ActiveFile::create(dir.path(), 1).unwrap();
        let (file, path) = (active.file.clone(), active.path.clone());
        let id = ObjectId::from_parts(1, 1);
        let a = active.append(id, b"aaaa").unwrap();
        let b = active.append(id, b"bbbb").unwrap();
        file.write_all_at(&[0xEE], b.offset + 26).unwrap(); // inside b's length field
        let items: Vec<_> = Scan::new(&file, &path, b.end()).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().0, a.offset);
        assert!(matches!(&items[1], Err(Error::Corrupt { offset, .. }) if *offset == b.offset));
    }
}
