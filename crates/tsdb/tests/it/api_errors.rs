//! The HTTP API's refusals: Prometheus's error shapes and statuses for bad
//! queries, execution errors, query limits and bad remote-write bodies, and
//! the server keeps serving afterwards.

use std::sync::Arc;

use serde_json::Value as Json;
use tsdb::http::{Api, remote_write};
use tsdb::promql::QueryLimits;
use tsdb::{Db, Options};

fn series(name: &str, job: &str, n: i64) -> remote_write::WireSeries {
    (
        vec![("__name__".into(), name.into()), ("job".into(), job.into())],
        (0..n).map(|i| (1_000_000 + i * 1000, i as f64)).collect(),
    )
}

#[test]
fn errors_are_shaped_as_prometheus_shapes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options {
        maintenance_interval_ms: 0,
        ..Options::default()
    };
    opts.limits.future_tolerance_ms = None;
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    let limits = QueryLimits {
        samples_max: 100,
        ..QueryLimits::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(tsdb::http::serve(listener, Api { db, limits }));
    let client = reqwest::Client::new();
    rt.block_on(async {
        let write = |body: Vec<u8>| {
            client
                .post(format!("http://127.0.0.1:{port}/api/v1/write"))
                .header("Content-Encoding", "snappy")
                .body(body)
                .send()
        };
        assert_eq!(
            write(b"not snappy".to_vec())
                .await
                .unwrap()
                .status()
                .as_u16(),
            400
        );
        let bad_name =
            remote_write::encode(&[(vec![("__name__".into(), "1bad".into())], vec![(1, 1.0)])]);
        assert_eq!(write(bad_name).await.unwrap().status().as_u16(), 400);
        let ok = remote_write::encode(&[series("m", "a", 200), series("m", "b", 10)]);
        assert_eq!(write(ok).await.unwrap().status().as_u16(), 204);

        let query = |path: &'static str, params: Vec<(&'static str, &'static str)>| {
            let client = client.clone();
            async move {
                let r = client
                    .get(format!("http://127.0.0.1:{port}{path}"))
                    .query(&params)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Json>().await.unwrap())
            }
        };
        let (status, body) =
            query("/api/v1/query", vec![("query", "sum(m"), ("time", "1100")]).await;
        assert_eq!(
            (status, body["status"].as_str(), body["errorType"].as_str()),
            (400, Some("error"), Some("bad_data")),
            "{body}"
        );
        let (status, body) =
            query("/api/v1/query", vec![("query", "m"), ("time", "yesterday")]).await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (400, Some("bad_data")),
            "{body}"
        );
        // 200 samples of job a in 200 s: more than the 100-sample limit.
        let (status, body) = query(
            "/api/v1/query",
            vec![
                ("query", "count_over_time(m{job=\"a\"}[1h])"),
                ("time", "1200"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (422, Some("execution")),
            "{body}"
        );
        assert_eq!(
            body["error"],
            "query processing would load too many samples into memory in query execution"
        );
        let (status, body) = query(
            "/api/v1/query_range",
            vec![
                ("query", "m"),
                ("start", "0"),
                ("end", "100000"),
                ("step", "1"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (400, Some("bad_data")),
            "{body}"
        );
        let (status, body) = query(
            "/api/v1/query_range",
            vec![
                ("query", "m[5m]"),
                ("start", "0"),
                ("end", "10"),
                ("step", "1"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (400, Some("bad_data")),
            "{body}"
        );
        let (status, body) = query("/api/v1/series", vec![]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("no match[] parameter provided")),
            "{body}"
        );
        // Still serving, and within the limit.
        let (status, body) = query(
            "/api/v1/query",
            vec![
                ("query", "count_over_time(m{job=\"b\"}[1h])"),
                ("time", "1100"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["result"][0]["value"][1], "10");
        // RFC 3339 times, as Prometheus takes them: 1100 s is 00:18:20Z.
        let (status, body) = query(
            "/api/v1/query",
            vec![
                ("query", "count_over_time(m{job=\"b\"}[1h])"),
                ("time", "1970-01-01T09:18:20+09:00"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["result"][0]["value"],
            serde_json::json!([1100, "10"])
        );
        let (status, body) = query(
            "/api/v1/query_range",
            vec![
                ("query", "m{job=\"b\"}"),
                ("start", "1970-01-01T00:16:40Z"),
                ("end", "1970-01-01T00:16:50.000Z"),
                ("step", "5"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["result"][0]["values"],
            serde_json::json!([[1000, "0"], [1005, "5"], [1010, "9"]])
        );
        let (status, body) = query("/api/v1/label/job/values", vec![]).await;
        assert_eq!(
            (status, body["data"].clone()),
            (200, serde_json::json!(["a", "b"]))
        );
    });
}
