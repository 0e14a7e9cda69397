//! The shipped example (`examples/gateway/gateway.toml` and its rules file)
//! loads, validates and builds exactly as `hyperscale gateway serve` would.

use std::path::Path;

#[test]
fn the_example_config_and_rules_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway");
    let file = dir.join("gateway.toml");
    let sources = service::ConfigSources::new(Some(file), "");
    let mut config: gateway::Config = service::config::load(&sources).unwrap();
    config.resolve_paths(&dir);
    assert_eq!(config.bind.to_string(), "127.0.0.1:8000");
    assert_eq!(
        config.pools["web"].upstreams,
        ["127.0.0.1:9001", "127.0.0.1:9002"]
    );
    assert!(
        config
            .ratelimit
            .rules
            .as_ref()
            .unwrap()
            .ends_with("ratelimit.yaml")
    );
    let mut registry = service::metrics::Registry::default();
    gateway::Gateway::new(config, &mut registry).unwrap();
}

#[test]
fn the_edge_cache_example_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway");
    let sources = service::ConfigSources::new(Some(dir.join("edge-cache.toml")), "");
    let mut config: gateway::Config = service::config::load(&sources).unwrap();
    config.resolve_paths(&dir);
    let cache = config.routes[0].cache.as_ref().unwrap();
    assert_eq!(cache.default_ttl_ms, Some(60_000));
    assert_eq!(config.cache.admin_token.as_deref(), Some("change-me"));
    let mut registry = service::metrics::Registry::default();
    gateway::Gateway::new(config, &mut registry).unwrap();
}
