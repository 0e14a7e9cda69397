//! Strings, completed: bit operations, LCS, SORT, COPY, OBJECT, TOUCH.

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
