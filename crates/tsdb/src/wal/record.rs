//! WAL records and their framing.
//!
//! Why a module: the byte format is what survives a crash, so it is specified
//! and checked in one place. A frame is `len: u32 LE | crc32c(payload): u32 LE
//! | payload`; the payload's first byte is the record type:
//! * `1` series: `ref: u64 | n: u16 | n × (len: u16, name, len: u16, value)`;
//! * `2` samples: `n: u32 | base ref: u64 | base t: i64 | n × (ref − base:
//!   zigzag varint, t − base: zigzag varint, value bits: u64)` — a request's
//!   series are created together and its samples share a timestamp, so the
//!   deltas take a byte or two and a sample about 11 bytes instead of 24.
//!
//! A reader stops at the first frame that is short or fails its checksum: after
//! a crash that is the torn tail of the last segment, cut away on open.

use crate::codec::{Reader as Cursor, put_str, put_varint};
use crate::labels::{Label, Labels};

/// Bytes of a frame header.
pub(crate) const FRAME_HEADER_BYTES: usize = 8;
/// Largest payload a reader accepts (bounds memory on a damaged length).
pub(crate) const PAYLOAD_BYTES_MAX: usize = 64 << 20;

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
/// Bytes of one sample in a samples record.
/// Fewest bytes of one sample in a samples record (two 1-byte varints and
/// the value).
const SAMPLE_BYTES_MIN: usize = 10;

/// One WAL record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A series was created with this ref.
    Series {
        /// Its head ref.
        series_ref: u64,
        /// Its labels.
        labels: Labels,
    },
    /// Samples appended: (series ref, timestamp ms, value).
    Samples(Vec<(u64, i64, f64)>),
}

impl Record {
    /// Appends this record's frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
        match self {
            Record::Series { series_ref, labels } => {
                out.push(SERIES);
                out.extend_from_slice(&series_ref.to_le_bytes());
                out.extend_from_slice(&(labels.len() as u16).to_le_bytes());
                for l in labels.iter() {
                    put_str(out, &l.name);
                    put_str(out, &l.value);
                }
            }
            Record::Samples(samples) => {
                out.push(SAMPLES);
                out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
                let (base_ref, base_t) = samples.first().map_or((0, 0), |s| (s.0, s.1));
                out.extend_from_slice(&base_ref.to_le_bytes());
                out.extend_from_slice(&base_t.to_le_bytes());
                for &(r, t, v) in samples {
                    put_varint(out, r.wrapping_sub(base_ref) as i64);
                    put_varint(out, t.wrapping_sub(base_t));
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
        }
        let payload = &out[start + FRAME_HEADER_BYTES..];
        let len = (payload.len() as u32).to_le_bytes();
        let crc = crc32c::crc32c(payload).to_le_bytes();
        out[start..start + 4].copy_from_slice(&len);
        out[start + 4..start + 8].copy_from_slice(&crc);
    }

    /// Parses one payload (checksum already verified).
    fn decode(p: &[u8]) -> Option<Record> {
        let mut c = Cursor(p);
        match c.u8()? {
            SERIES => {
                let series_ref = c.u64()?;
                let n = c.u16()?;
                let mut v = Vec::with_capacity(usize::from(n).min(p.len() / 4));
                for _ in 0..n {
                    let name = c.string()?;
                    let value = c.string()?;
                    v.push(Label { name, value });
                }
                Some(Record::Series {
                    series_ref,
                    labels: Labels::from_stored(v),
                })
            }
            SAMPLES => {
                let n = c.u32()? as usize;
                let (base_ref, base_t) = (c.u64()?, c.u64()? as i64);
                if n > c.remaining() / SAMPLE_BYTES_MIN {
                    return None;
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let r = base_ref.wrapping_add(c.varint()? as u64);
                    let t = base_t.wrapping_add(c.varint()?);
                    v.push((r, t, f64::from_bits(c.u64()?)));
                }
                Some(Record::Samples(v))
            }
            _ => None,
        }
    }
}

/// What reading a run of frames found.
#[derive(Debug, Default)]
pub struct Read {
    /// The valid records, in order.
    pub records: Vec<Record>,
    /// Bytes of valid frames from the start.
    pub valid_bytes: u64,
    /// Why reading stopped before the end, if it did.
    pub stopped: Option<String>,
}

/// Reads every valid frame of `bytes`, stopping at the first bad one.
pub fn read_frames(bytes: &[u8]) -> Read {
    let mut out = Read::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let Some(h) = bytes.get(pos..pos + FRAME_HEADER_BYTES) else {
            out.stopped = Some(format!("short frame header at byte {pos}"));
            break;
        };
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let start = pos + FRAME_HEADER_BYTES;
        let payload = match bytes.get(start..start.saturating_add(len)) {
            Some(p) if len <= PAYLOAD_BYTES_MAX => p,
            _ => {
                out.stopped = Some(format!("frame at byte {pos} runs past the end"));
                break;
            }
        };
        if crc32c::crc32c(payload) != crc {
            out.stopped = Some(format!("checksum mismatch in frame at byte {pos}"));
            break;
        }
        match Record::decode(payload) {
            Some(r) => out.records.push(r),
            None => {
                out.stopped = Some(format!("unparsable record at byte {pos}"));
                break;
            }
        }
        pos = start + len;
        out.valid_bytes = pos as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Limits;

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_cut() {
        let labels = Labels::new([("__name__", "up"), ("job", "x")], &Limits::default()).unwrap();
        let recs = vec![
            Record::Series {
                series_ref: 7,
                labels,
            },
            Record::Samples(vec![
                (7, 1000, 1.5),
                (7, 2000, f64::NAN),
                (3, -5, 0.0),
                (u64::MAX, i64::MIN, 1.0),
            ]),
        ];
        let mut buf = Vec::new();
        for r in &recs {
            r.encode(&mut buf);
        }
        let read = read_frames(&buf);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.records[0], recs[0]);
        match (&read.records[1], &recs[1]) {
            (Record::Samples(a), Record::Samples(b)) => {
                let bits = |v: &[(u64, i64, f64)]| {
                    v.iter()
                        .map(|s| (s.0, s.1, s.2.to_bits()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    bits(a),
                    bits(b),
                    "samples round trip bit for bit, any deltas"
                );
            }
            _ => panic!("record kinds differ"),
        }
        assert_eq!(read.valid_bytes, buf.len() as u64);
        assert!(read.stopped.is_none());
        for cut in 1..buf.len() {
            let r = read_frames(&buf[..cut]);
            // A cut between frames reads cleanly; anywhere else it stops early.
            assert!(r.valid_bytes <= cut as u64);
            assert_eq!(
                r.stopped.is_none(),
                r.valid_bytes == cut as u64,
                "cut at {cut}"
            );
        }
        let mut flipped = buf.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        assert_eq!(
            read_frames(&flipped).records.len(),
            1,
            "a bit flip fails the checksum"
        );
    }
}
