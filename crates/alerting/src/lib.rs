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
//! # Alert manager ([`am`])
//!
//! The notes' alert system: "filter, merge and de-duplicate", access
//! control, and retries until every notification is delivered at least
//! once. It speaks Alertmanager's API v2 (so `amtool` and Prometheus work
//! against it, `tests/it/am.rs` drives `amtool`) and reads Alertmanager's
//! configuration format. Decisions are pure ([`am::state`]): alerts merge
//! by fingerprint, a routing tree puts them into groups (`group_by`), a
//! group flushes after `group_wait` and then every `group_interval`, and
//! the notification log re-sends an unchanged group only after
//! `repeat_interval`; silences and inhibition rules mute. Delivery
//! ([`am::server`], [`am::notify`]) runs one bounded queue per receiver
//! integration, retries with exponential backoff, and a notification given
//! up on is sent again at the next flush (at-least-once; receivers dedup
//! by `groupKey`). Silences and the history of every alert change and
//! delivery attempt are fsynced to a journal ([`am::journal`]) and survive
//! restarts; the history is at `/api/v1/history` and `hyperscale alerts
//! history`. Changing silences needs a token with role `silencer` or
//! `admin` when tokens are configured; reads are open.
//!
//! Differences from Alertmanager: no clustering (one instance), no
//! notification templates (a fixed, complete format), a resolution that an
//! integration does not notify (`send_resolved: false`) does not reset the
//! notification log (so a flapping alert is not re-sent inside
//! `repeat_interval`).
//!
//! # Collection pipeline ([`pipeline`])
//!
//! Collectors publish to the `metrics` topic through `mqclient` (keyed by
//! metric name, or by a chosen label set; important metrics to
//! `metrics.priority`), and ingesters commit offsets only once the samples
//! are durable in tsdb. Replays after a crash are idempotent because tsdb
//! ignores identical samples, so the stored series has no gap and no
//! duplicate (`tests/it/pipeline.rs`: an ingester stopped under load, and
//! one killed with SIGKILL mid-batch).
//!
//! # What comes next
//!
//! Console pages (firing alerts, silences, history), benchmarks of rule
//! evaluation against Prometheus and of the pipeline, reloading the
//! configuration, the notification system as a receiver.
#![warn(missing_docs)]

pub mod am;
pub mod format;
pub mod http;
pub mod pipeline;
pub mod rules;
pub mod template;
