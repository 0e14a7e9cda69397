//! Hashes: field → value maps (HSET, HGET, HSCAN...).

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
