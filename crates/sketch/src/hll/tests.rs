use proptest::prelude::*;

use super::*;

fn filled(prefix: &str, n: usize) -> Hll {
    let mut hll = Hll::new();
    for i in 1..=n {
        hll.add(format!("{prefix}{i}").as_bytes()).expect("valid");
    }
    hll.invalidate_cache();
    hll
}

#[test]
fn the_constant_is_redis_literal() {
    assert_eq!(ALPHA_INF, "0.721347520444481703680".parse::<f64>().unwrap());
}

#[test]
fn a_new_hll_is_redis_18_sparse_bytes() {
    assert_eq!(
        Hll::new().as_bytes(),
        b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
    );
}

/// Bytes taken from redis-server 7.0 after `PFADD h a b c foo bar`, then
/// after `PFCOUNT h` (which caches 5).
#[test]
fn bytes_and_count_equal_redis() {
    let mut hll = Hll::new();
    for e in ["a", "b", "c", "foo", "bar"] {
        assert!(hll.add(e.as_bytes()).unwrap());
    }
    hll.invalidate_cache();
    let registers = b"\\\xb3\x90D>\x80F!\x80J\x8e\x84K\xfb\x80BZ";
    let mut expected = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
    expected.extend_from_slice(registers);
    assert_eq!(hll.as_bytes(), &expected[..]);
    assert_eq!(hll.count().unwrap(), (5, true));
    expected[8] = 5;
    expected[15] = 0;
    assert_eq!(hll.as_bytes(), &expected[..]);
    assert_eq!(hll.count().unwrap(), (5, false));
}

/// (elements `e1..=en`, Redis's PFCOUNT, Redis's STRLEN), from redis-server 7.0.
#[test]
fn counts_and_sizes_equal_redis() {
    for (n, count, len) in [
        (10, 10, 48),
        (100, 100, 285),
        (300, 302, 713),
        (1000, 1008, 1906),
        (2000, 2000, 12304),
        (5000, 4968, 12304),
    ] {
        let mut hll = filled("e", n);
        assert_eq!(hll.as_bytes().len(), len, "size after {n}");
        assert_eq!(hll.count().unwrap().0, count, "count after {n}");
    }
}

#[test]
fn merging_sparse_and_dense_gives_the_union() {
    let (a, b) = (filled("e", 300), filled("e", 5000));
    let mut max = [0u8; REGISTERS];
    a.merge_into(&mut max).unwrap();
    b.merge_into(&mut max).unwrap();
    assert_eq!(count_registers(&max), 4968);
    let mut dest = a.clone();
    dest.absorb(&max, true).unwrap();
    assert!(dest.is_dense());
    assert_eq!(dest.count().unwrap().0, 4968);
    assert_eq!(dest.registers().unwrap(), b.registers().unwrap());
}

#[test]
fn sparse_to_dense_keeps_every_register() {
    let sparse = filled("x", 700);
    assert!(!sparse.is_dense());
    let mut dense = sparse.clone();
    dense.to_dense().unwrap();
    assert_eq!(dense.as_bytes().len(), DENSE_BYTES);
    assert_eq!(dense.registers().unwrap(), sparse.registers().unwrap());
    let (mut s, mut d) = (sparse, dense);
    assert_eq!(s.count().unwrap().0, d.count().unwrap().0);
}

#[test]
fn bad_headers_and_corrupt_registers_are_errors_not_panics() {
    for bad in [
        &b""[..],
        b"HYLL",
        b"HYLX\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff",
    ] {
        assert_eq!(Hll::from_bytes(bad), Err(HllError::NotHll));
    }
    let mut dense_short = Hll::new().into_bytes();
    dense_short[4] = ENCODING_DENSE;
    assert_eq!(Hll::from_bytes(&dense_short), Err(HllError::NotHll));
    let mut bad_encoding = Hll::new().into_bytes();
    bad_encoding[4] = 2;
    assert_eq!(Hll::from_bytes(&bad_encoding), Err(HllError::NotHll));
    // Sparse forms that do not cover exactly 16384 registers.
    let empty = Hll::new();
    let header = &empty.as_bytes()[..HEADER_BYTES];
    for tail in [
        &b""[..],
        b"\x7f",
        b"\x7f\xfe",
        b"\x7f\xff\x00",
        b"\x7f\xff\x7f\xff",
    ] {
        let mut bytes = header.to_vec();
        bytes[15] = 0x80;
        bytes.extend_from_slice(tail);
        let mut hll = Hll::from_bytes(&bytes).unwrap();
        assert_eq!(hll.count(), Err(HllError::Corrupt), "{tail:?}");
        let mut max = [0; REGISTERS];
        assert_eq!(hll.merge_into(&mut max), Err(HllError::Corrupt));
        let _ = hll.add(b"x"); // error or not, no panic
        let _ = hll.to_dense();
    }
}

#[test]
fn empty_counts_zero() {
    let mut hll = Hll::new();
    hll.invalidate_cache();
    assert_eq!(hll.count().unwrap().0, 0);
    assert_eq!(count_registers(&[0; REGISTERS]), 0);
}

/// The standard error at 16384 registers is 1.04/√16384 ≈ 0.81%: over many
/// independent sketches the root-mean-square relative error stays near it.
#[test]
fn rms_error_is_about_0_81_percent() {
    let (trials, n) = (40, 20_000usize);
    let mut sum_sq = 0.0;
    for t in 0..trials {
        let mut max = [0u8; REGISTERS];
        for i in 0..n {
            let (index, count) = register_of(format!("t{t}:{i}").as_bytes());
            max[index] = max[index].max(count);
        }
        let err = (count_registers(&max) as f64 - n as f64) / n as f64;
        sum_sq += err * err;
    }
    let rms = (sum_sq / trials as f64).sqrt();
    assert!(rms < 0.0081 * 1.5, "rms relative error {rms}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any cardinality from 1 to 200k is estimated within 5 standard
    /// errors (4.05%; small counts are nearly exact).
    #[test]
    fn error_is_within_five_standard_errors(n in 1usize..200_000, salt in any::<u64>()) {
        let mut max = [0u8; REGISTERS];
        for i in 0..n as u64 {
            let (index, count) = register_of(&(i ^ salt.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            max[index] = max[index].max(count);
        }
        let estimate = count_registers(&max) as f64;
        let err = (estimate - n as f64).abs() / n as f64;
        prop_assert!(err < 5.0 * 0.0081 + 2.0 / n as f64, "n {} estimate {} err {}", n, estimate, err);
    }

    /// Sparse updates (Redis's split-and-merge) hold the same registers as
    /// a plain array, and the dense form too.
    #[test]
    fn sparse_updates_match_a_register_array(elements in proptest::collection::vec(any::<u32>(), 0..1500)) {
        let mut hll = Hll::new();
        let mut model = [0u8; REGISTERS];
        for e in &elements {
            let (index, count) = register_of(&e.to_le_bytes());
            let changed = hll.add(&e.to_le_bytes()).unwrap();
            prop_assert_eq!(changed, model[index] < count);
            model[index] = model[index].max(count);
        }
        prop_assert_eq!(hll.registers().unwrap(), model.to_vec());
        hll.invalidate_cache();
        prop_assert_eq!(hll.count().unwrap().0, count_registers(&model));
    }
}

#[test]
fn decode_prints_redis_pfdebug_text() {
    let mut hll = Hll::new();
    assert_eq!(hll.decode_sparse().as_deref(), Some("Z:16384"));
    hll.set_register(0, 3).unwrap();
    hll.set_register(1, 3).unwrap();
    hll.set_register(100, 1).unwrap();
    assert_eq!(
        hll.decode_sparse().as_deref(),
        Some("v:3,2 Z:98 v:1,1 Z:16283")
    );
    hll.to_dense().unwrap();
    assert_eq!(hll.decode_sparse(), None);
}
