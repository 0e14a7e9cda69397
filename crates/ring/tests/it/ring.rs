//! Behaviour of the ring on hand-picked cases: membership errors, lookups,
//! wrap-around, heterogeneity and preference lists.

use ring::{Limits, Ring, RingError, key_position};

fn ring_of(names: &[&str], vnodes: u32) -> Ring<String> {
    let mut ring = Ring::new();
    for name in names {
        ring.add_server((*name).to_owned(), vnodes)
            .expect("distinct names, valid vnode counts");
    }
    ring
}

#[test]
fn empty_ring_answers_none() {
    let ring: Ring<String> = Ring::new();
    assert!(ring.is_empty());
    assert_eq!(ring.owner(b"k"), None);
    assert!(ring.preference_list(b"k", 3).is_empty());
    assert!(ring.ownership().is_empty());
}

#[test]
fn refuses_bad_membership_changes_and_stays_unchanged() {
    let mut ring = ring_of(&["a", "b"], 10);
    let before: Vec<_> = (0..100u32)
        .map(|i| ring.owner(&i.to_le_bytes()).cloned())
        .collect();
    assert_eq!(
        ring.add_server("a".to_owned(), 5),
        Err(RingError::DuplicateServer { id: "a".into() })
    );
    assert_eq!(
        ring.add_server("c".to_owned(), 0),
        Err(RingError::ZeroVnodes { id: "c".into() })
    );
    assert_eq!(
        ring.remove_server(&"zz".to_owned()),
        Err(RingError::UnknownServer { id: "zz".into() })
    );
    assert_eq!(ring.server_count(), 2);
    assert_eq!(ring.vnode_count(), 20);
    let after: Vec<_> = (0..100u32)
        .map(|i| ring.owner(&i.to_le_bytes()).cloned())
        .collect();
    assert_eq!(before, after);
    let message = ring.add_server("c".to_owned(), 0).unwrap_err().to_string();
    assert!(message.contains("at least 1"), "{message}");
}

#[test]
fn enforces_limits() {
    let limits = Limits {
        servers_max: 2,
        vnodes_per_server_max: 10,
        vnodes_total_max: 15,
    };
    let mut ring: Ring<u32> = Ring::with_limits(limits);
    assert!(matches!(
        ring.add_server(1, 11),
        Err(RingError::TooManyVnodes {
            requested: 11,
            max: 10,
            ..
        })
    ));
    ring.add_server(1, 10).unwrap();
    assert!(matches!(
        ring.add_server(2, 6),
        Err(RingError::RingFull {
            total: 16,
            max: 15,
            ..
        })
    ));
    ring.add_server(2, 5).unwrap();
    assert!(matches!(
        ring.add_server(3, 1),
        Err(RingError::TooManyServers { max: 2, .. })
    ));
    assert_eq!(ring.remove_server(&2), Ok((2, 5)));
    ring.add_server(3, 5).unwrap();
    assert_eq!(ring.servers(), vec![(&1, 10), (&3, 5)]);
}

/// The chapter's lookup rule, checked against a brute-force reading of it:
/// the first virtual node at or after the key, else the first on the ring.
#[test]
fn owner_is_first_vnode_clockwise_with_wraparound() {
    let ring = ring_of(&["a", "b", "c"], 3);
    let points: Vec<(u64, &String)> = ring.vnodes().collect();
    assert!(points.windows(2).all(|w| w[0].0 <= w[1].0), "sorted");
    let brute = |h: u64| points.iter().find(|(p, _)| *p >= h).unwrap_or(&points[0]).1;
    let mut probes = vec![
        0,
        u64::MAX,
        points[0].0,
        points[0].0 + 1,
        points.last().unwrap().0 + 1,
    ];
    probes.extend((0..1000u64).map(|i| key_position(&i.to_le_bytes())));
    for h in probes {
        assert_eq!(ring.owner_of_position(h), Some(brute(h)), "position {h}");
    }
    // A key past the last point wraps to the first.
    assert_eq!(ring.owner_of_position(u64::MAX), Some(points[0].1));
}

#[test]
fn string_and_str_ids_place_keys_identically() {
    let owned = ring_of(&["x", "y", "z"], 50);
    let mut borrowed: Ring<&str> = Ring::new();
    for name in ["z", "x", "y"] {
        borrowed.add_server(name, 50).unwrap();
    }
    for i in 0..500u32 {
        let key = i.to_le_bytes();
        assert_eq!(
            owned.owner(&key).map(String::as_str),
            borrowed.owner(&key).copied()
        );
    }
}

#[test]
fn ownership_sums_to_one_and_follows_vnode_counts() {
    // Heterogeneity: ten servers of 100 virtual nodes and one of 400.
    let mut ring: Ring<String> = Ring::new();
    for i in 0..10 {
        ring.add_server(format!("small-{i}"), 100).unwrap();
    }
    ring.add_server("big".to_owned(), 400).unwrap();
    let shares = ring.ownership();
    let total: f64 = shares.iter().map(|(_, s)| s).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    let big = shares
        .iter()
        .find(|(id, _)| id.as_str() == "big")
        .unwrap()
        .1;
    let small_mean = (1.0 - big) / 10.0;
    let ratio = big / small_mean;
    // Ideal 4x; with 100-400 virtual nodes the spread is ~10%, so 3x..5x is loose.
    assert!((3.0..5.0).contains(&ratio), "big/small = {ratio}");
    // Sampled keys agree with the exact shares.
    let on_big = (0..40_000u32)
        .filter(|i| ring.owner(&i.to_le_bytes()).unwrap() == "big")
        .count();
    let sampled = on_big as f64 / 40_000.0;
    assert!(
        (sampled - big).abs() < 0.02,
        "sampled {sampled} vs exact {big}"
    );
}

#[test]
fn single_vnode_owns_everything() {
    let ring = ring_of(&["only"], 1);
    assert_eq!(ring.ownership(), vec![(&"only".to_owned(), 1.0)]);
    assert_eq!(ring.owner(b"anything").unwrap(), "only");
}

#[test]
fn preference_list_skips_repeated_physical_servers() {
    let ring = ring_of(&["a", "b", "c", "d"], 64);
    for i in 0..200u32 {
        let key = i.to_le_bytes();
        let list = ring.preference_list(&key, 3);
        assert_eq!(list.len(), 3);
        assert_eq!(list[0], ring.owner(&key).unwrap());
        assert!(list[0] != list[1] && list[1] != list[2] && list[0] != list[2]);
        // Asking for more servers than exist returns them all.
        let all = ring.preference_list(&key, 10);
        assert_eq!(all.len(), 4);
        assert_eq!(&all[..3], &list[..]);
    }
    assert!(ring.preference_list(b"k", 0).is_empty());
}

#[test]
fn large_preference_lists_use_the_bitmap_path() {
    let names: Vec<String> = (0..30).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ring = ring_of(&refs, 8);
    let list = ring.preference_list(b"key", 20);
    assert_eq!(list.len(), 20);
    let mut distinct = list.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 20);
    assert_eq!(&ring.preference_list(b"key", 5)[..], &list[..5]);
}

#[test]
fn removed_then_readded_server_gets_its_keys_back() {
    let mut ring = ring_of(&["a", "b", "c"], 20);
    let before: Vec<_> = (0..300u32)
        .map(|i| ring.owner(&i.to_le_bytes()).cloned())
        .collect();
    ring.remove_server(&"b".to_owned()).unwrap();
    ring.add_server("d".to_owned(), 7).unwrap();
    ring.add_server("b".to_owned(), 20).unwrap();
    ring.remove_server(&"d".to_owned()).unwrap();
    let after: Vec<_> = (0..300u32)
        .map(|i| ring.owner(&i.to_le_bytes()).cloned())
        .collect();
    assert_eq!(before, after);
    assert_eq!(ring.vnode_count(), 60);
}
