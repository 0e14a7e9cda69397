//! HyperLogLog: cardinality estimates in 12 KB (PFADD, PFCOUNT, PFMERGE,
//! and Redis's PFDEBUG and PFSELFTEST).
//!
//! The sketch itself is [`sketch::hll`]; here it is stored as a plain
//! string value in Redis's own byte format, so `GET`/`SET` of a HyperLogLog
//! move it between this server and Redis, and `PFCOUNT` answers Redis's
//! number for the same inputs. As in Redis, `PFCOUNT` of one key caches the
//! estimate inside the value (the bytes change; the key's TTL stays).

use bytes::Bytes;
use sketch::hll::{self, Hll, HllError, REGISTERS};

use super::string::{lookup, write};
use super::{Ctx, DENYOOM, READONLY, Spec, WRITE, engine_error, reply};
use crate::protocol::Frame;
use crate::value::Value;

pub(super) fn specs() -> Vec<Spec> {
    let s = super::in_group("hyperloglog");
    vec![
        s(
            "pfadd",
            -2,
            WRITE | DENYOOM,
            (1, 1, 1),
            "Adds elements to a HyperLogLog key, creating it if needed.",
            pfadd,
        ),
        s(
            "pfcount",
            -2,
            READONLY,
            (1, -1, 1),
            "Returns the approximated cardinality of the union of HyperLogLog keys.",
            pfcount,
        ),
        s(
            "pfdebug",
            3,
            WRITE,
            (2, 2, 1),
            "Internal commands for debugging HyperLogLog values (GETREG, DECODE, ENCODING, TODENSE).",
            pfdebug,
        ),
        s(
            "pfselftest",
            1,
            0,
            (0, 0, 0),
            "Checks the HyperLogLog implementation against itself.",
            pfselftest,
        ),
        s(
            "pfmerge",
            -2,
            WRITE | DENYOOM,
            (1, -1, 1),
            "Merges HyperLogLog keys into a destination key.",
            pfmerge,
        ),
    ]
}

/// Redis's reply for each [`HllError`].
fn hll_error(err: HllError) -> Frame {
    match err {
        HllError::NotHll => Frame::error("WRONGTYPE Key is not a valid HyperLogLog string value."),
        HllError::Corrupt => Frame::error("INVALIDOBJ Corrupted HLL object detected"),
    }
}

/// The HyperLogLog at `key` and its TTL, `None` if absent.
fn load(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<(Hll, Option<u64>)>, Frame> {
    match lookup(ctx, key)? {
        Some((bytes, ttl)) => Ok(Some((Hll::from_bytes(&bytes).map_err(hll_error)?, ttl))),
        None => Ok(None),
    }
}

fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let (mut hll, ttl, mut updated) = match load(ctx, &args[1])? {
            Some((hll, ttl)) => (hll, ttl, false),
            None => (Hll::new(), None, true),
        };
        for element in &args[2..] {
            updated |= hll.add(element).map_err(hll_error)?;
        }
        if updated {
            hll.invalidate_cache();
            write(ctx, &args[1], Bytes::from(hll.into_bytes()), ttl)?;
        }
        Ok(Frame::Integer(i64::from(updated)))
    })())
}

fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let now = ctx.now_ms;
        if args.len() > 2 {
            // The union: the register-wise maximum of every key.
            let mut max = [0u8; REGISTERS];
            for key in &args[1..] {
                if let Some(bytes) = super::string::read(ctx, key)? {
                    let hll = Hll::from_bytes(&bytes).map_err(hll_error)?;
                    hll.merge_into(&mut max).map_err(hll_error)?;
                }
            }
            return Ok(Frame::Integer(hll::count_registers(&max) as i64));
        }
        let Some(bytes) = super::string::read(ctx, &args[1])? else {
            return Ok(Frame::Integer(0));
        };
        let mut hll = Hll::from_bytes(&bytes).map_err(hll_error)?;
        drop(bytes);
        let (count, changed) = hll.count().map_err(hll_error)?;
        if changed {
            // Cache the estimate in the value, keeping the TTL.
            let cached = Bytes::from(hll.into_bytes());
            ctx.ks()
                .modify(&args[1], now, &mut |entry| {
                    entry.value = Value::String(cached.clone());
                })
                .map_err(engine_error)?;
        }
        Ok(Frame::Integer(count as i64))
    })())
}

fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let mut max = [0u8; REGISTERS];
        let mut dense = false;
        // The destination is a source too, as in Redis.
        for key in &args[1..] {
            if let Some(bytes) = super::string::read(ctx, key)? {
                let hll = Hll::from_bytes(&bytes).map_err(hll_error)?;
                dense |= hll.is_dense();
                hll.merge_into(&mut max).map_err(hll_error)?;
            }
        }
        let (mut dest, ttl) = load(ctx, &args[1])?.unwrap_or_default();
        dest.absorb(&max, dense).map_err(hll_error)?;
        write(ctx, &args[1], Bytes::from(dest.into_bytes()), ttl)?;
        Ok(Frame::OK)
    })())
}

fn pfdebug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    reply((|| {
        let Some((mut hll, ttl)) = load(ctx, &args[2])? else {
            return Err(Frame::error("ERR The specified key does not exist"));
        };
        let sub = &args[1];
        let name = String::from_utf8_lossy(sub);
        let was_dense = hll.is_dense();
        let reply = if super::is(sub, "getreg") {
            hll.to_dense().map_err(hll_error)?;
            let registers = hll.registers().map_err(hll_error)?;
            Frame::Array(
                registers
                    .into_iter()
                    .map(|r| Frame::Integer(i64::from(r)))
                    .collect(),
            )
        } else if super::is(sub, "decode") {
            match hll.decode_sparse() {
                Some(text) => Frame::Bulk(Bytes::from(text)),
                None => return Err(Frame::error("ERR HLL encoding is not sparse")),
            }
        } else if super::is(sub, "encoding") {
            Frame::Simple(if was_dense { "dense" } else { "sparse" })
        } else if super::is(sub, "todense") {
            hll.to_dense().map_err(hll_error)?;
            Frame::Integer(i64::from(!was_dense))
        } else {
            return Err(Frame::error(format!(
                "ERR Unknown PFDEBUG subcommand '{name}'"
            )));
        };
        if hll.is_dense() != was_dense {
            // GETREG and TODENSE store the dense form, as in Redis (which
            // raises no keyspace event for it).
            write(ctx, &args[2], Bytes::from(hll.into_bytes()), ttl)?;
            ctx.ks().take_touched();
        }
        Ok(reply)
    })())
}

/// Redis's `PFSELFTEST` checks its register macros and estimator; here: a
/// sparse and a dense HyperLogLog fed the same elements hold the same
/// registers and the same estimate, within the error bound.
fn pfselftest(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let mut sparse = Hll::new();
    let mut dense = Hll::new();
    if dense.to_dense().is_err() {
        return Frame::error("ERR TESTFAILED cannot convert to dense");
    }
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for n in 1..=10_000u32 {
        let element = rng.u64(..).to_le_bytes();
        if sparse.add(&element).is_err() || dense.add(&element).is_err() {
            return Frame::error("ERR TESTFAILED corrupt sketch");
        }
        if n % 1000 == 0 {
            sparse.invalidate_cache();
            dense.invalidate_cache();
            let (Ok((a, _)), Ok((b, _))) = (sparse.count(), dense.count()) else {
                return Frame::error("ERR TESTFAILED count failed");
            };
            let error = (a as f64 - f64::from(n)).abs() / f64::from(n);
            if a != b || sparse.registers() != dense.registers() || error > 5.0 * 0.0081 {
                return Frame::error(format!(
                    "ERR TESTFAILED after {n} elements: sparse {a}, dense {b}"
                ));
            }
        }
    }
    Frame::OK
}

#[cfg(test)]
mod tests {
    use crate::command::local::LocalClient;
    use crate::config::Config;
    use crate::protocol::Frame;

    #[test]
    fn pf_commands_answer_redis_replies_and_errors() {
        let mut c = LocalClient::memory(Config::default());
        assert_eq!(
            c.run(&[b"PFADD", b"h", b"a", b"b", b"c"]),
            Frame::Integer(1)
        );
        assert_eq!(c.run(&[b"PFADD", b"h", b"a"]), Frame::Integer(0));
        assert_eq!(c.run(&[b"PFADD", b"e"]), Frame::Integer(1));
        assert_eq!(c.run(&[b"PFADD", b"e"]), Frame::Integer(0));
        assert_eq!(c.run(&[b"PFCOUNT", b"h"]), Frame::Integer(3));
        assert_eq!(c.run(&[b"PFCOUNT", b"h", b"e", b"nope"]), Frame::Integer(3));
        assert_eq!(c.run(&[b"PFMERGE", b"m", b"h", b"e"]), Frame::OK);
        assert_eq!(c.run(&[b"PFCOUNT", b"m"]), Frame::Integer(3));
        c.run(&[b"SET", b"s", b"not an hll"]);
        let not_hll = Frame::error("WRONGTYPE Key is not a valid HyperLogLog string value.");
        assert_eq!(c.run(&[b"PFADD", b"s", b"x"]), not_hll);
        assert_eq!(c.run(&[b"PFCOUNT", b"s"]), not_hll);
        assert_eq!(c.run(&[b"PFCOUNT", b"h", b"s"]), not_hll);
        assert_eq!(c.run(&[b"PFMERGE", b"h", b"s"]), not_hll);
        // A header-valid sparse form covering too few registers.
        c.run(&[
            b"SET",
            b"bad",
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f",
        ]);
        let corrupt = Frame::error("INVALIDOBJ Corrupted HLL object detected");
        assert_eq!(c.run(&[b"PFCOUNT", b"bad"]), corrupt);
        assert_eq!(c.run(&[b"PFCOUNT", b"bad", b"h"]), corrupt);
        assert_eq!(c.run(&[b"PFMERGE", b"h", b"bad"]), corrupt);
        assert_eq!(c.run(&[b"PFCOUNT", b"h"]), Frame::Integer(3));
    }

    #[test]
    fn pfdebug_and_pfselftest() {
        let mut c = LocalClient::memory(Config::default());
        assert_eq!(
            c.run(&[b"PFDEBUG", b"ENCODING", b"h"]),
            Frame::error("ERR The specified key does not exist")
        );
        c.run(&[b"PFADD", b"h", b"a"]);
        assert_eq!(
            c.run(&[b"PFDEBUG", b"ENCODING", b"h"]),
            Frame::Simple("sparse")
        );
        assert!(matches!(
            c.run(&[b"PFDEBUG", b"DECODE", b"h"]),
            Frame::Bulk(_)
        ));
        assert_eq!(
            c.run(&[b"PFDEBUG", b"NOPE", b"h"]),
            Frame::error("ERR Unknown PFDEBUG subcommand 'NOPE'")
        );
        assert_eq!(
            c.run(&[b"PFDEBUG", b"getreg", b"h", b"x"]),
            Frame::error("ERR wrong number of arguments for 'pfdebug' command")
        );
        assert_eq!(c.run(&[b"PFDEBUG", b"TODENSE", b"h"]), Frame::Integer(1));
        assert_eq!(c.run(&[b"PFDEBUG", b"TODENSE", b"h"]), Frame::Integer(0));
        assert_eq!(c.run(&[b"STRLEN", b"h"]), Frame::Integer(12304));
        assert_eq!(
            c.run(&[b"PFDEBUG", b"DECODE", b"h"]),
            Frame::error("ERR HLL encoding is not sparse")
        );
        let Frame::Array(registers) = c.run(&[b"PFDEBUG", b"GETREG", b"h"]) else {
            panic!("an array")
        };
        assert_eq!(registers.len(), 16384);
        assert_eq!(c.run(&[b"PFSELFTEST"]), Frame::OK);
    }

    #[test]
    fn pfcount_caches_and_keeps_the_ttl() {
        let mut c = LocalClient::memory(Config::default());
        c.run(&[b"PFADD", b"h", b"a", b"b"]);
        c.run(&[b"EXPIRE", b"h", b"100"]);
        assert_eq!(c.run(&[b"PFCOUNT", b"h"]), Frame::Integer(2));
        let Frame::Bulk(bytes) = c.run(&[b"GET", b"h"]) else {
            panic!("a string")
        };
        assert_eq!(&bytes[8..16], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(c.run(&[b"TTL", b"h"]), Frame::Integer(100));
    }
}
