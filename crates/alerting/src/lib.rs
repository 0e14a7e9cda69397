//! Alerting, the second half of the chapter "Metrics monitoring and
//! alerting system" (지표 모니터링 및 경보 시스템, *System Design Interview*
//! vol. 2): the alert system reads the time-series database, detects what
//! is wrong and notifies people.
//!
//! ```text
//!  rule files ──▶ rules::file (check, line:col errors)
//!                      │
//!                      ▼
//!  rules::manager ── every interval ──▶ rules::group ──PromQL──▶ tsdb::Db
//!      │                                 │  recording rules ──append──▶ tsdb::Db
//!      │                                 │  alerting rules ──▶ rules::alert (inactive/pending/firing/resolved)
//!      ▼                                 ▼
//!  http: /api/v1/rules, /api/v1/alerts   template (labels, annotations)
//! ```
//!
//! # Rules ([`rules`])
//!
//! Prometheus's rule-file format, so the same file passes `promtool check
//! rules` and loads here (`tests/it/promtool.rs` runs both on the same
//! files, good and bad). Each group is evaluated on its interval, rules in
//! order; the PromQL engine is tsdb's, called in process. An alerting
//! rule's alerts move through the states of [`rules::alert::step`], a pure
//! function: pending when the expression first returns a label set, firing
//! once it has been returned for `for`, held by `keep_firing_for` after it
//! stops, resolved (and kept 15 minutes) after that. `ALERTS` series are
//! written as Prometheus writes them.
//!
//! # Templates ([`template`])
//!
//! The Go-template subset rule files use, hand-written because no Rust
//! crate implements Go's template semantics; unsupported constructs are
//! refused when the file loads, never at evaluation.
//!
//! # What comes next
//!
//! The alert manager (Alertmanager API v2: routing, grouping, dedup,
//! inhibition, silences, retried delivery, history, access control) and
//! the queue-backed collection pipeline of issue 15.
#![warn(missing_docs)]

pub mod am;
pub mod format;
pub mod http;
pub mod pipeline;
pub mod rules;
pub mod template;
