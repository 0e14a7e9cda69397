//! Invariants of the capacity model over random assumptions: the peak is
//! QPS times the peak factor, reads plus writes are all requests, and
//! storage scales linearly with what is stored.

use estimate::{Assumptions, Mix, Population, Volume, estimate};
use proptest::prelude::*;

fn volume() -> impl Strategy<Value = Volume> {
    prop_oneof![
        (0.0..1e10f64, 0.0..100.0f64).prop_map(|(dau, per_user)| Volume::PerUser {
            population: Population::Dau { dau },
            actions_per_user_per_day: per_user,
        }),
        (0.0..1e10f64, 0.0..=1.0f64, 0.0..100.0f64).prop_map(|(mau, ratio, per_user)| {
            Volume::PerUser {
                population: Population::Mau {
                    mau,
                    daily_active_ratio: ratio,
                },
                actions_per_user_per_day: per_user,
            }
        }),
        (0.0..1e12f64).prop_map(|actions| Volume::PerDay { actions }),
        (0.0..1e13f64).prop_map(|actions| Volume::PerMonth { actions }),
    ]
}

fn mix() -> impl Strategy<Value = Mix> {
    prop_oneof![
        Just(Mix::AllWrites),
        Just(Mix::AllReads),
        (0.0..1000.0f64).prop_map(Mix::ReadsPerWrite),
    ]
}

fn assumptions() -> impl Strategy<Value = Assumptions> {
    (
        volume(),
        mix(),
        1.0..20.0f64,
        0.0..50.0f64,
        0.0..1e7f64,
        0.0..=1.0f64,
        0.0..=1.0f64,
        0.0..1e9f64,
        proptest::option::of(0.0..100.0f64),
    )
        .prop_map(
            |(volume, mix, peak, requests, object, stored, media_share, media, years)| {
                let mut a = Assumptions::new(volume);
                a.mix = mix;
                a.peak_factor = peak;
                a.requests_per_action = requests;
                a.object_size_bytes = object;
                a.stored_share = stored;
                a.media_share = media_share;
                a.media_size_bytes = media;
                a.retention_years = years;
                a
            },
        )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #[test]
    fn peak_is_qps_times_the_factor(a in assumptions()) {
        let e = estimate(&a).unwrap();
        prop_assert!(close(e.peak_qps, e.qps * a.peak_factor));
        prop_assert!(e.peak_qps >= e.qps);
    }

    #[test]
    fn reads_plus_writes_are_all_requests(a in assumptions()) {
        let e = estimate(&a).unwrap();
        prop_assert!(close(e.read_qps + e.write_qps, e.qps));
        prop_assert!(close(e.requests_per_day, e.qps * 86_400.0));
        if let Mix::ReadsPerWrite(r) = a.mix {
            prop_assert!(close(e.read_qps, e.write_qps * r));
        }
    }

    #[test]
    fn storage_adds_up_over_time(a in assumptions()) {
        let e = estimate(&a).unwrap();
        prop_assert!(close(e.storage_per_day_bytes, e.object_bytes_per_day + e.media_bytes_per_day));
        prop_assert!(close(e.storage_per_month_bytes, e.storage_per_day_bytes * 30.0));
        match (a.retention_years, e.storage_retained_bytes) {
            (Some(years), Some(retained)) => {
                prop_assert!(close(retained, e.storage_per_day_bytes * 365.0 * years));
            }
            (None, None) => {}
            other => prop_assert!(false, "retention mismatch {other:?}"),
        }
    }

    #[test]
    fn doubling_users_doubles_everything(a in assumptions()) {
        let e = estimate(&a).unwrap();
        let mut doubled = a.clone();
        doubled.volume = match a.volume {
            Volume::PerUser { population: Population::Dau { dau }, actions_per_user_per_day } =>
                Volume::PerUser { population: Population::Dau { dau: 2.0 * dau }, actions_per_user_per_day },
            Volume::PerUser { population: Population::Mau { mau, daily_active_ratio }, actions_per_user_per_day } =>
                Volume::PerUser { population: Population::Mau { mau: 2.0 * mau, daily_active_ratio }, actions_per_user_per_day },
            Volume::PerDay { actions } => Volume::PerDay { actions: 2.0 * actions },
            Volume::PerMonth { actions } => Volume::PerMonth { actions: 2.0 * actions },
        };
        let d = estimate(&doubled).unwrap();
        prop_assert!(close(d.qps, 2.0 * e.qps));
        prop_assert!(close(d.storage_per_day_bytes, 2.0 * e.storage_per_day_bytes));
    }
}
