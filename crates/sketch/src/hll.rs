//! HyperLogLog, exactly as Redis implements it: the same hash, the same
//! registers, the same byte format, the same estimator.
//!
//! Why it exists: counting distinct things (visitors, search terms, IPs)
//! exactly needs memory proportional to the count; a HyperLogLog answers
//! within ~0.81% (standard error, `1.04/√16384`) in at most 12 KB whatever
//! the count. The key-value server's `PFADD`/`PFCOUNT`/`PFMERGE` store one
//! as a plain string value, so it must be Redis's own bytes: a client may
//! `GET` a HyperLogLog from Redis and `SET` it here (or back), and `PFCOUNT`
//! must give Redis's number for the same inputs.
//!
//! The algorithm (Redis's `hyperloglog.c`):
//! - each element is hashed with MurmurHash64A (seed `0xadc83b19`); the low
//!   14 bits pick one of 16,384 registers, and the register keeps the
//!   longest run seen of "trailing zeros + 1" of the remaining 50 bits;
//! - the estimate is Otmar Ertl's improved estimator (Redis ≥ 5) over the
//!   histogram of register values: no bias-correction tables, no switch to
//!   linear counting.
//!
//! Byte format (little-endian), shared with Redis:
//! ```text
//! "HYLL" | encoding u8 (0 dense, 1 sparse) | 3 unused | cached card u64 (MSB of the
//!         last byte set = cache invalid) | registers
//! dense:  16384 × 6-bit registers, LSB first (12,288 bytes)
//! sparse: opcodes  00xxxxxx        ZERO  run of xxxxxx+1 zero registers
//!                  01xxxxxx yyyyyyyy XZERO run of (x·256+y)+1 zero registers
//!                  1vvvvvxx        VAL   xx+1 registers of value vvvvv+1
//! ```
//! A new HyperLogLog is sparse (18 bytes) and turns dense when a register
//! exceeds 32 or the sparse form would exceed [`SPARSE_MAX_BYTES`]. The
//! sparse update splits and merges opcodes with Redis's own rules, so the
//! bytes after any sequence of additions are the bytes Redis would hold.

/// Index bits: 2^14 registers.
const P: u32 = 14;
/// Hash bits left for the run length.
const Q: u32 = 64 - P;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// Bits per dense register.
const BITS: usize = 6;
/// The largest register value.
const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Header bytes.
pub const HEADER_BYTES: usize = 16;
/// Size of a dense HyperLogLog in bytes.
pub const DENSE_BYTES: usize = HEADER_BYTES + (REGISTERS * BITS).div_ceil(8);
/// Redis's `hll-sparse-max-bytes` default: a sparse form that would grow past
/// this is converted to dense.
pub const SPARSE_MAX_BYTES: usize = 3000;
/// The seed Redis hashes elements with.
const SEED: u64 = 0xadc8_3b19;
/// `1 / (2 ln 2)`: the estimator's constant for m → ∞.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;

/// Why bytes cannot be used as a HyperLogLog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// Not a HyperLogLog at all (wrong magic, encoding or size): Redis's
    /// `WRONGTYPE Key is not a valid HyperLogLog string value.`
    #[error("not a valid HyperLogLog string value")]
    NotHll,
    /// The header is right but the registers are not (a sparse form that
    /// does not cover exactly 16,384 registers): Redis's `INVALIDOBJ`.
    #[error("corrupted HLL object detected")]
    Corrupt,
}

/// MurmurHash64A, as Redis uses it (little-endian 8-byte blocks).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in blocks.by_ref() {
        let mut k = u64::from_le_bytes(block.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u64::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element goes to and the value it offers it.
pub fn register_of(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// One sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A run of zero registers (1..=64), one byte.
    Zero(usize),
    /// A run of zero registers (1..=16384), two bytes.
    XZero(usize),
    /// A run (1..=4) of registers holding a value (1..=32), one byte.
    Val(u8, usize),
}

impl Op {
    /// Decodes the opcode at `at` (a missing second byte reads as 0, as
    /// Redis reads the string's terminator).
    fn at(bytes: &[u8], at: usize) -> Op {
        let b = bytes[at];
        if b & 0x80 != 0 {
            Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 0x3) + 1)
        } else if b & 0x40 != 0 {
            let low = bytes.get(at + 1).copied().unwrap_or(0);
            Op::XZero(((usize::from(b & 0x3f) << 8) | usize::from(low)) + 1)
        } else {
            Op::Zero(usize::from(b & 0x3f) + 1)
        }
    }

    fn len(self) -> usize {
        match self {
            Op::XZero(_) => 2,
            _ => 1,
        }
    }

    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    fn push(self, out: &mut Vec<u8>) {
        match self {
            Op::Zero(n) => out.push((n - 1) as u8),
            Op::XZero(n) => {
                let l = n - 1;
                out.push(0x40 | (l >> 8) as u8);
                out.push((l & 0xff) as u8);
            }
            Op::Val(v, n) => out.push(0x80 | ((v - 1) << 2) | (n - 1) as u8),
        }
    }

    /// A zero run of `n` registers in its shortest opcode.
    fn zeros(n: usize) -> Op {
        if n > SPARSE_ZERO_MAX_LEN {
            Op::XZero(n)
        } else {
            Op::Zero(n)
        }
    }
}

fn val_byte(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

/// Reads dense register `i`.
fn dense_get(registers: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = u16::from(registers[byte]);
    let b1 = u16::from(registers.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u16::from(REGISTER_MAX)) as u8
}

/// Writes dense register `i`.
fn dense_set(registers: &mut [u8], i: usize, value: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = u16::from(value);
    registers[byte] &= !((u16::from(REGISTER_MAX) << fb) as u8);
    registers[byte] |= (v << fb) as u8;
    if let Some(next) = registers.get_mut(byte + 1) {
        *next &= !(u16::from(REGISTER_MAX) >> (8 - fb)) as u8;
        *next |= (v >> (8 - fb)) as u8;
    }
}

/// A HyperLogLog in Redis's byte format (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hll {
    bytes: Vec<u8>,
}

impl Default for Hll {
    fn default() -> Self {
        Self::new()
    }
}

impl Hll {
    /// An empty HyperLogLog (sparse: one XZERO opcode over every register).
    pub fn new() -> Hll {
        let mut bytes = Vec::with_capacity(HEADER_BYTES + 2);
        bytes.extend_from_slice(b"HYLL");
        bytes.push(ENCODING_SPARSE);
        bytes.extend_from_slice(&[0; 11]);
        Op::XZero(REGISTERS).push(&mut bytes);
        Hll { bytes }
    }

    /// Checks the header as Redis does (magic, encoding, a dense form's
    /// exact size); the registers are checked when read.
    pub fn from_bytes(bytes: &[u8]) -> Result<Hll, HllError> {
        if bytes.len() < HEADER_BYTES
            || &bytes[..4] != b"HYLL"
            || bytes[4] > ENCODING_SPARSE
            || (bytes[4] == ENCODING_DENSE && bytes.len() != DENSE_BYTES)
        {
            return Err(HllError::NotHll);
        }
        Ok(Hll {
            bytes: bytes.to_vec(),
        })
    }

    /// The bytes (Redis's format).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Whether the dense encoding is in use.
    pub fn is_dense(&self) -> bool {
        self.bytes[4] == ENCODING_DENSE
    }

    /// Marks the cached cardinality stale (only the flag bit: the other
    /// cache bytes keep their old value, as in Redis).
    pub fn invalidate_cache(&mut self) {
        self.bytes[15] |= 0x80;
    }

    /// Adds an element; `true` if a register changed.
    pub fn add(&mut self, element: &[u8]) -> Result<bool, HllError> {
        let (index, count) = register_of(element);
        self.set_register(index, count)
    }

    /// Raises register `index` to `count` if lower; `true` if it changed.
    pub fn set_register(&mut self, index: usize, count: u8) -> Result<bool, HllError> {
        if self.is_dense() {
            let registers = &mut self.bytes[HEADER_BYTES..];
            if dense_get(registers, index) < count {
                dense_set(registers, index, count);
                return Ok(true);
            }
            return Ok(false);
        }
        self.sparse_set(index, count)
    }

    /// Redis's `hllSparseSet`: updates in place by splitting the opcode that
    /// covers `index`, then merges adjacent equal VAL opcodes.
    fn sparse_set(&mut self, index: usize, count: u8) -> Result<bool, HllError> {
        if count > SPARSE_VAL_MAX_VALUE {
            return self.promote(index, count);
        }
        let bytes = &self.bytes;
        let end = bytes.len();
        let (mut p, mut first) = (HEADER_BYTES, 0usize);
        let mut prev = None;
        let mut op = None;
        while p < end {
            let here = Op::at(bytes, p);
            if index < first + here.span() {
                op = Some(here);
                break;
            }
            prev = Some(p);
            p += here.len();
            first += here.span();
        }
        let op = op.ok_or(HllError::Corrupt)?;
        let last = first + op.span() - 1;
        match op {
            Op::Val(old, _) if old >= count => return Ok(false),
            Op::Val(_, 1) | Op::Zero(1) => {
                self.bytes[p] = val_byte(count, 1);
                self.merge_adjacent(prev);
                return Ok(true);
            }
            _ => {}
        }
        let mut seq = Vec::with_capacity(5);
        match op {
            Op::Val(current, _) => {
                if index != first {
                    Op::Val(current, index - first).push(&mut seq);
                }
                Op::Val(count, 1).push(&mut seq);
                if index != last {
                    Op::Val(current, last - index).push(&mut seq);
                }
            }
            Op::Zero(_) | Op::XZero(_) => {
                if index != first {
                    Op::zeros(index - first).push(&mut seq);
                }
                Op::Val(count, 1).push(&mut seq);
                if index != last {
                    Op::zeros(last - index).push(&mut seq);
                }
            }
        }
        if seq.len() > op.len() && self.bytes.len() + seq.len() - op.len() > SPARSE_MAX_BYTES {
            return self.promote(index, count);
        }
        let old_end = (p + op.len()).min(self.bytes.len());
        self.bytes.splice(p..old_end, seq);
        self.merge_adjacent(prev);
        Ok(true)
    }

    /// Step 4 of `hllSparseSet`: from the opcode before the change, scans up
    /// to 5 opcodes merging adjacent VALs of equal value (runs up to 4).
    fn merge_adjacent(&mut self, prev: Option<usize>) {
        let mut p = prev.unwrap_or(HEADER_BYTES);
        let mut scan = 5;
        while p < self.bytes.len() && scan > 0 {
            scan -= 1;
            match Op::at(&self.bytes, p) {
                Op::XZero(_) => {
                    p += 2;
                    continue;
                }
                Op::Zero(_) => {
                    p += 1;
                    continue;
                }
                Op::Val(v1, l1) => {
                    if p + 1 < self.bytes.len()
                        && let Op::Val(v2, l2) = Op::at(&self.bytes, p + 1)
                        && v1 == v2
                        && l1 + l2 <= SPARSE_VAL_MAX_LEN
                    {
                        self.bytes[p + 1] = val_byte(v1, l1 + l2);
                        self.bytes.remove(p);
                        continue;
                    }
                }
            }
            p += 1;
        }
    }

    /// Converts to dense and sets the register there (a promoted set always
    /// changes a register, as in Redis).
    fn promote(&mut self, index: usize, count: u8) -> Result<bool, HllError> {
        self.to_dense()?;
        self.set_register(index, count)
    }

    /// Converts a sparse HyperLogLog to dense (Redis's `hllSparseToDense`;
    /// the header, cache bytes included, is kept).
    pub fn to_dense(&mut self) -> Result<(), HllError> {
        if self.is_dense() {
            return Ok(());
        }
        let mut dense = vec![0u8; DENSE_BYTES];
        dense[..HEADER_BYTES].copy_from_slice(&self.bytes[..HEADER_BYTES]);
        dense[4] = ENCODING_DENSE;
        let registers = &mut dense[HEADER_BYTES..];
        let mut idx = 0;
        let mut p = HEADER_BYTES;
        while p < self.bytes.len() {
            let op = Op::at(&self.bytes, p);
            if let Op::Val(value, run) = op {
                if idx + run > REGISTERS {
                    break;
                }
                for i in idx..idx + run {
                    dense_set(registers, i, value);
                }
            }
            idx += op.span();
            p += op.len();
        }
        if idx != REGISTERS {
            return Err(HllError::Corrupt);
        }
        self.bytes = dense;
        Ok(())
    }

    /// Raises `max[i]` to this HyperLogLog's register `i` (Redis's `hllMerge`).
    pub fn merge_into(&self, max: &mut [u8; REGISTERS]) -> Result<(), HllError> {
        if self.is_dense() {
            let registers = &self.bytes[HEADER_BYTES..];
            for (i, slot) in max.iter_mut().enumerate() {
                *slot = (*slot).max(dense_get(registers, i));
            }
            return Ok(());
        }
        let mut i = 0;
        let mut p = HEADER_BYTES;
        while p < self.bytes.len() {
            let op = Op::at(&self.bytes, p);
            if let Op::Val(value, run) = op {
                if i + run > REGISTERS {
                    break;
                }
                for slot in &mut max[i..i + run] {
                    *slot = (*slot).max(value);
                }
            }
            i += op.span();
            p += op.len();
        }
        if i != REGISTERS {
            return Err(HllError::Corrupt);
        }
        Ok(())
    }

    /// The estimated cardinality: the cached one if valid, else computed and
    /// cached (so the bytes change, as `PFCOUNT` changes them in Redis).
    /// Returns the count and whether the bytes changed.
    pub fn count(&mut self) -> Result<(u64, bool), HllError> {
        let card: [u8; 8] = self.bytes[8..16].try_into().expect("8 bytes");
        if card[7] & 0x80 == 0 {
            return Ok((u64::from_le_bytes(card), false));
        }
        let count = estimate(&self.histogram()?);
        self.bytes[8..16].copy_from_slice(&count.to_le_bytes());
        Ok((count, true))
    }

    /// Register value → number of registers holding it.
    fn histogram(&self) -> Result<[u32; 64], HllError> {
        let mut histo = [0u32; 64];
        if self.is_dense() {
            let registers = &self.bytes[HEADER_BYTES..];
            for i in 0..REGISTERS {
                histo[usize::from(dense_get(registers, i))] += 1;
            }
            return Ok(histo);
        }
        let (mut idx, mut p) = (0usize, HEADER_BYTES);
        while p < self.bytes.len() {
            let op = Op::at(&self.bytes, p);
            let value = match op {
                Op::Val(value, _) => usize::from(value),
                _ => 0,
            };
            idx += op.span();
            if idx > REGISTERS {
                return Err(HllError::Corrupt);
            }
            histo[value] += op.span() as u32;
            p += op.len();
        }
        if idx != REGISTERS {
            return Err(HllError::Corrupt);
        }
        Ok(histo)
    }

    /// The sparse opcodes as Redis's `PFDEBUG DECODE` prints them
    /// (`z:len`, `Z:len`, `v:value,len`); `None` for a dense HyperLogLog.
    pub fn decode_sparse(&self) -> Option<String> {
        if self.is_dense() {
            return None;
        }
        let mut out = Vec::new();
        let mut p = HEADER_BYTES;
        while p < self.bytes.len() {
            let op = Op::at(&self.bytes, p);
            out.push(match op {
                Op::Zero(n) => format!("z:{n}"),
                Op::XZero(n) => format!("Z:{n}"),
                Op::Val(v, n) => format!("v:{v},{n}"),
            });
            p += op.len();
        }
        Some(out.join(" "))
    }

    /// The value of every register (for debugging: `PFDEBUG GETREG`).
    pub fn registers(&self) -> Result<Vec<u8>, HllError> {
        let mut max = [0u8; REGISTERS];
        self.merge_into(&mut max)?;
        Ok(max.to_vec())
    }

    /// Writes `max` into this HyperLogLog (PFMERGE's last step): dense first
    /// if `dense`, then every non-zero register raised; invalidates the cache.
    pub fn absorb(&mut self, max: &[u8; REGISTERS], dense: bool) -> Result<(), HllError> {
        if dense {
            self.to_dense()?;
        }
        for (i, &value) in max.iter().enumerate() {
            if value != 0 {
                self.set_register(i, value)?;
            }
        }
        self.invalidate_cache();
        Ok(())
    }
}

/// The estimate for a set of registers (the union of merged HyperLogLogs).
pub fn count_registers(registers: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in registers {
        histo[usize::from(r & 63)] += 1;
    }
    estimate(&histo)
}

/// Ertl's improved estimator over the register histogram ("New cardinality
/// estimation algorithms for HyperLogLog sketches", arXiv:1702.01284), with
/// Redis's exact floating-point steps.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - f64::from(histo[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests;
