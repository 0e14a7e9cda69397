//! A fake payment provider speaking the protocol of [`super`], for `hyperscale
//! up`, tests and demos: `hyperscale hotel fake-payments`, or in process.
//!
//! It keeps its charges in memory and can be told (`PUT /control` with a
//! [`Behaviour`], or [`FakeProvider::set`]) to decline charges, or to hang
//! before or after taking the money — the two timeouts a saga must survive:
//! "nothing happened" and "the money is taken but the answer is lost" — or to
//! hang while voiding.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Charge;

/// How the fake answers; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// Decline every new charge (402, card declined).
    pub decline: bool,
    /// Sleep this long before taking the money.
    pub hang_before_ms: u64,
    /// Take the money, then sleep this long before answering.
    pub hang_after_ms: u64,
    /// Sleep this long before voiding.
    pub void_hang_ms: u64,
}

/// Longest hang the control accepts (10 minutes).
const HANG_MS_MAX: u64 = 600_000;
/// Longest idempotency key.
const KEY_CHARS_MAX: usize = 200;
/// Most charges kept (a fake: past this, new keys are refused).
const CHARGES_MAX: usize = 1_000_000;

#[derive(Default)]
struct State_ {
    behaviour: Behaviour,
    /// By idempotency key.
    charges: BTreeMap<String, Charge>,
}

/// The fake provider: cheap to clone, shared by its routes.
#[derive(Clone, Default)]
pub struct FakeProvider {
    state: Arc<Mutex<State_>>,
    charge_requests: Arc<AtomicU64>,
    void_requests: Arc<AtomicU64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargeInput {
    idempotency_key: String,
    amount_cents: i64,
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

impl FakeProvider {
    /// A provider with no charges that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State_> {
        // A panic while holding the lock cannot leave the map half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes how it answers from now on.
    pub fn set(&self, behaviour: Behaviour) {
        self.lock().behaviour = behaviour;
    }

    /// Every charge, by key.
    pub fn charges(&self) -> BTreeMap<String, Charge> {
        self.lock().charges.clone()
    }

    /// Charge requests received so far (repeats included).
    pub fn charge_requests(&self) -> u64 {
        self.charge_requests.load(Ordering::SeqCst)
    }

    /// Void requests received so far.
    pub fn void_requests(&self) -> u64 {
        self.void_requests.load(Ordering::SeqCst)
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/charges", post(charge).get(list))
            .route("/v1/charges/{key}", get(show))
            .route("/v1/charges/{key}/void", post(void))
            .route("/control", put(control).get(show_control))
            .with_state(self.clone())
    }

    /// Takes the money for `key` once; later calls return the same charge.
    fn take(
        &self,
        key: &str,
        amount_cents: i64,
    ) -> Result<(Charge, bool), (StatusCode, &'static str)> {
        let mut state = self.lock();
        let count = state.charges.len();
        if let Some(charge) = state.charges.get(key) {
            if charge.status == "voided" {
                return Err((StatusCode::CONFLICT, "this key was voided"));
            }
            if charge.amount_cents != amount_cents {
                return Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "this key was charged a different amount",
                ));
            }
            return Ok((charge.clone(), false));
        }
        if state.behaviour.decline {
            return Err((StatusCode::PAYMENT_REQUIRED, "card declined"));
        }
        if count >= CHARGES_MAX {
            return Err((StatusCode::INSUFFICIENT_STORAGE, "the fake is full"));
        }
        let charge = Charge {
            charge_id: format!("ch_{}", count + 1),
            idempotency_key: key.to_string(),
            amount_cents,
            status: "succeeded".into(),
        };
        state.charges.insert(key.to_string(), charge.clone());
        Ok((charge, true))
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= KEY_CHARS_MAX
}

async fn charge(State(fake): State<FakeProvider>, body: axum::body::Bytes) -> Response {
    fake.charge_requests.fetch_add(1, Ordering::SeqCst);
    let input: ChargeInput = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("bad JSON body: {err}")),
    };
    if !valid_key(&input.idempotency_key) {
        return error(
            StatusCode::BAD_REQUEST,
            "idempotency_key must be 1..=200 bytes",
        );
    }
    if !(0..=1_000_000_000_000).contains(&input.amount_cents) {
        return error(StatusCode::BAD_REQUEST, "amount_cents must be 0..=10^12");
    }
    let behaviour = fake.lock().behaviour.clone();
    sleep_ms(behaviour.hang_before_ms).await;
    let taken = fake.take(&input.idempotency_key, input.amount_cents);
    sleep_ms(behaviour.hang_after_ms).await;
    match taken {
        Ok((charge, true)) => (StatusCode::CREATED, Json(charge)).into_response(),
        Ok((charge, false)) => Json(charge).into_response(),
        Err((status, message)) => error(status, message),
    }
}

async fn void(State(fake): State<FakeProvider>, Path(key): Path<String>) -> Response {
    fake.void_requests.fetch_add(1, Ordering::SeqCst);
    if !valid_key(&key) {
        return error(StatusCode::BAD_REQUEST, "key must be 1..=200 bytes");
    }
    let hang_ms = fake.lock().behaviour.void_hang_ms;
    sleep_ms(hang_ms).await;
    let mut state = fake.lock();
    let count = state.charges.len();
    let charge = state.charges.entry(key.clone()).or_insert_with(|| Charge {
        // A tombstone: the key can never be charged now.
        charge_id: format!("void_{}", count + 1),
        idempotency_key: key,
        amount_cents: 0,
        status: "voided".into(),
    });
    charge.status = "voided".into();
    Json(charge.clone()).into_response()
}

async fn show(State(fake): State<FakeProvider>, Path(key): Path<String>) -> Response {
    match fake.lock().charges.get(&key) {
        Some(charge) => Json(charge.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "no charge under this key"),
    }
}

async fn list(State(fake): State<FakeProvider>) -> Response {
    let charges: Vec<Charge> = fake.lock().charges.values().cloned().collect();
    Json(charges).into_response()
}

async fn control(State(fake): State<FakeProvider>, body: axum::body::Bytes) -> Response {
    let behaviour: Behaviour = match serde_json::from_slice(&body) {
        Ok(behaviour) => behaviour,
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("bad JSON body: {err}")),
    };
    let hangs = [
        behaviour.hang_before_ms,
        behaviour.hang_after_ms,
        behaviour.void_hang_ms,
    ];
    if hangs.iter().any(|ms| *ms > HANG_MS_MAX) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("hangs are at most {HANG_MS_MAX} ms"),
        );
    }
    fake.set(behaviour.clone());
    Json(behaviour).into_response()
}

async fn show_control(State(fake): State<FakeProvider>) -> Response {
    Json(fake.lock().behaviour.clone()).into_response()
}

async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}
