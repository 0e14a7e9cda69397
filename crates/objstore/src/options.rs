//! Every knob and limit of a data node, with the default and what it trades.
//!
//! Why a module: the data store is a set of trade-offs (file size vs. the number of
//! files and the cost of compacting one; how much garbage to tolerate vs. how much to
//! copy; background I/O vs. foreground latency), and every number a client sends is
//! bounded by one of these before anything is allocated.

use crate::datafile::format::{FILE_HEADER_BYTES, FOOTER_BYTES, RECORD_OVERHEAD_BYTES};

/// How a data node is opened and tuned. `Options::default()` suits a server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Size cap of a data file: the read-write file is sealed (made read-only) once the
    /// next record would take it past this, and a new one is started. Larger: fewer
    /// files (and inodes, and open descriptors) per object; smaller: cheaper compaction
    /// of one file and finer-grained space reclaim.
    pub file_size_bytes_max: u64,
    /// Largest object accepted. An object is read whole to check its checksum (also
    /// for a range read), so this bounds the memory and I/O of one read; the API layer
    /// stores bigger S3 objects as several data-node objects (multipart parts).
    pub object_size_bytes_max: u64,
    /// Data files whose descriptors are kept open for reads (an LRU cache); reads of
    /// other files open them on demand. Bounds the process's descriptors.
    pub open_files_max: usize,
    /// Bytes of data files (live and garbage) the node may hold; a put that would go
    /// past it fails with [`crate::Error::Full`]. Default: no limit.
    pub capacity_bytes_max: u64,
    /// Garbage collection compacts a sealed file when its live bytes are below this
    /// fraction of its size (0.5: at least half garbage). Lower: less copying, more
    /// space held by garbage (space amplification up to `1 / ratio`).
    pub gc_live_ratio_max: f64,
    /// Most files one garbage-collection run compacts.
    pub gc_files_per_run_max: usize,
    /// Most live bytes one run copies (at least one file is taken, whatever its size).
    pub gc_copy_bytes_per_run_max: u64,
    /// Cap on the bytes per second garbage collection copies, so compaction does not
    /// starve foreground writes; 0 means unlimited.
    pub gc_bytes_per_sec: u64,
    /// How often the background garbage collector runs; 0 turns it off (call
    /// [`crate::Node::gc`] instead).
    pub gc_interval_ms: u64,
    /// Memtable size of the mapping table's LSM store (its memory and its commit-log
    /// segment size).
    pub mapping_memtable_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            file_size_bytes_max: 1 << 30,
            object_size_bytes_max: 64 << 20,
            open_files_max: 256,
            capacity_bytes_max: u64::MAX,
            gc_live_ratio_max: 0.5,
            gc_files_per_run_max: 16,
            gc_copy_bytes_per_run_max: 4 << 30,
            gc_bytes_per_sec: 64 << 20,
            gc_interval_ms: 60_000,
            mapping_memtable_bytes: 8 << 20,
        }
    }
}

impl Options {
    /// Checks the options are usable; the error names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let smallest_file = FILE_HEADER_BYTES + RECORD_OVERHEAD_BYTES + FOOTER_BYTES;
        if self.file_size_bytes_max < smallest_file + 1 {
            return Err(format!(
                "file_size_bytes_max must be > {smallest_file} (header, one record's overhead, footer)"
            ));
        }
        if self.object_size_bytes_max == 0
            || self.object_size_bytes_max > self.file_size_bytes_max - smallest_file
        {
            return Err(format!(
                "object_size_bytes_max must be in 1..={} (a record must fit in an empty file)",
                self.file_size_bytes_max - smallest_file
            ));
        }
        if self.open_files_max == 0 {
            return Err("open_files_max must be >= 1".into());
        }
        if !(self.gc_live_ratio_max >= 0.0 && self.gc_live_ratio_max <= 1.0) {
            return Err("gc_live_ratio_max must be in [0, 1]".into());
        }
        if self.gc_files_per_run_max == 0 {
            return Err("gc_files_per_run_max must be >= 1".into());
        }
        if self.mapping_memtable_bytes < 1024 {
            return Err("mapping_memtable_bytes must be >= 1024".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        assert_eq!(Options::default().validate(), Ok(()));
        let cases: [(Options, &str); 5] = [
            (
                Options {
                    file_size_bytes_max: 10,
                    ..Options::default()
                },
                "file_size_bytes_max",
            ),
            (
                Options {
                    object_size_bytes_max: 2 << 30,
                    ..Options::default()
                },
                "object_size_bytes_max",
            ),
            (
                Options {
                    open_files_max: 0,
                    ..Options::default()
                },
                "open_files_max",
            ),
            (
                Options {
                    gc_live_ratio_max: f64::NAN,
                    ..Options::default()
                },
                "gc_live_ratio_max",
            ),
            (
                Options {
                    gc_files_per_run_max: 0,
                    ..Options::default()
                },
                "gc_files_per_run_max",
            ),
        ];
        for (opts, field) in cases {
            let err = opts.validate().unwrap_err();
            assert!(err.contains(field), "{err}");
        }
    }
}
