//! The kv cluster with real processes (issue 12): three nodes on
//! 127.0.0.1, `N = 3`, `W = 2`, `R = 2`; a writer keeps writing through
//! two nodes while the third is killed with `kill -9`; writes go on, the
//! others hold hints for it (the backlog shows in `cluster status`); it
//! restarts on its disk, the hints drain, anti-entropy converges, and
//! every acknowledged write reads back through every node.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Guard, Lines, hyperscale};

/// Every wait of this test is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

pub(crate) struct Node {
    pub resp: u16,
    pub peer: u16,
    pub admin: u16,
}

impl Node {
    pub(crate) fn free() -> Node {
        Node {
            resp: testkit::free_port(),
            peer: testkit::free_port(),
            admin: testkit::free_port(),
        }
    }
}

fn start(i: usize, nodes: &[Node], dir: &Path) -> Guard {
    start_with(i, nodes, dir, &[])
}

/// Starts node `i + 1` of `nodes` (seeds: all the others) with `extra` flags.
pub(crate) fn start_with(i: usize, nodes: &[Node], dir: &Path, extra: &[&str]) -> Guard {
    let seeds: Vec<String> = nodes
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, n)| format!("127.0.0.1:{}", n.peer))
        .collect();
    let mut child = hyperscale()
        .args(["kv", "serve", "--fsync", "no", "--bind"])
        .arg(format!("127.0.0.1:{}", nodes[i].resp))
        .arg("--data-dir")
        .arg(dir.join(format!("node{i}")))
        .arg("--cluster-bind")
        .arg(format!("127.0.0.1:{}", nodes[i].peer))
        .arg("--seeds")
        .arg(seeds.join(","))
        .args(["--node-id", &(i + 1).to_string(), "--vnodes", "32"])
        .args([
            "--replicas",
            "3",
            "--write-quorum",
            "2",
            "--read-quorum",
            "2",
        ])
        .arg("--cluster-secret-file")
        .arg(dir.join("secret"))
        .arg("--admin-bind")
        .arg(format!("127.0.0.1:{}", nodes[i].admin))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a node");
    let lines = Lines::new(child.stdout.take().expect("piped"));
    let banner = lines.next_within(WAIT);
    assert!(banner.starts_with("kv cluster node on"), "{banner:?}");
    Guard(child)
}

pub(crate) fn connect(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    con
}

pub(crate) fn status(port: u16) -> serde_json::Value {
    let json: String = redis::cmd("KV.STATUS").query(&mut connect(port)).unwrap();
    serde_json::from_str(&json).unwrap()
}

/// Polls `check` every 100 ms until it holds; panics with `what` after [`WAIT`].
pub(crate) fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn member_state(status: &serde_json::Value, id: u64) -> String {
    status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .map(|m| m["state"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn a_killed_node_misses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secret"),
        "a shared secret of the test cluster\n",
    )
    .unwrap();
    let nodes: Vec<Node> = (0..3)
        .map(|_| Node {
            resp: testkit::free_port(),
            peer: testkit::free_port(),
            admin: testkit::free_port(),
        })
        .collect();
    let mut guards: Vec<Option<Guard>> =
        (0..3).map(|i| Some(start(i, &nodes, dir.path()))).collect();
    for n in &nodes {
        wait_for("the cluster to form", || status(n.resp)["formed"] == true);
    }
    // Written through another node, read through any.
    let mut c1 = connect(nodes[0].resp);
    let _: () = redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query(&mut c1)
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("greeting")
        .query(&mut connect(nodes[2].resp))
        .unwrap();
    assert_eq!(got, "hello");
    // Two writes that saw nothing (an empty context) are both kept as
    // siblings; a write with the context KV.GET returned resolves them.
    let mut c3 = connect(nodes[2].resp);
    for value in ["left", "right"] {
        let _: () = redis::cmd("KV.PUT")
            .arg("doc")
            .arg(value)
            .arg("CONTEXT")
            .arg("")
            .query(&mut c3)
            .unwrap();
    }
    let (context, mut values): (Vec<u8>, Vec<Option<String>>) =
        redis::cmd("KV.GET").arg("doc").query(&mut c1).unwrap();
    values.sort();
    assert_eq!(
        values,
        [Some("left".to_string()), Some("right".to_string())]
    );
    let plain: String = redis::cmd("GET").arg("doc").query(&mut c1).unwrap();
    assert!(plain == "left" || plain == "right", "{plain}");
    let _: () = redis::cmd("KV.PUT")
        .arg("doc")
        .arg("both")
        .arg("CONTEXT")
        .arg(context)
        .query(&mut c3)
        .unwrap();
    let (_, values): (Vec<u8>, Vec<Option<String>>) =
        redis::cmd("KV.GET").arg("doc").query(&mut c1).unwrap();
    assert_eq!(values, [Some("both".to_string())]);
    // Counters, sets and hashes as CRDTs, through all three nodes.
    let mut cons: Vec<redis::Connection> = nodes.iter().map(|n| connect(n.resp)).collect();
    crate::kv_cluster_crdt::data_types_match_redis(&mut cons);
    // What replicas would refuse is refused before a round starts.
    let long_key = "k".repeat(70_000);
    let refused = redis::cmd("SET")
        .arg(&long_key)
        .arg("v")
        .query::<()>(&mut c1)
        .unwrap_err();
    assert!(refused.to_string().contains("at most"), "{refused}");
    // Commands the cluster has not designed are refused, not run locally.
    let refused = redis::cmd("LPUSH")
        .arg("l")
        .arg("x")
        .query::<i64>(&mut c1)
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("not supported in cluster mode"),
        "{refused}"
    );

    // A writer through nodes 1 and 2; node 3 is killed while it writes.
    let stop = Arc::new(AtomicBool::new(false));
    let ports = [nodes[0].resp, nodes[1].resp];
    let writer_stop = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut cons = [connect(ports[0]), connect(ports[1])];
        let (mut acked, mut failed) = (Vec::new(), 0);
        let mut i = 0u64;
        while !writer_stop.load(Ordering::Relaxed) {
            let key = format!("key:{i}");
            let value = format!("value:{i}");
            let reply: redis::RedisResult<()> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .query(&mut cons[(i % 2) as usize]);
            match reply {
                Ok(()) => acked.push((key, value, Instant::now())),
                Err(_) => failed += 1,
            }
            i += 1;
        }
        (acked, failed)
    });
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    drop(guards[2].take()); // SIGKILL, then reaped
    wait_for("every peer to see node 3 down", || {
        (0..2).all(|i| member_state(&status(nodes[i].resp), 3) == "down")
    });
    let detected = killed_at.elapsed();
    // The survivors hold hints for it: the backlog rises.
    wait_for("a hint backlog for node 3", || {
        let s1 = status(nodes[0].resp)["hints_keys"].as_u64().unwrap();
        let s2 = status(nodes[1].resp)["hints_keys"].as_u64().unwrap();
        s1 + s2 > 0
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = writer.join().unwrap();
    let after_kill = acked.iter().filter(|(_, _, at)| *at > killed_at).count();
    eprintln!(
        "{} writes acknowledged ({after_kill} after the kill), {failed} failed; node 3 down everywhere {detected:?} after the kill",
        acked.len()
    );
    assert!(
        after_kill >= 20,
        "writes went on with a node down: {after_kill} acknowledged after the kill, {failed} failed"
    );
    let cli = hyperscale()
        .args(["kv", "cluster", "status", "--addr"])
        .arg(format!("127.0.0.1:{}", nodes[0].resp))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{table}");
    assert!(table.contains("down"), "{table}");
    // The same queues on /metrics.
    let (code, metrics) =
        crate::common::get(&format!("http://127.0.0.1:{}/metrics", nodes[0].admin));
    assert_eq!(code, 200);
    assert!(metrics.contains("kv_cluster_members_down 1"), "{metrics}");
    assert!(metrics.contains("kv_cluster_hints_keys "), "{metrics}");
    // Per connection (KV.CONSISTENCY): a strict W=3 cannot be met with
    // node 3 down, while the cluster's sloppy W=2 still is.
    let mut strict = connect(nodes[0].resp);
    let shown: (i64, i64, i64, String) = redis::cmd("KV.CONSISTENCY").query(&mut strict).unwrap();
    assert_eq!(shown, (3, 2, 2, "sloppy".into()));
    for args in [&["STRICT"][..], &["3", "3", "1"]] {
        let _: () = redis::cmd("KV.CONSISTENCY")
            .arg(args)
            .query(&mut strict)
            .unwrap();
    }
    let shown: (i64, i64, i64, String) = redis::cmd("KV.CONSISTENCY").query(&mut strict).unwrap();
    assert_eq!(shown, (3, 3, 1, "strict".into()));
    let err = redis::cmd("SET")
        .arg("strict")
        .arg("v")
        .query::<()>(&mut strict)
        .unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"), "{err}");
    for bad in [
        &["4", "1", "1"][..],
        &["0", "1"],
        &["2", "x"],
        &["1", "2", "3", "4"],
    ] {
        let err = redis::cmd("KV.CONSISTENCY")
            .arg(bad)
            .query::<()>(&mut strict);
        assert!(err.is_err(), "{bad:?}");
    }
    let _: () = redis::cmd("KV.CONSISTENCY")
        .arg("DEFAULT")
        .query(&mut strict)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("strict")
        .arg("v")
        .query(&mut strict)
        .unwrap();

    // Restart on the same disk: the hints drain, anti-entropy converges.
    guards[2] = Some(start(2, &nodes, dir.path()));
    wait_for("the hints to drain", || {
        status(nodes[0].resp)["hints_keys"] == 0 && status(nodes[1].resp)["hints_keys"] == 0
    });
    // A write that failed (outcome unknown) may have reached some
    // replicas: then all hold it, so count at least the acknowledged ones.
    let total = acked.len() as u64 + 2; // and "greeting", "doc"
    wait_for("every replica to hold the same keys", || {
        let keys: Vec<u64> = nodes
            .iter()
            .map(|n| status(n.resp)["keys"].as_u64().unwrap())
            .collect();
        keys[0] >= total && keys.iter().all(|&k| k == keys[0])
    });
    wait_for("every peer to see node 3 up again", || {
        (0..2).all(|i| member_state(&status(nodes[i].resp), 3) == "alive")
    });
    // Every acknowledged write reads back (R = 2) through every node.
    for n in &nodes {
        let mut con = connect(n.resp);
        for (key, value, _) in &acked {
            let got: Option<String> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
            assert_eq!(
                got.as_deref(),
                Some(value.as_str()),
                "{key} through port {}",
                n.resp
            );
        }
    }

    // A node without the secret is refused: it never meets the others, so
    // it never forms, and its clients are told so.
    let elsewhere = dir.path().join("stranger");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(
        elsewhere.join("secret"),
        "another secret, not the cluster's\n",
    )
    .unwrap();
    let stranger = [
        Node {
            resp: testkit::free_port(),
            peer: testkit::free_port(),
            admin: testkit::free_port(),
        },
        Node {
            resp: 0,
            peer: nodes[0].peer,
            admin: 0,
        },
        Node {
            resp: 0,
            peer: nodes[1].peer,
            admin: 0,
        },
    ];
    let _stranger = start(0, &stranger, &elsewhere);
    std::thread::sleep(Duration::from_millis(1_500));
    let seen = status(stranger[0].resp);
    assert_eq!(seen["formed"], false, "{seen}");
    let refused = redis::cmd("GET")
        .arg("greeting")
        .query::<Option<String>>(&mut connect(stranger[0].resp))
        .unwrap_err();
    assert!(
        refused.to_string().contains("cluster is forming"),
        "{refused}"
    );
    let members = status(nodes[0].resp)["members"].as_array().unwrap().len();
    assert_eq!(members, 3, "the stranger did not join");
}
