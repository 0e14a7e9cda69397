//! Membership changes with real processes (issue 12): three nodes, keys
//! written; a fourth node started with `--join` joins through
//! `hyperscale kv cluster join` while a client keeps writing; then a
//! member leaves through `hyperscale kv cluster leave` and is killed;
//! every acknowledged key reads back through every remaining node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::hyperscale;
use crate::kv_cluster::{Node, connect, start_with, status, wait_for};

fn ring_of(status: &serde_json::Value, id: u64) -> String {
    status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .map_or("absent".into(), |m| m["ring"].as_str().unwrap().to_string())
}

/// Writes `key:{i}` through the ports in turn until stopped; the acks.
fn writer(ports: Vec<u16>, prefix: &'static str, stop: Arc<AtomicBool>) -> Vec<(String, String)> {
    let mut cons: Vec<redis::Connection> = ports.iter().map(|&p| connect(p)).collect();
    let mut acked = Vec::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let (key, value) = (format!("{prefix}:{i}"), format!("v{i}"));
        let n = cons.len();
        let reply: redis::RedisResult<()> = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .query(&mut cons[i % n]);
        if reply.is_ok() {
            acked.push((key, value));
        }
        i += 1;
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    acked
}

fn cli(verb: &str, port: u16) -> String {
    let out = hyperscale()
        .args(["kv", "cluster", verb, "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--wait-ms", "30000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{verb}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn a_node_joins_and_another_leaves_without_losing_a_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secret"),
        "a shared secret of the test cluster\n",
    )
    .unwrap();
    let nodes: Vec<Node> = (0..4).map(|_| Node::free()).collect();
    let three = &nodes[..3];
    let mut guards: Vec<_> = (0..3)
        .map(|i| Some(start_with(i, three, dir.path(), &[])))
        .collect();
    for n in three {
        wait_for("the cluster to form", || status(n.resp)["formed"] == true);
    }
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut c1 = connect(nodes[0].resp);
    for i in 0..300 {
        let (key, value) = (format!("before:{i}"), format!("b{i}"));
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .query(&mut c1)
            .unwrap();
        acked.push((key, value));
    }

    // Node 4 starts outside the ring; a member refuses to join twice.
    guards.push(Some(start_with(3, &nodes, dir.path(), &["--join"])));
    wait_for("node 4 to form", || status(nodes[3].resp)["formed"] == true);
    assert_eq!(ring_of(&status(nodes[3].resp), 4), "not in ring");
    let again = redis::cmd("KV.CLUSTER")
        .arg("JOIN")
        .query::<()>(&mut c1)
        .unwrap_err();
    assert!(again.to_string().contains("already a member"), "{again}");
    let bad = redis::cmd("KV.CLUSTER")
        .arg("EXPLODE")
        .query::<()>(&mut c1)
        .unwrap_err();
    assert!(bad.to_string().contains("JOIN or LEAVE"), "{bad}");

    // It joins while a client writes through nodes 1 and 2.
    let stop = Arc::new(AtomicBool::new(false));
    let w = {
        let stop = stop.clone();
        let ports = vec![nodes[0].resp, nodes[1].resp];
        std::thread::spawn(move || writer(ports, "during-join", stop))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let joined = cli("join", nodes[3].resp);
    assert!(joined.contains("joined the ring"), "{joined}");
    stop.store(true, Ordering::Relaxed);
    acked.extend(w.join().unwrap());
    let s4 = status(nodes[3].resp);
    assert_eq!(ring_of(&s4, 4), "normal", "{s4}");
    assert!(s4["keys"].as_u64().unwrap() > 0, "node 4 owns keys: {s4}");
    assert!(s4["change"]["stream_keys"].as_u64().unwrap() > 0, "{s4}");
    for n in &nodes {
        wait_for("every node to adopt the same ring", || {
            let s = status(n.resp);
            s["change"]["phase"] == "stable" && ring_of(&s, 4) == "normal"
        });
    }

    // Node 2 leaves while a client writes through nodes 1 and 3.
    let stop = Arc::new(AtomicBool::new(false));
    let w = {
        let stop = stop.clone();
        let ports = vec![nodes[0].resp, nodes[2].resp];
        std::thread::spawn(move || writer(ports, "during-leave", stop))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let left = cli("leave", nodes[1].resp);
    assert!(left.contains("left the ring"), "{left}");
    stop.store(true, Ordering::Relaxed);
    acked.extend(w.join().unwrap());
    let table = hyperscale()
        .args(["kv", "cluster", "status", "--addr"])
        .arg(format!("127.0.0.1:{}", nodes[0].resp))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("not in ring") || !table.contains("leaving"),
        "{table}"
    );
    drop(guards[1].take()); // it owns nothing now: SIGKILL
    eprintln!(
        "{} acknowledged keys across the join and the leave",
        acked.len()
    );
    assert!(acked.len() > 350, "writes went on during the changes");
    for i in [0, 2, 3] {
        let mut con = connect(nodes[i].resp);
        for (key, value) in &acked {
            let got: Option<String> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
            assert_eq!(
                got.as_deref(),
                Some(value.as_str()),
                "{key} via node {}",
                i + 1
            );
        }
    }
}
