//! Helpers shared by the test modules: small options, deterministic object contents.

use objstore::Options;

/// Options with a small file cap so files fill, seal and compact within a test, and
/// no background garbage collection (tests run it when they mean to).
pub fn small(file_size_bytes_max: u64) -> Options {
    Options {
        file_size_bytes_max,
        object_size_bytes_max: file_size_bytes_max / 2,
        gc_interval_ms: 0,
        gc_bytes_per_sec: 0,
        mapping_memtable_bytes: 64 << 10,
        ..Options::default()
    }
}

/// `len` bytes determined by `seed` (so a check needs only the seed).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// The number of data files in the node's `data/` directory.
pub fn files_on_disk(node_dir: &std::path::Path) -> usize {
    std::fs::read_dir(node_dir.join("data"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".dat")
        })
        .count()
}
