//! The HTML of the alert pages (see [`crate::alerts`]): the same layout and
//! style sheet as the other pages, every dynamic string escaped.

use std::collections::BTreeMap;

use service::html::escape;

use crate::alerts::{Alert, Event, Silence};
use crate::page::layout;

fn labels(labels: &BTreeMap<String, String>) -> String {
    let text: Vec<String> = labels
        .iter()
        .filter(|(name, _)| *name != "alertname")
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect();
    format!("<code>{}</code>", escape(&text.join(", ")))
}

fn nav() -> &'static str {
    "<p><a href=\"/\">&larr; all systems</a> &middot; <a href=\"/alerts\">alerts and silences</a> \
     &middot; <a href=\"/alerts/history\">history</a></p>"
}

/// Where the token goes in every form (role `silencer` or `admin`).
const TOKEN_FIELD: &str =
    "<input name=\"token\" type=\"password\" size=\"18\" placeholder=\"token (if required)\">";

fn alert_rows(alerts: &[Alert]) -> String {
    let mut rows = String::new();
    for alert in alerts {
        let state = if !alert.status.silenced_by.is_empty() {
            "<span class=\"starting\">silenced</span>"
        } else if !alert.status.inhibited_by.is_empty() {
            "<span class=\"starting\">inhibited</span>"
        } else {
            "<span class=\"down\">firing</span>"
        };
        let summary = alert
            .annotations
            .get("summary")
            .or_else(|| alert.annotations.get("description"))
            .map(String::as_str)
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td><strong>{name}</strong></td><td>{state}</td><td>{labels}</td>\
             <td>{summary}</td><td><small>{since}</small></td></tr>",
            name = escape(alert.labels.get("alertname").map_or("", String::as_str)),
            labels = labels(&alert.labels),
            summary = escape(summary),
            since = escape(&alert.starts_at),
        ));
    }
    rows
}

fn silence_rows(silences: &[Silence]) -> String {
    let mut rows = String::new();
    for silence in silences {
        let matchers: Vec<String> = silence.matchers.iter().map(ToString::to_string).collect();
        let expire = if silence.status.state == "expired" {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"/alerts/silences/{id}/expire\">{TOKEN_FIELD} \
                 <button>Expire</button></form>",
                id = escape(&silence.id)
            )
        };
        rows.push_str(&format!(
            "<tr><td><code>{matchers}</code><br><small>{id}</small></td><td>{state}</td>\
             <td><small>{ends}</small></td><td>{author}: {comment}</td><td>{expire}</td></tr>",
            matchers = escape(&matchers.join(", ")),
            id = escape(&silence.id),
            state = escape(&silence.status.state),
            ends = escape(&silence.ends_at),
            author = escape(&silence.created_by),
            comment = escape(&silence.comment),
        ));
    }
    rows
}

/// `/alerts`: firing alerts, silences, and the form for a new silence; or
/// why the alert manager could not be read.
pub fn alerts(view: &Result<(Vec<Alert>, Vec<Silence>), String>) -> String {
    let content = match view {
        Err(err) => format!("<p class=\"down\">{}</p>", escape(err)),
        Ok((alerts, silences)) => {
            let active = silences
                .iter()
                .filter(|s| s.status.state != "expired")
                .count();
            format!(
                "<h2>Firing ({firing})</h2><table><thead><tr><th>Alert</th><th>State</th>\
                 <th>Labels</th><th>Summary</th><th>Since</th></tr></thead><tbody>{alert_rows}</tbody></table>\
                 <h2>Silences ({active} not expired)</h2><table><thead><tr><th>Matchers</th><th>State</th>\
                 <th>Ends</th><th>Why</th><th></th></tr></thead><tbody>{silence_rows}</tbody></table>\
                 <h2>New silence</h2><form method=\"post\" action=\"/alerts/silences\">\
                 <input name=\"matchers\" size=\"50\" placeholder=\"alertname=HyperscaleSystemDown, system=kv\"> \
                 for <input name=\"minutes\" size=\"5\" value=\"60\"> min \
                 <input name=\"author\" size=\"10\" placeholder=\"who\"> \
                 <input name=\"comment\" size=\"24\" placeholder=\"why\"> {TOKEN_FIELD} \
                 <button>Silence</button></form>",
                firing = alerts.len(),
                alert_rows = alert_rows(alerts),
                silence_rows = silence_rows(silences),
            )
        }
    };
    let body = format!(
        "{nav}<h1>Alerts</h1><p class=\"sub\">From the alert manager's API (Alertmanager v2). \
         Changing silences needs a token with role <code>silencer</code> or <code>admin</code> when \
         the alert manager requires one. This page refreshes every 10 s.</p>{content}",
        nav = nav()
    );
    layout("Alerts - Hyperscale", 10, &body)
}

/// `/alerts/history`: events, newest first.
pub fn history(view: &Result<Vec<Event>, String>) -> String {
    let content = match view {
        Err(err) => format!("<p class=\"down\">{}</p>", escape(err)),
        Ok(events) => {
            let mut rows = String::new();
            for event in events {
                let when = time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(event.t_ms) * 1_000_000,
                )
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| event.t_ms.to_string());
                let to = if event.receiver.is_empty() {
                    String::new()
                } else {
                    format!("{} (attempt {})", event.receiver, event.attempt)
                };
                rows.push_str(&format!(
                    "<tr><td><small>{when}</small></td><td>{kind}</td><td><strong>{name}</strong> {labels}</td>\
                     <td>{what}</td><td>{to}</td></tr>",
                    when = escape(&when),
                    kind = escape(&event.kind),
                    name = escape(event.labels.get("alertname").map_or("", String::as_str)),
                    labels = labels(&event.labels),
                    what = escape(&event.what),
                    to = escape(&to),
                ));
            }
            format!(
                "<table><thead><tr><th>When</th><th>Kind</th><th>Subject</th><th>What</th>\
                 <th>Receiver</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        }
    };
    let body = format!(
        "{nav}<h1>Alert history</h1><p class=\"sub\">Every alert state change, notification \
         attempt and silence change the alert manager journaled, newest first. This page \
         refreshes every 10 s.</p>{content}",
        nav = nav()
    );
    layout("Alert history - Hyperscale", 10, &body)
}

/// A form that did not go through: the alert manager's reason.
pub fn failed(err: &str) -> String {
    let body = format!(
        "{nav}<h1>Not done</h1><p class=\"down\">{}</p>",
        escape(err),
        nav = nav()
    );
    layout("Not done - Hyperscale", 600, &body)
}
