//! Lease tests on the in-memory store (the RESP store has its own, against
//! a real Redis, in `tests/it/resp_lease.rs`).

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::snowflake::{GenerateError, Generator, GeneratorConfig};
use std::collections::HashSet;

/// 2 machine bits: 4 machine ids per datacenter.
fn small_layout() -> Layout {
    Layout::new(41, 8, 2, 12).unwrap()
}

/// 0 machine bits: one machine id, so a second lease must be a takeover.
fn single_layout() -> Layout {
    Layout::new(41, 10, 0, 12).unwrap()
}

fn config(ttl_ms: u64) -> LeaseConfig {
    LeaseConfig {
        ttl_ms,
        ..LeaseConfig::default()
    }
}

fn manual_store() -> (Arc<ManualClock>, Arc<dyn LeaseStore>) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = MemoryLeaseStore::with_clock(clock.clone() as Arc<dyn Clock>);
    (clock, Arc::new(store))
}

#[test]
fn live_generators_never_share_a_machine_id() {
    let (_, store) = manual_store();
    let leases: Vec<Lease> = (0..4)
        .map(|_| Lease::acquire_manual(store.clone(), &config(1000), small_layout(), 7).unwrap())
        .collect();
    let machines: HashSet<u64> = leases.iter().map(Lease::machine).collect();
    assert_eq!(machines.len(), 4, "every lease got its own machine id");
    let err = Lease::acquire_manual(store.clone(), &config(1000), small_layout(), 7).unwrap_err();
    assert_eq!(
        err,
        LeaseError::AllTaken {
            datacenter: 7,
            count: 4
        }
    );
    assert!(err.to_string().contains("more machine bits"));
    // Another datacenter has its own machine ids.
    assert!(Lease::acquire_manual(store, &config(1000), small_layout(), 8).is_ok());
}

#[test]
fn an_expired_lease_is_taken_over_and_the_old_owner_stops() {
    let (clock, store) = manual_store();
    let old = Lease::acquire_manual(store.clone(), &config(1000), single_layout(), 0).unwrap();
    let old_key = old.key().to_owned();
    let g = Generator::with_lease(&GeneratorConfig::default(), crate::SystemClock, old).unwrap();
    g.next_id().unwrap();

    assert!(Lease::acquire_manual(store.clone(), &config(1000), single_layout(), 0).is_err());
    clock.advance_ms(1001); // The old owner failed to renew in time.
    let new = Lease::acquire_manual(store.clone(), &config(1000), single_layout(), 0).unwrap();
    assert_eq!(new.key(), old_key, "the same machine id, taken over");

    let lost = g.lease().unwrap().renew_now().unwrap_err();
    assert!(matches!(lost, LeaseError::Lost { .. }), "{lost}");
    let err = g.next_id().unwrap_err();
    assert!(
        matches!(err, GenerateError::Lease(LeaseError::Lost { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("restart it"));

    // Dropping the old generator must not delete the new owner's key.
    drop(g);
    assert!(Lease::acquire_manual(store, &config(1000), single_layout(), 0).is_err());
    assert!(new.check().is_ok());
}

#[test]
fn renewal_keeps_the_lease_and_drop_releases_it() {
    let (clock, store) = manual_store();
    let lease = Lease::acquire_manual(store.clone(), &config(1000), single_layout(), 0).unwrap();
    for _ in 0..5 {
        clock.advance_ms(600);
        lease.renew_now().unwrap();
    }
    assert!(Lease::acquire_manual(store.clone(), &config(1000), single_layout(), 0).is_err());
    drop(lease);
    assert!(Lease::acquire_manual(store, &config(1000), single_layout(), 0).is_ok());
}

/// A store that is down: every call fails.
#[derive(Debug)]
struct DownStore;

impl LeaseStore for DownStore {
    fn acquire(&self, _: &str, _: &str, _: u64) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn renew(&self, _: &str, _: &str, _: u64) -> Result<bool, StoreError> {
        Err(StoreError("connection refused".to_owned()))
    }
    fn release(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError("connection refused".to_owned()))
    }
}

#[test]
fn an_unrenewed_lease_stops_the_generator_before_the_store_could_expire_it() {
    let lease =
        Lease::acquire_manual(Arc::new(DownStore), &config(40), single_layout(), 0).unwrap();
    assert!(lease.check().is_ok());
    assert!(matches!(lease.renew_now(), Err(LeaseError::Store(_))));
    // Local validity is 30 ms of the 40 ms TTL; after 40 ms it must be over.
    std::thread::sleep(Duration::from_millis(40));
    let err = lease.check().unwrap_err();
    assert!(matches!(err, LeaseError::Expired { .. }), "{err}");
}

#[test]
fn the_background_thread_renews() {
    let store: Arc<dyn LeaseStore> = Arc::new(MemoryLeaseStore::new());
    let renewing = LeaseConfig {
        ttl_ms: 1500,
        renew_every_ms: 0, // ttl/3 = 500 ms
        ..LeaseConfig::default()
    };
    let lease = Lease::acquire(store.clone(), &renewing, single_layout(), 0).unwrap();
    // Longer than the TTL: only renewal can keep the key alive.
    std::thread::sleep(Duration::from_millis(2000));
    lease.check().unwrap();
    assert!(Lease::acquire_manual(store, &renewing, single_layout(), 0).is_err());
}

#[test]
fn settings_that_would_lose_the_lease_are_refused() {
    let (_, store) = manual_store();
    for bad in [
        LeaseConfig {
            ttl_ms: 10,
            ..LeaseConfig::default()
        },
        LeaseConfig {
            ttl_ms: 1000,
            renew_every_ms: 750,
            ..LeaseConfig::default()
        },
    ] {
        let err = Lease::acquire(store.clone(), &bad, single_layout(), 0).unwrap_err();
        assert!(matches!(err, LeaseError::InvalidConfig(_)), "{err}");
    }
}

#[test]
fn tokens_differ() {
    let tokens: HashSet<String> = (0..1000).map(|_| random_token()).collect();
    assert_eq!(tokens.len(), 1000);
}
