//! `LCS`: the longest common subsequence of two strings (`LEN`, `IDX` with
//! `MINMATCHLEN` and `WITHMATCHLEN`), by Redis's dynamic programme, with
//! Redis's tie-breaking so the string and the match ranges equal Redis's.
//!
//! The table is `(m+1)·(n+1)` 32-bit cells: as in Redis it is refused when
//! it would exceed `proto-max-bulk-len`, and here also past
//! [`TABLE_BYTES_MAX`], before anything is allocated (two 1 MB strings
//! would otherwise ask for 4 TB).

use bytes::Bytes;

use crate::command::{Ctx, READONLY, Spec, int_arg, is, reply, syntax_error};
use crate::protocol::Frame;
use crate::value::Value;

/// The largest LCS table this server allocates for one command (on top of
/// Redis's `proto-max-bulk-len` rule): it is transient, but built under the
/// keyspace lock.
pub const TABLE_BYTES_MAX: u64 = 256 << 20;

pub(super) fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "lcs",
        arity: -3,
        flags: READONLY,
        keys: (1, 2, 1),
        group: "string",
        summary: "Finds the longest common subsequence of two strings.",
        handler: lcs,
    }]
}

/// A string operand (`""` if absent); the LCS error for another type.
fn operand(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Bytes, Frame> {
    let now = ctx.now_ms;
    match ctx
        .ks()
        .get(key, now)
        .map_err(crate::command::engine_error)?
    {
        Some(entry) => match entry.value {
            Value::String(bytes) => Ok(bytes),
            Value::Collection(_) => Err(Frame::error(
                "ERR The specified keys must contain string values",
            )),
        },
        None => Ok(Bytes::new()),
    }
}

fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        // Both keys are read before the options are parsed, as in Redis.
        let a_result = operand(ctx, &args[1]);
        let b_result = operand(ctx, &args[2]);
        let (a, b) = (a_result?, b_result?);
        let (mut idx, mut len, mut with_len, mut min_len) = (false, false, false, 0i64);
        let mut j = 3;
        while j < args.len() {
            let opt = &args[j];
            if is(opt, "idx") {
                idx = true;
            } else if is(opt, "len") {
                len = true;
            } else if is(opt, "withmatchlen") {
                with_len = true;
            } else if is(opt, "minmatchlen") && j + 1 < args.len() {
                min_len = int_arg(&args[j + 1])?.max(0);
                j += 1;
            } else {
                return Err(syntax_error());
            }
            j += 1;
        }
        if idx && len {
            return Err(Frame::error(
                "ERR If you want both the length and indexes, please just use IDX.",
            ));
        }
        if a.len() as u64 >= u64::from(u32::MAX) - 1 || b.len() as u64 >= u64::from(u32::MAX) - 1 {
            return Err(Frame::error("ERR String too long for LCS"));
        }
        let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
        let bytes = cells * 4;
        if bytes > ctx.state.config.read().proto_max_bulk_len {
            return Err(Frame::error(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            ));
        }
        if bytes > TABLE_BYTES_MAX {
            return Err(Frame::error(format!(
                "ERR Insufficient memory, transient memory for LCS exceeds {TABLE_BYTES_MAX} bytes"
            )));
        }
        let table = Table::build(&a, &b);
        let total = table.at(a.len(), b.len());
        if len {
            return Ok(Frame::Integer(i64::from(total)));
        }
        let (text, matches) = table.walk(&a, &b, min_len as u64, with_len);
        if !idx {
            return Ok(Frame::Bulk(Bytes::from(text)));
        }
        let map = vec![
            (Frame::bulk("matches"), Frame::Array(matches)),
            (Frame::bulk("len"), Frame::Integer(i64::from(total))),
        ];
        Ok(if ctx.resp3() {
            Frame::Map(map)
        } else {
            Frame::Array(map.into_iter().flat_map(|(k, v)| [k, v]).collect())
        })
    })())
}

/// `LCS(i, j)`: the LCS length of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    fn build(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * width + j - 1] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + j - 1])
                };
            }
        }
        Table { cells, width }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    /// Redis's walk back from the end: the LCS string and the match ranges
    /// (`[[a_start, a_end], [b_start, b_end](, len)]`, last match first).
    fn walk(&self, a: &[u8], b: &[u8], min_len: u64, with_len: bool) -> (Vec<u8>, Vec<Frame>) {
        let mut n = self.at(a.len(), b.len()) as usize;
        let mut text = vec![0u8; n];
        let mut matches = Vec::new();
        let (mut i, mut j) = (a.len(), b.len());
        // `a_start == a.len()` means "no range open", as in Redis.
        let (mut a_start, mut a_end, mut b_start, mut b_end) = (a.len(), 0, 0, 0);
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                text[n - 1] = a[i - 1];
                if a_start == a.len() {
                    (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
                } else if a_start == i && b_start == j {
                    a_start -= 1;
                    b_start -= 1;
                } else {
                    emit = true;
                }
                if a_start == 0 || b_start == 0 {
                    emit = true;
                }
                n -= 1;
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                if a_start != a.len() {
                    emit = true;
                }
            }
            let match_len = (a_end as u64).wrapping_sub(a_start as u64).wrapping_add(1);
            if emit {
                if min_len == 0 || match_len >= min_len {
                    let pair = |x: usize, y: usize| {
                        Frame::Array(vec![Frame::Integer(x as i64), Frame::Integer(y as i64)])
                    };
                    let mut item = vec![pair(a_start, a_end), pair(b_start, b_end)];
                    if with_len {
                        item.push(Frame::Integer(match_len as i64));
                    }
                    matches.push(Frame::Array(item));
                }
                a_start = a.len();
            }
        }
        (text, matches)
    }
}
