//! Lists: sequences with pushes and pops at both ends (LPUSH, LRANGE, BLPOP...).

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
