//! Machine-id claims: lock files keep two servers on one host apart, and
//! settings that would ignore a configured id are refused.

use std::collections::HashSet;

use super::*;

/// Default settings, with lock files in `dir` instead of the host's.
fn config_in(dir: &Path) -> ServerConfig {
    ServerConfig {
        lock_dir: Some(dir.to_path_buf()),
        ..ServerConfig::default()
    }
}

fn ids(claimed: &Claimed, count: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(count);
    claimed.generator.next_ids(count, &mut ids).unwrap();
    ids
}

#[test]
fn two_servers_on_default_settings_claim_different_ids() {
    let dir = tempfile::tempdir().unwrap();
    let first = claim(&config_in(dir.path())).unwrap();
    let second = claim(&config_in(dir.path())).unwrap();
    assert_eq!(first.generator.machine(), 0);
    assert_eq!(second.generator.machine(), 1);
    let mut seen: HashSet<u64> = ids(&first, 5000).into_iter().collect();
    for id in ids(&second, 5000) {
        assert!(seen.insert(id), "duplicate ID {id}");
    }
}

#[test]
fn a_released_claim_can_be_taken_again() {
    let dir = tempfile::tempdir().unwrap();
    let first = claim(&config_in(dir.path())).unwrap();
    let second = claim(&config_in(dir.path())).unwrap();
    drop(first);
    let third = claim(&config_in(dir.path())).unwrap();
    assert_eq!(third.generator.machine(), 0);
    drop(second);
}

#[test]
fn refuses_to_start_when_every_id_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let two_machines = Layout::new(41, 5, 1, 16).unwrap();
    let config = ServerConfig {
        generator: GeneratorConfig {
            layout: two_machines,
            ..GeneratorConfig::default()
        },
        ..config_in(dir.path())
    };
    let _held = [claim(&config).unwrap(), claim(&config).unwrap()];
    let err = claim(&config).unwrap_err().to_string();
    assert!(err.contains("all 2 machine ids"), "{err}");
    assert!(err.contains("--machine-id"), "says what to do: {err}");
}

#[test]
fn startup_line_says_which_id_and_how() {
    let dir = tempfile::tempdir().unwrap();
    let claimed = claim(&config_in(dir.path())).unwrap();
    let line = claimed.to_string();
    assert!(line.starts_with("machine id 0 of datacenter 0"), "{line}");
    assert!(line.contains("local lock file"), "{line}");
    assert!(line.contains("dc0-machine0.lock"), "{line}");

    let fixed = ServerConfig {
        machine_claim: MachineClaim::Fixed,
        generator: GeneratorConfig {
            machine: 7,
            ..GeneratorConfig::default()
        },
        ..ServerConfig::default()
    };
    let line = claim(&fixed).unwrap().to_string();
    assert!(line.starts_with("machine id 7 "), "{line}");
    assert!(line.contains("--machine-id"), "{line}");
}

#[test]
fn plan_follows_the_settings_and_refuses_an_ignored_machine_id() {
    assert_eq!(
        plan(&ServerConfig::default()).unwrap(),
        Plan::Lock(default_lock_dir())
    );
    let with_machine = |machine, machine_claim, lease_store: Option<&str>| ServerConfig {
        machine_claim,
        lease_store: lease_store.map(str::to_owned),
        generator: GeneratorConfig {
            machine,
            ..GeneratorConfig::default()
        },
        ..ServerConfig::default()
    };
    assert_eq!(
        plan(&with_machine(5, MachineClaim::Fixed, None)).unwrap(),
        Plan::Fixed(5)
    );
    assert_eq!(
        plan(&with_machine(0, MachineClaim::Lock, Some("redis://h:1"))).unwrap(),
        Plan::Lease("redis://h:1".into())
    );
    let err = plan(&with_machine(5, MachineClaim::Lock, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--machine-id 5"), "{err}");
    let err = plan(&with_machine(5, MachineClaim::Fixed, Some("redis://h:1")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("choose one"), "{err}");
}

#[test]
fn printed_store_urls_carry_no_password() {
    assert_eq!(
        without_credentials("redis://:s3cret@host:6379/0"),
        "redis://host:6379/0"
    );
    assert_eq!(without_credentials("redis://host:1"), "redis://host:1");
}
