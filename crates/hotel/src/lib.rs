//! Hotel reservation: the chapter "호텔 예약 시스템" of *System Design
//! Interview* vol. 2.
//!
//! **Data model** ([`model`], [`store`]). A hotel has room types; guests book
//! a room *type*, not a room number, so what is counted is
//! `room_type_inventory`: one row per hotel, room type and night with
//! `total_inventory` (physical rooms) and `total_reserved`. A booking of a
//! stay adds its rooms to every night of the stay — all nights or none, in
//! one transaction. Rates live per night in `room_type_rate` (falling back to
//! the room type's base rate); a reservation fixes its price when it is made
//! and moves through `pending → paid → checked_in`, or ends `canceled`,
//! `refunded` or `rejected`, which give the rooms back ([`model::transition`]).
//!
//! **Why a relational database.** The notes' reasons: the workload reads far
//! more than it writes, the model is naturally relational, and above all
//! ACID transactions are what rule out a negative balance, a double charge
//! and a double booking. We use SQLite embedded (nothing to install; `hyperscale
//! up` just works) or PostgreSQL by URL, through sqlx with one set of
//! migrations (see [`store`] for why sqlx's `Any` driver).
//!
//! **Concurrency** ([`concurrency`]). Two problems: the same guest clicking
//! "book" twice, solved by the idempotency key — the client chooses
//! `reservation_id`, the primary key makes a second insert fail, and the
//! repeat gets the first result (a different body under the same key is a
//! 422); and many guests racing for the last room, solved three ways,
//! switchable with `--concurrency`: pessimistic locking (`SELECT ... FOR
//! UPDATE`; the notes do not recommend it: locks limit scale and many-row
//! locks invite deadlocks), optimistic locking with a version column
//! (the notes' pick for hotel traffic, which is low-QPS; it degrades under
//! heavy contention into retries) and a CHECK constraint (`check_room_count`:
//! simple, but the rule hides in the schema and failures look like "sold
//! out"). The default is `optimistic`, the notes' choice.
//!
//! **Overbooking.** Hotels sell more rooms than they have because some guests
//! never come; `--overbooking 1.10` sells 110 rooms of 100. The percentage is
//! stored with each inventory row when the inventory is set, so the CHECK
//! constraint can enforce it exactly in integer arithmetic
//! (`total_reserved * 100 <= total_inventory * overbooking_pct`).
//!
//! **API** ([`api`]): REST with JSON, an OpenAPI document at `/openapi.json`,
//! an optional API key, bounded inputs, JSON errors, and 503 (after
//! `db_timeout_ms`, never a hang) when the database is down.
//!
//! **Booking page** (`api::page`, at `/hotel/`): search and book with plain
//! HTML forms; `hyperscale up` serves it behind the gateway.
//!
//! **Payment** ([`saga`], [`payment`]): `POST /v1/reservations/{id}/pay`
//! runs a saga — charge through an HTTP payment provider with the
//! reservation id as idempotency key, then confirm, or compensate (void,
//! reject, release the rooms) — logged step by step in `payment_saga`, so a
//! crash at any step is finished at the next start. `payments = "fake"`
//! runs an in-process fake provider ([`payment::fake`]).
//!
//! **Sharding** ([`shard`]): `--shards N` spreads hotels over N SQLite
//! files or PostgreSQL schemas by hotel id (the notes' 16 shards for 30,000
//! QPS, 1,875 each); reservation ids are claimed on the shard their hash
//! picks, a guest's reservations fan out.
//!
//! **Inventory cache** ([`cache`]): with `cache = "redis://..."`,
//! availability searches read nights from our `kv` (or Redis) with a TTL,
//! filled only by a relay that reads the `inventory_outbox` table after
//! commit (CDC without extra infrastructure); bookings always re-check the
//! database.
//!
//! **Cold storage** ([`archive`]): with `archive_after_days`, settled
//! reservations whose stay ended that long ago move to
//! `reservation_archive` (checked hourly), still readable by id.
#![warn(missing_docs)]

pub mod api;
pub mod archive;
pub mod bench;
pub mod cache;
pub mod concurrency;
pub mod config;
pub mod model;
pub mod payment;
pub mod saga;
pub mod shard;
pub mod store;

use std::sync::Arc;

use anyhow::Context;
use service::SystemContext;
use service::metrics::Registry;
use tokio::net::TcpListener;

pub use concurrency::{Booker, Mode};
pub use config::Config;
pub use saga::Saga;
pub use shard::{Shard, Shards};
pub use store::{Store, StoreOptions};

/// A hotel service ready to serve: database open, schema applied.
pub struct Hotel {
    api: Arc<api::Api>,
    config: Config,
    /// HTTP requests answered (page and API).
    requests: prometheus_client::metrics::counter::Counter,
    /// The in-process payment provider, when `payments = "fake"`.
    fake_payments: Option<payment::fake::FakeProvider>,
}

impl Hotel {
    /// Validates `config`, opens the database and applies the migrations.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let mode = config.mode().map_err(anyhow::Error::msg)?;
        let overbooking = config.overbooking().map_err(anyhow::Error::msg)?;
        let metrics = concurrency::Metrics::default();
        let cache = if config.cache.is_empty() {
            None
        } else {
            let ttl = std::time::Duration::from_millis(config.cache_ttl_ms);
            let cache = cache::InventoryCache::connect(&config.cache, ttl, config.db_timeout_ms)
                .await
                .with_context(|| {
                    format!("cannot reach the inventory cache {}", redact(&config.cache))
                })?;
            Some(cache)
        };
        let bookers: Vec<Booker> = open_stores(&config)
            .await?
            .into_iter()
            .map(|store| {
                if cache.is_some() {
                    store.with_outbox()
                } else {
                    store
                }
            })
            .map(|store| {
                Booker::new(store, mode, config.retries_max)
                    .with_hold_ms(config.hold_ms)
                    .with_metrics(metrics.clone())
            })
            .collect();
        let (payments_url, fake_payments) = if config.payments == "fake" {
            let fake = payment::fake::FakeProvider::new();
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot start the in-process fake payment provider")?;
            let url = format!("http://{}", listener.local_addr()?);
            let router = fake.router();
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, router).await {
                    tracing::warn!("fake payment provider stopped: {err}");
                }
            });
            (url, Some(fake))
        } else {
            (config.payments.clone(), None)
        };
        let payments = payment::PaymentClient::new(&payments_url, config.payment_timeout_ms)?;
        let shards = bookers
            .into_iter()
            .map(|booker| Shard {
                saga: Saga::new(
                    booker.clone(),
                    payments.clone(),
                    config.payment_attempts_max,
                ),
                booker,
            })
            .collect();
        let api = api::Api {
            shards: Shards::new(shards),
            cache,
            limits: config.stay_limits(),
            overbooking,
            rooms_max: config.rooms_max,
            api_key: config.api_key.clone(),
        };
        Ok(Self {
            api: Arc::new(api),
            config,
            requests: Default::default(),
            fake_payments,
        })
    }

    /// The in-process fake payment provider (`payments = "fake"`), to tell
    /// it to fail in tests and demos.
    pub fn fake_payments(&self) -> Option<&payment::fake::FakeProvider> {
        self.fake_payments.as_ref()
    }

    /// The shards (one unless `shards` is set).
    pub fn shards(&self) -> &Shards {
        &self.api.shards
    }

    /// Starts the background work until `shutdown`: per shard, the payment
    /// saga sweeper and (with a cache) the outbox relay. [`Hotel::serve`]
    /// calls it; an embedding that serves [`Hotel::router`] itself must too.
    pub fn start_background(&self, shutdown: &service::Shutdown) {
        for shard in self.api.shards.all() {
            tokio::spawn(Self::sweep_sagas(
                shard.saga.clone(),
                self.config.clone(),
                shutdown.clone(),
            ));
            if self.config.archive_after_days > 0 {
                tokio::spawn(archive_daily(
                    shard.booker.store().clone(),
                    self.config.archive_after_days,
                    shutdown.clone(),
                ));
            }
            if let Some(cache) = &self.api.cache {
                tokio::spawn(cache::relay(
                    shard.booker.store().clone(),
                    cache.clone(),
                    self.config.outbox_poll_ms,
                    shutdown.clone(),
                ));
            }
        }
    }

    /// The inventory cache, when configured.
    pub fn cache(&self) -> Option<&cache::InventoryCache> {
        self.api.cache.as_ref()
    }

    /// Drives every unfinished payment saga of a shard on, then again every
    /// `saga_sweep_ms` (those idle for two provider timeouts: a request may
    /// still be driving a fresher one) until `shutdown`.
    pub async fn sweep_sagas(saga: Saga, config: Config, shutdown: service::Shutdown) {
        let mut older_than_ms = clock::now_ms() as i64;
        loop {
            match saga.recover(older_than_ms, 1_000).await {
                Ok(0) => {}
                Ok(done) => tracing::info!("finished {done} interrupted payment saga(s)"),
                Err(err) => tracing::warn!("payment saga sweep failed: {err}"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_millis(config.saga_sweep_ms)) => {}
            }
            older_than_ms = clock::now_ms() as i64 - 2 * config.payment_timeout_ms as i64;
        }
    }

    /// Loads [`seed`]'s demo data (`hotels` hotels on sale for `days`
    /// nights) when the database has no hotel yet, as `hyperscale up` does;
    /// returns whether it did.
    pub async fn seed_if_empty(&self, hotels: i64, days: i64) -> anyhow::Result<bool> {
        let stores: Vec<Store> = (self.api.shards.all().iter())
            .map(|shard| shard.booker.store().clone())
            .collect();
        for store in &stores {
            if store.hotels_count().await? > 0 {
                return Ok(false);
            }
        }
        seed(&stores, hotels, days, self.api.overbooking.percent())
            .await
            .context("cannot seed the demo hotels")?;
        Ok(true)
    }

    /// The booking engine of the first shard (for tests and embedding).
    pub fn booker(&self) -> &Booker {
        &self.api.shards.all()[0].booker
    }

    /// Registers the counters under `registry` (give it a `hotel` sub-registry).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let metrics = self.booker().metrics();
        let counters = [
            (
                "reservations_created",
                "Reservations created",
                &metrics.created,
            ),
            (
                "reservations_replayed",
                "Repeated requests answered with the first result",
                &metrics.replayed,
            ),
            (
                "bookings_sold_out",
                "Bookings refused: no room left",
                &metrics.sold_out,
            ),
            (
                "version_conflicts",
                "Optimistic-lock conflicts (each one a retry)",
                &metrics.version_conflicts,
            ),
            (
                "transient_retries",
                "Retries after a busy database, deadlock or serialization failure",
                &metrics.transient_retries,
            ),
            (
                "check_violations",
                "Updates refused by the check_room_count constraint",
                &metrics.check_violations,
            ),
            (
                "bookings_gave_up",
                "Bookings that ran out of retries",
                &metrics.gave_up,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "requests",
            "HTTP requests answered (page and API)",
            self.requests.clone(),
        );
    }

    /// The HTTP routes.
    pub fn router(&self) -> axum::Router {
        service::metrics::count_requests(
            api::router(self.api.clone(), &self.config),
            self.requests.clone(),
        )
    }

    /// Serves on `listener` until the context's shutdown.
    pub async fn serve(self, listener: TcpListener, ctx: SystemContext) -> anyhow::Result<()> {
        let router = self.router();
        self.start_background(&ctx.shutdown);
        ctx.health.set_up();
        axum::serve(listener, router)
            .with_graceful_shutdown(ctx.shutdown.cancelled_owned())
            .await
            .context("hotel server failed")
    }
}

/// Archives reservations that checked out more than `days` days ago, once
/// an hour (see [`archive`]), until `shutdown`.
async fn archive_daily(store: Store, days: i64, shutdown: service::Shutdown) {
    loop {
        let before = archive::cutoff(model::Date::today(), days);
        match archive::archive_before(&store, &before, clock::now_ms() as i64).await {
            Ok(0) => {}
            Ok(moved) => {
                tracing::info!("archived {moved} reservation(s) that ended before {before}")
            }
            Err(err) => tracing::warn!("archiving reservations failed: {err}"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(3_600)) => {}
        }
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Opens the `shards` databases of `config` (see [`shard::shard_location`]),
/// applying the migrations to each.
pub async fn open_stores(config: &Config) -> anyhow::Result<Vec<Store>> {
    let url = config.database_url();
    let mut stores = Vec::with_capacity(config.shards);
    for index in 0..config.shards {
        let (shard_url, schema) = shard::shard_location(&url, index, config.shards);
        let options = StoreOptions {
            url: shard_url.clone(),
            // The pool is split, so N shards do not open N times the connections.
            connections_max: (config.db_connections / config.shards as u32).max(2),
            timeout_ms: config.db_timeout_ms,
        };
        let store = Store::open_in_schema(&options, schema.as_deref())
            .await
            .with_context(|| {
                format!(
                    "cannot open the hotel database {} (shard {index} of {})",
                    redact(&shard_url),
                    config.shards
                )
            })?;
        stores.push(store);
    }
    Ok(stores)
}

/// Loads demo data: hotels `1..=hotels`, each with a standard room type
/// (id 1, 100 rooms) and a suite (id 2, 10 rooms), on sale for the next
/// `days` nights. Returns the number of inventory rows written.
pub async fn seed(
    shards: &[Store],
    hotels: i64,
    days: i64,
    overbooking_pct: i64,
) -> Result<u64, sqlx::Error> {
    let today = model::Date::today();
    let dates: Vec<String> = (0..days).map(|day| today.plus(day).to_string()).collect();
    let now = clock::now_ms() as i64;
    let mut rows = 0;
    for hotel_id in 1..=hotels {
        let store = &shards[shard::shard_of_hotel(hotel_id, shards.len())];
        store
            .put_hotel(hotel_id, &format!("Hotel {hotel_id}"), now)
            .await?;
        for (room_type_id, name, rate, rooms) in
            [(1, "Standard", 12_000, 100), (2, "Suite", 45_000, 10)]
        {
            store
                .put_room_type(hotel_id, room_type_id, name, rate)
                .await?;
            store
                .set_inventory(hotel_id, room_type_id, &dates, rooms, overbooking_pct)
                .await?;
            rows += dates.len() as u64;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://app:secret@db:5432/hotel"),
            "postgres://app:***@db:5432/hotel"
        );
        assert_eq!(
            super::redact("sqlite://data/hotel.db"),
            "sqlite://data/hotel.db"
        );
    }
}
