//! The wire (and disk) form of a [`Topology`]: the ring's members and
//! the membership change in flight, gossiped between nodes and saved by
//! each node's store.
//!
//! Why it exists apart: it is one more message body, but also a record on
//! disk, so the store can name it without the rest of the wire module.

use super::{Limits, count, option, put_option, text, u32_of};
use crate::cluster::NodeId;
use crate::cluster::codec::{DecodeError, Reader, put_varint};
use crate::cluster::placement::NodeSpec;
use crate::cluster::topology::{Phase, RingState, Topology};

/// Appends a topology in its wire (and disk) form.
pub fn put_topology(out: &mut Vec<u8>, t: &Topology) {
    put_varint(out, t.version);
    out.push(match t.phase {
        Phase::Stable => 0,
        Phase::Streaming => 1,
        Phase::Switched => 2,
    });
    put_varint(out, t.members.len() as u64);
    for (spec, state) in t.members.values() {
        put_varint(out, u64::from(spec.id.0));
        put_varint(out, u64::from(spec.vnodes));
        put_option(out, spec.datacenter.as_deref().map(str::as_bytes));
        out.push(match state {
            RingState::Normal => 0,
            RingState::Joining => 1,
            RingState::Leaving => 2,
        });
    }
    for set in [&t.seen, &t.streamed] {
        put_varint(out, set.len() as u64);
        for id in set {
            put_varint(out, u64::from(id.0));
        }
    }
}

/// Reads a topology (bounded by `limits.members_max`).
pub fn topology(r: &mut Reader<'_>, limits: &Limits) -> Result<Topology, DecodeError> {
    let version = r.varint()?;
    let phase = match r.byte()? {
        0 => Phase::Stable,
        1 => Phase::Streaming,
        2 => Phase::Switched,
        _ => return Err(DecodeError::Invalid("unknown phase")),
    };
    let n = count(r, "members", limits.members_max, 4)?;
    let mut members = std::collections::BTreeMap::new();
    for _ in 0..n {
        let id = NodeId(u32_of(r, "node id")?);
        let vnodes = u32_of(r, "vnodes")?;
        let datacenter = option(r, "datacenter", 256)?.map(text).transpose()?;
        let state = match r.byte()? {
            0 => RingState::Normal,
            1 => RingState::Joining,
            2 => RingState::Leaving,
            _ => return Err(DecodeError::Invalid("unknown ring state")),
        };
        let spec = NodeSpec {
            id,
            vnodes,
            datacenter,
        };
        members.insert(id, (spec, state));
    }
    let mut sets = [
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    ];
    for set in &mut sets {
        let n = count(r, "members", limits.members_max, 1)?;
        for _ in 0..n {
            set.insert(NodeId(u32_of(r, "node id")?));
        }
    }
    let [seen, streamed] = sets;
    Ok(Topology {
        version,
        phase,
        members,
        seen,
        streamed,
    })
}
