//! The S3 layer's hand-written parts against models: listing merged across shards
//! (prefix, delimiter, pages of any size, continuation from any position) equals a
//! sorted map's answer; object bytes split into chunks read back for every range.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use objstore::s3::blob;
use objstore::s3::meta::{Headers, Meta, ObjectRow};
use proptest::prelude::*;

use crate::support::{bytes, small};

fn row(size: u64) -> ObjectRow {
    ObjectRow {
        size,
        etag: format!("{size:032x}"),
        modified_ms: 1,
        chunks: Vec::new(),
        headers: Headers::default(),
        version_id: None,
        delete_marker: false,
    }
}

/// What S3 lists for `prefix`/`delimiter`: objects and common prefixes, in key order.
fn model(keys: &BTreeSet<String>, prefix: &str, delimiter: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys.iter().filter(|k| k.starts_with(prefix)) {
        let entry = match delimiter.and_then(|d| k[prefix.len()..].find(d).map(|at| (d, at))) {
            Some((d, at)) => k[..prefix.len() + at + d.len()].to_string(),
            None => k.clone(),
        };
        if out.last() != Some(&entry) {
            out.push(entry);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn listing_merges_shards_like_a_sorted_map(
        keys in prop::collection::btree_set("[ab/]{1,5}", 0..40),
        other in prop::collection::btree_set("[ab/]{1,5}", 0..10),
        prefix in "[ab/]{0,2}",
        slash in any::<bool>(),
        page in 1usize..6,
        shards in 1usize..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::open(dir.path(), shards).unwrap();
        for k in &keys {
            meta.put_object("bkt", k, &row(k.len() as u64)).unwrap();
        }
        // Another bucket's keys never show.
        for k in &other {
            meta.put_object("bkt2", k, &row(0)).unwrap();
        }
        let delimiter = slash.then_some("/");
        let want = model(&keys, &prefix, delimiter);
        let mut got = Vec::new();
        let mut start = String::new();
        let mut pages = 0;
        loop {
            let l = meta.list("bkt", &prefix, delimiter, &start, page).unwrap();
            prop_assert!(l.objects.len() + l.prefixes.len() <= page);
            let mut entries: Vec<String> = l.objects.iter().map(|(k, _)| k.clone()).collect();
            entries.extend(l.prefixes.iter().cloned());
            entries.sort();
            for (k, r) in &l.objects {
                prop_assert_eq!(r.size, k.len() as u64);
            }
            got.extend(entries);
            pages += 1;
            prop_assert!(pages <= want.len() + 1, "listing does not end");
            match l.next {
                Some(next) => start = next,
                None => break,
            }
        }
        prop_assert_eq!(got, want);
    }
}

#[test]
fn the_shard_count_is_fixed_when_the_store_is_created() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Meta::open(dir.path(), 3).unwrap().shard_count(), 3);
    assert_eq!(Meta::open(dir.path(), 9).unwrap().shard_count(), 3);
}

#[test]
fn uploads_list_by_key_across_shards_after_a_marker() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::open(dir.path(), 4).unwrap();
    let up = objstore::s3::meta::UploadRow {
        initiated_ms: 1,
        headers: Headers::default(),
    };
    let mut want = BTreeMap::new();
    for (i, key) in ["a", "b/c", "b/d", "e", "f"].iter().enumerate() {
        let id = format!("{i:032x}");
        meta.create_upload("bkt", key, &id, &up).unwrap();
        want.insert(key.to_string(), id);
    }
    let got: Vec<(String, String)> = meta
        .uploads("bkt", "", "", 10)
        .unwrap()
        .into_iter()
        .map(|(k, i, _)| (k, i))
        .collect();
    assert_eq!(got, want.clone().into_iter().collect::<Vec<_>>());
    let keys = |v: Vec<(String, String, _)>| v.into_iter().map(|(k, _, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(meta.uploads("bkt", "b/", "", 10).unwrap()),
        ["b/c", "b/d"]
    );
    assert_eq!(
        keys(meta.uploads("bkt", "", "b/c", 2).unwrap()),
        ["b/d", "e"]
    );
}

#[test]
fn chunked_objects_read_back_for_every_range() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = Arc::new(objstore::Node::open(dir.path(), small(1 << 20)).unwrap());
    let node = Arc::new(objstore::cluster::DataStore::Local(local.clone()));
    let data = bytes(3, 10_000);
    // Arbitrary body pieces; chunks of 1000 bytes.
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(777)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let stored = rt
        .block_on(blob::store(
            &node,
            futures::stream::iter(pieces),
            1 << 20,
            1000,
        ))
        .unwrap();
    assert_eq!(stored.size, 10_000);
    assert_eq!(stored.chunks.len(), 10);
    assert_eq!(blob::hex(&stored.md5).len(), 32);
    for (from, to) in [
        (0, 10_000),
        (0, 1),
        (999, 1001),
        (1500, 7250),
        (9999, 10_000),
        (3000, 3000),
    ] {
        let got: Vec<u8> = rt.block_on(async {
            use futures::StreamExt;
            let mut s = std::pin::pin!(blob::read(node.clone(), stored.chunks.clone(), from..to));
            let mut v = Vec::new();
            while let Some(b) = s.next().await {
                v.extend_from_slice(&b.unwrap());
            }
            v
        });
        assert_eq!(got, &data[from as usize..to as usize], "{from}..{to}");
    }
    // Over the limit: EntityTooLarge, and the chunks written are freed.
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> =
        vec![Ok(bytes::Bytes::from(vec![1u8; 5000]))];
    let before = local.stats().objects;
    let err = rt
        .block_on(blob::store(
            &node,
            futures::stream::iter(pieces),
            4000,
            1000,
        ))
        .err()
        .unwrap();
    assert_eq!(err.code().as_str(), "EntityTooLarge");
    assert_eq!(local.stats().objects, before);
}
