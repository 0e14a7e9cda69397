//! The internode messages in bytes: every [`Msg`] between replicas, and
//! the [`Envelope`] a connection carries, encoded with [`super::codec`].
//!
//! Why it exists: the state machine in [`super::replica`] speaks in typed
//! messages; TCP carries bytes. This module is the one translation, kept
//! pure so it is property-tested (every message round-trips) and
//! fuzz-shaped: decoding treats the bytes as hostile, bounds every count
//! and length *before* allocating ([`Limits`]), and refuses trailing
//! bytes, unknown tags and non-canonical versions. Framing, the protocol
//! version byte and authentication are the transport's (`node::frame`).
//!
//! Tags are one byte per variant, listed once in each `encode`/`decode`
//! pair; a new variant takes a new number, never a reused one.

use bytes::Bytes;

use super::NodeId;
use super::anti_entropy;
use super::codec::{DecodeError, Reader, put_bytes, put_varint};
use super::membership::{self, Heartbeat};
use super::replica::Msg;
use super::siblings::Siblings;
use operations::{answer, consistency, op, put_answer, put_consistency, put_op};

mod operations;
mod ring;

pub use ring::{put_topology, topology};

/// Bounds of what a decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key.
    pub key_bytes_max: usize,
    /// Longest value.
    pub value_bytes_max: usize,
    /// Most members in a gossip list or a hello.
    pub members_max: usize,
    /// Most Merkle labels or indices in one message.
    pub labels_max: usize,
    /// Most key states in one anti-entropy message.
    pub entries_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            key_bytes_max: 64 * 1024,
            value_bytes_max: 8 * 1024 * 1024,
            members_max: 1024,
            labels_max: 1 << 16,
            entries_max: 4096,
        }
    }
}

/// Who a node is: what a peer needs to put it on the ring and reach it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberSpec {
    /// `--node-id`.
    pub id: NodeId,
    /// Its internode address (`--cluster-bind`), as peers dial it.
    pub addr: String,
    /// `--datacenter`, if set.
    pub datacenter: Option<String>,
    /// `--vnodes`.
    pub vnodes: u32,
}

/// What one frame of an authenticated connection carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// The first frame each side sends: who it is, the members it knows
    /// (so specs spread), the cluster shape it runs (refused if it differs)
    /// and its wall clock (refused if far off).
    Hello {
        /// The sender.
        spec: MemberSpec,
        /// Every member the sender knows, itself included.
        known: Vec<MemberSpec>,
        /// Replicas per key (`N`): every node must agree.
        replicas: u32,
        /// The sender's wall clock.
        wall_ms: u64,
    },
    /// A replica message.
    Msg(Msg),
}

fn put_key(out: &mut Vec<u8>, key: &[u8]) {
    put_bytes(out, key);
}

fn key(r: &mut Reader<'_>, limits: &Limits) -> Result<Bytes, DecodeError> {
    Ok(Bytes::copy_from_slice(
        r.bytes("key", limits.key_bytes_max)?,
    ))
}

fn put_state(out: &mut Vec<u8>, state: &Siblings) {
    put_bytes(out, &state.to_bytes());
}

fn state(r: &mut Reader<'_>, limits: &Limits) -> Result<Siblings, DecodeError> {
    // A state holds up to `SIBLINGS_MAX` values: the frame bounds the total.
    let bytes = r.bytes("state", usize::MAX)?;
    Siblings::from_bytes(bytes, limits.value_bytes_max)
}

fn u32_of(r: &mut Reader<'_>, what: &'static str) -> Result<u32, DecodeError> {
    let v = r.varint()?;
    u32::try_from(v).map_err(|_| DecodeError::TooLarge {
        what,
        found: v,
        max: u64::from(u32::MAX),
    })
}

fn put_heartbeat(out: &mut Vec<u8>, hb: Heartbeat) {
    put_varint(out, hb.generation);
    put_varint(out, hb.counter);
}

fn heartbeat(r: &mut Reader<'_>) -> Result<Heartbeat, DecodeError> {
    Ok(Heartbeat {
        generation: r.varint()?,
        counter: r.varint()?,
    })
}

fn put_option(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_bytes(out, v);
        }
    }
}

fn option<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
    max: usize,
) -> Result<Option<&'a [u8]>, DecodeError> {
    match r.byte()? {
        0 => Ok(None),
        1 => Ok(Some(r.bytes(what, max)?)),
        _ => Err(DecodeError::Invalid("unknown option tag")),
    }
}

/// A count that also fits the bytes left (each item at least `min_bytes`),
/// so a lying count cannot allocate.
fn count(
    r: &mut Reader<'_>,
    what: &'static str,
    max: usize,
    min_bytes: usize,
) -> Result<usize, DecodeError> {
    let n = r.count(what, max)?;
    if n > r.remaining() / min_bytes {
        return Err(DecodeError::Truncated);
    }
    Ok(n)
}

fn put_member(out: &mut Vec<u8>, m: &membership::Message) {
    use membership::Message as M;
    match m {
        M::Gossip { heartbeats } => {
            out.push(1);
            put_varint(out, heartbeats.len() as u64);
            for (node, hb) in heartbeats {
                put_varint(out, u64::from(node.0));
                put_heartbeat(out, *hb);
            }
        }
        M::Ping { seq } => {
            out.push(2);
            put_varint(out, *seq);
        }
        M::Ack { seq, heartbeat } => {
            out.push(3);
            put_varint(out, *seq);
            put_heartbeat(out, *heartbeat);
        }
        M::PingReq { seq, target } => {
            out.push(4);
            put_varint(out, *seq);
            put_varint(out, u64::from(target.0));
        }
        M::IndirectAck {
            seq,
            target,
            heartbeat,
        } => {
            out.push(5);
            put_varint(out, *seq);
            put_varint(out, u64::from(target.0));
            put_heartbeat(out, *heartbeat);
        }
    }
}

fn member(r: &mut Reader<'_>, limits: &Limits) -> Result<membership::Message, DecodeError> {
    use membership::Message as M;
    Ok(match r.byte()? {
        1 => {
            let n = count(r, "gossip members", limits.members_max, 3)?;
            let mut heartbeats = Vec::with_capacity(n);
            for _ in 0..n {
                let node = NodeId(u32_of(r, "node id")?);
                heartbeats.push((node, heartbeat(r)?));
            }
            M::Gossip { heartbeats }
        }
        2 => M::Ping { seq: r.varint()? },
        3 => M::Ack {
            seq: r.varint()?,
            heartbeat: heartbeat(r)?,
        },
        4 => M::PingReq {
            seq: r.varint()?,
            target: NodeId(u32_of(r, "node id")?),
        },
        5 => M::IndirectAck {
            seq: r.varint()?,
            target: NodeId(u32_of(r, "node id")?),
            heartbeat: heartbeat(r)?,
        },
        _ => return Err(DecodeError::Invalid("unknown membership message")),
    })
}

fn put_ae(out: &mut Vec<u8>, m: &anti_entropy::Message) {
    use anti_entropy::Message as M;
    match m {
        M::Labels { level, labels } => {
            out.push(1);
            out.push(*level);
            put_varint(out, labels.len() as u64);
            for (index, label) in labels {
                put_varint(out, u64::from(*index));
                put_varint(out, *label);
            }
        }
        M::Ask { level, indices } => {
            out.push(2);
            out.push(*level);
            put_varint(out, indices.len() as u64);
            for index in indices {
                put_varint(out, u64::from(*index));
            }
        }
    }
}

fn ae(r: &mut Reader<'_>, limits: &Limits) -> Result<anti_entropy::Message, DecodeError> {
    use anti_entropy::Message as M;
    let tag = r.byte()?;
    let level = r.byte()?;
    Ok(match tag {
        1 => {
            let n = count(r, "merkle labels", limits.labels_max, 2)?;
            let mut labels = Vec::with_capacity(n);
            for _ in 0..n {
                labels.push((u32_of(r, "merkle index")?, r.varint()?));
            }
            M::Labels { level, labels }
        }
        2 => {
            let n = count(r, "merkle indices", limits.labels_max, 1)?;
            let mut indices = Vec::with_capacity(n);
            for _ in 0..n {
                indices.push(u32_of(r, "merkle index")?);
            }
            M::Ask { level, indices }
        }
        _ => return Err(DecodeError::Invalid("unknown anti-entropy message")),
    })
}

/// Appends `msg` in its wire form.
pub fn encode_msg(out: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::Member(m) => {
            out.push(1);
            put_member(out, m);
        }
        Msg::Forward {
            client,
            op,
            consistency,
        } => {
            out.push(2);
            put_varint(out, *client);
            put_op(out, op);
            put_consistency(out, consistency);
        }
        Msg::ForwardReply { client, answer } => {
            out.push(3);
            put_varint(out, *client);
            put_answer(out, answer);
        }
        Msg::Replicate {
            req,
            key,
            state,
            hint_for,
        } => {
            out.push(4);
            put_varint(out, *req);
            put_key(out, key);
            put_state(out, state);
            match hint_for {
                None => out.push(0),
                Some(n) => {
                    out.push(1);
                    put_varint(out, u64::from(n.0));
                }
            }
        }
        Msg::ReplicateAck { req, ok } => {
            out.push(5);
            put_varint(out, *req);
            out.push(u8::from(*ok));
        }
        Msg::Read { req, key } => {
            out.push(6);
            put_varint(out, *req);
            put_key(out, key);
        }
        Msg::ReadReply { req, state } => {
            out.push(7);
            put_varint(out, *req);
            put_state(out, state);
        }
        Msg::Repair { key, state } => {
            out.push(8);
            put_key(out, key);
            put_state(out, state);
        }
        Msg::Handoff { key, state, seq } => {
            out.push(9);
            put_key(out, key);
            put_state(out, state);
            put_varint(out, *seq);
        }
        Msg::HandoffAck { key, seq } => {
            out.push(10);
            put_key(out, key);
            put_varint(out, *seq);
        }
        Msg::Ae(m) => {
            out.push(11);
            put_ae(out, m);
        }
        Msg::AeEntries {
            entries,
            buckets,
            reply,
        } => {
            out.push(12);
            put_varint(out, entries.len() as u64);
            for (k, s) in entries {
                put_key(out, k);
                put_state(out, s);
            }
            put_varint(out, buckets.len() as u64);
            for b in buckets {
                put_varint(out, u64::from(*b));
            }
            out.push(u8::from(*reply));
        }
        Msg::Topology(t) => {
            out.push(13);
            put_topology(out, t);
        }
        Msg::AeInSync { root } => {
            out.push(16);
            put_varint(out, *root);
        }
        Msg::StreamReq { version, after } => {
            out.push(14);
            put_varint(out, *version);
            put_option(out, after.as_deref());
        }
        Msg::StreamBatch {
            version,
            after,
            entries,
            next,
        } => {
            out.push(15);
            put_varint(out, *version);
            put_option(out, after.as_deref());
            put_varint(out, entries.len() as u64);
            for (k, s) in entries {
                put_key(out, k);
                put_state(out, s);
            }
            put_option(out, next.as_deref());
        }
    }
}

fn flag(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
    match r.byte()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid("a flag is 0 or 1")),
    }
}

/// Reads one message (not the whole input: see [`decode_envelope`]).
pub fn decode_msg(r: &mut Reader<'_>, limits: &Limits) -> Result<Msg, DecodeError> {
    Ok(match r.byte()? {
        1 => Msg::Member(member(r, limits)?),
        2 => Msg::Forward {
            client: r.varint()?,
            op: op(r, limits)?,
            consistency: consistency(r)?,
        },
        3 => Msg::ForwardReply {
            client: r.varint()?,
            answer: answer(r, limits)?,
        },
        4 => Msg::Replicate {
            req: r.varint()?,
            key: key(r, limits)?,
            state: state(r, limits)?,
            hint_for: match r.byte()? {
                0 => None,
                1 => Some(NodeId(u32_of(r, "node id")?)),
                _ => return Err(DecodeError::Invalid("unknown hint tag")),
            },
        },
        5 => Msg::ReplicateAck {
            req: r.varint()?,
            ok: flag(r)?,
        },
        6 => Msg::Read {
            req: r.varint()?,
            key: key(r, limits)?,
        },
        7 => Msg::ReadReply {
            req: r.varint()?,
            state: state(r, limits)?,
        },
        8 => Msg::Repair {
            key: key(r, limits)?,
            state: state(r, limits)?,
        },
        9 => Msg::Handoff {
            key: key(r, limits)?,
            state: state(r, limits)?,
            seq: r.varint()?,
        },
        10 => Msg::HandoffAck {
            key: key(r, limits)?,
            seq: r.varint()?,
        },
        11 => Msg::Ae(ae(r, limits)?),
        12 => {
            let n = count(r, "entries", limits.entries_max, 2)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push((key(r, limits)?, state(r, limits)?));
            }
            let n = count(r, "buckets", limits.labels_max, 1)?;
            let mut buckets = Vec::with_capacity(n);
            for _ in 0..n {
                buckets.push(u32_of(r, "bucket")?);
            }
            Msg::AeEntries {
                entries,
                buckets,
                reply: flag(r)?,
            }
        }
        13 => Msg::Topology(topology(r, limits)?),
        16 => Msg::AeInSync { root: r.varint()? },
        14 => Msg::StreamReq {
            version: r.varint()?,
            after: option(r, "key", limits.key_bytes_max)?.map(Bytes::copy_from_slice),
        },
        15 => {
            let version = r.varint()?;
            let after = option(r, "key", limits.key_bytes_max)?.map(Bytes::copy_from_slice);
            let n = count(r, "entries", limits.entries_max, 2)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push((key(r, limits)?, state(r, limits)?));
            }
            Msg::StreamBatch {
                version,
                after,
                entries,
                next: option(r, "key", limits.key_bytes_max)?.map(Bytes::copy_from_slice),
            }
        }
        _ => return Err(DecodeError::Invalid("unknown message")),
    })
}

fn put_spec(out: &mut Vec<u8>, spec: &MemberSpec) {
    put_varint(out, u64::from(spec.id.0));
    put_bytes(out, spec.addr.as_bytes());
    put_option(out, spec.datacenter.as_deref().map(str::as_bytes));
    put_varint(out, u64::from(spec.vnodes));
}

fn text(bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Invalid("text is not UTF-8"))
}

fn spec(r: &mut Reader<'_>) -> Result<MemberSpec, DecodeError> {
    Ok(MemberSpec {
        id: NodeId(u32_of(r, "node id")?),
        addr: text(r.bytes("address", 256)?)?,
        datacenter: option(r, "datacenter", 256)?.map(text).transpose()?,
        vnodes: u32_of(r, "vnodes")?,
    })
}

/// The wire form of one envelope (a frame's payload).
pub fn encode_envelope(envelope: &Envelope) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    match envelope {
        Envelope::Hello {
            spec,
            known,
            replicas,
            wall_ms,
        } => {
            out.push(1);
            put_spec(&mut out, spec);
            put_varint(&mut out, known.len() as u64);
            for k in known {
                put_spec(&mut out, k);
            }
            put_varint(&mut out, u64::from(*replicas));
            put_varint(&mut out, *wall_ms);
        }
        Envelope::Msg(msg) => {
            out.push(2);
            encode_msg(&mut out, msg);
        }
    }
    out
}

/// Reads exactly one envelope from `bytes`.
pub fn decode_envelope(bytes: &[u8], limits: &Limits) -> Result<Envelope, DecodeError> {
    let mut r = Reader::new(bytes);
    let envelope = match r.byte()? {
        1 => {
            let me = spec(&mut r)?;
            let n = count(&mut r, "members", limits.members_max, 4)?;
            let mut known = Vec::with_capacity(n);
            for _ in 0..n {
                known.push(spec(&mut r)?);
            }
            Envelope::Hello {
                spec: me,
                known,
                replicas: u32_of(&mut r, "replicas")?,
                wall_ms: r.varint()?,
            }
        }
        2 => Envelope::Msg(decode_msg(&mut r, limits)?),
        _ => return Err(DecodeError::Invalid("unknown envelope")),
    };
    r.finish()?;
    Ok(envelope)
}

#[cfg(test)]
mod tests;
