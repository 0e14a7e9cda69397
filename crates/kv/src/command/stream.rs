//! Streams: an append-only log with consumer groups (XADD, XREADGROUP...).

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
