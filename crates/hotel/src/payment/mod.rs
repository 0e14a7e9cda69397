//! The payment provider, seen from the hotel: an HTTP API that charges a
//! card once per idempotency key and can void (refund) what a key charged.
//!
//! **Why idempotency keys.** A charge request can time out after the
//! provider took the money; retrying it must not take the money twice. The
//! saga ([`crate::saga`]) uses the reservation id as the key, so every retry,
//! and every recovery after a crash, asks about the same one charge. Voiding
//! a key is idempotent too, and a voided key refuses later charges, so a
//! charge request still in flight when the saga gives up cannot land after
//! the compensation.
//!
//! The protocol (the fake in [`fake`] implements it; a real provider's
//! adapter would translate to it):
//! - `POST /v1/charges` `{"idempotency_key", "amount_cents"}` → `201
//!   {"charge_id", "status": "succeeded"}` (a repeat of the key: the same
//!   charge, `200`), or `402 {"error"}` declined, or `409` when the key was
//!   voided.
//! - `POST /v1/charges/{key}/void` → `200 {"status": "voided"}` (whether or
//!   not the key was ever charged).
//! - `GET /v1/charges/{key}` → the charge, or 404.

pub mod fake;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a charge request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money is taken; the provider's charge id.
    Charged(String),
    /// Definitely not taken (card declined, key voided).
    Declined(String),
    /// Unknown: timeout, connection refused, a 5xx. Retry with the same key.
    Unknown(String),
}

/// A charge as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The provider's id.
    pub charge_id: String,
    /// The idempotency key (our reservation id).
    pub idempotency_key: String,
    /// Amount charged, in cents.
    pub amount_cents: i64,
    /// `succeeded` or `voided`.
    pub status: String,
}

/// The HTTP client of the provider.
#[derive(Clone)]
pub struct PaymentClient {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl PaymentClient {
    /// A client of the provider at `base` (`http://host:port`), giving up on
    /// a request after `timeout_ms`.
    pub fn new(base: &str, timeout_ms: u64) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout_ms))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// The provider's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Charges `amount_cents` under `key` (at most once per key).
    pub async fn charge(&self, key: &str, amount_cents: i64) -> ChargeOutcome {
        let sent = self
            .http
            .post(format!("{}/v1/charges", self.base))
            .json(&serde_json::json!({"idempotency_key": key, "amount_cents": amount_cents}))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return ChargeOutcome::Unknown(format!("payment provider: {err}")),
        };
        let status = response.status();
        if status.is_success() {
            return match response.json::<Charge>().await {
                Ok(charge) if charge.status == "succeeded" => {
                    ChargeOutcome::Charged(charge.charge_id)
                }
                Ok(charge) => ChargeOutcome::Declined(format!("charge is {}", charge.status)),
                Err(err) => ChargeOutcome::Unknown(format!("payment provider answer: {err}")),
            };
        }
        let message = response
            .json::<ErrorBody>()
            .await
            .map(|body| body.error)
            .unwrap_or_else(|_| status.to_string());
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            ChargeOutcome::Declined(message)
        } else {
            ChargeOutcome::Unknown(format!("payment provider: {message}"))
        }
    }

    /// Voids whatever `key` charged (a refund) and bars later charges under
    /// it. `Err` means the outcome is unknown: retry.
    pub async fn void(&self, key: &str) -> Result<(), String> {
        let response = self
            .http
            .post(format!("{}/v1/charges/{key}/void", self.base))
            .send()
            .await
            .map_err(|err| format!("payment provider: {err}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "payment provider: void answered {}",
                response.status()
            ))
        }
    }
}
