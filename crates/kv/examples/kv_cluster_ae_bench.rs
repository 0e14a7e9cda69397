//! Measures Merkle anti-entropy between two replicas of `KEYS` keys (1M by
//! default) that differ in 1% of them: how many exchanges, how many bytes
//! and how long (CPU, and simulated time at the node's own pacing) until
//! their trees agree, against the bytes of copying every key.
//!
//! Why it exists: the issue's benchmark ("Merkle sync time ... and the
//! bytes exchanged against sending every key"), kept out of the test
//! suite: it allocates two 1M-key stores. It drives two
//! `cluster::replica::Node`s (the code the server runs) with their
//! messages delivered instantly, so the bytes are the wire encoding of
//! exactly what the nodes would send. *Descents* are tree comparisons
//! that went past the roots; *entries chunks* the paced messages of the
//! repair rounds they started; *keys listed* what building those chunks
//! read through the per-bucket index.
//!
//! `cargo run --release -p kv --example kv_cluster_ae_bench -- [keys] [diverged-per-mille] [depth...]`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kv::cluster::NodeId;
use kv::cluster::anti_entropy::Message;
use kv::cluster::hlc::Hlc;
use kv::cluster::membership;
use kv::cluster::placement::{NodeSpec, Placement, QuorumMode};
use kv::cluster::quorum::Quorum;
use kv::cluster::replica::{Disk, Msg, Node, Out, Setup, Timing};
use kv::cluster::siblings::Siblings;
use kv::cluster::vector_clock::{Actor, Dot, PrunePolicy, VectorClock};
use kv::cluster::wire;

fn setup(depth: u8) -> Setup {
    let specs: Vec<NodeSpec> = (1..=2)
        .map(|id| NodeSpec {
            id: NodeId(id),
            vnodes: 64,
            datacenter: None,
        })
        .collect();
    Setup {
        placement: Arc::new(Placement::new(&specs, 2).expect("a ring")),
        quorum: Quorum::new(2, 1, 1).expect("a quorum"),
        mode: QuorumMode::Sloppy,
        timing: Timing {
            tree_depth: depth,
            ..Timing::default()
        },
        membership: membership::Config::default(),
        prune: PrunePolicy::default(),
    }
}

fn state(actor: u64, counter: u64, value: &str, base: Option<&Siblings>) -> Siblings {
    let mut s = base.cloned().unwrap_or_default();
    let context = base.map_or_else(VectorClock::new, |b| b.context().clone());
    let dot = Dot {
        actor: Actor(actor),
        counter,
    };
    s.write(
        Some(Bytes::from(value.to_string())),
        &context,
        dot,
        Hlc::from_ms(1),
        1,
    )
    .expect("a fresh dot");
    s
}

fn ae_bytes(msg: &Msg) -> Option<usize> {
    matches!(
        msg,
        Msg::Ae(_) | Msg::AeEntries { .. } | Msg::AeInSync { .. }
    )
    .then(|| {
        let mut out = Vec::new();
        wire::encode_msg(&mut out, msg);
        out.len()
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keys: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let per_mille: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let depths: Vec<u8> = match args.get(2..) {
        Some(d) if !d.is_empty() => d.iter().filter_map(|a| a.parse().ok()).collect(),
        _ => vec![10, 14, 16],
    };
    let (a_actor, b_actor) = (1u64 << 32, 2u64 << 32);
    let started = Instant::now();
    let mut a_disk = Disk::empty(Actor(a_actor), Default::default());
    let mut b_disk = Disk::empty(Actor(b_actor), Default::default());
    let mut diverged = 0u64;
    let mut full_copy_bytes = 0usize;
    let mut batch: Vec<(Bytes, Siblings)> = Vec::new();
    for i in 0..keys {
        let key = Bytes::from(format!("key:{i:08}"));
        let s = state(a_actor, i + 1, &format!("value-{i:08}-0123456789"), None);
        // Node B took a write A missed in `per_mille` of the keys.
        let b = if i % 1000 < per_mille {
            diverged += 1;
            state(
                b_actor,
                i + 1,
                &format!("newer-{i:08}-0123456789"),
                Some(&s),
            )
        } else {
            s.clone()
        };
        batch.push((key.clone(), b.clone()));
        if batch.len() == 512 {
            let msg = Msg::StreamBatch {
                version: 1,
                after: None,
                entries: std::mem::take(&mut batch),
                next: Some(key.clone()),
            };
            full_copy_bytes += ae_bytes(&Msg::AeEntries {
                entries: Vec::new(),
                buckets: Vec::new(),
                reply: false,
            })
            .unwrap_or(0);
            let mut out = Vec::new();
            wire::encode_msg(&mut out, &msg);
            full_copy_bytes += out.len();
        }
        a_disk.store.insert(key.clone(), s);
        b_disk.store.insert(key, b);
    }
    let key_bytes: usize = b_disk
        .store
        .iter()
        .map(|(k, s)| k.len() + s.size_bytes())
        .sum();
    println!(
        "{keys} keys ({key_bytes} bytes of keys and states), {diverged} diverged; built in {:?}",
        started.elapsed()
    );
    println!("full copy (every key state, in 512-key stream batches): {full_copy_bytes} bytes");
    let (a_store, b_store) = (a_disk.store, b_disk.store);
    for depth in depths {
        let setup = setup(depth);
        let mut a = Disk::empty(Actor(a_actor), Default::default());
        a.store = a_store.clone();
        let mut b = Disk::empty(Actor(b_actor), Default::default());
        b.store = b_store.clone();
        let boot = Instant::now();
        let mut nodes = [
            Node::boot(NodeId(1), a, &setup, 0, 1),
            Node::boot(NodeId(2), b, &setup, 0, 2),
        ];
        let boot = boot.elapsed();
        let (mut bytes, mut messages, mut exchanges) = (0usize, 0u64, 0u64);
        let mut descents = 0u64;
        let cpu = Instant::now();
        let mut now_ms = 0;
        loop {
            now_ms += 20;
            let mut queue: Vec<(usize, Out)> = Vec::new();
            for (i, node) in nodes.iter_mut().enumerate() {
                let mut out = Vec::new();
                node.tick(now_ms, &mut out);
                queue.extend(out.into_iter().map(|o| (i, o)));
            }
            while let Some((from, o)) = queue.pop() {
                let Out::Send(to, msg) = o else { continue };
                if let Some(n) = ae_bytes(&msg) {
                    bytes += n;
                    messages += 1;
                    exchanges += u64::from(matches!(msg, Msg::AeEntries { reply: true, .. }));
                    descents += u64::from(matches!(msg, Msg::Ae(Message::Ask { level: 1, .. })));
                }
                let at = usize::from(to == NodeId(2));
                let from_id = nodes[from].id;
                let mut next = Vec::new();
                nodes[at].receive(now_ms, from_id, msg, &mut next);
                queue.extend(next.into_iter().map(|o| (at, o)));
            }
            let ra = nodes[0].ae.tree(NodeId(2)).map(|t| t.root());
            let rb = nodes[1].ae.tree(NodeId(1)).map(|t| t.root());
            if ra == rb || now_ms > 3_600_000 {
                break;
            }
        }
        let (pa, pb) = (nodes[0].ae_progress(), nodes[1].ae_progress());
        let repaired = pa.keys_repaired + pb.keys_repaired;
        let listed = pa.keys_listed + pb.keys_listed;
        println!(
            "depth {depth} ({} buckets): trees equal after {now_ms} ms of node time at the default pacing, \
             {descents} descents, {exchanges} entries chunks, {messages} messages, {bytes} bytes \
             ({:.2}% of a full copy), {repaired} keys repaired, {listed} keys listed; \
             {:?} CPU for the exchanges, {:?} to boot both nodes (tree build)",
            1u32 << depth,
            100.0 * bytes as f64 / full_copy_bytes as f64,
            cpu.elapsed(),
            boot
        );
    }
}
