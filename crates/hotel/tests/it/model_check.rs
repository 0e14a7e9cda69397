//! Random sequences of bookings, repeats, cancellations and payments run
//! against the real booking engine on SQLite and against a simple model.
//! After every step: each night's `total_reserved` equals the rooms of the
//! reservations that hold it, never negative and never above the
//! overbooking limit, and every answer is the one the model predicts.

use std::collections::BTreeMap;

use hotel::concurrency::{BookError, BookRequest};
use hotel::model::{Date, Event, Status, Stay, StayLimits, Transition, transition};
use hotel::{Booker, Mode, Store, StoreOptions};
use proptest::prelude::*;

/// Nights on sale: day 1 ..= NIGHTS from today.
const NIGHTS: i64 = 6;
/// Physical rooms per night, and sellable ones at 125 % overbooking.
const ROOMS: i64 = 4;
const LIMIT: i64 = 5;

#[derive(Debug, Clone)]
enum Op {
    Book {
        key: u8,
        start: i64,
        nights: i64,
        rooms: i64,
    },
    Change {
        key: u8,
        event: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..12, 1..=NIGHTS, 1i64..=3, 1i64..=3)
            .prop_map(|(key, start, nights, rooms)| Op::Book { key, start, nights, rooms }),
        1 => (0u8..12, 0u8..4).prop_map(|(key, event)| Op::Change { key, event }),
    ]
}

struct Model {
    /// key → (start, nights, rooms, status)
    reservations: BTreeMap<u8, (i64, i64, i64, Status)>,
}

impl Model {
    fn reserved(&self, night: i64) -> i64 {
        self.reservations
            .values()
            .filter(|(start, nights, _, status)| {
                status.holds_rooms() && (*start..start + nights).contains(&night)
            })
            .map(|(_, _, rooms, _)| rooms)
            .sum()
    }
}

async fn run(mode: Mode, ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions {
        url: format!("sqlite://{}", dir.path().join("h.db").display()),
        connections_max: 2,
        timeout_ms: 10_000,
    })
    .await
    .unwrap();
    let today = Date::today();
    let dates: Vec<String> = (1..=NIGHTS).map(|d| today.plus(d).to_string()).collect();
    store.put_hotel(1, "H", 0).await.unwrap();
    store.put_room_type(1, 1, "R", 100).await.unwrap();
    store.set_inventory(1, 1, &dates, ROOMS, 125).await.unwrap();
    let booker = Booker::new(store.clone(), mode, 4);
    let mut model = Model {
        reservations: BTreeMap::new(),
    };
    for op in ops {
        match op {
            Op::Book {
                key,
                start,
                nights,
                rooms,
            } => {
                let check_out = (start + nights).min(NIGHTS + 2);
                let stay = Stay::new(
                    today.plus(start),
                    today.plus(check_out),
                    today,
                    StayLimits::default(),
                )
                .unwrap();
                let request = BookRequest {
                    reservation_id: format!("k{key}"),
                    hotel_id: 1,
                    room_type_id: 1,
                    guest_id: "g".into(),
                    stay,
                    rooms,
                };
                let nights = check_out - start;
                let result = booker.book(&request, 0).await;
                match model.reservations.get(&key) {
                    Some(&(s, n, r, _)) if (s, n, r) == (start, nights, rooms) => {
                        assert!(result.unwrap().replayed);
                    }
                    Some(_) => {
                        assert!(matches!(result, Err(BookError::KeyReused(_))), "{result:?}")
                    }
                    None => {
                        let fits = (start..start + nights)
                            .all(|night| night <= NIGHTS && model.reserved(night) + rooms <= LIMIT);
                        if fits {
                            let booked = result.unwrap();
                            assert!(!booked.replayed);
                            assert_eq!(booked.reservation.total_cents, 100 * nights * rooms);
                            model
                                .reservations
                                .insert(key, (start, nights, rooms, Status::Pending));
                        } else {
                            assert!(matches!(result, Err(BookError::SoldOut(_))), "{result:?}");
                        }
                    }
                }
            }
            Op::Change { key, event } => {
                let event =
                    [Event::Pay, Event::Reject, Event::Cancel, Event::CheckIn][usize::from(event)];
                let result = booker.change_status(&format!("k{key}"), event, 0).await;
                match model.reservations.get_mut(&key) {
                    None => assert!(matches!(result, Err(BookError::NotFound(_))), "{result:?}"),
                    Some(entry) => match transition(entry.3, event) {
                        Transition::To(to) => {
                            assert_eq!(result.unwrap().0.status, to);
                            entry.3 = to;
                        }
                        Transition::Already => assert!(!result.unwrap().1),
                        Transition::Invalid => {
                            assert!(
                                matches!(result, Err(BookError::InvalidTransition(_))),
                                "{result:?}"
                            )
                        }
                    },
                }
            }
        }
        let nights = store
            .nights(1, 1, &dates[0], &today.plus(NIGHTS + 1).to_string())
            .await
            .unwrap();
        assert_eq!(nights.len() as i64, NIGHTS);
        for (index, night) in nights.iter().enumerate() {
            let expected = model.reserved(index as i64 + 1);
            assert_eq!(night.total_reserved, expected, "night {}", night.date);
            assert!((0..=LIMIT).contains(&night.total_reserved));
        }
    }
    let stored = store.reservations_of(1, 1).await.unwrap();
    assert_eq!(stored.len(), model.reservations.len());
    for reservation in stored {
        let key: u8 = reservation.reservation_id[1..].parse().unwrap();
        assert_eq!(reservation.status, model.reservations[&key].3);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn bookings_and_cancellations_match_the_model(
        mode in prop::sample::select(Mode::ALL.to_vec()),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(mode, ops));
    }
}

/// The benchmark workload, small: every mode at both contention levels
/// books what it reports, and the inventory agrees with the reservations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_workload_is_consistent() {
    use hotel::bench::{Contention, Workload};
    for (run, (mode, contention)) in Mode::ALL
        .into_iter()
        .flat_map(|mode| [(mode, Contention::Low), (mode, Contention::High)])
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions {
            url: format!("sqlite://{}", dir.path().join("b.db").display()),
            connections_max: 4,
            timeout_ms: 30_000,
        })
        .await
        .unwrap();
        let workload = Workload {
            mode,
            contention,
            bookings: 120,
            workers: 8,
            hotels: 5,
            hotel_base: 1 + run as i64 * 100,
            retries_max: 30,
            hold_ms: 0,
        };
        let outcome = hotel::bench::run(store.clone(), workload.clone(), |_| {})
            .await
            .unwrap();
        assert_eq!(outcome.attempted, 120);
        assert_eq!(outcome.sold_out, 0, "{outcome:?}");
        assert_eq!(outcome.booked + outcome.failed, 120, "{outcome:?}");
        let mut reserved = 0;
        let mut reservations = 0;
        for hotel in 0..5 {
            let hotel_id = workload.hotel_base + hotel;
            let today = Date::today();
            let nights = store
                .nights(hotel_id, 1, &today.to_string(), &today.plus(40).to_string())
                .await
                .unwrap();
            reserved += nights.iter().map(|night| night.total_reserved).sum::<i64>();
            reservations += store.reservations_of(hotel_id, 1).await.unwrap().len();
        }
        assert_eq!(reserved as u64, outcome.booked, "{outcome:?}");
        assert_eq!(reservations as u64, outcome.booked, "{outcome:?}");
    }
}
