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
