//! A time-series database, the storage layer of the chapter "Metrics
//! monitoring and alerting system" (지표 모니터링 및 경보 시스템, *System Design
//! Interview* vol. 2). The chapter asks for a store that takes a constant
//! stream of writes, finds series by label fast, answers dashboard queries
//! with low latency and keeps a year of data affordably; it points at
//! InfluxDB and Prometheus, which "both use a memory cache plus disk storage".
//! This crate hand-writes that engine, because it is what the chapter designs;
//! the query language, the HTTP API and collection come on top of it.
//!
//! ```text
//!  append(batch) ──▶ limits, labels ──▶ head (memory)  ──────── cut every block_range ──▶ blocks/ (immutable)
//!                                        │  Gorilla chunks        (1.5 ranges behind,       [2h][2h][6h][24h]...
//!                                        │  + out-of-order map     past the OOO window)     chunks + index + meta
//!                                        ▼                                                      │ compaction
//!                                      wal/ ─ group commit, one fsync per round                 │ downsampling 1m, 1h
//!                                        │  checkpoint after each cut                           │ retention 7d/30d/1y
//!  Ticket (wait or .await) ◀─ durable ───┘                                                      ▼
//!  select(matchers, range) ◀── merge head + blocks by postings (label pair → series ids) ◀──────┘
//! ```
//!
//! # Series and labels ([`labels`])
//!
//! A series is identified by its sorted label set; the metric name is the
//! label `__name__`. Every append is checked against [`Limits`]: series alive
//! in the head, labels per series, label name and value bytes, samples per
//! request, timestamps too far in the future; each breach has its own
//! [`Error`], and a request is applied whole or refused whole.
//!
//! # Chunks ([`chunk`])
//!
//! Samples are stored Gorilla-style: delta-of-delta timestamps and XOR'd
//! floats, bit-exact (NaN payloads and the staleness marker survive). Blocks
//! store values with few decimals as scaled integers when that is exact and
//! smaller ([`chunk::decimal`]). Regular scrapes cost about 1-2 bytes per
//! sample instead of 16 (`tests/it/chunk.rs` measures node-exporter-like data:
//! 1.73 B in the head, 1.40 B in blocks on its mix).
//!
//! # Head and write-ahead log ([`mod@head`], [`wal`])
//!
//! The newest samples live in memory, compressed as they arrive. Every append
//! also becomes a WAL record; a single commit thread writes and fsyncs the
//! records of all concurrent appends at once (group commit) and only then
//! resolves their [`Ticket`]s, so an acknowledged sample survives `kill -9`
//! (`tests/it/crash.rs` kills a real process) and no fsync runs on a caller's
//! thread. Out-of-order samples are accepted within
//! `out_of_order_window_ms` of the newest sample; in-order samples of a
//! series may lag the newest by half a block range (as in Prometheus), so a
//! slow writer is not refused because another is ahead.
//!
//! # Blocks, index and compaction ([`block`], [`index`], [`compact`])
//!
//! Once the head spans 1.5 block ranges past the out-of-order window, its
//! oldest range is written as an immutable block: a chunks file, an index
//! (series, chunk positions and the **inverted index**: postings lists from
//! each label pair to the series carrying it, which matchers `=`, `!=`, `=~`,
//! `!~` are evaluated over) and a meta file, every part checksummed.
//! Compaction merges blocks of closed windows into longer ones (2 h → 6 h →
//! 24 h → 3 d by default).
//!
//! # Downsampling and retention ([`downsample`], [`retention`])
//!
//! As the notes prescribe: raw samples for 7 days, 1-minute resolution for 30
//! days, 1-hour for a year. Each downsampled point keeps count, sum, min, max
//! and last, so `avg_over_time`, `max_over_time`, `count_over_time` and `rate`
//! stay correct at every resolution (an average alone would not). A query
//! picks its resolution from its step ([`Db::query`]). Retention deletes whole
//! blocks, measured from the newest sample, and never before the next
//! resolution covers them. PromQL's range functions whose window reaches
//! past the raw data read the 1-minute and 1-hour points there
//! (`promql::downsampled`: `rate`, `increase`, `delta` and the
//! `*_over_time` aggregates, with stated bounds).
//!
//! # Cold storage ([`cold`])
//!
//! Blocks whose end is `cold.after_ms` behind the newest sample move to an
//! S3-compatible store (`hyperscale s3 serve`, MinIO, AWS): chunks, index and
//! meta are uploaded and verified (length and MD5), a `cold.json` marker
//! makes the move durable, and only then the local chunks go; the index
//! stays local, chunks are read by ranged GETs through a bounded LRU cache.
//! A crash at any step leaves each block counted once (`tests/it/cold.rs`).
//!
//! # Knobs ([`Options`])
//!
//! | knob | default | trade-off |
//! |---|---|---|
//! | `block_range_ms` | 2 h | head memory vs. number of blocks |
//! | `out_of_order_window_ms` | 10 min | late samples accepted vs. head memory (blocks are cut behind it) |
//! | `compaction_ranges_ms` | 2 h, 6 h, 24 h, 3 d | fewer, larger blocks vs. compaction work |
//! | `raw/minute/hour_retention_ms` | 7 d / 30 d / 365 d | the notes' schedule |
//! | `chunk_samples_max` | 120 | compression vs. decoding work per read |
//! | `wal_segment_bytes_max` | 128 MiB | checkpoint granularity |
//! | `maintenance_interval_ms` | 60 s (0: off) | how soon blocks are cut, compacted, expired |
//! | `cold` | off | `after_ms` (7 d on the CLI): local disk vs. reads over the network; `cache_bytes_max` (64 MiB) |
//!
//! # Using it
//!
//! ```
//! # fn main() -> tsdb::Result<()> {
//! use tsdb::{Db, Matcher, Options};
//! let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path(), Options::default())?;
//! let up = db.labels([("__name__", "up"), ("job", "api")])?;
//! db.append(vec![(up.clone(), vec![(1_000, 1.0), (16_000, 1.0)])])?.wait()?; // durable now
//! let got = db.select(&[Matcher::eq("job", "api")], 0, 20_000)?;
//! assert_eq!(got, vec![(up, vec![(1_000, 1.0), (16_000, 1.0)])]);
//! # Ok(()) }
//! ```
//!
//! # Query side ([`promql`], [`http`])
//!
//! PromQL is parsed by `promql-parser` (GreptimeTeam's crate: a grammar
//! generated from Prometheus's own yacc file, maintained and used in
//! production by GreptimeDB, so precedence, durations and escapes match
//! Prometheus without a second hand-written parser to diverge) and
//! evaluated by [`promql`] over [`Db::select`]: selectors with the 5-minute
//! lookback, staleness markers, `offset` and `@`, subqueries, the rate
//! family, `*_over_time`, aggregations and vector matching, each query
//! bounded by [`promql::QueryLimits`]. [`http`] serves the Prometheus HTTP
//! API and the remote-write receiver with axum; `tests/it/promql_diff.rs`
//! checks ~90 queries against a real Prometheus fed the same payloads.
//!
//! # Collection ([`scrape`])
//!
//! The pull model: a scrape manager reads `scrape_configs` from a
//! `prometheus.yml` (static and file SD targets), parses the text
//! exposition format (hand-written, [`scrape::text`]), writes `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped` and staleness
//! markers, enforces the per-job limits, and shares targets between
//! collectors by the consistent-hash ring. `tests/it/scrape.rs` scrapes
//! real HTTP targets, including one that goes down.
//!
//! # What comes next
//!
//! DNS-SRV discovery and relabeling, `metadata`, dashboards (issue 14,
//! parts 3-5); instant selectors and the raw-only range functions
//! (`quantile_over_time`, `irate`, ...) over ranges whose raw data expired;
//! multipart upload of cold blocks over 5 GiB.
#![warn(missing_docs)]

pub mod bench;
pub mod block;
pub mod chunk;
mod codec;
pub mod cold;
pub mod compact;
mod db;
pub mod downsample;
mod error;
pub mod head;
pub mod http;
pub mod index;
pub mod labels;
mod options;
pub mod promql;
pub mod retention;
pub mod scrape;
pub mod wal;
pub mod workload;

pub use db::{Db, MaintainReport, QueryResult, Stats};
pub use error::{Error, Result};
pub use head::{Sample, SeriesSamples};
pub use index::{MatchType, Matcher};
pub use labels::{Label, Labels};
pub use options::{DAY_MS, HOUR_MS, Limits, MINUTE_MS, Options};
pub use wal::Ticket;
