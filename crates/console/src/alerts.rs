//! The console's alert pages: firing alerts and silences (`/alerts`, with
//! forms to create and expire silences) and the alert history
//! (`/alerts/history`: every state change and every notification attempt).
//!
//! The console is a client of the alert manager's HTTP API (Alertmanager's
//! API v2, and `/api/v1/history`) like `amtool` and `hyperscale alerts`,
//! not a second owner of its state: what the page shows is what any client
//! sees, and changes go through the same access control. A form carries the
//! token (role `silencer` or `admin`), sent as `Authorization: Bearer`; the
//! console keeps none.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::Console;
use crate::alerts_page;
pub use alerting::am::journal::Event;
pub use alerting::am::matcher::Matcher;

/// How long the pages wait for the alert manager.
const TIMEOUT: Duration = Duration::from_secs(5);
/// History events the page shows (newest).
const HISTORY_LIMIT: usize = 200;
/// Longest silence the form creates (30 days), in minutes.
const SILENCE_MINUTES_MAX: u64 = 30 * 24 * 60;

/// An alert as `/api/v2/alerts` lists it.
#[derive(Debug, Deserialize)]
pub struct Alert {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started firing (RFC 3339).
    #[serde(rename = "startsAt", default)]
    pub starts_at: String,
    /// `{"state": "active" | "suppressed", "silencedBy": [...]}`.
    pub status: AlertStatus,
}

/// An alert's status.
#[derive(Debug, Deserialize)]
pub struct AlertStatus {
    /// `active` or `suppressed`.
    pub state: String,
    /// Ids of the silences muting it.
    #[serde(rename = "silencedBy", default)]
    pub silenced_by: Vec<String>,
    /// Fingerprints of the alerts inhibiting it.
    #[serde(rename = "inhibitedBy", default)]
    pub inhibited_by: Vec<String>,
}

/// A silence as `/api/v2/silences` lists it.
#[derive(Debug, Deserialize)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// Its matchers.
    pub matchers: Vec<Matcher>,
    /// `{"state": "active" | "pending" | "expired"}`.
    pub status: SilenceStatus,
    /// End (RFC 3339).
    #[serde(rename = "endsAt", default)]
    pub ends_at: String,
    /// Who created it.
    #[serde(rename = "createdBy", default)]
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// A silence's state.
#[derive(Debug, Deserialize)]
pub struct SilenceStatus {
    /// `active`, `pending` or `expired`.
    pub state: String,
}

#[derive(Deserialize)]
struct History {
    events: Vec<Event>,
}

/// The client of one alert manager.
struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn of(console: &Console) -> Result<Self, String> {
        let base = console
            .alertmanager
            .as_deref()
            .ok_or("no alert manager runs in this process")?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|err| format!("cannot build an HTTP client: {err}"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
        let response = request
            .send()
            .await
            .map_err(|err| format!("the alert manager at {} did not answer: {err}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(format!(
            "the alert manager refused ({status}): {}",
            text.trim().trim_matches('"')
        ))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url))
            .await?
            .json()
            .await
            .map_err(|err| format!("the alert manager sent an unreadable reply: {err}"))
    }
}

/// `GET /alerts`: firing alerts (silenced and inhibited ones marked) and
/// every silence, with the forms.
pub async fn page(State(console): State<Console>) -> Html<String> {
    let view = async {
        let client = Client::of(&console)?;
        let alerts: Vec<Alert> = client
            .get("/api/v2/alerts?silenced=true&inhibited=true")
            .await?;
        let silences: Vec<Silence> = client.get("/api/v2/silences").await?;
        Ok::<_, String>((alerts, silences))
    };
    Html(alerts_page::alerts(&view.await))
}

/// `GET /alerts/history`: the newest events, newest first.
pub async fn history(State(console): State<Console>) -> Html<String> {
    let view = async {
        let client = Client::of(&console)?;
        let path = format!("/api/v1/history?limit={HISTORY_LIMIT}");
        let mut history: History = client.get(&path).await?;
        history.events.reverse();
        Ok::<_, String>(history.events)
    };
    Html(alerts_page::history(&view.await))
}

/// The silence form: matchers (`alertname=Down, job=~"kv.*"`), minutes,
/// author, comment, and the token.
#[derive(Deserialize)]
pub struct NewSilence {
    matchers: String,
    minutes: u64,
    #[serde(default)]
    author: String,
    comment: String,
    #[serde(default)]
    token: String,
}

/// The expire form: the token.
#[derive(Deserialize)]
pub struct Expire {
    #[serde(default)]
    token: String,
}

/// `POST /alerts/silences`: creates a silence, then back to `/alerts`.
pub async fn create_silence(
    State(console): State<Console>,
    Form(form): Form<NewSilence>,
) -> Response {
    let done = async {
        let matchers = parse_matchers(&form.matchers)?;
        if form.minutes == 0 || form.minutes > SILENCE_MINUTES_MAX {
            return Err(format!(
                "a silence lasts 1 to {SILENCE_MINUTES_MAX} minutes"
            ));
        }
        let client = Client::of(&console)?;
        let now = time::OffsetDateTime::now_utc();
        let ends = rfc3339(now, Duration::from_secs(form.minutes * 60))?;
        let author = if form.author.trim().is_empty() {
            "console"
        } else {
            form.author.trim()
        };
        let body = serde_json::json!({
            "matchers": matchers,
            "startsAt": rfc3339(now, Duration::ZERO)?,
            "endsAt": ends,
            "createdBy": author,
            "comment": form.comment,
        });
        let url = format!("{}/api/v2/silences", client.base);
        let request = with_token(client.http.post(url).json(&body), &form.token);
        client.send(request).await.map(drop)
    };
    back_or_error(done.await)
}

/// `POST /alerts/silences/{id}/expire`: expires a silence, then back to
/// `/alerts`.
pub async fn expire_silence(
    State(console): State<Console>,
    Path(id): Path<String>,
    Form(form): Form<Expire>,
) -> Response {
    let done = async {
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("not a silence id".to_string());
        }
        let client = Client::of(&console)?;
        let url = format!("{}/api/v2/silence/{id}", client.base);
        let request = with_token(client.http.delete(url), &form.token);
        client.send(request).await.map(drop)
    };
    back_or_error(done.await)
}

fn with_token(request: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
    let token = token.trim();
    if token.is_empty() {
        request
    } else {
        request.bearer_auth(token)
    }
}

/// 303 to `/alerts` when done; the page with the error (400) otherwise.
fn back_or_error(done: Result<(), String>) -> Response {
    match done {
        Ok(()) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/alerts")]).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, Html(alerts_page::failed(&err))).into_response(),
    }
}

/// Matchers as the form takes them: `alertname=Down, job=~"kv.*"` (the
/// alert manager's own parser: `=`, `!=`, `=~`, `!~`).
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    let matchers = alerting::am::matcher::parse_list(text)?;
    if matchers.is_empty() {
        return Err(
            "a silence needs at least one matcher, such as alertname=HyperscaleSystemDown".into(),
        );
    }
    Ok(matchers)
}

/// Unix time `now + after` as RFC 3339 (UTC), as the API takes it.
fn rfc3339(now: time::OffsetDateTime, after: Duration) -> Result<String, String> {
    (now + after)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|err| format!("cannot write the time: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_parse_every_operator_and_refuse_junk() {
        let m = parse_matchers(r#"alertname=Down, job=~"kv.*",env!=dev, x!~y"#).unwrap();
        let shown: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"alertname="Down""#,
                r#"job=~"kv.*""#,
                r#"env!="dev""#,
                r#"x!~"y""#
            ]
        );
        assert!(parse_matchers("").is_err());
        assert!(parse_matchers("novalue").is_err());
        assert!(parse_matchers("x=~(").is_err());
    }

    #[test]
    fn times_are_rfc3339() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let later = rfc3339(t, Duration::from_secs(60)).unwrap();
        assert_eq!(later, "2023-11-14T22:14:20Z");
    }
}
