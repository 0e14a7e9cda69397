//! What blocking commands share in the command layer: timeout arguments
//! and [`Ctx::block`], the call that turns "nothing to serve" into a wait
//! (the mechanism is described in `crate::state::blocking`).

use bytes::Bytes;

use super::Ctx;
use crate::protocol::Frame;
use crate::state::blocking::BlockRequest;

/// Parses a timeout in seconds (`BLPOP`'s last argument, `BZPOPMIN`'s...)
/// as Redis 7.0 does: a float (`0.5`, `1e1`, `inf` counts as negative),
/// rounded up to whole milliseconds, `0` = forever. Returns the deadline
/// in Unix ms (`None` = forever) from `now_ms`.
pub(crate) fn timeout_secs(arg: &[u8], now_ms: u64) -> Result<Option<u64>, Frame> {
    let secs = std::str::from_utf8(arg)
        .ok()
        .filter(|t| !t.is_empty() && t.trim() == *t && !t.to_ascii_lowercase().contains("nan"))
        .and_then(|t| t.parse::<f64>().ok())
        .ok_or_else(|| Frame::error("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    // Redis casts to a C long long: out of range (inf) comes out negative.
    // (`ms` is never NaN: the parse refuses it and inf * 1000 is inf.)
    if !(0.0..9.223_372_036_854_775e18).contains(&ms) {
        return Err(negative());
    }
    Ok(deadline(ms as u64, now_ms))
}

/// Parses a timeout in milliseconds (`XREAD BLOCK ms`): an integer >= 0,
/// `0` = forever. Returns the deadline in Unix ms (`None` = forever).
pub(crate) fn timeout_ms(arg: &[u8], now_ms: u64) -> Result<Option<u64>, Frame> {
    let ms = crate::protocol::parse::parse_i64_strict(arg)
        .ok_or_else(|| Frame::error("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(negative());
    }
    Ok(deadline(ms as u64, now_ms))
}

fn negative() -> Frame {
    Frame::error("ERR timeout is negative")
}

fn deadline(ms: u64, now_ms: u64) -> Option<u64> {
    (ms > 0).then(|| now_ms.saturating_add(ms))
}

impl Ctx<'_> {
    /// Whether this run is a blocked client's re-run after a wake (a
    /// handler may then treat a key of another type as empty, as Redis 7.0
    /// does for a key that changed type while a client waited on it).
    pub(crate) fn retrying(&self) -> bool {
        self.depth == 1 && self.conn.blocked.is_some()
    }

    /// Asks the connection to wait until one of `keys` is written or
    /// `deadline_ms` (Unix ms, `None` = forever) passes, then to re-run
    /// `args` (the command's own arguments, or a rewrite of them that
    /// keeps the first run's meaning, such as `XREAD` with `$` resolved).
    /// The handler then returns the reply to send on timeout.
    ///
    /// Returns `false` when the command may not block (inside `MULTI`/`EXEC`
    /// or a script: anything but the connection's own top-level command):
    /// the handler answers at once, as Redis does for a client that cannot
    /// block.
    pub(crate) fn block(
        &mut self,
        keys: &[Bytes],
        deadline_ms: Option<u64>,
        args: &[Bytes],
    ) -> bool {
        if self.depth != 1 || self.conn.multi.is_some() {
            return false;
        }
        self.conn.block_request = Some(BlockRequest {
            keys: keys.to_vec(),
            deadline_ms,
            args: args.to_vec(),
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_redis_7_0() {
        let now = 1_000;
        assert_eq!(timeout_secs(b"0", now), Ok(None));
        assert_eq!(timeout_secs(b"-0", now), Ok(None));
        assert_eq!(timeout_secs(b"-0.0001", now), Ok(None), "rounds up to 0");
        assert_eq!(
            timeout_secs(b"0.0001", now),
            Ok(Some(1_001)),
            "rounds up to 1 ms"
        );
        assert_eq!(timeout_secs(b"1.5", now), Ok(Some(2_500)));
        assert_eq!(timeout_secs(b".5", now), Ok(Some(1_500)));
        assert_eq!(timeout_secs(b"+1", now), Ok(Some(2_000)));
        for bad in [&b"x"[..], b"", b" 1", b"1 ", b"nan"] {
            assert_eq!(
                timeout_secs(bad, now),
                Err(Frame::error("ERR timeout is not a float or out of range")),
                "{bad:?}"
            );
        }
        for negative in [&b"-1"[..], b"inf", b"1e400", b"9223372036854775807"] {
            assert_eq!(
                timeout_secs(negative, now),
                Err(Frame::error("ERR timeout is negative")),
                "{negative:?}"
            );
        }
        assert_eq!(timeout_ms(b"10", now), Ok(Some(1_010)));
        assert_eq!(timeout_ms(b"0", now), Ok(None));
        assert_eq!(
            timeout_ms(b"-1", now),
            Err(Frame::error("ERR timeout is negative"))
        );
        assert_eq!(
            timeout_ms(b"1.5", now),
            Err(Frame::error(
                "ERR timeout is not an integer or out of range"
            ))
        );
    }
}
