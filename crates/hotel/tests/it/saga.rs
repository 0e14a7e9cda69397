//! The payment saga against the in-process fake provider: a success charges
//! once per key however often it is asked; a decline, a provider that hangs
//! before or after taking the money, and a cancel in mid-payment all end
//! with no paid-but-unbooked or booked-but-unpaid reservation; sagas cut off
//! between steps are finished by recovery (on SQLite and PostgreSQL).
//! `kill -9` of the real binary is in the `hyperscale` crate's
//! `hotel_saga` test.

use std::collections::BTreeMap;
use std::time::Duration;

use hotel::Mode;
use hotel::payment::fake::Behaviour;
use hotel::saga::Step;
use serde_json::Value;

use crate::support::{Db, Server, booking, day};

async fn server(db: Db, timeout_ms: u64) -> Server {
    let server = Server::start(db, Mode::Optimistic, 1.0, |config| {
        config.payment_timeout_ms = timeout_ms;
        config.payment_attempts_max = 3;
    })
    .await;
    server.hotel_with_rooms(5, 1, 4).await;
    server
}

/// Every reservation of hotel 1 agrees with the provider and the inventory:
/// paid ⇔ one live charge of its price; no saga left open; each night's
/// `total_reserved` is the sum of the rooms of reservations holding rooms.
async fn assert_consistent(server: &Server) {
    let charges = server.fake.charges();
    let reservations = server.booker.store().reservations_of(1, 1).await.unwrap();
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    for reservation in &reservations {
        let id = &reservation.reservation_id;
        let live = charges
            .get(id)
            .filter(|charge| charge.status == "succeeded");
        let paid = matches!(reservation.status.as_str(), "paid" | "checked_in");
        assert_eq!(paid, live.is_some(), "{id}: {reservation:?} vs {live:?}");
        if let Some(charge) = live {
            assert_eq!(charge.amount_cents, reservation.total_cents, "{id}");
        }
        if let Some(saga) = server.saga.row(id).await.unwrap() {
            let step = Step::parse(&saga.step).unwrap();
            assert!(
                matches!(step, Step::Confirmed | Step::Compensated | Step::Refunded),
                "{id}: saga left at {step:?}"
            );
        }
        if reservation.status.holds_rooms() {
            let from = hotel::model::Date::parse(&reservation.check_in).unwrap();
            let to = hotel::model::Date::parse(&reservation.check_out).unwrap();
            for night in from.days()..to.days() {
                let date = hotel::model::Date::from_days(night).to_string();
                *held.entry(date).or_default() += reservation.rooms;
            }
        }
    }
    for night in server
        .booker
        .store()
        .nights(1, 1, &day(1), &day(4))
        .await
        .unwrap()
    {
        let expected = held.get(&night.date).copied().unwrap_or(0);
        assert_eq!(night.total_reserved, expected, "night {}", night.date);
    }
}

fn status(reply: &Value) -> &str {
    reply["status"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_payment_charges_once_and_a_cancel_refunds_it() {
    let server = server(Db::Sqlite, 2_000).await;
    assert_eq!(server.book(&booking("p-1", "ann", 1, 3, 2)).await.0, 201);
    let (code, reply) = server.post("/v1/reservations/p-1/pay").await;
    assert_eq!((code, status(&reply)), (200, "paid"), "{reply}");
    // Asked again: the same answer, no second charge call.
    let (code, reply) = server.post("/v1/reservations/p-1/pay").await;
    assert_eq!((code, status(&reply)), (200, "paid"), "{reply}");
    assert_eq!(server.fake.charge_requests(), 1);
    let charge = server.fake.charges()["p-1"].clone();
    assert_eq!(
        (charge.amount_cents, charge.status.as_str()),
        (40_000, "succeeded")
    );
    assert_consistent(&server).await;
    let (code, reply) = server.post("/v1/reservations/p-1/cancel").await;
    assert_eq!((code, status(&reply)), (200, "refunded"), "{reply}");
    assert_eq!(server.fake.charges()["p-1"].status, "voided");
    assert_eq!(server.reserved(1, 3).await, [0, 0]);
    assert_consistent(&server).await;
}

#[tokio::test]
async fn a_declined_payment_rejects_and_releases() {
    let server = server(Db::Sqlite, 2_000).await;
    assert_eq!(server.book(&booking("d-1", "bob", 1, 3, 1)).await.0, 201);
    server.fake.set(Behaviour {
        decline: true,
        ..Behaviour::default()
    });
    let (code, reply) = server.post("/v1/reservations/d-1/pay").await;
    assert_eq!(code, 402, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("card declined"));
    let (_, reservation) = server.get("/v1/reservations/d-1").await;
    assert_eq!(status(&reservation), "rejected");
    assert_eq!(server.reserved(1, 3).await, [0, 0]);
    // A repeat gives the same answer; the provider is not asked again.
    server.fake.set(Behaviour::default());
    assert_eq!(server.post("/v1/reservations/d-1/pay").await.0, 402);
    assert_eq!(server.fake.charge_requests(), 1);
    assert_consistent(&server).await;
}

#[tokio::test]
async fn a_provider_that_times_out_is_compensated_and_cannot_charge_late() {
    let server = server(Db::Sqlite, 100).await;
    // Hangs before taking the money: the charges land after we gave up.
    assert_eq!(server.book(&booking("t-1", "cy", 1, 2, 1)).await.0, 201);
    server.fake.set(Behaviour {
        hang_before_ms: 400,
        ..Behaviour::default()
    });
    let (code, reply) = server.post("/v1/reservations/t-1/pay").await;
    assert_eq!(code, 402, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("did not answer"));
    assert_eq!(server.fake.charge_requests(), 3);
    // Takes the money, then hangs: the charge must be voided.
    assert_eq!(server.book(&booking("t-2", "cy", 2, 3, 1)).await.0, 201);
    server.fake.set(Behaviour {
        hang_after_ms: 400,
        ..Behaviour::default()
    });
    assert_eq!(server.post("/v1/reservations/t-2/pay").await.0, 402);
    // Let every hung request finish: none may leave a live charge.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let charges = server.fake.charges();
    assert_eq!(charges["t-1"].status, "voided");
    assert_eq!(charges["t-2"].status, "voided");
    assert_eq!(server.reserved(1, 3).await, [0, 0]);
    assert_consistent(&server).await;
}

#[tokio::test]
async fn a_cancel_during_payment_voids_the_charge() {
    let server = server(Db::Sqlite, 5_000).await;
    assert_eq!(server.book(&booking("c-1", "di", 1, 3, 1)).await.0, 201);
    server.fake.set(Behaviour {
        hang_after_ms: 500,
        ..Behaviour::default()
    });
    let pay = {
        let request = server.client.post(server.url("/v1/reservations/c-1/pay"));
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    };
    while server.fake.charges().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (code, reply) = server.post("/v1/reservations/c-1/cancel").await;
    assert_eq!((code, status(&reply)), (200, "canceled"), "{reply}");
    assert_eq!(pay.await.unwrap(), 402);
    assert_eq!(server.fake.charges()["c-1"].status, "voided");
    assert_consistent(&server).await;
}

/// Sagas cut off at each open step (as a crash leaves them) are finished by
/// `recover`.
async fn recovery_finishes_cut_off_sagas(db: Db) {
    let server = server(db, 2_000).await;
    for id in ["r-1", "r-2", "r-3"] {
        assert_eq!(server.book(&booking(id, "eve", 1, 3, 1)).await.0, 201);
    }
    let pool = server.booker.store().pool().clone();
    // r-1: the log says `charging`, the provider was never asked.
    server.saga.begin("r-1").await.unwrap();
    // r-2: charged, then the process died before confirming.
    server.saga.begin("r-2").await.unwrap();
    let payments = server.saga.payments().clone();
    assert!(matches!(
        payments.charge("r-2", 20_000).await,
        hotel::payment::ChargeOutcome::Charged(_)
    ));
    // r-3: declined, then the process died before voiding and rejecting.
    server.saga.begin("r-3").await.unwrap();
    sqlx::query("UPDATE payment_saga SET step = 'compensating' WHERE reservation_id = 'r-3'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(server.reserved(1, 3).await, [3, 3]);
    let finished = server.saga.recover(i64::MAX, 100).await.unwrap();
    assert_eq!(finished, 3);
    let expect = [("r-1", "paid"), ("r-2", "paid"), ("r-3", "rejected")];
    for (id, want) in expect {
        let (_, reply) = server.get(&format!("/v1/reservations/{id}")).await;
        assert_eq!(status(&reply), want, "{id}");
    }
    // r-2 was charged once, not twice.
    assert_eq!(server.fake.charges().len(), 3);
    assert_eq!(server.reserved(1, 3).await, [2, 2]);
    assert_consistent(&server).await;
}

#[tokio::test]
async fn recovery_finishes_cut_off_sagas_sqlite() {
    recovery_finishes_cut_off_sagas(Db::Sqlite).await;
}

#[tokio::test]
async fn recovery_finishes_cut_off_sagas_postgres() {
    recovery_finishes_cut_off_sagas(Db::Postgres).await;
}
