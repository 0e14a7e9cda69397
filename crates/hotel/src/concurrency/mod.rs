//! Booking under contention: the chapter's three concurrency controls, each
//! a complete booking transaction, switchable by `--concurrency`.
//!
//! Every booking inserts the reservation (its client-chosen id is the primary
//! key: a double click inserts once) and adds `rooms` to `total_reserved` of
//! every night of the stay, in date order, in one transaction. What differs
//! is how two bookings for the last room are kept from both succeeding:
//!
//! - [`Mode::Pessimistic`]: lock the nights first (`SELECT ... FOR UPDATE`
//!   on PostgreSQL; on SQLite `BEGIN IMMEDIATE`, which takes the one write
//!   lock), check availability, write. Waiters queue on the lock; nobody
//!   retries. The notes advise against it for reservations: locks held
//!   across a transaction limit scale and many-row locks invite deadlocks
//!   (locking in date order avoids those).
//! - [`Mode::Optimistic`]: read the nights without locks, check, then write
//!   with `WHERE version = <read version>`; a row changed meanwhile updates
//!   nothing, the transaction rolls back and the booking retries after a
//!   random pause (bounded retries, jitter from `fastrand`). The notes'
//!   choice for hotel traffic (low QPS); under heavy contention most work is
//!   thrown away, which `hyperscale bench hotel` is meant to show.
//! - [`Mode::Constraint`]: write without checking; the table's
//!   `check_room_count` constraint rejects the update that would oversell and
//!   the transaction rolls back. Simplest; failures surface as "sold out" and
//!   the rule lives in the schema rather than in versioned code.
//!
//! The constraint exists in every mode as a last line of defence; the
//! `check_violations` counter shows whether the other two modes ever needed
//! it (the race tests assert they did not).
//!
//! Transient database errors (SQLite busy, PostgreSQL deadlock or
//! serialization failure) are retried in every mode within the same bound.

mod steps;

use std::str::FromStr;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::model::{self, Event, Reservation, Stay, Transition};
use crate::store::{self, ErrorClass, Store};
use steps::{check_nights, insert_and_reserve, pause, read_nights, release};

/// The concurrency control used for bookings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Lock the rows, then check and write.
    Pessimistic,
    /// Read, check, write if the version is unchanged; retry otherwise.
    Optimistic,
    /// Write; the CHECK constraint refuses overselling.
    Constraint,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 3] = [Mode::Pessimistic, Mode::Optimistic, Mode::Constraint];

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pessimistic => "pessimistic",
            Mode::Optimistic => "optimistic",
            Mode::Constraint => "constraint",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| {
                format!("concurrency must be pessimistic, optimistic or constraint, not `{text}`")
            })
    }
}

/// A validated booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRequest {
    /// The idempotency key.
    pub reservation_id: String,
    /// The hotel.
    pub hotel_id: i64,
    /// The room type.
    pub room_type_id: i64,
    /// Who books.
    pub guest_id: String,
    /// The nights.
    pub stay: Stay,
    /// Rooms for every night (≥ 1).
    pub rooms: i64,
}

impl BookRequest {
    /// Whether `existing` was made by this same request (the idempotency
    /// check: same key, same body).
    fn matches(&self, existing: &Reservation) -> bool {
        existing.hotel_id == self.hotel_id
            && existing.room_type_id == self.room_type_id
            && existing.guest_id == self.guest_id
            && existing.check_in == self.stay.check_in.to_string()
            && existing.check_out == self.stay.check_out.to_string()
            && existing.rooms == self.rooms
    }
}

/// Why a booking or a status change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// Unknown hotel, room type or reservation.
    #[error("{0}")]
    NotFound(String),
    /// A night of the stay is not for sale, or every room is taken.
    #[error("{0}")]
    SoldOut(String),
    /// The idempotency key was used before with a different request.
    #[error("{0}")]
    KeyReused(String),
    /// The status machine forbids the change.
    #[error("{0}")]
    InvalidTransition(String),
    /// Retries ran out under contention.
    #[error("{0}")]
    Contention(String),
    /// The database is down or overloaded.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken database.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result of a booking.
#[derive(Debug, Clone)]
pub struct Booked {
    /// The reservation.
    pub reservation: Reservation,
    /// `true` when an earlier request with the same key made it.
    pub replayed: bool,
}

/// Counters of the booking path.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Reservations created.
    pub created: Counter,
    /// Repeated requests answered with the first result.
    pub replayed: Counter,
    /// Bookings refused: no room left.
    pub sold_out: Counter,
    /// Optimistic version conflicts (each one a retry).
    pub version_conflicts: Counter,
    /// Retries after a transient database error.
    pub transient_retries: Counter,
    /// Updates refused by the `check_room_count` constraint.
    pub check_violations: Counter,
    /// Bookings that gave up after the retry bound.
    pub gave_up: Counter,
}

/// Runs bookings and status changes with one concurrency mode.
#[derive(Clone)]
pub struct Booker {
    store: Store,
    mode: Mode,
    retries_max: u32,
    /// Pause between the check and the write (see [`Booker::with_hold_ms`]).
    hold: Duration,
    metrics: Metrics,
}

/// One attempt's failure: retry, or give this answer.
pub(crate) enum Failure {
    Retry,
    Duplicate,
    Final(BookError),
}

fn db_failure(err: &sqlx::Error, metrics: &Metrics) -> Failure {
    match store::classify(err) {
        ErrorClass::Transient => {
            metrics.transient_retries.inc();
            Failure::Retry
        }
        ErrorClass::Unique => Failure::Duplicate,
        ErrorClass::Check => {
            metrics.check_violations.inc();
            Failure::Final(BookError::SoldOut(
                "sold out: no room of this type left for a night of the stay".into(),
            ))
        }
        ErrorClass::ForeignKey => {
            Failure::Final(BookError::NotFound("unknown hotel or room type".into()))
        }
        ErrorClass::Unavailable => Failure::Final(BookError::Unavailable(err.to_string())),
        ErrorClass::Other => Failure::Final(BookError::Internal(err.to_string())),
    }
}

/// Maps a database error outside the retry loop.
pub fn db_error(err: &sqlx::Error) -> BookError {
    match store::classify(err) {
        ErrorClass::Unavailable | ErrorClass::Transient => BookError::Unavailable(err.to_string()),
        _ => BookError::Internal(err.to_string()),
    }
}

impl Booker {
    /// A booker over `store`; `retries_max` bounds retries of one request.
    pub fn new(store: Store, mode: Mode, retries_max: u32) -> Self {
        Self {
            store,
            mode,
            retries_max,
            hold: Duration::ZERO,
            metrics: Metrics::default(),
        }
    }

    /// Pauses `hold_ms` between checking availability and writing, as a
    /// booking that does real work there (pricing, fraud checks) would. It
    /// widens the race window, so the race tests prove that a mode's lock
    /// or version check — not luck in timing — keeps the last room single.
    pub fn with_hold_ms(mut self, hold_ms: u64) -> Self {
        self.hold = Duration::from_millis(hold_ms);
        self
    }

    /// Counts into `metrics` (shared by the shards' bookers).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Begins a transaction that will write (see `Backend::begin_write`).
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, Failure> {
        self.store
            .pool()
            .begin_with(self.store.backend().begin_write())
            .await
            .map_err(|err| db_failure(&err, &self.metrics))
    }

    /// Books `request`, or returns the reservation an identical earlier
    /// request made.
    pub async fn book(&self, request: &BookRequest, now_ms: i64) -> Result<Booked, BookError> {
        if let Some(existing) = self.existing(request).await? {
            return Ok(existing);
        }
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT room_type_id FROM room_type WHERE hotel_id = $1 AND room_type_id = $2",
        )
        .bind(request.hotel_id)
        .bind(request.room_type_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(|err| db_error(&err))?;
        if exists.is_none() {
            return Err(BookError::NotFound(format!(
                "hotel {} has no room type {}",
                request.hotel_id, request.room_type_id
            )));
        }
        for attempt in 0..=self.retries_max {
            let outcome = match self.mode {
                Mode::Pessimistic => self.attempt_locked(request, now_ms, true).await,
                Mode::Constraint => self.attempt_locked(request, now_ms, false).await,
                Mode::Optimistic => self.attempt_optimistic(request, now_ms).await,
            };
            match outcome {
                Ok(reservation) => {
                    self.metrics.created.inc();
                    return Ok(Booked {
                        reservation,
                        replayed: false,
                    });
                }
                Err(Failure::Final(err)) => {
                    if matches!(err, BookError::SoldOut(_)) {
                        self.metrics.sold_out.inc();
                    }
                    return Err(err);
                }
                Err(Failure::Duplicate) => {
                    // A concurrent request with the same key committed first.
                    if let Some(existing) = self.existing(request).await? {
                        return Ok(existing);
                    }
                }
                Err(Failure::Retry) => {}
            }
            pause(attempt).await;
        }
        self.metrics.gave_up.inc();
        Err(BookError::Contention(format!(
            "too much contention: gave up after {} retries, try again",
            self.retries_max
        )))
    }

    /// The earlier reservation with this key: replayed if it matches,
    /// [`BookError::KeyReused`] if not.
    async fn existing(&self, request: &BookRequest) -> Result<Option<Booked>, BookError> {
        let found = self
            .store
            .reservation(&request.reservation_id)
            .await
            .map_err(|err| db_error(&err))?;
        match found {
            None => Ok(None),
            Some(reservation) if request.matches(&reservation) => {
                self.metrics.replayed.inc();
                Ok(Some(Booked {
                    reservation,
                    replayed: true,
                }))
            }
            Some(_) => Err(BookError::KeyReused(format!(
                "reservation_id `{}` was already used for a different booking",
                request.reservation_id
            ))),
        }
    }

    /// Pessimistic (`lock = true`: read the nights with a lock, check) or
    /// constraint (`lock = false`: read only for prices, never check).
    async fn attempt_locked(
        &self,
        request: &BookRequest,
        now_ms: i64,
        lock: bool,
    ) -> Result<Reservation, Failure> {
        let metrics = &self.metrics;
        let backend = self.store.backend();
        let mut tx = self.begin_write().await?;
        // `OF i`: PostgreSQL locks the inventory rows, not the joined rate rows.
        let lock_clause = match (lock, backend.for_update()) {
            (true, clause) if !clause.is_empty() => " FOR UPDATE OF i",
            _ => "",
        };
        let nights = read_nights(&mut tx, request, lock_clause)
            .await
            .map_err(|err| db_failure(&err, metrics))?;
        check_nights(request, &nights, lock)?;
        if lock && !self.hold.is_zero() {
            tokio::time::sleep(self.hold).await;
        }
        let reservation =
            insert_and_reserve(&mut tx, request, &nights, now_ms, None, self.store.outbox())
                .await
                .map_err(|err| db_failure(&err, metrics))?
                .ok_or_else(|| {
                    Failure::Final(BookError::Internal("inventory row vanished".into()))
                })?;
        tx.commit().await.map_err(|err| db_failure(&err, metrics))?;
        Ok(reservation)
    }

    /// Optimistic: read and check outside any transaction, then write only
    /// if every night's version is still the one read.
    async fn attempt_optimistic(
        &self,
        request: &BookRequest,
        now_ms: i64,
    ) -> Result<Reservation, Failure> {
        let metrics = &self.metrics;
        let nights = self
            .store
            .nights(
                request.hotel_id,
                request.room_type_id,
                &request.stay.check_in.to_string(),
                &request.stay.check_out.to_string(),
            )
            .await
            .map_err(|err| db_failure(&err, metrics))?;
        check_nights(request, &nights, true)?;
        if !self.hold.is_zero() {
            tokio::time::sleep(self.hold).await;
        }
        let mut tx = self.begin_write().await?;
        let versions: Vec<i64> = nights.iter().map(|night| night.version).collect();
        match insert_and_reserve(
            &mut tx,
            request,
            &nights,
            now_ms,
            Some(&versions),
            self.store.outbox(),
        )
        .await
        {
            Ok(Some(reservation)) => {
                tx.commit().await.map_err(|err| db_failure(&err, metrics))?;
                Ok(reservation)
            }
            Ok(None) => {
                // Dropping the transaction rolls it back.
                metrics.version_conflicts.inc();
                Err(Failure::Retry)
            }
            Err(err) => Err(db_failure(&err, metrics)),
        }
    }

    /// Runs `attempt` until it succeeds or fails for good, pausing between
    /// retries (transient database errors), at most `retries_max` times.
    pub(crate) async fn retry<T, F, Fut>(&self, mut attempt: F) -> Result<T, BookError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        for round in 0..=self.retries_max {
            match attempt().await {
                Ok(done) => return Ok(done),
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::Retry | Failure::Duplicate) => pause(round).await,
            }
        }
        self.metrics.gave_up.inc();
        Err(BookError::Contention(
            "too much contention on this reservation, try again".into(),
        ))
    }

    /// Applies `event` to a reservation; releases its rooms when it leaves a
    /// room-holding status. Returns the reservation and whether it changed.
    pub async fn change_status(
        &self,
        reservation_id: &str,
        event: Event,
        now_ms: i64,
    ) -> Result<(Reservation, bool), BookError> {
        self.retry(|| async {
            let mut tx = self.begin_write().await?;
            let reservation = self.lock_reservation(&mut tx, reservation_id).await?;
            let done = self
                .apply_event(&mut tx, reservation, event, now_ms)
                .await?;
            tx.commit().await.map_err(|err| self.failure(&err))?;
            Ok(done)
        })
        .await
    }

    /// Classifies a database error of a write, counting it.
    pub(crate) fn failure(&self, err: &sqlx::Error) -> Failure {
        db_failure(err, &self.metrics)
    }

    /// Begins a write transaction (for the saga's steps).
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>, Failure> {
        self.begin_write().await
    }

    /// Reads a reservation inside `tx`, locking its row where the database
    /// can; a missing one is [`BookError::NotFound`].
    pub(crate) async fn lock_reservation(
        &self,
        tx: &mut Transaction<'static, Any>,
        reservation_id: &str,
    ) -> Result<Reservation, Failure> {
        let sql = format!(
            "{} WHERE reservation_id = $1{}",
            store::RESERVATION_SQL,
            self.store.backend().for_update()
        );
        let row = sqlx::query(&sql)
            .bind(reservation_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|err| self.failure(&err))?;
        let Some(row) = row else {
            return Err(Failure::Final(BookError::NotFound(format!(
                "no reservation `{reservation_id}`"
            ))));
        };
        store::reservation_from_row(&row).map_err(|err| self.failure(&err))
    }

    /// Applies `event` to `reservation` (read by [`Booker::lock_reservation`]
    /// in the same `tx`), releasing its rooms when it leaves a room-holding
    /// status; the caller commits.
    pub(crate) async fn apply_event(
        &self,
        tx: &mut Transaction<'static, Any>,
        mut reservation: Reservation,
        event: Event,
        now_ms: i64,
    ) -> Result<(Reservation, bool), Failure> {
        let to = match model::transition(reservation.status, event) {
            Transition::Already => return Ok((reservation, false)),
            Transition::Invalid => {
                return Err(Failure::Final(BookError::InvalidTransition(format!(
                    "cannot {} a reservation that is {}",
                    event.as_str(),
                    reservation.status.as_str()
                ))));
            }
            Transition::To(to) => to,
        };
        sqlx::query(
            "UPDATE reservation SET status = $1, updated_ms = $2 WHERE reservation_id = $3",
        )
        .bind(to.as_str())
        .bind(now_ms)
        .bind(&reservation.reservation_id)
        .execute(&mut **tx)
        .await
        .map_err(|err| self.failure(&err))?;
        if reservation.status.holds_rooms() && !to.holds_rooms() {
            release(tx, &reservation, self.store.outbox())
                .await
                .map_err(|err| self.failure(&err))?;
        }
        reservation.status = to;
        reservation.updated_ms = now_ms;
        Ok((reservation, true))
    }
}
