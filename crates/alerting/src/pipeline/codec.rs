//! The record format of the pipeline: one record holds a batch of series,
//! each with its labels and `(t_ms, value)` samples. JSON, with values as
//! their IEEE bits so NaN payloads (the staleness marker) survive.
//!
//! Why a module: producers and consumers of other languages can read and
//! write it (any Kafka client and a JSON library suffice).

use serde::{Deserialize, Serialize};

use crate::rules::LabelSet;

/// Bytes of one encoded record at most (the broker's default message limit is 1 MiB).
pub const RECORD_BYTES_MAX: usize = 900 * 1024;

/// One series of a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireSeries {
    /// Labels, `__name__` included.
    #[serde(rename = "l")]
    pub labels: LabelSet,
    /// `(t_ms, f64::to_bits(value))`.
    #[serde(rename = "s")]
    pub samples: Vec<(i64, u64)>,
}

/// Encodes series as a record value.
pub fn encode(series: &[WireSeries]) -> Vec<u8> {
    serde_json::to_vec(series).expect("series serialize")
}

/// Decodes a record value.
pub fn decode(value: &[u8]) -> Result<Vec<WireSeries>, String> {
    if value.len() > 16 * RECORD_BYTES_MAX {
        return Err(format!("record of {} bytes is too large", value.len()));
    }
    serde_json::from_slice(value).map_err(|e| format!("not a metrics record: {e}"))
}
