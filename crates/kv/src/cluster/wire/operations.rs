//! The client operations and answers a forwarded request carries
//! ([`Msg::Forward`](crate::cluster::replica::Msg::Forward) and its reply),
//! apart from the replica-to-replica messages in the parent module.

use bytes::Bytes;

use super::{Limits, key, option, put_key, put_option, put_state, state};
use crate::cluster::codec::{DecodeError, Reader, put_varint};
use crate::cluster::crdt::update::{Refused, Update};
use crate::cluster::crdt::value::WrongType;
use crate::cluster::placement::QuorumMode;
use crate::cluster::quorum::Consistency;
use crate::cluster::replica::{Answer, Op};
use crate::cluster::vector_clock::{Actor, Dot, VectorClock};

pub(super) fn put_op(out: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Put {
            key,
            value,
            context,
        } => {
            out.push(1);
            put_key(out, key);
            put_option(out, value.as_deref());
            match context {
                None => out.push(0),
                Some(c) => {
                    out.push(1);
                    c.encode(out);
                }
            }
        }
        Op::Get { key } => {
            out.push(2);
            put_key(out, key);
        }
        Op::Update { key, update } => {
            out.push(3);
            put_key(out, key);
            update.encode(out);
        }
    }
}

pub(super) fn op(r: &mut Reader<'_>, limits: &Limits) -> Result<Op, DecodeError> {
    Ok(match r.byte()? {
        1 => {
            let key = key(r, limits)?;
            let value = option(r, "value", limits.value_bytes_max)?.map(Bytes::copy_from_slice);
            let context = match r.byte()? {
                0 => None,
                1 => Some(VectorClock::decode(r)?),
                _ => return Err(DecodeError::Invalid("unknown context tag")),
            };
            Op::Put {
                key,
                value,
                context,
            }
        }
        2 => Op::Get {
            key: key(r, limits)?,
        },
        3 => Op::Update {
            key: key(r, limits)?,
            update: Update::decode(r, limits.value_bytes_max)?,
        },
        _ => return Err(DecodeError::Invalid("unknown operation")),
    })
}

pub(super) fn put_answer(out: &mut Vec<u8>, answer: &Answer) {
    match answer {
        Answer::Written(dot) => {
            out.push(1);
            put_varint(out, dot.actor.0);
            put_varint(out, dot.counter);
        }
        Answer::Read(s) => {
            out.push(2);
            put_state(out, s);
        }
        Answer::Failed => out.push(3),
        Answer::TooManySiblings(n) => {
            out.push(4);
            put_varint(out, *n as u64);
        }
        Answer::Updated(reply) => {
            out.push(5);
            out.extend_from_slice(&reply.to_be_bytes());
        }
        Answer::Refused(Refused::WrongType(_)) => out.push(6),
        Answer::Refused(Refused::Overflow) => out.push(7),
        Answer::Refused(Refused::TooLarge) => out.push(8),
    }
}

pub(super) fn answer(r: &mut Reader<'_>, limits: &Limits) -> Result<Answer, DecodeError> {
    Ok(match r.byte()? {
        1 => Answer::Written(Dot {
            actor: Actor(r.varint()?),
            counter: r.varint()?,
        }),
        2 => Answer::Read(state(r, limits)?),
        3 => Answer::Failed,
        4 => Answer::TooManySiblings(r.count("siblings", usize::MAX)?),
        5 => {
            let mut be = [0u8; 8];
            for b in &mut be {
                *b = r.byte()?;
            }
            Answer::Updated(i64::from_be_bytes(be))
        }
        6 => Answer::Refused(Refused::WrongType(WrongType)),
        7 => Answer::Refused(Refused::Overflow),
        8 => Answer::Refused(Refused::TooLarge),
        _ => return Err(DecodeError::Invalid("unknown answer")),
    })
}

/// A `KV.CONSISTENCY` override: `W` and `R` (0: the cluster's), the mode
/// (0: the cluster's, 1: strict, 2: sloppy).
pub(super) fn put_consistency(out: &mut Vec<u8>, c: &Consistency) {
    put_varint(out, c.w.unwrap_or(0) as u64);
    put_varint(out, c.r.unwrap_or(0) as u64);
    out.push(match c.mode {
        None => 0,
        Some(QuorumMode::Strict) => 1,
        Some(QuorumMode::Sloppy) => 2,
    });
}

pub(super) fn consistency(r: &mut Reader<'_>) -> Result<Consistency, DecodeError> {
    let mut count = || -> Result<Option<usize>, DecodeError> {
        Ok(Some(r.count("quorum", 255)?).filter(|&n| n > 0))
    };
    let (w, rq) = (count()?, count()?);
    let mode = match r.byte()? {
        0 => None,
        1 => Some(QuorumMode::Strict),
        2 => Some(QuorumMode::Sloppy),
        _ => return Err(DecodeError::Invalid("unknown quorum mode")),
    };
    Ok(Consistency { w, r: rq, mode })
}
