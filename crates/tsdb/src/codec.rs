//! Little-endian field reading shared by the WAL and block formats.
//!
//! Why a module: both on-disk formats read bounded fields from bytes that may
//! be damaged; one reader returns `None` past the end instead of panicking.

/// Reads little-endian fields from a byte slice; `None` past the end.
pub(crate) struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.0.len()
    }
    pub fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A zigzag LEB128 varint (at most 10 bytes).
    pub fn varint(&mut self) -> Option<i64> {
        let mut u = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            u |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Some(((u >> 1) as i64) ^ -((u & 1) as i64));
            }
        }
        None
    }

    /// A string of a `u16` length.
    pub fn string(&mut self) -> Option<String> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// Writes a string with a `u16` length (label names and values are bounded
/// far below 64 KiB by the limits).
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..n]);
}

/// Writes a zigzag LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}
