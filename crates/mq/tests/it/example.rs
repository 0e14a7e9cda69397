//! The shipped example (`examples/mq/mq.toml`) loads and validates exactly
//! as `hyperscale mq serve --config` would.

use std::path::Path;

#[test]
fn the_example_config_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mq/mq.toml");
    let sources = service::ConfigSources::new(Some(file), "");
    let config: mq::Config = service::config::load(&sources).expect("the example loads");
    assert_eq!(config.bind, "127.0.0.1:9092");
    assert_eq!(config.fsync, mq::config::Fsync::Always);
    assert_eq!(config.num_partitions, 3);
    config
        .validate()
        .expect("the example's limits are consistent");
    config
        .log_config()
        .validate()
        .expect("the example's log settings fit the on-disk format");
}

#[test]
fn the_cluster_examples_are_valid_and_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mq-cluster");
    let mut quorums = Vec::new();
    for id in 1..=3 {
        let file = dir.join(format!("broker{id}.toml"));
        let sources = service::ConfigSources::new(Some(file), "");
        let config: mq::Config = service::config::load(&sources).expect("the example loads");
        assert_eq!(config.broker_id, id);
        config.validate().expect("the example is consistent");
        let node = config.node_config().expect("a cluster member");
        assert_eq!(node.voters.len(), 3);
        quorums.push(config.controller_quorum.clone());
    }
    assert!(quorums.windows(2).all(|w| w[0] == w[1]), "one quorum line");
}
