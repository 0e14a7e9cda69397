//! Prometheus remote write 1.0: snappy-compressed protobuf `WriteRequest`s.
//!
//! Why a module: remote write is the chapter's push path ("agents push to a
//! collector cluster"), and it is what Prometheus, Grafana Agent and
//! OpenTelemetry collectors send. The messages are declared with `prost`
//! derives (no build script); a body is bounded before it is decompressed
//! (by snappy's length header) and after it is decoded (series, labels,
//! samples), and every series passes through [`Labels::new`]'s checks.

use crate::labels::Labels;
use crate::options::Limits;
use crate::{Sample, SeriesSamples};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Its labels.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Its samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<WireSample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WireSample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Decompressed bytes a request may expand to.
pub const DECODED_BYTES_MAX: usize = 64 << 20;

/// A series as a client sends it: label pairs (unchecked) and samples.
pub type WireSeries = (Vec<(String, String)>, Vec<Sample>);

/// Encodes series as a remote-write body (snappy block format).
pub fn encode(series: &[WireSeries]) -> Vec<u8> {
    use prost::Message;
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(l, s)| TimeSeries {
                labels: l
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                samples: s
                    .iter()
                    .map(|&(timestamp, value)| WireSample { value, timestamp })
                    .collect(),
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy compresses any input below 4 GiB")
}

/// Decodes and checks a remote-write body into an append batch.
pub fn decode(body: &[u8], limits: &Limits) -> Result<Vec<SeriesSamples>, String> {
    use prost::Message;
    let len = snap::raw::decompress_len(body).map_err(|e| format!("snappy: {e}"))?;
    if len > DECODED_BYTES_MAX {
        return Err(format!(
            "decoded body of {len} bytes exceeds {DECODED_BYTES_MAX}"
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    let req = WriteRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))?;
    let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    if samples > limits.samples_per_request_max {
        return Err(format!(
            "{samples} samples in one request exceed the limit of {}",
            limits.samples_per_request_max
        ));
    }
    let mut out = Vec::with_capacity(req.timeseries.len());
    for ts in req.timeseries {
        if ts.samples.is_empty() {
            continue;
        }
        let labels = Labels::new(ts.labels.into_iter().map(|l| (l.name, l.value)), limits)
            .map_err(|e| e.to_string())?;
        out.push((
            labels,
            ts.samples
                .into_iter()
                .map(|s| (s.timestamp, s.value))
                .collect(),
        ));
    }
    Ok(out)
}
