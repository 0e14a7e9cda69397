//! Reading an ID back: when, where and in what order it was made.
//!
//! A snowflake ID carries its creation time, so "when was this made?" needs
//! no database lookup. Decoding needs the same layout and epoch the generator
//! used; with the wrong ones it still succeeds but gives nonsense, which is why
//! the epoch is part of the service's config and printed by `id decode`.

use serde::Serialize;

use crate::layout::{Layout, LayoutError};
use crate::utc;

/// An ID split into its sections, with the time made readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decoded {
    /// The ID itself. Serialized as a string: JSON numbers above 2^53 lose
    /// precision in JavaScript (Twitter's API has `id_str` for this reason).
    #[serde(serialize_with = "as_string")]
    pub id: u64,
    /// Creation time, ISO-8601 UTC with milliseconds.
    pub time: String,
    /// Creation time in ms since 1970.
    pub unix_ms: u64,
    /// Datacenter id.
    pub datacenter: u64,
    /// Machine id.
    pub machine: u64,
    /// Sequence number within the millisecond.
    pub sequence: u64,
}

/// Decodes `id` made with `layout` and `epoch_ms`.
pub fn decode(id: u64, layout: Layout, epoch_ms: u64) -> Result<Decoded, LayoutError> {
    let parts = layout.decode(id)?;
    let unix_ms = epoch_ms.saturating_add(parts.elapsed_ms);
    Ok(Decoded {
        id,
        time: utc::format_iso8601(unix_ms),
        unix_ms,
        datacenter: parts.datacenter,
        machine: parts.machine,
        sequence: parts.sequence,
    })
}

fn as_string<S: serde::Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snowflake::EPOCH_MS_TWITTER;

    #[test]
    fn decodes_a_real_tweet_id() {
        // Tweet 1445078208190291968 was posted 2021-10-04 (Twitter's epoch and layout).
        let d = decode(1_445_078_208_190_291_968, Layout::TWITTER, EPOCH_MS_TWITTER).unwrap();
        assert!(d.time.starts_with("2021-10-04T"), "{}", d.time);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["id"], "1445078208190291968");
    }
}
