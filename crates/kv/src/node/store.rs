//! A node's disk: key states, hints, the dot counter, the actor id and the
//! known members, in one LSM tree (the `lsm` crate) under the data
//! directory.
//!
//! Why it exists: a replica acknowledges a write only once the state is
//! durable, hints must survive the substitute's own crash, and a dot must
//! never be reused after a restart (two different writes with one dot
//! would look like one). The replica state machine says what to persist
//! ([`Persist`]); this module writes one batch per step, so a step's
//! changes are durable together before its messages and answers leave. It
//! also loads everything back into a [`Disk`] on boot (the dataset is held
//! in memory too: the cluster's present limit, see the `node` docs).
//!
//! Blocking by nature: only the node's own thread calls it, never an async
//! worker.
//!
//! Layout (first byte = kind): `s key` → state, `h owner(u32 BE) key` →
//! hinted state, `c` → last dot counter, `a` → actor id, `m` → members,
//! `t` → the ring last adopted (membership changes).

use std::path::Path;

use bytes::Bytes;
use lsm::{Db, Options, SyncPolicy, WriteBatch};

use super::Members;
use crate::cluster::NodeId;
use crate::cluster::codec::{Reader, put_varint};
use crate::cluster::hinted_handoff::Limits;
use crate::cluster::replica::{Disk, Persist};
use crate::cluster::siblings::Siblings;
use crate::cluster::vector_clock::Actor;
use crate::cluster::wire::{self, Envelope};

const STATE: u8 = b's';
const HINT: u8 = b'h';
const COUNTER: &[u8] = b"c";
const ACTOR: &[u8] = b"a";
const MEMBERS: &[u8] = b"m";
const TOPOLOGY: &[u8] = b"t";
/// Values are bounded by the wire limits; states on disk were encoded by
/// this node, so a generous bound suffices.
const VALUE_BYTES_MAX: usize = 64 << 20;

/// Why the store failed: the node cannot continue safely.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The LSM tree failed.
    #[error("cluster store: {0}")]
    Lsm(#[from] lsm::Error),
    /// A record on disk does not decode.
    #[error("cluster store: a corrupt record ({0})")]
    Corrupt(String),
}

/// The open store.
pub struct Store {
    db: Db,
}

fn state_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(STATE);
    k.extend_from_slice(key);
    k
}

fn hint_key(owner: NodeId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + key.len());
    k.push(HINT);
    k.extend_from_slice(&owner.0.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, sync: SyncPolicy) -> Result<Store, StoreError> {
        let options = Options {
            sync,
            ..Options::default()
        };
        Ok(Store {
            db: Db::open(dir, options)?,
        })
    }

    /// Loads the disk: states, hints (re-queued under `limits`), the counter
    /// and the actor. A fresh store gets a new actor, `node << 32 | random`,
    /// so a node that lost its disk never reuses its old dots.
    pub fn load(&self, node: NodeId, fresh: u64, limits: Limits) -> Result<Disk, StoreError> {
        let actor = match self.db.get(ACTOR)? {
            Some(bytes) => Actor(Reader::new(&bytes).varint().map_err(corrupt)?),
            None => {
                let actor = Actor(u64::from(node.0) << 32 | (fresh & 0xffff_ffff));
                let mut out = Vec::new();
                put_varint(&mut out, actor.0);
                self.db.put(ACTOR, &out)?;
                actor
            }
        };
        let mut disk = Disk::empty(actor, limits);
        if let Some(bytes) = self.db.get(TOPOLOGY)? {
            let mut r = Reader::new(&bytes);
            let t = wire::topology(&mut r, &wire::Limits::default()).map_err(corrupt)?;
            disk.topology = Some(t);
        }
        if let Some(bytes) = self.db.get(COUNTER)? {
            disk.next_counter = Reader::new(&bytes).varint().map_err(corrupt)?;
        }
        for kv in self.db.scan_prefix(&[STATE])? {
            let kv = kv?;
            let state = Siblings::from_bytes(&kv.value, VALUE_BYTES_MAX).map_err(corrupt)?;
            disk.store
                .insert(Bytes::copy_from_slice(&kv.key[1..]), state);
        }
        for kv in self.db.scan_prefix(&[HINT])? {
            let kv = kv?;
            if kv.key.len() < 5 {
                return Err(corrupt("short hint key"));
            }
            let owner = NodeId(u32::from_be_bytes(
                kv.key[1..5].try_into().expect("4 bytes"),
            ));
            let state = Siblings::from_bytes(&kv.value, VALUE_BYTES_MAX).map_err(corrupt)?;
            let key = Bytes::copy_from_slice(&kv.key[5..]);
            // A queue full after a limit was lowered drops the rest:
            // anti-entropy repairs what a dropped hint would have.
            let _full = disk.hints.add(owner, key, &state);
        }
        Ok(disk)
    }

    /// Makes one step's changes durable together.
    pub fn persist(&self, changes: &[Persist]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        for change in changes {
            match change {
                Persist::State(key, state) => {
                    batch.put(&state_key(key), &state.to_bytes());
                }
                Persist::Hint(owner, key, state) => {
                    batch.put(&hint_key(*owner, key), &state.to_bytes());
                }
                Persist::HintDone(owner, key) => {
                    batch.delete(&hint_key(*owner, key));
                }
                Persist::Counter(counter) => {
                    let mut out = Vec::new();
                    put_varint(&mut out, *counter);
                    batch.put(COUNTER, &out);
                }
                Persist::Topology(t) => {
                    let mut out = Vec::new();
                    wire::put_topology(&mut out, t);
                    batch.put(TOPOLOGY, &out);
                }
                Persist::Delete(key) => {
                    batch.delete(&state_key(key));
                }
            }
        }
        self.db.write(&batch)?;
        Ok(())
    }

    /// The members this node knew when it last stopped.
    pub fn members(&self) -> Result<Members, StoreError> {
        let Some(bytes) = self.db.get(MEMBERS)? else {
            return Ok(Members::default());
        };
        match wire::decode_envelope(&bytes, &wire::Limits::default()) {
            Ok(Envelope::Hello { known, .. }) => Ok(known.into_iter().map(|m| (m.id, m)).collect()),
            Ok(_) => Err(corrupt("members record")),
            Err(err) => Err(corrupt(err)),
        }
    }

    /// Remembers the members (a hello envelope is their encoding).
    pub fn save_members(&self, me: &wire::MemberSpec, members: &Members) -> Result<(), StoreError> {
        let envelope = Envelope::Hello {
            spec: me.clone(),
            known: members.values().cloned().collect(),
            replicas: 0,
            wall_ms: 0,
        };
        self.db.put(MEMBERS, &wire::encode_envelope(&envelope))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::hlc::Hlc;
    use crate::cluster::vector_clock::{Dot, VectorClock};

    fn state(value: &str, counter: u64) -> Siblings {
        let mut s = Siblings::new();
        let dot = Dot {
            actor: Actor(9),
            counter,
        };
        s.write(
            Some(Bytes::from(value.to_string())),
            &VectorClock::new(),
            dot,
            Hlc::from_ms(1),
            1,
        )
        .unwrap();
        s
    }

    fn topology() -> crate::cluster::topology::Topology {
        use crate::cluster::placement::NodeSpec;
        let spec = |id| NodeSpec {
            id: NodeId(id),
            vnodes: 8,
            datacenter: None,
        };
        crate::cluster::topology::Topology::initial(&[spec(1), spec(2), spec(3)])
            .propose_leave(NodeId(3), 2)
            .expect("a valid leave")
    }

    #[test]
    fn what_a_step_persists_is_what_the_next_boot_loads() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeId(2);
        let actor = {
            let store = Store::open(dir.path(), SyncPolicy::No).unwrap();
            let disk = store.load(node, 0xabcd, Limits::default()).unwrap();
            assert_eq!(disk.actor, Actor(2 << 32 | 0xabcd));
            assert!(disk.store.is_empty() && disk.hints.is_empty());
            store
                .persist(&[
                    Persist::State(Bytes::from_static(b"a"), state("x", 1)),
                    Persist::State(Bytes::from_static(b"b"), state("y", 2)),
                    Persist::Hint(NodeId(3), Bytes::from_static(b"a"), state("x", 1)),
                    Persist::Hint(NodeId(3), Bytes::from_static(b"c"), state("z", 3)),
                    Persist::HintDone(NodeId(3), Bytes::from_static(b"c")),
                    Persist::Counter(41),
                    Persist::State(Bytes::from_static(b"gone"), state("t", 4)),
                    Persist::Topology(topology()),
                ])
                .unwrap();
            // A purged tombstone (or a key that moved away) leaves the disk.
            store
                .persist(&[Persist::Delete(Bytes::from_static(b"gone"))])
                .unwrap();
            let me = wire::MemberSpec {
                id: node,
                addr: "127.0.0.1:1".into(),
                datacenter: None,
                vnodes: 8,
            };
            let mut members = Members::new();
            let peer = wire::MemberSpec {
                id: NodeId(3),
                addr: "127.0.0.1:3".into(),
                datacenter: Some("dc2".into()),
                vnodes: 16,
            };
            members.insert(peer.id, peer);
            store.save_members(&me, &members).unwrap();
            disk.actor
        };
        // Reopened (a restart): the same actor, never a reused dot.
        let store = Store::open(dir.path(), SyncPolicy::No).unwrap();
        let disk = store.load(node, 0x9999, Limits::default()).unwrap();
        assert_eq!(disk.actor, actor);
        assert_eq!(disk.next_counter, 41);
        assert_eq!(disk.store.len(), 2);
        assert!(!disk.store.contains_key(&Bytes::from_static(b"gone")));
        assert_eq!(disk.store[&Bytes::from_static(b"b")], state("y", 2));
        assert_eq!(disk.topology, Some(topology()));
        assert_eq!(disk.hints.backlog().len(), 1);
        assert_eq!(disk.hints.backlog()[0].1, 1, "the delivered hint is gone");
        assert_eq!(disk.hints.state(NodeId(3), b"a"), Some(&state("x", 1)));
        let members = store.members().unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[&NodeId(3)].datacenter.as_deref(), Some("dc2"));
    }
}
