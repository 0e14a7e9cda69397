//! The data store as a cluster (in-process data nodes): erasure-coded chunks survive the
//! loss of every pair of 6 nodes, replicated ones any two of 3, writes are acknowledged
//! on their quorum, and a bit flip on one node is never served and is repaired.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use objstore::cluster::{Cluster, DataNode, Durability, Heartbeat, Member, NodeInfo};
use objstore::{Error, Node, ObjectId};

use crate::support::{bytes, small};

/// A data node that can be switched off (as if its process died).
struct Switch {
    node: Node,
    off: AtomicBool,
}

impl Switch {
    fn check(&self) -> objstore::Result<()> {
        if self.off.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("switched off".into()));
        }
        Ok(())
    }
}

impl DataNode for Switch {
    fn put(&self, id: ObjectId, data: &[u8]) -> objstore::Result<()> {
        self.check()?;
        self.node.put_with_id(id, data)
    }
    fn get(&self, id: ObjectId) -> objstore::Result<Option<Vec<u8>>> {
        self.check()?;
        self.node.get(id, ..)
    }
    fn delete(&self, id: ObjectId) -> objstore::Result<bool> {
        self.check()?;
        self.node.delete(id)
    }
    fn ping(&self) -> objstore::Result<NodeInfo> {
        self.check()?;
        DataNode::ping(&self.node)
    }
}

struct Rig {
    _dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Arc<Switch>>,
    cluster: Arc<Cluster>,
}

fn rig(durability: Durability, zones: &[&str]) -> Rig {
    let hb = Heartbeat {
        interval_ms: 60_000,
        suspect_after_ms: 60_000,
        down_after_ms: 600_000,
        repair_after_ms: 600_000,
    };
    rig_with(durability, zones, hb)
}

fn rig_with(durability: Durability, zones: &[&str], hb: Heartbeat) -> Rig {
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    let mut members: Vec<(Member, Arc<dyn DataNode>)> = Vec::new();
    for (i, z) in zones.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let node = Arc::new(Switch {
            node: Node::open(dir.path(), small(1 << 20)).unwrap(),
            off: AtomicBool::new(false),
        });
        members.push((
            Member {
                name: format!("node-{i}"),
                zone: (*z).to_string(),
            },
            node.clone(),
        ));
        nodes.push(node);
        dirs.push(dir);
    }
    let cluster = Arc::new(Cluster::new(members, durability, hb).unwrap());
    Rig {
        _dirs: dirs,
        nodes,
        cluster,
    }
}

const SIZES: [usize; 9] = [0, 1, 2, 7, 64, 1000, 4096, 65_537, 300_000];

fn fill(c: &Cluster) -> Vec<(ObjectId, Vec<u8>)> {
    SIZES
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let data = bytes(i as u64 + 7, len);
            (c.put(&data).unwrap(), data)
        })
        .collect()
}

#[test]
fn erasure_coded_chunks_survive_the_loss_of_every_pair_of_six_nodes() {
    let r = rig(Durability::EC_4_2, &["a", "b", "c", "d", "e", "f"]);
    let objects = fill(&r.cluster);
    for a in 0..6 {
        for b in a + 1..6 {
            r.nodes[a].off.store(true, Ordering::SeqCst);
            r.nodes[b].off.store(true, Ordering::SeqCst);
            for (id, data) in &objects {
                let got = r.cluster.get(*id, ..).unwrap();
                assert_eq!(
                    got.as_deref(),
                    Some(&data[..]),
                    "nodes {a},{b} lost, {} bytes",
                    data.len()
                );
                if data.len() > 10 {
                    let part = r.cluster.get(*id, 3..10).unwrap();
                    assert_eq!(part.as_deref(), Some(&data[3..10]));
                }
            }
            // A third loss leaves 3 of the 4 shards needed: an error, never wrong bytes.
            let c = (b + 1..6).chain(0..a).next();
            if let Some(c) = c {
                r.nodes[c].off.store(true, Ordering::SeqCst);
                let (id, _) = &objects[5];
                assert!(matches!(r.cluster.get(*id, ..), Err(Error::Unavailable(_))));
                r.nodes[c].off.store(false, Ordering::SeqCst);
            }
            r.nodes[a].off.store(false, Ordering::SeqCst);
            r.nodes[b].off.store(false, Ordering::SeqCst);
        }
    }
    // Each node holds one shard of each object: 1.5x the bytes, not 3x.
    for n in &r.nodes {
        assert_eq!(n.node.stats().objects, SIZES.len() as u64);
    }
}

#[test]
fn replicated_chunks_survive_the_loss_of_any_two_copies() {
    let r = rig(Durability::REPLICATE_3, &["a", "a", "b", "b", "c", "c"]);
    let objects = fill(&r.cluster);
    for (id, data) in &objects {
        let places = r.cluster.places(*id);
        assert_eq!(places.len(), 3);
        for a in 0..3 {
            for b in a + 1..3 {
                r.nodes[places[a]].off.store(true, Ordering::SeqCst);
                r.nodes[places[b]].off.store(true, Ordering::SeqCst);
                assert_eq!(r.cluster.get(*id, ..).unwrap().as_deref(), Some(&data[..]));
                r.nodes[places[a]].off.store(false, Ordering::SeqCst);
                r.nodes[places[b]].off.store(false, Ordering::SeqCst);
            }
        }
    }
    // 3 copies of each object over the 6 nodes.
    let copies: u64 = r.nodes.iter().map(|n| n.node.stats().objects).sum();
    assert_eq!(copies, 3 * SIZES.len() as u64);
}

#[test]
fn writes_need_their_quorum_and_reads_repair_what_a_down_node_missed() {
    for durability in [Durability::REPLICATE_3, Durability::EC_4_2] {
        let r = rig(durability, &["a", "b", "c", "d", "e", "f"]);
        // One node down: still acknowledged (2 of 3 copies, 5 of 6 shards).
        r.nodes[0].off.store(true, Ordering::SeqCst);
        let objects = fill(&r.cluster);
        assert!(r.cluster.counters().partial_writes > 0, "{durability}");
        // Back up: reads serve every object; a repair pass (or, for shards, the read
        // itself) rewrites what the node missed.
        r.nodes[0].off.store(false, Ordering::SeqCst);
        for (id, data) in &objects {
            assert_eq!(r.cluster.get(*id, ..).unwrap().as_deref(), Some(&data[..]));
            r.cluster.repair_chunk(*id).unwrap();
        }
        for (id, _) in &objects {
            assert_eq!(
                r.cluster.repair_chunk(*id).unwrap(),
                0,
                "{durability}: repaired once"
            );
        }
        let missed = objects
            .iter()
            .filter(|(id, _)| r.cluster.places(*id).contains(&0))
            .count();
        assert_eq!(r.cluster.counters().repaired, missed as u64, "{durability}");
        assert_eq!(
            r.nodes[0].node.stats().objects,
            missed as u64,
            "{durability}"
        );
        // Too few nodes for the quorum: refused, and nothing left behind.
        let before: u64 = r.nodes.iter().map(|n| n.node.stats().objects).sum();
        for n in &r.nodes[..5] {
            n.off.store(true, Ordering::SeqCst);
        }
        assert!(matches!(
            r.cluster.put(b"refused"),
            Err(Error::Unavailable(_))
        ));
        let after: u64 = r.nodes.iter().map(|n| n.node.stats().objects).sum();
        assert_eq!(
            before, after,
            "{durability}: a refused write leaves no copy"
        );
    }
}

/// Flips one byte inside the only record of `node`'s only data file.
fn flip_only_record(node: &Node) {
    let dir = node.path().join("data");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let at = 16 + 36 + 40; // file header, record header, into the body
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x20], at).unwrap();
}

#[test]
fn a_bit_flip_on_one_node_is_never_served_and_is_repaired() {
    for durability in [Durability::REPLICATE_3, Durability::EC_4_2] {
        let r = rig(durability, &["a", "b", "c", "d", "e", "f"]);
        let data = bytes(99, 10_000);
        let id = r.cluster.put(&data).unwrap();
        // The first place: the copy a replicated read tries first, or data shard 0.
        let victim = r.cluster.places(id)[0];
        flip_only_record(&r.nodes[victim].node);
        assert!(matches!(
            r.nodes[victim].node.get(id, ..),
            Err(Error::Corrupt { .. })
        ));
        assert_eq!(
            r.cluster.get(id, ..).unwrap().as_deref(),
            Some(&data[..]),
            "{durability}"
        );
        let c = r.cluster.counters();
        assert_eq!((c.corrupt_reads, c.repaired), (1, 1), "{durability}");
        // The victim holds an intact copy again.
        assert!(r.nodes[victim].node.get(id, ..).unwrap().is_some());
        assert_eq!(r.cluster.get(id, ..).unwrap().as_deref(), Some(&data[..]));
        assert_eq!(r.cluster.counters().repaired, 1);
    }
}

#[test]
fn deletes_reach_every_copy() {
    let r = rig(Durability::EC_4_2, &["a", "b", "c", "d", "e", "f"]);
    let id = r.cluster.put(b"short-lived").unwrap();
    assert!(r.cluster.delete(id).unwrap());
    assert_eq!(r.cluster.get(id, ..).unwrap(), None);
    assert!(r.nodes.iter().all(|n| n.node.stats().objects == 0));
}

#[test]
fn a_dead_nodes_share_is_rebuilt_on_spares_and_dropped_when_it_returns() {
    let hb = Heartbeat {
        interval_ms: 50,
        suspect_after_ms: 500,
        down_after_ms: 1_000,
        repair_after_ms: 1_000,
    };
    for (durability, zones) in [
        (Durability::REPLICATE_3, &["a", "b", "c", "d", "e", "f"][..]),
        (Durability::EC_4_2, &["a", "b", "c", "d", "e", "f", "g"][..]),
    ] {
        let r = rig_with(durability, zones, hb);
        r.cluster.start_heartbeats().unwrap();
        let mut objects = fill(&r.cluster);
        // Node 0 dies and stays dead past repair_after_ms.
        r.nodes[0].off.store(true, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(1_600));
        assert_eq!(r.cluster.dead_members(), vec![0], "{durability}");
        // New writes go to spares in its place; the repair pass rebuilds the old ones.
        objects.extend(fill(&r.cluster));
        let rebuilt: usize = objects
            .iter()
            .map(|(id, _)| r.cluster.repair_chunk(*id).unwrap())
            .sum();
        assert!(rebuilt > 0, "{durability}");
        // Full redundancy without node 0: any two more nodes may go.
        let n = zones.len();
        for a in 1..n {
            for b in a + 1..n {
                r.nodes[a].off.store(true, Ordering::SeqCst);
                r.nodes[b].off.store(true, Ordering::SeqCst);
                for (id, data) in &objects {
                    let got = r
                        .cluster
                        .get(*id, ..)
                        .unwrap_or_else(|e| {
                            let held: Vec<_> = r
                                .nodes
                                .iter()
                                .map(|n| n.node.get(*id, ..).unwrap().map(|v| v[5]))
                                .collect();
                            panic!(
                                "{durability}: lost {a},{b}: {e}; places {:?}, spares {:?}, shard held {held:?} {:?}",
                                r.cluster.places(*id),
                                r.cluster.spares(*id),
                                r.cluster.status().iter().map(|m| (m.state, m.last_ok_age_ms)).collect::<Vec<_>>()
                            )
                        });
                    assert_eq!(
                        got.as_deref(),
                        Some(&data[..]),
                        "{durability}: lost 0,{a},{b}"
                    );
                }
                r.nodes[a].off.store(false, Ordering::SeqCst);
                r.nodes[b].off.store(false, Ordering::SeqCst);
                // Seen up again before the next pair goes (not down by then).
                r.cluster.heartbeat_once();
            }
        }
        // Node 0 returns: its places are rewritten and the spares' copies dropped.
        r.nodes[0].off.store(false, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(300));
        for (id, _) in &objects {
            r.cluster.repair_chunk(*id).unwrap();
        }
        let stored: u64 = r.nodes.iter().map(|n| n.node.stats().objects).sum();
        assert_eq!(
            stored,
            (objects.len() * durability.width()) as u64,
            "{durability}"
        );
        for (id, data) in &objects {
            assert_eq!(r.cluster.get(*id, ..).unwrap().as_deref(), Some(&data[..]));
        }
    }
}
