//! Delivery of notifications: Alertmanager's webhook JSON over HTTP and
//! email over SMTP, each attempt bounded by a timeout, retried with
//! exponential backoff (at-least-once; the receiver dedups by `groupKey`).
//!
//! Why a module: the notes require that every alert is delivered at least
//! once despite failing receivers; how one attempt is made is separate
//! from the queues and retries that [`super::server`] runs.
//!
//! The SMTP client is hand-written (EHLO, MAIL, RCPT, DATA with
//! dot-stuffing, QUIT; plain TCP to a relay on a trusted network, as a
//! local relay or our mail system is): it is forty lines, where `lettre`
//! would add a large dependency tree to every build of the workspace.

use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::config::Integration;
use super::state::{AmAlert, Notification, fingerprint};
use crate::http::rfc3339;

/// Retries of one notification.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// First backoff.
    pub initial_backoff_ms: u64,
    /// Longest backoff.
    pub max_backoff_ms: u64,
    /// Attempts before giving up (the next flush sends it again).
    pub max_attempts: u32,
    /// Timeout of one attempt.
    pub timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            max_attempts: 10,
            timeout_ms: 10_000,
        }
    }
}

impl RetryPolicy {
    /// Backoff before attempt `n + 1` (n from 1), doubling, capped.
    pub fn backoff_ms(&self, n: u32) -> u64 {
        self.initial_backoff_ms
            .saturating_mul(1u64 << n.saturating_sub(1).min(30))
            .min(self.max_backoff_ms)
    }
}

fn alert_json(a: &AmAlert, now_ms: i64) -> Json {
    let resolved = a.resolved(now_ms);
    json!({
        "status": if resolved { "resolved" } else { "firing" },
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(Some(a.starts_at_ms)),
        "endsAt": if resolved { rfc3339(Some(a.ends_at_ms)) } else { rfc3339(None) },
        "generatorURL": a.generator_url,
        "fingerprint": format!("{:016x}", fingerprint(&a.labels)),
    })
}

fn common(
    alerts: &[AmAlert],
    pick: impl Fn(&AmAlert) -> &crate::rules::LabelSet,
) -> crate::rules::LabelSet {
    let mut it = alerts.iter();
    let Some(first) = it.next() else {
        return Default::default();
    };
    let mut c = pick(first).clone();
    for a in it {
        c.retain(|k, v| pick(a).get(k) == Some(v));
    }
    c
}

/// Alertmanager's webhook payload (version 4).
pub fn webhook_body(n: &Notification, external_url: &str, max_alerts: usize) -> Json {
    let firing = n.alerts.iter().any(|a| !a.resolved(n.at_ms));
    let shown = if max_alerts > 0 {
        &n.alerts[..n.alerts.len().min(max_alerts)]
    } else {
        &n.alerts[..]
    };
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.alerts.len() - shown.len(),
        "status": if firing { "firing" } else { "resolved" },
        "receiver": n.receiver,
        "groupLabels": n.group_labels,
        "commonLabels": common(&n.alerts, |a| &a.labels),
        "commonAnnotations": common(&n.alerts, |a| &a.annotations),
        "externalURL": external_url,
        "alerts": shown.iter().map(|a| alert_json(a, n.at_ms)).collect::<Vec<_>>(),
    })
}

/// One delivery attempt.
pub async fn attempt(
    client: &reqwest::Client,
    n: &Notification,
    external_url: &str,
    timeout_ms: u64,
) -> Result<(), String> {
    let timeout = Duration::from_millis(timeout_ms);
    match &n.integration {
        Integration::Webhook {
            url, max_alerts, ..
        } => {
            let body = webhook_body(n, external_url, *max_alerts);
            let resp = client
                .post(url)
                .timeout(timeout)
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("webhook: {e}"))?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(format!("webhook answered {}", resp.status()))
            }
        }
        Integration::Email {
            to,
            from,
            smarthost,
            ..
        } => tokio::time::timeout(
            timeout,
            smtp_send(smarthost, from, to, &email_text(n, from, to)),
        )
        .await
        .map_err(|_| "smtp: timed out".to_string())?,
    }
}

fn email_text(n: &Notification, from: &str, to: &str) -> String {
    let firing = n.alerts.iter().filter(|a| !a.resolved(n.at_ms)).count();
    let status = if firing > 0 {
        format!("FIRING:{firing}")
    } else {
        "RESOLVED".into()
    };
    let names: Vec<String> = n.group_labels.values().cloned().collect();
    let mut body = String::new();
    for a in &n.alerts {
        let state = if a.resolved(n.at_ms) {
            "resolved"
        } else {
            "firing"
        };
        body.push_str(&format!(
            "[{state}] {}\r\n",
            serde_json::to_string(&a.labels).unwrap_or_default()
        ));
        for (k, v) in &a.annotations {
            body.push_str(&format!("  {k}: {v}\r\n"));
        }
    }
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: [{status}] {}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Group-Key: {}\r\n\r\n{body}",
        names.join(" "),
        n.group_key.replace(['\r', '\n'], " ")
    )
}

async fn smtp_send(smarthost: &str, from: &str, to: &str, msg: &str) -> Result<(), String> {
    let e = |what: &str, err: &dyn std::fmt::Display| format!("smtp {what}: {err}");
    let stream = tokio::net::TcpStream::connect(smarthost)
        .await
        .map_err(|x| e("connect", &x))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    async fn reply(
        r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        want: char,
    ) -> Result<(), String> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)
                .await
                .map_err(|x| format!("smtp read: {x}"))?
                == 0
            {
                return Err("smtp: connection closed".into());
            }
            if line.len() > 4096 {
                return Err("smtp: reply line too long".into());
            }
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            return if line.starts_with(want) {
                Ok(())
            } else {
                Err(format!("smtp: {}", line.trim_end()))
            };
        }
    }
    reply(&mut r, '2').await?;
    let mut cmds = vec![
        ("EHLO hyperscale\r\n".to_string(), '2'),
        (format!("MAIL FROM:<{from}>\r\n"), '2'),
    ];
    for rcpt in to.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        cmds.push((format!("RCPT TO:<{rcpt}>\r\n"), '2'));
    }
    cmds.push(("DATA\r\n".into(), '3'));
    for (cmd, want) in cmds {
        if cmd.contains(['\n', '\r']) && cmd.matches("\r\n").count() != 1 {
            return Err("smtp: address contains a line break".into());
        }
        w.write_all(cmd.as_bytes())
            .await
            .map_err(|x| e("write", &x))?;
        reply(&mut r, want).await?;
    }
    let mut data = String::new();
    for line in msg.split("\r\n") {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    w.write_all(data.as_bytes())
        .await
        .map_err(|x| e("write", &x))?;
    reply(&mut r, '2').await?;
    let _ = w.write_all(b"QUIT\r\n").await;
    Ok(())
}
