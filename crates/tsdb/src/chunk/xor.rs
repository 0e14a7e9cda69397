//! The Gorilla codec: delta-of-delta timestamps and XOR-compressed floats.
//!
//! Layout: a 2-byte big-endian sample count, then a bit stream:
//! * sample 0: timestamp as a zigzag varint (bytes in the stream), value as 64
//!   raw bits;
//! * sample 1: timestamp delta as a zigzag varint, value XOR-encoded;
//! * sample n ≥ 2: delta of deltas in a bucket — `0` (0), `10`+7 bits,
//!   `110`+14 bits, `1110`+20 bits, `1111`+64 bits (two's complement), value
//!   XOR-encoded. (Prometheus's buckets are 14/17/20 bits; a 7-bit bucket
//!   makes a scrape a few milliseconds late cost 9 bits instead of 16.)
//!
//! XOR encoding of `v` against the previous value `p`: `0` if equal; else `1`,
//! then `0` + the meaningful bits if they fit the previous window of leading
//! and trailing zeros, or `1` + 5 bits of leading zeros + 6 bits of length
//! (64 written as 0) + the bits.

use super::bits::{BitReader, BitWriter};

/// Bytes of the sample-count header.
const HEADER_BYTES: usize = 2;

/// Appends samples to one chunk, keeping the state the next sample needs.
/// Timestamps must strictly increase (the head guarantees it).
#[derive(Clone, Debug)]
pub struct XorAppender {
    w: BitWriter,
    count: u16,
    t: i64,
    delta: i64,
    v_bits: u64,
    /// Leading zeros of the current XOR window; 0xff before the first window.
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk.
    pub fn new() -> Self {
        Self {
            w: BitWriter::from_bytes(vec![0; HEADER_BYTES]),
            count: 0,
            t: 0,
            delta: 0,
            v_bits: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// Samples in the chunk.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// The last timestamp appended (meaningless while empty).
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// The chunk's bytes (valid to decode at any time).
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Appends one sample; `false` (and nothing written) if the chunk is full
    /// (65535 samples) or `t` does not follow the last timestamp.
    pub fn append(&mut self, t: i64, v: f64) -> bool {
        if self.count == u16::MAX || (self.count > 0 && t <= self.t) {
            return false;
        }
        let bits = v.to_bits();
        match self.count {
            0 => {
                write_varint(&mut self.w, t);
                self.w.bits(bits, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                write_varint(&mut self.w, delta);
                self.write_value(bits);
                self.delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(self.delta);
                write_dod(&mut self.w, dod);
                self.write_value(bits);
                self.delta = delta;
            }
        }
        self.t = t;
        self.v_bits = bits;
        self.count += 1;
        let [hi, lo] = self.count.to_be_bytes();
        self.w.patch(0, hi);
        self.w.patch(1, lo);
        true
    }

    fn write_value(&mut self, bits: u64) {
        let x = bits ^ self.v_bits;
        if x == 0 {
            self.w.bit(false);
            return;
        }
        self.w.bit(true);
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.w.bits(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            let sig = 64 - leading - trailing;
            self.w.bit(true);
            self.w.bits(u64::from(leading), 5);
            self.w.bits(u64::from(sig % 64), 6);
            self.w.bits(x >> trailing, sig);
        }
    }
}

/// Zigzag varint, byte by byte into the bit stream.
fn write_varint(w: &mut BitWriter, v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (u & 0x7f) as u8;
        u >>= 7;
        if u == 0 {
            w.bits(u64::from(b), 8);
            return;
        }
        w.bits(u64::from(b | 0x80), 8);
    }
}

fn read_varint(r: &mut BitReader<'_>) -> Option<i64> {
    let mut u = 0u64;
    for shift in (0..64).step_by(7) {
        let b = r.bits(8)?;
        u |= (b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((u >> 1) as i64) ^ -((u & 1) as i64));
        }
    }
    None
}

/// The delta-of-delta buckets: (prefix bits, prefix length, value bits).
const BUCKETS: [(u64, u8, u8); 3] = [(0b10, 2, 7), (0b110, 3, 14), (0b1110, 4, 20)];

fn write_dod(w: &mut BitWriter, dod: i64) {
    if dod == 0 {
        w.bit(false);
        return;
    }
    for (prefix, plen, n) in BUCKETS {
        let half = 1i64 << (n - 1);
        if (-half..half).contains(&dod) {
            w.bits(prefix, plen);
            w.bits(dod as u64 & ((1u64 << n) - 1), n);
            return;
        }
    }
    w.bits(0b1111, 4);
    w.bits(dod as u64, 64);
}

fn read_dod(r: &mut BitReader<'_>) -> Option<i64> {
    let mut ones = 0u8;
    while ones < 4 && r.bit()? {
        ones += 1;
    }
    let n = match ones {
        0 => return Some(0),
        1 => 7,
        2 => 14,
        3 => 20,
        _ => return Some(r.bits(64)? as i64),
    };
    let raw = r.bits(n)?;
    // Sign-extend the n-bit two's complement field.
    Some(((raw << (64 - n)) as i64) >> (64 - n))
}

/// Decodes a chunk sample by sample; a damaged chunk yields one `Err` and stops.
#[derive(Clone, Debug)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    delta: i64,
    v_bits: u64,
    leading: u8,
    trailing: u8,
    failed: bool,
}

impl<'a> XorIter<'a> {
    /// An iterator over the samples of `chunk`.
    pub fn new(chunk: &'a [u8]) -> Self {
        let total = match chunk {
            [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            _ => 1, // too short for a header: the first step fails
        };
        Self {
            r: BitReader::at_byte(chunk, HEADER_BYTES),
            total,
            read: 0,
            t: 0,
            delta: 0,
            v_bits: 0,
            leading: 0,
            trailing: 0,
            failed: false,
        }
    }

    fn step(&mut self) -> Option<(i64, f64)> {
        match self.read {
            0 => {
                self.t = read_varint(&mut self.r)?;
                self.v_bits = self.r.bits(64)?;
            }
            1 => {
                self.delta = read_varint(&mut self.r)?;
                self.t = self.t.wrapping_add(self.delta);
                self.read_value()?;
            }
            _ => {
                self.delta = self.delta.wrapping_add(read_dod(&mut self.r)?);
                self.t = self.t.wrapping_add(self.delta);
                self.read_value()?;
            }
        }
        Some((self.t, f64::from_bits(self.v_bits)))
    }

    fn read_value(&mut self) -> Option<()> {
        if !self.r.bit()? {
            return Some(());
        }
        if self.r.bit()? {
            self.leading = self.r.bits(5)? as u8;
            let sig = match self.r.bits(6)? as u8 {
                0 => 64,
                s => s,
            };
            self.trailing = 64u8.checked_sub(self.leading + sig)?;
        }
        let sig = 64u8.checked_sub(self.leading + self.trailing)?;
        let x = self.r.bits(sig)?;
        self.v_bits ^= x.checked_shl(u32::from(self.trailing)).unwrap_or(0);
        Some(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = Result<(i64, f64), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.read >= self.total {
            return None;
        }
        match self.step() {
            Some(s) => {
                self.read += 1;
                Some(Ok(s))
            }
            None => {
                self.failed = true;
                Some(Err(format!(
                    "chunk truncated or damaged at sample {} of {}",
                    self.read, self.total
                )))
            }
        }
    }
}

/// Encodes samples with strictly increasing timestamps into one chunk; `None`
/// if they are not strictly increasing or more than 65535.
pub fn encode(samples: &[(i64, f64)]) -> Option<Vec<u8>> {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        if !a.append(t, v) {
            return None;
        }
    }
    Some(a.bytes().to_vec())
}

/// Decodes a whole chunk.
pub fn decode(chunk: &[u8]) -> Result<Vec<(i64, f64)>, String> {
    XorIter::new(chunk).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_scrapes_cost_about_two_bits_per_sample() {
        // A constant gauge scraped every 15 s: dod 0 (1 bit) + same value (1 bit).
        let samples: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, 42.0))
            .collect();
        let c = encode(&samples).unwrap();
        assert_eq!(decode(&c).unwrap(), samples);
        assert!(c.len() <= 2 + 6 + 8 + 3 + 30, "{} bytes", c.len());
    }

    #[test]
    fn jitter_and_big_jumps_use_every_bucket() {
        let ts = [
            0i64,
            15_000,
            30_001,
            45_000,
            60_000 + 8_000,
            300_000,
            300_001,
            10_000_000_000,
            i64::MAX / 2,
        ];
        let samples: Vec<(i64, f64)> = ts
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as f64 * 1.5))
            .collect();
        assert_eq!(decode(&encode(&samples).unwrap()).unwrap(), samples);
    }

    #[test]
    fn out_of_order_and_damage_are_refused_not_panics() {
        assert!(encode(&[(5, 1.0), (5, 2.0)]).is_none());
        let samples: Vec<(i64, f64)> = (0..50).map(|i| (i * 1000, (i as f64).sin())).collect();
        let c = encode(&samples).unwrap();
        for cut in 0..c.len() {
            let r = decode(&c[..cut]);
            assert!(r.is_err() || cut >= c.len(), "a cut at {cut} must fail");
        }
    }
}
