//! The property that closes the path-variant bypass: any two spellings an
//! upstream resolves to the same file normalize to the same path, so they
//! match the same route, the same rate-limit counter, and are forwarded as
//! the same target.

use gateway::config::Route;
use gateway::normalize::normalize_path;
use gateway::routes::{self, Routes};
use proptest::prelude::*;
use ratelimit::rules::{DescriptorKey, Descriptors, Rules};

const RULES: &str = "domain: gateway
descriptors:
  - key: path
    value: /limited
    rate_limit: {unit: minute, requests_per_unit: 10}
  - key: path
    value: /api/v1
    rate_limit: {unit: second, requests_per_unit: 5}
";

fn routes() -> Routes {
    let table = [
        ("/", false),
        ("/api/", true),
        ("/limited", false),
        ("/a", true),
    ];
    let config: Vec<Route> = table
        .iter()
        .map(|(prefix, strip_prefix)| Route {
            prefix: prefix.to_string(),
            pool: "p".into(),
            strip_prefix: *strip_prefix,
            ..Default::default()
        })
        .collect();
    Routes::new(&config, |_| Some(0))
}

/// What the gateway decides about a (normalized) path.
fn decisions(routes: &Routes, rules: &Rules, path: &str) -> (String, Vec<String>, String) {
    let route = routes.find(path).expect("`/` matches everything");
    let compiled = routes.get(route);
    let mut descriptors = Descriptors::new();
    descriptors.insert(DescriptorKey::Path, path);
    let counters = rules
        .matching(&descriptors)
        .into_iter()
        .map(|found| found.counter_key)
        .collect();
    let uri: http::Uri = path.parse().expect("a normalized path is a valid target");
    let target = routes::upstream_target(compiled, &uri)
        .expect("a normalized path forwards")
        .to_string();
    (compiled.prefix.clone(), counters, target)
}

/// One segment of a canonical path (`pchar` only, never `.` or `..`).
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("limited".to_string()),
        Just("api".to_string()),
        Just("v1".to_string()),
        Just("a".to_string()),
        "[a-zA-Z0-9._~!$&'()*+,;=:@-]{1,6}",
    ]
    .prop_filter("dot segments are not canonical", |s| s != "." && s != "..")
}

/// Spells `canonical` differently using `entropy`: extra slashes, `./`,
/// `x/../`, percent-encoded bytes (either hex case), `%2F` for `/`.
fn variant(canonical: &str, entropy: &[u8]) -> String {
    let mut dice = entropy.iter().copied().cycle();
    let mut roll = move || dice.next().unwrap_or(0);
    let mut out = String::from("/");
    for (index, segment) in canonical[1..].split('/').enumerate() {
        if index > 0 {
            out.push_str(if roll() % 4 == 0 { "%2f" } else { "/" });
        }
        match roll() % 6 {
            0 => out.push('/'),
            1 => out.push_str("./"),
            2 => out.push_str("x/../"),
            3 => out.push_str("%2e/"),
            _ => {}
        }
        for byte in segment.bytes() {
            match roll() % 5 {
                0 => out.push_str(&format!("%{byte:02x}")),
                1 => out.push_str(&format!("%{byte:02X}")),
                _ => out.push(char::from(byte)),
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn same_file_means_same_route_limit_and_forwarded_path(
        segments in prop::collection::vec(segment(), 0..6),
        trailing in any::<bool>(),
        entropy in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut canonical = format!("/{}", segments.join("/"));
        if trailing && !segments.is_empty() {
            canonical.push('/');
        }
        let spelled = variant(&canonical, &entropy);
        let normalized = normalize_path(&spelled)
            .unwrap_or_else(|err| panic!("{spelled}: {err}"));
        prop_assert_eq!(normalized.as_str(), canonical.as_str(), "variant {}", spelled);
        let routes = routes();
        let rules = Rules::parse(RULES, "test").unwrap();
        prop_assert_eq!(
            decisions(&routes, &rules, normalized.as_str()),
            decisions(&routes, &rules, &canonical),
        );
    }

    #[test]
    fn any_input_normalizes_to_a_fixed_point_or_is_refused(path in "/[a-z/.%0-9A-F~!?\"é ]{0,24}") {
        if let Ok(normalized) = normalize_path(&path) {
            let again = normalize_path(normalized.as_str()).unwrap();
            prop_assert!(again.is_unchanged(), "{} -> {} is not a fixed point", path, normalized);
            let text = normalized.as_str();
            let segments: Vec<&str> = text[1..].split('/').collect();
            let (last, inner) = segments.split_last().unwrap();
            prop_assert!(inner.iter().all(|s| !s.is_empty() && *s != "." && *s != ".."), "{}", text);
            prop_assert!(*last != "." && *last != "..", "{}", text);
        }
    }
}
