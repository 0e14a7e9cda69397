use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::*;

type Filter = Box<dyn Fn(NodeId, NodeId, &Message) -> bool>;

/// Detectors wired together with instant delivery, a step of 10 ms, and a
/// filter that says which messages are lost.
struct Net {
    nodes: BTreeMap<NodeId, Membership>,
    stopped: BTreeSet<NodeId>,
    now_ms: u64,
    lost: Filter,
    events: Vec<(u64, NodeId, Event)>,
}

fn ids(n: u32) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

impl Net {
    fn new(n: u32, config: Config) -> Net {
        let nodes = ids(n)
            .into_iter()
            .map(|id| {
                (
                    id,
                    Membership::new(id, 1, ids(n), config, 0, u64::from(id.0)),
                )
            })
            .collect();
        Net {
            nodes,
            stopped: BTreeSet::new(),
            now_ms: 0,
            lost: Box::new(|_, _, _| false),
            events: Vec::new(),
        }
    }

    fn run_until(&mut self, end_ms: u64) {
        while self.now_ms < end_ms {
            self.now_ms += 10;
            let mut queue = VecDeque::new();
            for (&id, node) in &mut self.nodes {
                if !self.stopped.contains(&id) {
                    queue.extend(
                        node.tick(self.now_ms)
                            .into_iter()
                            .map(|(to, m)| (id, to, m)),
                    );
                }
            }
            while let Some((from, to, message)) = queue.pop_front() {
                if self.stopped.contains(&to) || (self.lost)(from, to, &message) {
                    continue;
                }
                let node = self.nodes.get_mut(&to).unwrap();
                let replies = node.receive(self.now_ms, from, message);
                queue.extend(replies.into_iter().map(|(next, m)| (to, next, m)));
            }
            for (&id, node) in &mut self.nodes {
                for event in node.drain_events() {
                    self.events.push((self.now_ms, id, event));
                }
            }
        }
    }

    fn restart(&mut self, id: NodeId, generation: u64, config: Config) {
        let all = self.nodes.keys().copied().collect::<Vec<_>>();
        let node = Membership::new(id, generation, all, config, self.now_ms, 99);
        self.nodes.insert(id, node);
        self.stopped.remove(&id);
    }
}

#[test]
fn heartbeats_spread_and_healthy_members_stay_up() {
    let mut net = Net::new(5, Config::default());
    net.run_until(10_000);
    assert!(net.events.is_empty(), "{:?}", net.events);
    for node in net.nodes.values() {
        for (id, status, heartbeat) in node.members() {
            assert_eq!(status, Status::Alive, "{id:?} at {:?}", node.me());
            // 50 rounds of 200 ms; gossip lags by a round or two at most.
            assert!(heartbeat.counter >= 45, "{heartbeat:?}");
        }
    }
}

#[test]
fn a_stopped_node_is_marked_down_everywhere_then_up_after_restart() {
    let config = Config::default();
    let mut net = Net::new(4, config);
    net.run_until(2_000);
    net.stopped.insert(NodeId(3));
    let stopped_at = net.now_ms;
    net.run_until(stopped_at + 5_000);
    let downs: Vec<_> = net
        .events
        .iter()
        .filter(|e| e.2 == Event::Down(NodeId(3)))
        .collect();
    assert_eq!(downs.len(), 3, "{:?}", net.events);
    let bound_ms = config.down_after_ms + config.probe_timeout_ms + 2 * config.gossip_interval_ms;
    for (at, _, _) in &downs {
        assert!(
            *at - stopped_at <= bound_ms,
            "down after {} ms",
            at - stopped_at
        );
    }
    for id in [1, 2, 4] {
        assert_eq!(net.nodes[&NodeId(id)].status(NodeId(3)), Status::Down);
    }
    // Back in a new generation: its counter restarts, yet reads as newer.
    net.restart(NodeId(3), 2, config);
    let restarted_at = net.now_ms;
    net.run_until(restarted_at + 2_000);
    for id in [1, 2, 4] {
        assert_eq!(net.nodes[&NodeId(id)].status(NodeId(3)), Status::Alive);
    }
    let ups = net
        .events
        .iter()
        .filter(|e| e.2 == Event::Up(NodeId(3)))
        .count();
    assert_eq!(ups, 3);
}

/// Node 1 hears no gossip at all and cannot reach node 2 directly: only
/// relayed probes can keep node 2 up in its view.
fn cut_off_view(config: Config) -> Net {
    let mut net = Net::new(4, config);
    net.lost = Box::new(|from, to, message| {
        let gossip_to_1 = to == NodeId(1) && matches!(message, Message::Gossip { .. });
        let direct = (from, to) == (NodeId(1), NodeId(2)) || (from, to) == (NodeId(2), NodeId(1));
        gossip_to_1 || direct
    });
    net.run_until(20_000);
    net
}

#[test]
fn an_indirect_probe_keeps_a_reachable_node_up() {
    let net = cut_off_view(Config::default());
    // Alive or suspect (relayed acks keep flipping it back): never down.
    assert!(net.nodes[&NodeId(1)].is_up(NodeId(2)));
    assert!(
        !net.events.iter().any(|e| e.2 == Event::Down(NodeId(2))),
        "{:?}",
        net.events
    );
    // Nodes 3 and 4 answer direct pings: never down either.
    assert!(net.events.is_empty(), "{:?}", net.events);
}

#[test]
fn without_indirect_probes_the_same_node_is_marked_down() {
    let direct_only = Config {
        indirect_probes: 0,
        ..Config::default()
    };
    let net = cut_off_view(direct_only);
    assert!(
        net.events
            .iter()
            .any(|e| e.1 == NodeId(1) && e.2 == Event::Down(NodeId(2)))
    );
    let plain_gossip = Config {
        probe: false,
        ..Config::default()
    };
    let net = cut_off_view(plain_gossip);
    let downs: BTreeSet<NodeId> = net
        .events
        .iter()
        .filter_map(|e| match e.2 {
            Event::Down(id) => Some(id),
            Event::Up(_) => None,
        })
        .collect();
    // Plain gossip: node 1 hears nothing, so it marks everyone down.
    assert_eq!(downs, [2, 3, 4].map(NodeId).into_iter().collect());
}
