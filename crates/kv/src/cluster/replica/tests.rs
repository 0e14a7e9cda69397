//! The node's own rules, one input at a time (the simulation tests them
//! together under faults).

use super::*;
use crate::cluster::anti_entropy::Message;
use crate::cluster::placement::NodeSpec;
use crate::cluster::vector_clock::{Actor, VectorClock};

fn setup(nodes: u32, n: usize, w: usize) -> Setup {
    let specs: Vec<NodeSpec> = (1..=nodes)
        .map(|id| NodeSpec {
            id: NodeId(id),
            vnodes: 16,
            datacenter: None,
        })
        .collect();
    Setup {
        placement: Arc::new(Placement::new(&specs, n).unwrap()),
        quorum: Quorum::new(n, w, 1).unwrap(),
        mode: QuorumMode::Sloppy,
        timing: Timing::default(),
        membership: membership::Config::default(),
        prune: PrunePolicy::default(),
    }
}

fn boot(id: u32, setup: &Setup) -> Node {
    let disk = Disk::empty(Actor(u64::from(id) << 32), Default::default());
    Node::boot(NodeId(id), disk, setup, 0, 7)
}

fn put(key: &str, value: &str, context: Option<VectorClock>) -> Op {
    Op::Put {
        key: Bytes::from(key.to_string()),
        value: Some(Bytes::from(value.to_string())),
        context,
    }
}

fn answers(out: &[Out]) -> Vec<&Answer> {
    out.iter()
        .filter_map(|o| match o {
            Out::Answer(_, a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn blind_writes_stop_at_the_sibling_cap() {
    let setup = setup(1, 1, 1);
    let mut node = boot(1, &setup);
    let mut out = Vec::new();
    for i in 0..SIBLINGS_PER_KEY_MAX {
        node.request(
            10,
            i as u64,
            put("k", "v", Some(VectorClock::new())),
            &mut out,
        );
    }
    assert!(
        answers(&out)
            .iter()
            .all(|a| matches!(a, Answer::Written(_)))
    );
    // Everything a write changed is handed out to be made durable first.
    assert!(
        out.iter()
            .any(|o| matches!(o, Out::Persist(Persist::State(..))))
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Out::Persist(Persist::Counter(_))))
    );
    out.clear();
    node.request(10, 999, put("k", "v", Some(VectorClock::new())), &mut out);
    assert_eq!(
        answers(&out),
        [&Answer::TooManySiblings(SIBLINGS_PER_KEY_MAX)]
    );
    assert_eq!(
        node.disk.store[&Bytes::from_static(b"k")].siblings().len(),
        SIBLINGS_PER_KEY_MAX
    );
    // A plain write (no context) replaces what the coordinator holds.
    out.clear();
    node.request(10, 1000, put("k", "one", None), &mut out);
    assert!(matches!(answers(&out)[..], [Answer::Written(_)]));
    assert_eq!(
        node.disk.store[&Bytes::from_static(b"k")].siblings().len(),
        1
    );
}

#[test]
fn a_forward_that_cannot_leave_goes_to_the_next_replica() {
    let setup = setup(3, 3, 2);
    let mut node = boot(2, &setup);
    // A key node 2 does not coordinate.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| setup.placement.preference_list(k.as_bytes())[0] != NodeId(2))
        .unwrap();
    let first = setup.placement.preference_list(key.as_bytes())[0];
    let mut out = Vec::new();
    node.request(10, 1, put(&key, "v", None), &mut out);
    let Some(Out::Send(to, Msg::Forward { client, op, .. })) = out.pop() else {
        panic!("a forward");
    };
    assert_eq!((to, client), (first, 1));
    node.forward_failed(10, to, client, op, Consistency::default(), &mut out);
    let next = setup
        .placement
        .preference_list(key.as_bytes())
        .into_iter()
        .find(|&n| n != first)
        .unwrap();
    if next == NodeId(2) {
        // Coordinated here: replicas get their copies.
        assert!(
            out.iter()
                .any(|o| matches!(o, Out::Send(_, Msg::Replicate { .. })))
        );
    } else {
        assert!(matches!(out[..], [Out::Send(n, Msg::Forward { client: 1, .. })] if n == next));
    }
}

#[test]
fn an_unreachable_replica_gets_a_durable_hint_here() {
    let setup = setup(3, 3, 2);
    let mut node = boot(1, &setup);
    let state = {
        let mut out = Vec::new();
        let mut single = boot(1, &self::setup(1, 1, 1));
        single.request(1, 1, put("k", "v", None), &mut out);
        single.disk.store[&Bytes::from_static(b"k")].clone()
    };
    let mut out = Vec::new();
    node.replicate_failed(NodeId(3), Bytes::from_static(b"k"), &state, &mut out);
    assert!(
        matches!(&out[..], [Out::Persist(Persist::Hint(NodeId(3), k, s))] if k == "k" && *s == state)
    );
    assert_eq!(
        node.disk.hints.backlog(),
        vec![(NodeId(3), 1, state.size_bytes())]
    );
    // Delivered and acknowledged: the hint goes, on disk too.
    out.clear();
    let seq = node.disk.hints.batch(NodeId(3), 1)[0].seq;
    node.receive(
        20,
        NodeId(3),
        Msg::HandoffAck {
            key: Bytes::from_static(b"k"),
            seq,
        },
        &mut out,
    );
    assert!(matches!(
        &out[..],
        [Out::Persist(Persist::HintDone(NodeId(3), _))]
    ));
    assert!(node.disk.hints.is_empty());
}

#[test]
fn forwarded_answers_go_back_to_the_entry_node() {
    let setup = setup(1, 1, 1);
    let mut node = boot(1, &setup);
    let mut out = Vec::new();
    let op = put("k", "v", None);
    node.receive(
        5,
        NodeId(7),
        Msg::Forward {
            client: 42,
            op,
            consistency: Consistency::default(),
        },
        &mut out,
    );
    let reply = out.iter().find_map(|o| match o {
        Out::Send(to, Msg::ForwardReply { client, answer }) => Some((*to, *client, answer.clone())),
        _ => None,
    });
    assert!(
        matches!(reply, Some((NodeId(7), 42, Answer::Written(_)))),
        "{reply:?}"
    );
    assert_eq!(node.in_flight(), 0);
}

/// Delivers every message between `a` and `b` until none is left.
fn pump(nodes: &mut [Node; 2], mut out: Vec<(usize, Out)>, now_ms: u64) {
    while let Some((from, o)) = out.pop() {
        if let Out::Send(to, msg) = o {
            let at = usize::from(nodes[1].id == to);
            let mut next = Vec::new();
            nodes[at].receive(now_ms, nodes[from].id, msg, &mut next);
            out.extend(next.into_iter().map(|o| (at, o)));
        }
    }
}

/// Ticks both nodes every 20 ms from `from_ms`, delivering their messages
/// at once except those `drop` refuses, until their trees agree; the time.
fn run_until_equal(
    nodes: &mut [Node; 2],
    from_ms: u64,
    mut drop: impl FnMut(&Msg) -> bool,
) -> Option<u64> {
    let mut now_ms = from_ms;
    while now_ms < from_ms + 600_000 {
        now_ms += 20;
        let mut queue: Vec<(usize, Out)> = Vec::new();
        for (i, node) in nodes.iter_mut().enumerate() {
            let mut out = Vec::new();
            node.tick(now_ms, &mut out);
            queue.extend(out.into_iter().map(|o| (i, o)));
        }
        while let Some((from, o)) = queue.pop() {
            let Out::Send(to, msg) = o else { continue };
            if drop(&msg) {
                continue;
            }
            let at = usize::from(nodes[1].id == to);
            let mut next = Vec::new();
            nodes[at].receive(now_ms, nodes[from].id, msg, &mut next);
            queue.extend(next.into_iter().map(|o| (at, o)));
        }
        let a = nodes[0].ae.tree(NodeId(2)).unwrap().root();
        if a == nodes[1].ae.tree(NodeId(1)).unwrap().root() {
            return Some(now_ms);
        }
    }
    None
}

/// Two nodes sharing every key, where node 2 missed the writes of the
/// keys `missed` picks (their copies to it are dropped).
fn two_nodes(keys: u64, missed: impl Fn(u64) -> bool) -> [Node; 2] {
    let mut setup = setup(2, 2, 1);
    setup.timing.ae_entries_max = 64;
    setup.timing.tree_depth = 8;
    let mut nodes = [boot(1, &setup), boot(2, &setup)];
    let mut out = Vec::new();
    for i in 0..keys {
        let op = put(&format!("key:{i}"), "v", None);
        nodes[0].coordinate(1, i, op, Consistency::default(), &mut out);
    }
    let copies: Vec<(usize, Out)> = out
        .into_iter()
        .filter(|o| match o {
            Out::Send(_, Msg::Replicate { key, .. }) => {
                let i: u64 = std::str::from_utf8(&key[4..]).unwrap().parse().unwrap();
                !missed(i)
            }
            _ => false,
        })
        .map(|o| (0, o))
        .collect();
    pump(&mut nodes, copies, 1);
    nodes
}

#[test]
fn one_descent_refills_an_empty_replica_over_paced_chunks() {
    let keys = 3_000;
    let mut nodes = two_nodes(keys, |_| true);
    assert_eq!(nodes[0].disk.store.len(), keys as usize);
    assert!(nodes[1].disk.store.is_empty());
    let mut descents = 0; // comparisons that went past the roots
    let done_ms = run_until_equal(&mut nodes, 10, |m| {
        descents += usize::from(matches!(m, Msg::Ae(Message::Ask { level: 1, .. })));
        false
    })
    .expect("trees agree");
    assert_eq!(nodes[1].disk.store.len(), keys as usize);
    let (a, b) = (nodes[0].ae_progress(), nodes[1].ae_progress());
    // One descent found the buckets and its round streamed them all (both
    // nodes start their first exchange at once, so two descents cross;
    // then the lower id's round goes on alone). Descending again per
    // message, as before, would take one per 64 keys.
    assert!(descents <= 2, "{descents} descents");
    assert!(a.rounds_differ + b.rounds_differ <= 2, "{a:?} {b:?}");
    let chunks = a.chunks_sent + b.chunks_sent;
    assert!(chunks >= keys / 64, "{chunks} chunks of at most 64 keys");
    // Each chunk lists only its own buckets: every key is listed about
    // twice (the driver's chunk and the answer), not once per message.
    let listed = a.keys_listed + b.keys_listed;
    assert!(listed <= 3 * keys, "{listed} keys listed for {keys}");
    assert!(done_ms < 60_000, "paced at AE_FOLLOW_UP_MS: {done_ms} ms");
}

#[test]
fn a_lost_chunk_or_answer_is_resent_without_a_new_descent() {
    let keys = 2_000;
    let mut nodes = two_nodes(keys, |i| i % 7 == 0);
    let (mut chunks, mut answers, mut descents) = (0, 0, 0);
    let done = run_until_equal(&mut nodes, 10, |msg| match msg {
        Msg::Ae(Message::Ask { level: 1, .. }) => {
            descents += 1;
            false
        }
        Msg::AeEntries { reply: true, .. } => {
            chunks += 1;
            chunks == 2 // the second chunk is lost
        }
        Msg::AeEntries { reply: false, .. } => {
            answers += 1;
            answers == 4 // and the fourth answer
        }
        _ => false,
    });
    assert!(done.is_some(), "trees agree despite the losses");
    let stored = |n: &Node| -> Vec<(Bytes, Siblings)> {
        n.disk
            .store
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    };
    assert_eq!(stored(&nodes[0]), stored(&nodes[1]));
    let (a, b) = (nodes[0].ae_progress(), nodes[1].ae_progress());
    assert!(chunks > 20, "{chunks} chunks");
    // The two crossing first descents, nothing after: the round resumed.
    assert!(descents <= 2, "{descents} descents");
    assert!(a.rounds_differ + b.rounds_differ <= 2, "{a:?} {b:?}");
}

#[test]
fn a_silent_peer_ends_the_round_and_a_later_descent_repairs() {
    let keys = 1_000;
    let mut nodes = two_nodes(keys, |i| i % 5 == 0);
    // Every entries message is lost for ten minutes: rounds give up.
    let lost = run_until_equal(&mut nodes, 10, |m| matches!(m, Msg::AeEntries { .. }));
    assert!(lost.is_none());
    assert!(nodes.iter().all(|n| n.repairs.len() <= 1));
    let done = run_until_equal(&mut nodes, 600_010, |_| false);
    assert!(done.is_some());
    let differ = nodes[0].ae_progress().rounds_differ + nodes[1].ae_progress().rounds_differ;
    assert!(
        differ > 2,
        "rounds were given up and started again: {differ}"
    );
}

#[test]
fn a_connection_override_changes_the_quorum_a_write_waits_for() {
    let setup = setup(3, 3, 1);
    let mut node = boot(1, &setup);
    let key = (0..1000)
        .map(|i| format!("k{i}"))
        .find(|k| node.placement().preference_list(k.as_bytes())[0] == NodeId(1))
        .unwrap();
    // The cluster's W=1: the coordinator's own store answers at once.
    let mut out = Vec::new();
    node.coordinate(1, 1, put(&key, "a", None), Consistency::default(), &mut out);
    assert!(matches!(answers(&out)[..], [Answer::Written(_)]));
    // W=3 for this client: no answer until two more replicas ack.
    let mut out = Vec::new();
    let all = Consistency {
        w: Some(3),
        ..Consistency::default()
    };
    node.coordinate(1, 2, put(&key, "b", None), all, &mut out);
    assert!(answers(&out).is_empty());
    let sent: Vec<NodeId> = out
        .iter()
        .filter_map(|o| match o {
            Out::Send(to, Msg::Replicate { .. }) => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 2);
    let mut out = Vec::new();
    for (i, to) in sent.into_iter().enumerate() {
        let req = 2; // the second round on this node
        node.receive(2, to, Msg::ReplicateAck { req, ok: true }, &mut out);
        assert_eq!(answers(&out).len(), i, "answered after {i} acks");
    }
    assert!(matches!(answers(&out)[..], [Answer::Written(_)]));
    // Asking more than N is capped at N.
    let (q, _) = Consistency {
        w: Some(9),
        r: Some(0),
        mode: None,
    }
    .apply(setup.quorum, QuorumMode::Sloppy);
    assert_eq!((q.w, q.r), (3, 1));
}
