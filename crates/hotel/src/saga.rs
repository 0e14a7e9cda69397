//! Payment as a saga: reservation → charge (an HTTP payment provider) →
//! confirm, or compensate (void the charge, reject the reservation, give the
//! rooms back).
//!
//! **Why a saga.** The charge lives in another system; no transaction spans
//! the provider and our database. So each step is a local transaction that
//! writes the step reached into the saga log (`payment_saga`) together with
//! the reservation's status, and the remote calls between the steps are
//! idempotent (the reservation id is the provider's idempotency key, see
//! [`crate::payment`]). A crash anywhere leaves the log at `charging`,
//! `compensating` or `refunding`; [`Saga::recover`] (at start and then
//! every `saga_sweep_ms`) drives each such saga on, repeating the remote call
//! it may or may not have made:
//!
//! ```text
//!  charging ──charged──▶ confirmed  (reservation pending → paid)
//!     │  └─declined / no answer after payment_attempts_max──┐
//!     └─charged, but the guest canceled meanwhile───────────▼
//!                                                  compensating ──voided──▶ compensated
//!                                                                 (reservation pending → rejected)
//!  confirmed ──guest cancels (paid → refunded)──▶ refunding ──voided──▶ refunded
//! ```
//!
//! The invariants after recovery: a `paid` reservation has exactly one live
//! charge; a reservation with no live charge holds no rooms unless it is
//! still `pending`; a voided key can never be charged again, so a charge
//! request still in flight when the saga gave up cannot land afterwards.
//! Every step is a compare-and-set on the log's step, so a request and the
//! sweeper driving the same saga at once cannot both act.
//!
//! The decisions are pure functions ([`next_action`], [`after_charge`]); the
//! rest is the I/O that runs them.

use std::time::Duration;

use sqlx::Row;

use crate::concurrency::{BookError, Booker, Failure, db_error};
use crate::model::{Event, Reservation, Status};
use crate::payment::{ChargeOutcome, PaymentClient};

/// Where a saga is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Asking the provider for the money.
    Charging,
    /// Charged and the reservation is paid.
    Confirmed,
    /// Voiding whatever the key charged, then rejecting the reservation.
    Compensating,
    /// Voided; the reservation is rejected (or was canceled).
    Compensated,
    /// The guest canceled a paid reservation: voiding the charge.
    Refunding,
    /// Voided after a cancel.
    Refunded,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 6] = [
        Step::Charging,
        Step::Confirmed,
        Step::Compensating,
        Step::Compensated,
        Step::Refunding,
        Step::Refunded,
    ];

    /// The name stored in `payment_saga.step`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Charging => "charging",
            Step::Confirmed => "confirmed",
            Step::Compensating => "compensating",
            Step::Compensated => "compensated",
            Step::Refunding => "refunding",
            Step::Refunded => "refunded",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.as_str() == text)
    }
}

/// What a saga at a step does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Call the provider's charge (again: it is idempotent).
    Charge,
    /// Give up charging: move to `compensating`.
    GiveUp,
    /// Call the provider's void (again: it is idempotent).
    Void,
    /// Nothing: the saga is over.
    Done,
}

/// The next action of a saga at `step` that has made `attempts` charge
/// calls, of at most `attempts_max`.
pub fn next_action(step: Step, attempts: i64, attempts_max: i64) -> Action {
    match step {
        Step::Charging if attempts >= attempts_max => Action::GiveUp,
        Step::Charging => Action::Charge,
        Step::Compensating | Step::Refunding => Action::Void,
        Step::Confirmed | Step::Compensated | Step::Refunded => Action::Done,
    }
}

/// Where a charge's outcome leads from `charging`, given the reservation's
/// status now: `None` means "unknown, ask again".
pub fn after_charge(outcome: &ChargeOutcome, status: Status) -> Option<Step> {
    match outcome {
        ChargeOutcome::Charged(_) if status == Status::Pending => Some(Step::Confirmed),
        // Canceled while we charged: the money goes back.
        ChargeOutcome::Charged(_) | ChargeOutcome::Declined(_) => Some(Step::Compensating),
        ChargeOutcome::Unknown(_) => None,
    }
}

/// A saga's log row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SagaRow {
    /// The reservation (and the provider's idempotency key).
    pub reservation_id: String,
    /// The step reached.
    pub step: String,
    /// What is charged.
    pub amount_cents: i64,
    /// Charge calls made so far.
    pub attempts: i64,
    /// The provider's charge id, once charged.
    pub charge_id: Option<String>,
    /// Why it was compensated.
    pub error: Option<String>,
}

/// Runs payment sagas over a [`Booker`]'s database and a provider.
#[derive(Clone)]
pub struct Saga {
    booker: Booker,
    payments: PaymentClient,
    attempts_max: i64,
}

fn now_ms() -> i64 {
    clock::now_ms() as i64
}

/// Pause between charge attempts of one drive: 50 ms, 100 ms, ... 800 ms.
fn backoff(attempt: i64) -> Duration {
    Duration::from_millis(50 << attempt.clamp(0, 4))
}

impl Saga {
    /// A saga runner; `attempts_max` bounds the charge calls of one saga
    /// (across restarts: the count is in the log).
    pub fn new(booker: Booker, payments: PaymentClient, attempts_max: u32) -> Self {
        Self {
            booker,
            payments,
            attempts_max: i64::from(attempts_max.max(1)),
        }
    }

    /// The provider client.
    pub fn payments(&self) -> &PaymentClient {
        &self.payments
    }

    /// Pays for a pending reservation: starts its saga (or finds it) and
    /// drives it as far as it goes. Returns the reservation and the saga.
    pub async fn pay(&self, reservation_id: &str) -> Result<(Reservation, SagaRow), BookError> {
        self.begin(reservation_id).await?;
        self.drive(reservation_id).await
    }

    /// Writes the saga's first step (`charging`) for a pending reservation;
    /// a reservation that already has a saga keeps it.
    pub async fn begin(&self, reservation_id: &str) -> Result<(), BookError> {
        let booker = &self.booker;
        booker
            .retry(|| async {
                let mut tx = booker.begin().await?;
                let reservation = booker.lock_reservation(&mut tx, reservation_id).await?;
                if reservation.status == Status::Pending {
                    sqlx::query(
                        "INSERT INTO payment_saga (reservation_id, step, amount_cents, attempts, \
                         created_ms, updated_ms) SELECT $1, $2, $3, 0, $4, $4 WHERE NOT EXISTS \
                         (SELECT 1 FROM payment_saga WHERE reservation_id = $1)",
                    )
                    .bind(reservation_id)
                    .bind(Step::Charging.as_str())
                    .bind(reservation.total_cents)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                    .map_err(|err| booker.failure(&err))?;
                } else if self.row_in(&mut tx, reservation_id).await?.is_none() {
                    return Err(Failure::Final(BookError::InvalidTransition(format!(
                        "cannot pay a reservation that is {}",
                        reservation.status.as_str()
                    ))));
                }
                tx.commit().await.map_err(|err| booker.failure(&err))?;
                Ok(())
            })
            .await
    }

    /// The saga of a reservation, if it has one.
    pub async fn row(&self, reservation_id: &str) -> Result<Option<SagaRow>, BookError> {
        let row = sqlx::query(SAGA_SQL)
            .bind(reservation_id)
            .fetch_optional(self.booker.store().pool())
            .await
            .map_err(|err| db_error(&err))?;
        row.as_ref()
            .map(saga_from_row)
            .transpose()
            .map_err(|err| db_error(&err))
    }

    async fn row_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        reservation_id: &str,
    ) -> Result<Option<SagaRow>, Failure> {
        let row = sqlx::query(SAGA_SQL)
            .bind(reservation_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|err| self.booker.failure(&err))?;
        row.as_ref()
            .map(saga_from_row)
            .transpose()
            .map_err(|err| self.booker.failure(&err))
    }

    /// Drives a saga until it is over, or until the provider cannot be
    /// reached to void (then [`BookError::Unavailable`]: the sweeper will
    /// finish it).
    pub async fn drive(&self, reservation_id: &str) -> Result<(Reservation, SagaRow), BookError> {
        let mut last_error = String::new();
        loop {
            let saga = self.row(reservation_id).await?.ok_or_else(|| {
                BookError::NotFound(format!("reservation `{reservation_id}` has no payment"))
            })?;
            let step = Step::parse(&saga.step)
                .ok_or_else(|| BookError::Internal(format!("unknown saga step `{}`", saga.step)))?;
            match next_action(step, saga.attempts, self.attempts_max) {
                Action::Done => {
                    let reservation = self.booker.store().reservation(reservation_id).await;
                    let reservation = reservation.map_err(|err| db_error(&err))?;
                    let reservation = reservation.ok_or_else(|| {
                        BookError::Internal(format!("reservation `{reservation_id}` vanished"))
                    })?;
                    return Ok((reservation, saga));
                }
                Action::GiveUp => {
                    let reason = format!(
                        "the payment provider did not answer after {} attempts ({last_error})",
                        saga.attempts
                    );
                    self.settle(
                        reservation_id,
                        Step::Charging,
                        Step::Compensating,
                        None,
                        &reason,
                    )
                    .await?;
                }
                Action::Charge => {
                    if saga.attempts > 0 {
                        tokio::time::sleep(backoff(saga.attempts - 1)).await;
                    }
                    self.count_attempt(reservation_id).await?;
                    let outcome = self
                        .payments
                        .charge(reservation_id, saga.amount_cents)
                        .await;
                    if let ChargeOutcome::Unknown(err) = &outcome {
                        tracing::warn!("payment of `{reservation_id}` unknown: {err}");
                        last_error = err.clone();
                        continue;
                    }
                    self.after_charge(reservation_id, &outcome).await?;
                }
                Action::Void => {
                    self.payments.void(reservation_id).await.map_err(|err| {
                        BookError::Unavailable(format!(
                            "{err}; the payment of `{reservation_id}` will be settled in the background"
                        ))
                    })?;
                    let done = if step == Step::Refunding {
                        Step::Refunded
                    } else {
                        Step::Compensated
                    };
                    let reject = (step == Step::Compensating).then_some(Event::Reject);
                    self.settle(reservation_id, step, done, reject, "").await?;
                }
            }
        }
    }

    /// Counts one charge call in the log (so the bound holds across restarts).
    async fn count_attempt(&self, reservation_id: &str) -> Result<(), BookError> {
        sqlx::query(
            "UPDATE payment_saga SET attempts = attempts + 1, updated_ms = $1 \
             WHERE reservation_id = $2 AND step = $3",
        )
        .bind(now_ms())
        .bind(reservation_id)
        .bind(Step::Charging.as_str())
        .execute(self.booker.store().pool())
        .await
        .map_err(|err| db_error(&err))?;
        Ok(())
    }

    /// Records a definite charge outcome: confirm (pay the reservation) or
    /// start compensating.
    async fn after_charge(
        &self,
        reservation_id: &str,
        outcome: &ChargeOutcome,
    ) -> Result<(), BookError> {
        self.step_in_tx(reservation_id, Step::Charging, |reservation| {
            let to = after_charge(outcome, reservation.status)?;
            let (charge_id, reason) = match outcome {
                ChargeOutcome::Charged(id) if to == Step::Confirmed => (Some(id.clone()), ""),
                ChargeOutcome::Charged(id) => (
                    Some(id.clone()),
                    "the reservation was canceled while it was being paid",
                ),
                ChargeOutcome::Declined(reason) | ChargeOutcome::Unknown(reason) => {
                    (None, reason.as_str())
                }
            };
            let event = (to == Step::Confirmed).then_some(Event::Pay);
            Some((to, charge_id, reason.to_string(), event))
        })
        .await
    }

    /// Moves `from` → `to` and applies `event` to the reservation (when it
    /// is still pending), in one transaction.
    async fn settle(
        &self,
        reservation_id: &str,
        from: Step,
        to: Step,
        event: Option<Event>,
        reason: &str,
    ) -> Result<(), BookError> {
        self.step_in_tx(reservation_id, from, |_| {
            Some((to, None, reason.to_string(), event))
        })
        .await
    }

    /// One saga step as one transaction: locks the reservation, asks
    /// `decide` for the step to move to (with the charge id, the reason and
    /// the event for a still-pending reservation; `None`: nothing to do),
    /// moves the step from `from` if no one else did, applies the event.
    async fn step_in_tx<F>(
        &self,
        reservation_id: &str,
        from: Step,
        decide: F,
    ) -> Result<(), BookError>
    where
        F: Fn(&Reservation) -> Option<(Step, Option<String>, String, Option<Event>)>,
    {
        let booker = &self.booker;
        booker
            .retry(|| async {
                let mut tx = booker.begin().await?;
                let reservation = booker.lock_reservation(&mut tx, reservation_id).await?;
                let Some((to, charge_id, reason, event)) = decide(&reservation) else {
                    return Ok(());
                };
                let moved = self
                    .move_step(
                        &mut tx,
                        reservation_id,
                        from,
                        to,
                        charge_id.as_deref(),
                        &reason,
                    )
                    .await?;
                if moved
                    && let Some(event) = event
                    && reservation.status == Status::Pending
                {
                    booker
                        .apply_event(&mut tx, reservation, event, now_ms())
                        .await?;
                }
                tx.commit().await.map_err(|err| booker.failure(&err))?;
                Ok(())
            })
            .await
    }

    /// Compare-and-set of the step; `false` when another driver moved it first.
    async fn move_step(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        reservation_id: &str,
        from: Step,
        to: Step,
        charge_id: Option<&str>,
        reason: &str,
    ) -> Result<bool, Failure> {
        let reason = (!reason.is_empty()).then(|| reason.chars().take(500).collect::<String>());
        let moved = sqlx::query(
            "UPDATE payment_saga SET step = $1, charge_id = COALESCE($2, charge_id), \
             error = COALESCE($3, error), updated_ms = $4 WHERE reservation_id = $5 AND step = $6",
        )
        .bind(to.as_str())
        .bind(charge_id)
        .bind(reason)
        .bind(now_ms())
        .bind(reservation_id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await
        .map_err(|err| self.booker.failure(&err))?;
        Ok(moved.rows_affected() == 1)
    }

    /// Cancels a reservation: a paid one is refunded (rooms released now, the
    /// charge voided by the saga's `refunding` step); others change status
    /// as [`Booker::change_status`] does.
    pub async fn cancel(&self, reservation_id: &str) -> Result<Reservation, BookError> {
        let booker = &self.booker;
        let (reservation, refunding) = booker
            .retry(|| async {
                let mut tx = booker.begin().await?;
                let reservation = booker.lock_reservation(&mut tx, reservation_id).await?;
                let paid = reservation.status == Status::Paid;
                let (reservation, _) = booker
                    .apply_event(&mut tx, reservation, Event::Cancel, now_ms())
                    .await?;
                let refunding = paid
                    && self
                        .move_step(
                            &mut tx,
                            reservation_id,
                            Step::Confirmed,
                            Step::Refunding,
                            None,
                            "",
                        )
                        .await?;
                tx.commit().await.map_err(|err| booker.failure(&err))?;
                Ok((reservation, refunding))
            })
            .await?;
        if refunding
            || self
                .row(reservation_id)
                .await?
                .is_some_and(|row| row.step == "refunding")
        {
            return Ok(self.drive(reservation_id).await?.0);
        }
        Ok(reservation)
    }

    /// Drives every open saga last touched at or before `older_than_ms` on
    /// (at most `limit`); returns how many it finished. Errors are logged and
    /// left for the next sweep.
    pub async fn recover(&self, older_than_ms: i64, limit: i64) -> Result<usize, BookError> {
        let rows = sqlx::query(
            "SELECT reservation_id FROM payment_saga WHERE step IN ($1, $2, $3) \
             AND updated_ms <= $4 ORDER BY updated_ms LIMIT $5",
        )
        .bind(Step::Charging.as_str())
        .bind(Step::Compensating.as_str())
        .bind(Step::Refunding.as_str())
        .bind(older_than_ms)
        .bind(limit)
        .fetch_all(self.booker.store().pool())
        .await
        .map_err(|err| db_error(&err))?;
        let mut finished = 0;
        for row in rows {
            let id: String = row
                .try_get("reservation_id")
                .map_err(|err| db_error(&err))?;
            match self.drive(&id).await {
                Ok(_) => finished += 1,
                Err(err) => tracing::warn!("payment saga of `{id}` not finished yet: {err}"),
            }
        }
        Ok(finished)
    }
}

const SAGA_SQL: &str = "SELECT reservation_id, step, amount_cents, attempts, charge_id, error \
     FROM payment_saga WHERE reservation_id = $1";

fn saga_from_row(row: &sqlx::any::AnyRow) -> Result<SagaRow, sqlx::Error> {
    Ok(SagaRow {
        reservation_id: row.try_get("reservation_id")?,
        step: row.try_get("step")?,
        amount_cents: row.try_get("amount_cents")?,
        attempts: row.try_get("attempts")?,
        charge_id: row.try_get("charge_id")?,
        error: row.try_get("error")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_and_only_three_are_open() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
            let open = next_action(step, 0, 3) != Action::Done;
            assert_eq!(
                open,
                matches!(step, Step::Charging | Step::Compensating | Step::Refunding),
                "{step:?}"
            );
        }
    }

    #[test]
    fn charging_gives_up_at_the_bound() {
        assert_eq!(next_action(Step::Charging, 2, 3), Action::Charge);
        assert_eq!(next_action(Step::Charging, 3, 3), Action::GiveUp);
        assert_eq!(next_action(Step::Compensating, 9, 3), Action::Void);
    }

    #[test]
    fn a_charge_confirms_only_a_pending_reservation() {
        let charged = ChargeOutcome::Charged("ch_1".into());
        assert_eq!(
            after_charge(&charged, Status::Pending),
            Some(Step::Confirmed)
        );
        assert_eq!(
            after_charge(&charged, Status::Canceled),
            Some(Step::Compensating)
        );
        let declined = ChargeOutcome::Declined("card declined".into());
        assert_eq!(
            after_charge(&declined, Status::Pending),
            Some(Step::Compensating)
        );
        let unknown = ChargeOutcome::Unknown("timeout".into());
        assert_eq!(after_charge(&unknown, Status::Pending), None);
    }
}
