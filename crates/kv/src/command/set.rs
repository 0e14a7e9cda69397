//! Sets: unordered unique members (SADD, SINTER, SSCAN...).

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
