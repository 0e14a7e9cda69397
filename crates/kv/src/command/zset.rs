//! Sorted sets: members ordered by score (ZADD, ZRANGE, ZPOPMIN...).

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
