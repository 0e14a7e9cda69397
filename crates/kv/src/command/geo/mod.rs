//! GEO: points as 52-bit geohash scores in a sorted set (GEOADD, GEOSEARCH...).

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
