//! Lists driven by the `redis` crate, a real third-party client, on both
//! engines: its typed list API (pushes, pops with counts, ranges, LPOS with
//! options, LMOVE) and a worker blocked in `BLMOVE`/`BLPOP` the way job
//! queues use them.

use crate::common;

use std::num::NonZeroUsize;
use std::time::Duration;

use common::{TestServer, WAIT, cmd};
use kv::config::EngineKind;
use redis::{AsyncCommands, Direction, LposOptions};

async fn server(engine: EngineKind) -> (TestServer, Option<tempfile::TempDir>) {
    let dir = (engine == EngineKind::Lsm).then(|| tempfile::tempdir().expect("tempdir"));
    let data_dir = dir.as_ref().map(|d| d.path().to_path_buf());
    let server = TestServer::with(|config| {
        config.engine = engine;
        if let Some(data_dir) = data_dir {
            config.data_dir = data_dir;
            config.fsync = kv::config::FsyncPolicy::No;
        }
    })
    .await;
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typed_list_api_works() {
    for engine in [EngineKind::Memory, EngineKind::Lsm] {
        let (server, _dir) = server(engine).await;
        let mut con = server.client().await;
        let len: usize = con.rpush("l", &["a", "b", "c", "b"]).await.unwrap();
        assert_eq!(len, 4);
        let len: usize = con.lpush("l", "z").await.unwrap();
        assert_eq!(len, 5);
        let all: Vec<String> = con.lrange("l", 0, -1).await.unwrap();
        assert_eq!(all, ["z", "a", "b", "c", "b"]);
        let at: Option<usize> = con.lpos("l", "b", LposOptions::default()).await.unwrap();
        assert_eq!(at, Some(2));
        let every: Vec<usize> = con
            .lpos("l", "b", LposOptions::default().count(0).rank(-1))
            .await
            .unwrap();
        assert_eq!(every, [4, 2]);
        let first: Option<String> = con.lpop("l", None).await.unwrap();
        assert_eq!(first.as_deref(), Some("z"));
        let last: Vec<String> = con.rpop("l", NonZeroUsize::new(2)).await.unwrap();
        assert_eq!(last, ["b", "c"]);
        let moved: String = con
            .lmove("l", "other", Direction::Left, Direction::Right)
            .await
            .unwrap();
        assert_eq!(moved, "a");
        let _: () = con.lset("l", 0, "B").await.unwrap();
        let index: Option<String> = con.lindex("l", -1).await.unwrap();
        assert_eq!(index.as_deref(), Some("B"));
        let len: isize = con.linsert_before("l", "B", "A").await.unwrap();
        assert_eq!(len, 2);
        let removed: usize = con.lrem("l", 0, "A").await.unwrap();
        assert_eq!(removed, 1);
        let _: () = con.ltrim("l", 1, 0).await.unwrap();
        let exists: bool = con.exists("l").await.unwrap();
        assert!(!exists, "an emptied list is gone");
        let _: () = con.set("s", "x").await.unwrap();
        let err = con.rpush::<_, _, usize>("s", "x").await.unwrap_err();
        assert_eq!(err.code(), Some("WRONGTYPE"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_blocks_until_a_job_arrives() {
    for engine in [EngineKind::Memory, EngineKind::Lsm] {
        let (server, _dir) = server(engine).await;
        let mut producer = server.client().await;
        let mut worker = server.client().await;
        let job = tokio::spawn(async move {
            let job: Option<String> = worker
                .blmove("jobs", "busy", Direction::Right, Direction::Left, 5.0)
                .await
                .unwrap();
            let next: Option<(String, String)> = worker.blpop("jobs", 0.05).await.unwrap();
            (job, next)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _: usize = producer.lpush("jobs", "job-1").await.unwrap();
        let (job, next) = tokio::time::timeout(WAIT, job)
            .await
            .expect("the worker is served in time")
            .expect("no panic");
        assert_eq!(job.as_deref(), Some("job-1"));
        assert_eq!(next, None, "the second wait timed out");
        let busy: Vec<String> = producer.lrange("busy", 0, -1).await.unwrap();
        assert_eq!(busy, ["job-1"]);
        let blocked: String = cmd(&mut producer, &["INFO", "clients"]).await.unwrap();
        assert!(blocked.contains("blocked_clients:0"), "{blocked}");
    }
}
