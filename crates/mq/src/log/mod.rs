//! The partition log: append-only segment files (being written).
