//! A bit stream: the Gorilla encoding writes fields of 1 to 64 bits, not bytes.
//!
//! Why a module: both halves of the codec (timestamps and values) share it,
//! and the reader never panics on a truncated or damaged chunk: every read
//! returns `None` past the end, which the decoder reports as corruption.

/// Appends bits, most significant first, to a byte vector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0..=7; 0 means start a new byte).
    free: u8,
}

impl BitWriter {
    /// A writer continuing after `bytes` (all bits of them used).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes, free: 0 }
    }

    /// Writes one bit.
    pub fn bit(&mut self, on: bool) {
        if self.free == 0 {
            self.bytes.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if on && let Some(last) = self.bytes.last_mut() {
            *last |= 1 << self.free;
        }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64), high bit first.
    pub fn bits(&mut self, v: u64, n: u8) {
        let mut n = n.min(64);
        while n > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            let shift = n - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            self.free -= take;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << self.free;
            }
            n -= take;
        }
    }

    /// Overwrites byte `i` (a header written before the bits).
    pub fn patch(&mut self, i: usize, b: u8) {
        if let Some(x) = self.bytes.get_mut(i) {
            *x = b;
        }
    }

    /// The bytes written so far (the last one may be partly used).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bits written.
    pub fn len_bits(&self) -> usize {
        self.bytes.len() * 8 - self.free as usize
    }
}

/// Reads bits written by [`BitWriter`]; `None` past the end.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// A reader at byte `offset` of `bytes`.
    pub fn at_byte(bytes: &'a [u8], offset: usize) -> Self {
        Self {
            bytes,
            pos: offset * 8,
        }
    }

    /// Reads one bit.
    pub fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let on = byte & (0x80 >> (self.pos % 8)) != 0;
        self.pos += 1;
        Some(on)
    }

    /// Reads `n` bits (n ≤ 64) as the low bits of a `u64`.
    pub fn bits(&mut self, n: u8) -> Option<u64> {
        let n = n.min(64);
        if self.pos + n as usize > self.bytes.len() * 8 {
            return None;
        }
        let mut v = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.bytes[self.pos / 8];
            let used = (self.pos % 8) as u8;
            let avail = 8 - used;
            let take = left.min(avail);
            let chunk = (byte >> (avail - take)) & ((1u16 << take) - 1) as u8;
            v = (v << take) | u64::from(chunk);
            self.pos += take as usize;
            left -= take;
        }
        Some(v)
    }

    /// The byte offset after the bits read so far (rounded up).
    pub fn byte_pos(&self) -> usize {
        self.pos.div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_every_width_read_back() {
        let mut w = BitWriter::default();
        let mut want = Vec::new();
        let mut rng = 0x1234_5678_9abc_def0u64;
        for n in (1..=64u8).chain(1..=64) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let v = if n == 64 { rng } else { rng & ((1 << n) - 1) };
            w.bits(v, n);
            w.bit(n % 3 == 0);
            want.push((v, n));
        }
        let mut r = BitReader::new(w.bytes());
        for (v, n) in want {
            assert_eq!(r.bits(n), Some(v), "width {n}");
            assert_eq!(r.bit(), Some(n % 3 == 0));
        }
        assert_eq!(r.bits(8), None, "past the end is None, not a panic");
    }
}
