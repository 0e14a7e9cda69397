//! A log-structured merge-tree storage engine: commit log, memtable, SSTables, compaction (ch. 6)
//!
//! (Being built.)
#![warn(missing_docs)]
