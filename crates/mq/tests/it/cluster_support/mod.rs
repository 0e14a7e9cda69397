//! Shared by the cluster tests: three brokers as real processes on
//! 127.0.0.1 (this test binary re-executed to run `cluster_broker_child`,
//! which calls [`child`]), killed when the [`Cluster`] drops, also on failure.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use service::{Shutdown, SystemContext};
use testkit::{ChildGuard, free_port, wait_for_port};

/// The topic most tests use.
pub const TOPIC: &str = "orders";

/// The child: one broker of the cluster, serving until killed; nothing
/// unless `MQ_CLUSTER_CHILD_ID` is set (the ordinary test run). Every cluster
/// test re-executes this binary to run it.
#[test]
fn cluster_broker_child() {
    let Ok(id) = std::env::var("MQ_CLUSTER_CHILD_ID") else {
        return;
    };
    let env = |k: &str| std::env::var(k).unwrap();
    let config = mq::Config {
        broker_id: id.parse().unwrap(),
        bind: env("MQ_CLUSTER_CHILD_BIND"),
        data_dir: env("MQ_CLUSTER_CHILD_DIR").into(),
        controller_quorum: env("MQ_CLUSTER_CHILD_QUORUM"),
        default_replication_factor: 3,
        min_insync_replicas: 1,
        fsync: mq::config::Fsync::Os,
        controller_election_timeout_ms: 300,
        broker_heartbeat_interval_ms: 100,
        broker_session_timeout_ms: std::env::var("MQ_CLUSTER_CHILD_SESSION_MS")
            .map_or(1_500, |v| v.parse().unwrap()),
        replica_lag_time_max_ms: std::env::var("MQ_CLUSTER_CHILD_LAG_MS")
            .map_or(3_000, |v| v.parse().unwrap()),
        ..mq::Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.bind).await.unwrap();
        let metrics = Arc::new(mq::Metrics::new());
        let server = mq::Server::open(config, listener, metrics).unwrap();
        println!("ready");
        server
            .serve(SystemContext::new(Shutdown::new()))
            .await
            .unwrap();
    });
}

/// Three brokers.
pub struct Cluster {
    /// (session timeout, replica lag) in ms, for every child.
    pub timeouts: (u64, u64),
    /// Kafka ports by broker id.
    pub kafka_ports: BTreeMap<i32, u16>,
    quorum: String,
    dirs: BTreeMap<i32, tempfile::TempDir>,
    children: HashMap<i32, ChildGuard>,
    /// Held while this cluster runs (one cluster per test binary at a time).
    _turn: Option<std::sync::MutexGuard<'static, ()>>,
}

/// One cluster at a time per test binary.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_with((1_500, 3_000))
    }

    /// Starts three brokers with (session timeout, replica lag) in ms.
    /// Clusters of one test binary start one at a time (two at once would
    /// race for free ports and share two cores); a start whose broker died
    /// (a port taken meanwhile) is retried on fresh ports.
    pub fn start_with(timeouts: (u64, u64)) -> Cluster {
        let turn = turn();
        for _ in 0..3 {
            if let Some(mut cluster) = Self::try_start(timeouts) {
                cluster._turn = Some(turn);
                return cluster;
            }
        }
        panic!("three brokers did not start in three attempts");
    }

    fn try_start(timeouts: (u64, u64)) -> Option<Cluster> {
        let ids = [1, 2, 3];
        let mut ports = BTreeSet::new();
        while ports.len() < 6 {
            ports.insert(free_port());
        }
        let mut ports = ports.into_iter();
        let kafka_ports: BTreeMap<i32, u16> =
            ids.iter().map(|&id| (id, ports.next().unwrap())).collect();
        let quorum = ids
            .iter()
            .map(|id| format!("{id}@127.0.0.1:{}", ports.next().unwrap()))
            .collect::<Vec<_>>()
            .join(",");
        let dirs = ids
            .iter()
            .map(|&id| (id, tempfile::tempdir().unwrap()))
            .collect();
        let mut cluster = Cluster {
            timeouts,
            kafka_ports,
            quorum,
            dirs,
            children: HashMap::new(),
            _turn: None,
        };
        for id in ids {
            cluster.spawn(id);
        }
        for (id, port) in &cluster.kafka_ports {
            wait_for_port(*port, Duration::from_secs(20), &format!("broker {id}"));
        }
        std::thread::sleep(Duration::from_millis(200));
        for (id, child) in &mut cluster.children {
            if child.0.try_wait().unwrap().is_some() {
                eprintln!("broker {id} exited at start (a port taken?): retrying");
                return None;
            }
        }
        Some(cluster)
    }

    pub fn spawn(&mut self, id: i32) {
        let exe = std::env::current_exe().unwrap();
        let child = Command::new(exe)
            .args([
                "--exact",
                "cluster_support::cluster_broker_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MQ_CLUSTER_CHILD_ID", id.to_string())
            .env(
                "MQ_CLUSTER_CHILD_BIND",
                format!("127.0.0.1:{}", self.kafka_ports[&id]),
            )
            .env("MQ_CLUSTER_CHILD_DIR", self.dirs[&id].path())
            .env("MQ_CLUSTER_CHILD_QUORUM", &self.quorum)
            .env("MQ_CLUSTER_CHILD_SESSION_MS", self.timeouts.0.to_string())
            .env("MQ_CLUSTER_CHILD_LAG_MS", self.timeouts.1.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.insert(id, ChildGuard(child));
    }

    /// Sends `signal` (STOP, CONT) to broker `id`.
    pub fn signal(&self, id: i32, signal: &str) {
        let pid = self.children[&id].0.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// SIGKILL (Child::kill sends SIGKILL on Unix).
    pub fn kill(&mut self, id: i32) {
        if let Some(mut child) = self.children.remove(&id) {
            child.0.kill().unwrap();
            child.0.wait().unwrap();
        }
    }

    pub fn bootstrap(&self, except: Option<i32>) -> Vec<String> {
        self.kafka_ports
            .iter()
            .filter(|(id, _)| Some(**id) != except)
            .map(|(_, port)| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// (leader, isr) of partition 0 as a live broker's Metadata says.
    pub async fn partition_state(&self, except: Option<i32>) -> Option<(i32, Vec<i32>)> {
        for addr in self.bootstrap(except) {
            let Ok(Ok(mut client)) =
                tokio::time::timeout(Duration::from_secs(2), mq::client::Client::connect(&addr))
                    .await
            else {
                continue;
            };
            let Ok(Ok(meta)) =
                tokio::time::timeout(Duration::from_secs(2), client.metadata(Some(&[TOPIC]))).await
            else {
                continue;
            };
            let topic = meta.topics.first()?;
            let p = topic.partitions.first()?;
            if p.leader_id.0 >= 0 {
                let isr = p.isr_nodes.iter().map(|b| b.0).collect();
                return Some((p.leader_id.0, isr));
            }
        }
        None
    }

    /// Waits (bounded) for a leader other than `not` whose ISR has `isr_len` members.
    pub async fn wait_for(&self, not: Option<i32>, isr_len: usize, what: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((leader, isr)) = self.partition_state(not).await
                && Some(leader) != not
                && isr.len() == isr_len
            {
                return leader;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Sends one record to broker `to` for `topic`-0 with `acks`; the partition's error code.
pub async fn raw_produce(cluster: &Cluster, to: i32, topic: &str, acks: i16) -> i16 {
    use kafka_protocol::messages::ProduceRequest;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let record = mq::log::records::NewRecord {
        key: None,
        value: Some(b"raw"),
        timestamp_ms: i64::try_from(clock::now_ms()).unwrap(),
        headers: &[],
    };
    let batch = mq::log::records::encode_batch(&[record], mq::log::Compression::None).unwrap();
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(mq::api::meta::topic_name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch.into())),
                ]),
        ]);
    let mut client =
        mq::client::Client::connect(&format!("127.0.0.1:{}", cluster.kafka_ports[&to]))
            .await
            .unwrap();
    let response = client
        .broker(to)
        .await
        .unwrap()
        .send(&request, Duration::ZERO)
        .await
        .unwrap();
    response.responses[0].partition_responses[0].error_code
}

/// Creates `name` (1 partition, replication factor 3 by the brokers'
/// default), retrying while the quorum settles.
pub async fn create_topic(cluster: &Cluster, name: &str, min_insync: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let created = async {
            let mut client = mq::client::Client::connect(&cluster.bootstrap(None)[0]).await?;
            let configs =
                BTreeMap::from([("min.insync.replicas".to_string(), min_insync.to_string())]);
            client.create_topic(name, 1, &configs).await
        };
        match tokio::time::timeout(Duration::from_secs(5), created).await {
            Ok(Ok(())) => return,
            other => {
                assert!(Instant::now() < deadline, "topic creation: {other:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
