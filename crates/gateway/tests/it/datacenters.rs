//! Data centers: clients go to their nearest data center (by network), a
//! data center whose pools all die loses its clients to the next one within
//! the health-check window, and gets them back only after it has been
//! healthy for `up_after_ms` (hysteresis). Also: the shipped
//! `examples/scale/two-datacenters.toml` is valid.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{TestGateway, TestUpstream, WAIT};

/// Which upstream answers a request from `source`.
async fn served_by(gateway: &TestGateway, source: &str) -> String {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let response = client.get(gateway.url("/x")).send().await.unwrap();
    response
        .headers()
        .get("x-upstream")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_else(|| format!("status {}", response.status()))
}

async fn until_served_by(gateway: &TestGateway, source: &str, name: &str) -> Duration {
    let started = Instant::now();
    while served_by(gateway, source).await != name {
        assert!(
            started.elapsed() < WAIT,
            "traffic from {source} never reached {name}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_dead_data_center_fails_over_and_returns_after_the_hysteresis() {
    let mut east = TestUpstream::start("east").await;
    let west = TestUpstream::start("west").await;
    let mut config = gateway::Config {
        access_log: false,
        ..Default::default()
    };
    for (pool, upstream) in [("web-east", &east), ("web-west", &west)] {
        let mut spec = gateway::config::Pool {
            upstreams: vec![upstream.addr.to_string()],
            ..Default::default()
        };
        spec.health.interval_ms = 50;
        spec.health.timeout_ms = 200;
        spec.health.path = "/health".into();
        config.pools.insert(pool.into(), spec);
    }
    for (name, network) in [("east", "127.0.0.1/32"), ("west", "127.0.0.2/32")] {
        config.datacenters.push(gateway::config::DataCenter {
            name: name.into(),
            networks: vec![network.into()],
        });
    }
    config.datacenter_failover.down_after_ms = 100;
    config.datacenter_failover.up_after_ms = 1_000;
    config.datacenter_failover.check_interval_ms = 20;
    config.routes.push(gateway::config::Route {
        prefix: "/".into(),
        datacenter_pools: BTreeMap::from([
            ("east".into(), "web-east".into()),
            ("west".into(), "web-west".into()),
        ]),
        ..Default::default()
    });
    let gateway = TestGateway::start(config).await;
    assert_eq!(served_by(&gateway, "127.0.0.1").await, "east");
    assert_eq!(served_by(&gateway, "127.0.0.2").await, "west");

    east.kill().await;
    until_served_by(&gateway, "127.0.0.1", "west").await;
    gateway
        .wait_for_metric("hyperscale_gateway_datacenter_up{datacenter=\"east\"} 0")
        .await;
    assert_eq!(served_by(&gateway, "127.0.0.2").await, "west");

    east.restart().await;
    let restarted = Instant::now();
    // Health checks re-admit the upstream within ~100 ms, but the data
    // center stays down until it has been healthy for up_after_ms.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        served_by(&gateway, "127.0.0.1").await,
        "west",
        "came back before the hysteresis"
    );
    until_served_by(&gateway, "127.0.0.1", "east").await;
    assert!(restarted.elapsed() >= Duration::from_millis(1_000));
    assert!(west.hits("/x") > 0 && east.hits("/x") > 0);
}

#[test]
fn the_two_datacenters_example_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scale");
    let sources = service::ConfigSources::new(Some(dir.join("two-datacenters.toml")), "");
    let config: gateway::Config = service::config::load(&sources).unwrap();
    assert_eq!(config.datacenters.len(), 2);
    assert_eq!(config.routes[0].datacenter_pools.len(), 2);
    let mut registry = service::metrics::Registry::default();
    gateway::Gateway::new(config, &mut registry).unwrap();
}

#[test]
fn data_center_mistakes_are_refused_at_start() {
    let mut config = gateway::Config::default();
    let pool = gateway::config::Pool {
        upstreams: vec!["127.0.0.1:1".into()],
        ..Default::default()
    };
    config.pools.insert("p".into(), pool);
    config.routes.push(gateway::config::Route {
        prefix: "/".into(),
        datacenter_pools: BTreeMap::from([("mars".into(), "p".into())]),
        ..Default::default()
    });
    let text = config.validate().unwrap_err().to_string();
    assert!(text.contains("`mars` is not a data center"), "{text}");
    config.datacenters.push(gateway::config::DataCenter {
        name: "mars".into(),
        networks: vec!["10.0.0.0/33".into()],
    });
    let text = config.validate().unwrap_err().to_string();
    assert!(text.contains("datacenters[0].networks"), "{text}");
    config.datacenters[0].networks = vec!["10.0.0.0/8".into()];
    config.validate().unwrap();
}
