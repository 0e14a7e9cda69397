//! Config parsing and validation.

use super::*;

fn minimal() -> Config {
    let mut config = Config::default();
    config.pools.insert(
        "web".into(),
        Pool {
            upstreams: vec!["127.0.0.1:9001".into()],
            ..Pool::default()
        },
    );
    config.routes.push(Route {
        prefix: "/".into(),
        pool: "web".into(),
        strip_prefix: false,
        ..Default::default()
    });
    config
}

#[test]
fn minimal_config_is_valid() {
    minimal().validate().unwrap();
}

#[test]
fn route_to_missing_pool_names_it() {
    let mut config = minimal();
    config.routes[0].pool = "api".into();
    let text = config.validate().unwrap_err().to_string();
    assert!(text.contains("routes[0].pool `api`"), "{text}");
}

#[test]
fn bad_upstreams_are_rejected() {
    for bad in ["127.0.0.1", "https://a:1", "not an address:x"] {
        assert!(parse_upstream(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_upstream("http://a:1/").unwrap().as_str(), "a:1");
}

#[test]
fn zero_timeout_is_rejected() {
    let mut config = minimal();
    config.timeouts.connect_ms = 0;
    let text = config.validate().unwrap_err().to_string();
    assert!(text.contains("timeouts.connect_ms"), "{text}");
}

#[test]
fn hash_keys_parse() {
    assert_eq!(HashKey::parse("path").unwrap(), HashKey::Path);
    assert!(matches!(
        HashKey::parse("header:x-user").unwrap(),
        HashKey::Header(_)
    ));
    assert!(HashKey::parse("cookie").is_err());
}
