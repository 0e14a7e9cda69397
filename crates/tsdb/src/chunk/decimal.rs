//! Decimal values as scaled integers: a block-time refinement of the XOR codec.
//!
//! Why a module: exporters print many values with a few decimals (CPU seconds
//! `12345.67`, temperatures `21.5`). Such a decimal is not exact in binary, so
//! successive values differ in nearly every mantissa bit and XOR saves little
//! (about 7 bytes a sample for CPU seconds). Multiplied by 10^k they become
//! integers, whose floats end in long runs of zero bits that XOR compresses
//! well, as VictoriaMetrics does. A chunk is stored scaled only if **every**
//! value comes back bit for bit (`(v·10^k).round() / 10^k == v`, checked at
//! encode time, with the same IEEE operations the decoder runs), so the trick
//! never changes a value. The head keeps plain chunks (it cannot know future
//! values); blocks choose per chunk.

use super::{decode, encode};

/// Largest number of decimals tried.
pub const SCALE_MAX: u8 = 6;

fn pow10(k: u8) -> f64 {
    10f64.powi(i32::from(k))
}

/// Does `v` survive scaling by 10^k bit for bit, as an integer below 2^53?
fn round_trips(v: f64, k: u8) -> bool {
    let s = (v * pow10(k)).round();
    v.is_finite() && s.abs() < 9_007_199_254_740_992.0 && (s / pow10(k)).to_bits() == v.to_bits()
}

/// The fewest decimals (1..=SCALE_MAX) every value needs, or `None` if the
/// values are integers already or some value has more decimals (or is not
/// finite).
pub fn scale_for(values: impl Iterator<Item = f64> + Clone) -> Option<u8> {
    if values.clone().all(|v| round_trips(v, 0)) {
        return None;
    }
    (1..=SCALE_MAX).find(|&k| values.clone().all(|v| round_trips(v, k)))
}

/// The chunk of `samples` with values scaled by 10^k (`k` from [`scale_for`]).
pub fn encode_scaled(samples: &[(i64, f64)], k: u8) -> Option<Vec<u8>> {
    let scaled: Vec<(i64, f64)> = samples
        .iter()
        .map(|&(t, v)| (t, (v * pow10(k)).round()))
        .collect();
    encode(&scaled)
}

/// Decodes a chunk written by [`encode_scaled`].
pub fn decode_scaled(chunk: &[u8], k: u8) -> Result<Vec<(i64, f64)>, String> {
    if k > SCALE_MAX {
        return Err(format!("decimal scale {k} is above {SCALE_MAX}"));
    }
    Ok(decode(chunk)?
        .into_iter()
        .map(|(t, s)| (t, s / pow10(k)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_scale_only_when_every_value_comes_back() {
        // As parsed from exposition text ("12345.67"): the double nearest the decimal.
        let cpu: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 15_000, (1_234_567 + i * 13) as f64 / 100.0))
            .collect();
        let vals = || cpu.iter().map(|s| s.1);
        let k = scale_for(vals()).unwrap();
        assert!(k <= 2, "{k}");
        let scaled = encode_scaled(&cpu, k).unwrap();
        let back = decode_scaled(&scaled, k).unwrap();
        assert!(
            back.iter()
                .zip(&cpu)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
        );
        assert!(
            scaled.len() * 2 < encode(&cpu).unwrap().len(),
            "scaled is much smaller"
        );
        assert_eq!(
            scale_for([1.0, 2.0].into_iter()),
            None,
            "integers need no scale"
        );
        assert_eq!(scale_for([0.1, f64::NAN].into_iter()), None);
        assert_eq!(scale_for([std::f64::consts::PI].into_iter()), None);
    }
}
