//! Rules parsing, validation messages and matching.

use super::reload::{ReloadOutcome, RulesWatcher};
use super::*;

const EXAMPLE: &str = "\
domain: gateway
descriptors:
  - key: path
    value: /limited
    descriptors:
      - key: remote_address
        rate_limit:
          unit: minute
          requests_per_unit: 10
  - key: header:x-tenant
    value: acme
    rate_limits:
      - unit: second
        unit_multiplier: 30
        requests_per_unit: 100
        algorithm: token_bucket
        burst: 20
      - name: acme-daily
        unit: day
        requests_per_unit: 100000
        mode: soft
        overshoot_percent: 10
  - key: header:x-tenant
    shadow_mode: true
    rate_limit: { unit: second, requests_per_unit: 5, algorithm: fixed_window }
";

fn request(pairs: &[(&str, &str)]) -> Descriptors {
    let mut d = Descriptors::new();
    for (k, v) in pairs {
        d.insert(DescriptorKey::parse(k).unwrap(), *v);
    }
    d
}

#[test]
fn nested_descriptors_match_by_prefix_and_count_per_value() {
    let rules = Rules::parse(EXAMPLE, "test").unwrap();
    let a = rules.matching(&request(&[
        ("path", "/limited/x"),
        ("remote_address", "10.0.0.1"),
    ]));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].rule.name, "path=/limited/remote_address");
    assert_eq!(a[0].rule.nominal.window_ns, 60_000_000_000);
    let b = rules.matching(&request(&[
        ("path", "/limited/y"),
        ("remote_address", "10.0.0.2"),
    ]));
    assert_ne!(a[0].counter_key, b[0].counter_key, "one counter per client");
    let c = rules.matching(&request(&[
        ("path", "/limited/z"),
        ("remote_address", "10.0.0.1"),
    ]));
    assert_eq!(
        a[0].counter_key, c[0].counter_key,
        "one counter for the whole prefix"
    );
    assert!(
        rules
            .matching(&request(&[("path", "/"), ("remote_address", "10.0.0.1")]))
            .is_empty()
    );
}

#[test]
fn exact_value_beats_key_only_and_all_limits_apply() {
    let rules = Rules::parse(EXAMPLE, "test").unwrap();
    let acme = rules.matching(&request(&[("header:x-tenant", "acme")]));
    let names: Vec<_> = acme.iter().map(|m| m.rule.name.as_str()).collect();
    assert_eq!(names, ["header:x-tenant=acme#1", "acme-daily"]);
    assert_eq!(acme[0].rule.nominal.window_ns, 30_000_000_000);
    assert_eq!(acme[1].rule.enforced.limit, 110_000);
    let other = rules.matching(&request(&[("header:x-tenant", "globex")]));
    assert_eq!(other.len(), 1);
    assert!(other[0].rule.shadow);
}

#[test]
fn values_cannot_forge_another_counter_key() {
    let rules = Rules::parse(EXAMPLE, "test").unwrap();
    let a = rules.matching(&request(&[("path", "/limited"), ("remote_address", "a:b")]));
    let b = rules.matching(&request(&[
        ("path", "/limited"),
        ("remote_address", "a\\:b"),
    ]));
    assert_ne!(a[0].counter_key, b[0].counter_key);
    let long = "x".repeat(10_000);
    let c = rules.matching(&request(&[("path", "/limited"), ("remote_address", &long)]));
    assert!(c[0].counter_key.len() < 200);
}

fn error_of(text: &str) -> String {
    Rules::parse(text, "rules.yaml").unwrap_err().to_string()
}

#[test]
fn bad_input_is_rejected_with_a_line_number() {
    let zero = "domain: d\ndescriptors:\n  - key: path\n    rate_limit:\n      unit: second\n      requests_per_unit: 0\n";
    let message = error_of(zero);
    assert!(message.contains("must be between 1 and"), "{message}");
    assert!(message.contains("line 6"), "{message}");

    let negative = zero.replace("requests_per_unit: 0", "requests_per_unit: -3");
    let message = error_of(&negative);
    assert!(
        message.contains("-3") && message.contains("line 6"),
        "{message}"
    );

    let unknown = zero.replace(
        "requests_per_unit: 0",
        "requests_per_unit: 3\n      algorithm: magic",
    );
    let message = error_of(&unknown);
    assert!(
        message.contains("unknown variant `magic`") && message.contains("line 7"),
        "{message}"
    );

    let typo = zero.replace(
        "requests_per_unit: 0",
        "requests_per_unit: 3\n      algoritm: fixed_window",
    );
    assert!(error_of(&typo).contains("unknown field `algoritm`"));

    let bad_unit = zero.replace("unit: second", "unit: fortnight");
    assert!(error_of(&bad_unit).contains("fortnight"));

    let bad_key = "domain: d\ndescriptors:\n  - key: Bad Key\n    rate_limit: {unit: second, requests_per_unit: 1}\n";
    assert!(
        error_of(bad_key).contains("line 3"),
        "{}",
        error_of(bad_key)
    );

    let empty = "domain: d\ndescriptors:\n  - key: path\n";
    assert!(error_of(empty).contains("no rate_limit"));

    let soft = zero.replace(
        "requests_per_unit: 0",
        "requests_per_unit: 3\n      mode: soft",
    );
    assert!(error_of(&soft).contains("overshoot_percent"));

    assert!(error_of("domain: [").contains("line"));
}

#[test]
fn reload_swaps_good_rules_and_keeps_the_last_good_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let (handle, mut watcher) = RulesWatcher::open(&path, None).unwrap();
    assert!(matches!(watcher.poll(), ReloadOutcome::Unchanged));

    let raised = EXAMPLE.replace("requests_per_unit: 10\n", "requests_per_unit: 20\n");
    write_new_version(&path, &raised);
    assert!(matches!(watcher.poll(), ReloadOutcome::Reloaded));
    assert_eq!(handle.get().all[0].nominal.limit, 20);

    write_new_version(&path, "domain: d\ndescriptors: [ {key: path} ]\n");
    assert!(matches!(watcher.poll(), ReloadOutcome::Rejected(_)));
    assert_eq!(
        handle.get().all[0].nominal.limit,
        20,
        "last good rules stay"
    );
    assert!(
        matches!(watcher.poll(), ReloadOutcome::Unchanged),
        "a bad file is not re-parsed"
    );
}

/// Writes through a rename so the inode changes even within one mtime tick.
fn write_new_version(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
