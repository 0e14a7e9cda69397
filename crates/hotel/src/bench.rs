//! The booking workload behind `hyperscale bench hotel`: many concurrent
//! guests booking through a [`Booker`] in process, at low contention (many
//! hotels, spread over many nights) or high contention (one hotel, one
//! night), reporting bookings per second, latency percentiles, retries and
//! failures per concurrency mode — the notes' claim that optimistic locking
//! and the constraint degrade under contention, measured.
//!
//! It lives here rather than in the binary so tests can run it small.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::concurrency::{BookError, BookRequest, Booker, Mode};
use crate::model::{Date, Stay};
use crate::store::Store;

/// How contended the workload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Contention {
    /// Every booking picks a random hotel (of `hotels`) and a random night.
    Low,
    /// Every booking is for the same room type of the same hotel, same night.
    High,
    /// Every booking picks one of `hotels` hotels, all for the same night:
    /// the contention sweep's knob (1 hotel is `High`; more spread it).
    Spread,
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The concurrency control.
    pub mode: Mode,
    /// How contended.
    pub contention: Contention,
    /// Bookings attempted.
    pub bookings: u64,
    /// Guests booking at once.
    pub workers: u64,
    /// Hotels at low contention.
    pub hotels: i64,
    /// First hotel id to use (runs on one PostgreSQL database do not share hotels).
    pub hotel_base: i64,
    /// Retry bound of the booker.
    pub retries_max: u32,
    /// Pause between check and write (`Booker::with_hold_ms`): work a real
    /// booking does there, and a wider window for conflicts.
    pub hold_ms: u64,
}

/// One run's results.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The mode.
    pub mode: Mode,
    /// The contention level.
    pub contention: Contention,
    /// Hotels the bookings were spread over.
    pub hotels: i64,
    /// Bookings attempted.
    pub attempted: u64,
    /// Reservations made.
    pub booked: u64,
    /// Refused as sold out (should be 0: inventory covers every booking).
    pub sold_out: u64,
    /// Gave up after the retry bound, or any other error.
    pub failed: u64,
    /// Optimistic conflicts and transient retries.
    pub retries: u64,
    /// Wall time.
    pub seconds: f64,
    /// Reservations per second.
    pub bookings_per_sec: f64,
    /// Median latency of one booking, in ms.
    pub p50_ms: f64,
    /// 99th-percentile latency, in ms.
    pub p99_ms: f64,
}

const NIGHTS: i64 = 30;

/// Creates the hotels the run books into: enough rooms for every booking,
/// so only contention (never inventory) makes a booking fail.
async fn prepare(store: &Store, workload: &Workload) -> Result<(), sqlx::Error> {
    let today = Date::today();
    let hotels = match workload.contention {
        Contention::Low | Contention::Spread => workload.hotels.max(1),
        Contention::High => 1,
    };
    let nights = match workload.contention {
        Contention::Low => NIGHTS,
        Contention::High | Contention::Spread => 1,
    };
    let dates: Vec<String> = (1..=nights).map(|d| today.plus(d).to_string()).collect();
    let rooms = (workload.bookings as i64).max(1);
    for offset in 0..hotels {
        let hotel_id = workload.hotel_base + offset;
        store.put_hotel(hotel_id, "bench", 0).await?;
        store.put_room_type(hotel_id, 1, "bench", 10_000).await?;
        store.set_inventory(hotel_id, 1, &dates, rooms, 100).await?;
    }
    Ok(())
}

/// Runs `workload` on `store`; `progress(done)` is called now and then.
pub async fn run(
    store: Store,
    workload: Workload,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<Outcome, sqlx::Error> {
    prepare(&store, &workload).await?;
    let booker =
        Booker::new(store, workload.mode, workload.retries_max).with_hold_ms(workload.hold_ms);
    let next = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(progress);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workload.workers.max(1) {
        let (booker, next, progress, workload) = (
            booker.clone(),
            next.clone(),
            progress.clone(),
            workload.clone(),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let (mut booked, mut sold_out, mut failed) = (0u64, 0u64, 0u64);
            let today = Date::today();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= workload.bookings {
                    break;
                }
                if index % 1000 == 0 {
                    progress(index);
                }
                let (hotel, night) = match workload.contention {
                    Contention::Low => (
                        fastrand::i64(0..workload.hotels.max(1)),
                        fastrand::i64(1..=NIGHTS),
                    ),
                    Contention::High => (0, 1),
                    Contention::Spread => (fastrand::i64(0..workload.hotels.max(1)), 1),
                };
                let stay = Stay {
                    check_in: today.plus(night),
                    check_out: today.plus(night + 1),
                };
                let request = BookRequest {
                    reservation_id: format!("b{}-{index}", workload.hotel_base),
                    hotel_id: workload.hotel_base + hotel,
                    room_type_id: 1,
                    guest_id: "bench".into(),
                    stay,
                    rooms: 1,
                };
                let began = Instant::now();
                match booker.book(&request, 0).await {
                    Ok(_) => booked += 1,
                    Err(BookError::SoldOut(_)) => sold_out += 1,
                    Err(_) => failed += 1,
                }
                latencies.push(began.elapsed());
            }
            (latencies, booked, sold_out, failed)
        });
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(workload.bookings as usize);
    let (mut booked, mut sold_out, mut failed) = (0, 0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (mut lat, b, s, f) = joined.map_err(|err| sqlx::Error::Protocol(err.to_string()))?;
        latencies.append(&mut lat);
        booked += b;
        sold_out += s;
        failed += f;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let ms = |p| {
        clock::latency::percentile(&latencies, p).map_or(0.0, |d: Duration| d.as_secs_f64() * 1e3)
    };
    let metrics = booker.metrics();
    Ok(Outcome {
        mode: workload.mode,
        contention: workload.contention,
        hotels: match workload.contention {
            Contention::High => 1,
            Contention::Low | Contention::Spread => workload.hotels.max(1),
        },
        attempted: workload.bookings,
        booked,
        sold_out,
        failed,
        retries: metrics.version_conflicts.get() + metrics.transient_retries.get(),
        seconds,
        bookings_per_sec: booked as f64 / seconds.max(1e-9),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
    })
}
