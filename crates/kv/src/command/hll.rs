//! HyperLogLog: cardinality estimates in 12 KB (PFADD, PFCOUNT, PFMERGE).

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
