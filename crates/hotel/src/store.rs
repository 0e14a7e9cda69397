//! The relational store: one pool, one schema, two databases.
//!
//! **Why sqlx's `Any` driver rather than two backends.** The booking
//! transaction is the heart of the chapter and should exist once, not twice.
//! SQLite and PostgreSQL agree on everything it needs (`$1` placeholders,
//! `ON CONFLICT ... DO UPDATE`, CHECK constraints, `BIGINT`/`TEXT`), so the
//! differences fit in [`Backend`]: how a write transaction begins (SQLite's
//! `BEGIN IMMEDIATE` takes the database's write lock up front) and whether a
//! read can lock rows (`FOR UPDATE`, PostgreSQL only). The cost is dynamic
//! typing at the row boundary (`try_get` by name), which the integration
//! tests cover on both databases.
//!
//! **Migrations** are numbered SQL files compiled into the binary and applied
//! in order inside one transaction each, recorded in `hotel_schema` — the
//! same files on both databases, no extra tooling to install.
//!
//! **Errors** are classified once ([`classify`]): lock timeouts and
//! serialization failures are transient (the caller retries), a closed pool
//! or a refused connection means the database is down (HTTP 503), unique and
//! check violations carry meaning (a repeated idempotency key, a full hotel).

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::error::ErrorKind;
use sqlx::{AnyPool, Executor, Row};

use crate::model::{Reservation, Status};

/// The schema, oldest first: (version, SQL).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_payment_saga.sql")),
    (3, include_str!("../migrations/0003_reservation_key.sql")),
    (4, include_str!("../migrations/0004_inventory_outbox.sql")),
    (
        5,
        include_str!("../migrations/0005_reservation_archive.sql"),
    ),
];

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one writer at a time, database-wide.
    Sqlite,
    /// PostgreSQL: row locks.
    Postgres,
}

impl Backend {
    /// The statement that begins a transaction that will write: SQLite takes
    /// its write lock now (a deferred transaction that read first could not
    /// upgrade later without a `SQLITE_BUSY`); PostgreSQL locks rows as it goes.
    pub fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Suffix that locks the rows a `SELECT` returns (none on SQLite, whose
    /// `BEGIN IMMEDIATE` already excludes every other writer).
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: String,
    /// Pool size.
    pub connections_max: u32,
    /// Bound on waiting for a connection (and on SQLite's lock wait); past
    /// it the request fails with 503 instead of hanging.
    pub timeout_ms: u64,
}

/// A pool on SQLite or PostgreSQL with the schema applied.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Whether inventory changes are noted in `inventory_outbox` (only when
    /// a cache consumes them, or the table would only grow).
    outbox: bool,
}

/// What a database error means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Lock timeout, busy database, serialization failure, deadlock: retry.
    Transient,
    /// A unique constraint (a primary key) was violated.
    Unique,
    /// A CHECK constraint was violated.
    Check,
    /// A foreign key points nowhere.
    ForeignKey,
    /// The database cannot be reached or is shutting down.
    Unavailable,
    /// Anything else: a bug or corruption.
    Other,
}

/// Classifies `err` (see the module doc).
pub fn classify(err: &sqlx::Error) -> ErrorClass {
    match err {
        sqlx::Error::Database(db) => {
            match db.kind() {
                ErrorKind::UniqueViolation => return ErrorClass::Unique,
                ErrorKind::CheckViolation => return ErrorClass::Check,
                ErrorKind::ForeignKeyViolation => return ErrorClass::ForeignKey,
                _ => {}
            }
            let code = db.code().unwrap_or_default();
            match code.as_ref() {
                // SQLite: BUSY, LOCKED and their extended codes.
                "5" | "6" | "261" | "262" | "517" | "773" => ErrorClass::Transient,
                // PostgreSQL: serialization failure, deadlock, lock not available.
                "40001" | "40P01" | "55P03" => ErrorClass::Transient,
                // Check violation (SQLite reports some as plain CONSTRAINT 275).
                "23514" | "275" => ErrorClass::Check,
                // PostgreSQL shutting down, too many connections, no such database;
                // SQLite cannot open or read the file.
                "57P01" | "57P02" | "57P03" | "53300" | "3D000" | "08006" | "08001" | "10"
                | "14" => ErrorClass::Unavailable,
                _ => ErrorClass::Other,
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => ErrorClass::Unavailable,
        _ => ErrorClass::Other,
    }
}

impl Store {
    /// Connects and applies the migrations. A `sqlite://` file is created if
    /// missing.
    pub async fn open(options: &StoreOptions) -> Result<Self, sqlx::Error> {
        Self::open_in_schema(options, None).await
    }

    /// As [`Store::open`]; on PostgreSQL, in `schema` (created if missing:
    /// a shard, see [`crate::shard`]).
    pub async fn open_in_schema(
        options: &StoreOptions,
        schema: Option<&str>,
    ) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        if let Some(schema) = schema {
            assert!(
                schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "schema names are ours: {schema}"
            );
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&options.url).await?;
            conn.execute(&*format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
            sqlx::Connection::close(conn).await?;
        }
        let search_path = schema.map(|schema| format!("SET search_path TO {schema}"));
        let (backend, url) = if let Some(rest) = options.url.strip_prefix("sqlite://") {
            let url = if rest.contains('?') {
                options.url.clone()
            } else {
                format!("sqlite://{rest}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://")
        {
            (Backend::Postgres, options.url.clone())
        } else {
            return Err(sqlx::Error::Configuration(
                format!(
                    "database must be sqlite://PATH or postgres://..., not `{}`",
                    options.url
                )
                .into(),
            ));
        };
        let busy_ms = options.timeout_ms;
        let pool = AnyPoolOptions::new()
            .max_connections(options.connections_max.max(1))
            .acquire_timeout(Duration::from_millis(options.timeout_ms))
            .after_connect(move |conn, _meta| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            // WAL: readers never wait for the writer; FULL: a
                            // commit is on disk before we answer.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute(&*format!("PRAGMA busy_timeout = {busy_ms}"))
                                .await?;
                        }
                        Backend::Postgres => {
                            if let Some(search_path) = &search_path {
                                conn.execute(search_path.as_str()).await?;
                            }
                            conn.execute(&*format!("SET lock_timeout = {busy_ms}"))
                                .await?;
                            conn.execute(&*format!("SET statement_timeout = {}", busy_ms * 2))
                                .await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = Self {
            pool,
            backend,
            outbox: false,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Notes every inventory and rate change in `inventory_outbox`, in the
    /// changing transaction (for the inventory cache's relay).
    pub fn with_outbox(mut self) -> Self {
        self.outbox = true;
        self
    }

    /// Whether changes are noted in the outbox.
    pub fn outbox(&self) -> bool {
        self.outbox
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the migrations not yet recorded in `hotel_schema`.
    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin_with(self.backend.begin_write()).await?;
        tx.execute("CREATE TABLE IF NOT EXISTS hotel_schema (version BIGINT PRIMARY KEY)")
            .await?;
        tx.commit().await?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.pool.begin_with(self.backend.begin_write()).await?;
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM hotel_schema WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if applied.is_some() {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO hotel_schema (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Creates or renames a hotel.
    pub async fn put_hotel(
        &self,
        hotel_id: i64,
        name: &str,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO hotel (hotel_id, name, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (hotel_id) DO UPDATE SET name = excluded.name",
        )
        .bind(hotel_id)
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many hotels there are.
    pub async fn hotels_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM hotel")
            .fetch_one(&self.pool)
            .await
    }

    /// The hotel's name, if it exists.
    pub async fn hotel_name(&self, hotel_id: i64) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT name FROM hotel WHERE hotel_id = $1")
            .bind(hotel_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Creates or updates a room type.
    pub async fn put_room_type(
        &self,
        hotel_id: i64,
        room_type_id: i64,
        name: &str,
        base_rate_cents: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO room_type (hotel_id, room_type_id, name, base_rate_cents) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (hotel_id, room_type_id) \
             DO UPDATE SET name = excluded.name, base_rate_cents = excluded.base_rate_cents",
        )
        .bind(hotel_id)
        .bind(room_type_id)
        .bind(name)
        .bind(base_rate_cents)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The room types of a hotel: (id, name, base rate in cents), by id.
    pub async fn room_types(&self, hotel_id: i64) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT room_type_id, name, base_rate_cents FROM room_type \
             WHERE hotel_id = $1 ORDER BY room_type_id",
        )
        .bind(hotel_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("room_type_id")?,
                    row.try_get("name")?,
                    row.try_get("base_rate_cents")?,
                ))
            })
            .collect()
    }

    /// Sets `total_inventory` (and the overbooking percent) for each of
    /// `dates` in one transaction, creating the rows that are missing. A
    /// count below what is already reserved violates `check_room_count`.
    pub async fn set_inventory(
        &self,
        hotel_id: i64,
        room_type_id: i64,
        dates: &[String],
        total_inventory: i64,
        overbooking_pct: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin_with(self.backend.begin_write()).await?;
        for date in dates {
            sqlx::query(
                "INSERT INTO room_type_inventory (hotel_id, room_type_id, date, total_inventory, \
                 total_reserved, overbooking_pct, version) VALUES ($1, $2, $3, $4, 0, $5, 0) \
                 ON CONFLICT (hotel_id, room_type_id, date) DO UPDATE SET \
                 total_inventory = excluded.total_inventory, \
                 overbooking_pct = excluded.overbooking_pct, \
                 version = room_type_inventory.version + 1",
            )
            .bind(hotel_id)
            .bind(room_type_id)
            .bind(date)
            .bind(total_inventory)
            .bind(overbooking_pct)
            .execute(&mut *tx)
            .await?;
            if self.outbox {
                note_change(&mut *tx, hotel_id, room_type_id, date).await?;
            }
        }
        tx.commit().await
    }

    /// Sets the nightly rate for each of `dates` in one transaction.
    pub async fn set_rates(
        &self,
        hotel_id: i64,
        room_type_id: i64,
        dates: &[String],
        rate_cents: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin_with(self.backend.begin_write()).await?;
        for date in dates {
            sqlx::query(
                "INSERT INTO room_type_rate (hotel_id, room_type_id, date, rate_cents) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (hotel_id, room_type_id, date) \
                 DO UPDATE SET rate_cents = excluded.rate_cents",
            )
            .bind(hotel_id)
            .bind(room_type_id)
            .bind(date)
            .bind(rate_cents)
            .execute(&mut *tx)
            .await?;
            if self.outbox {
                note_change(&mut *tx, hotel_id, room_type_id, date).await?;
            }
        }
        tx.commit().await
    }

    /// Inventory and price of each night in `[from, to)` that has an
    /// inventory row, in date order.
    pub async fn nights(
        &self,
        hotel_id: i64,
        room_type_id: i64,
        from: &str,
        to: &str,
    ) -> Result<Vec<Night>, sqlx::Error> {
        let rows = sqlx::query(NIGHTS_SQL)
            .bind(hotel_id)
            .bind(room_type_id)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Night::from_row).collect()
    }

    /// One reservation by id.
    pub async fn reservation(
        &self,
        reservation_id: &str,
    ) -> Result<Option<Reservation>, sqlx::Error> {
        let row = sqlx::query(&format!("{RESERVATION_SQL} WHERE reservation_id = $1"))
            .bind(reservation_id)
            .fetch_optional(&self.pool)
            .await?;
        if row.is_none() {
            // Cold storage answers for what was archived (see `archive`).
            return crate::archive::archived(self, reservation_id).await;
        }
        row.as_ref().map(reservation_from_row).transpose()
    }

    /// Every reservation of a room type, for audits and tests.
    pub async fn reservations_of(
        &self,
        hotel_id: i64,
        room_type_id: i64,
    ) -> Result<Vec<Reservation>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "{RESERVATION_SQL} WHERE hotel_id = $1 AND room_type_id = $2 ORDER BY reservation_id"
        ))
        .bind(hotel_id)
        .bind(room_type_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(reservation_from_row).collect()
    }
}

/// Notes in the outbox that a night changed (inside the changing
/// transaction, so the note commits exactly when the change does).
pub(crate) async fn note_change<'c, E>(
    executor: E,
    hotel_id: i64,
    room_type_id: i64,
    date: &str,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO inventory_outbox (hotel_id, room_type_id, date, changes, changed_ms) \
         VALUES ($1, $2, $3, 1, $4) ON CONFLICT (hotel_id, room_type_id, date) \
         DO UPDATE SET changes = inventory_outbox.changes + 1",
    )
    .bind(hotel_id)
    .bind(room_type_id)
    .bind(date)
    .bind(clock::now_ms() as i64)
    .execute(executor)
    .await?;
    Ok(())
}

/// Inventory, price and version of the nights of a range (the rate falls
/// back to the room type's base rate).
pub(crate) const NIGHTS_SQL: &str = "SELECT i.date, i.total_inventory, i.total_reserved, \
     i.overbooking_pct, i.version, COALESCE(r.rate_cents, t.base_rate_cents) AS rate_cents \
     FROM room_type_inventory i \
     JOIN room_type t ON t.hotel_id = i.hotel_id AND t.room_type_id = i.room_type_id \
     LEFT JOIN room_type_rate r ON r.hotel_id = i.hotel_id \
       AND r.room_type_id = i.room_type_id AND r.date = i.date \
     WHERE i.hotel_id = $1 AND i.room_type_id = $2 AND i.date >= $3 AND i.date < $4 \
     ORDER BY i.date";

/// The columns of a reservation.
pub(crate) const RESERVATION_SQL: &str = "SELECT reservation_id, hotel_id, room_type_id, \
     guest_id, check_in, check_out, rooms, total_cents, status, created_ms, updated_ms \
     FROM reservation";

/// One night of one room type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Night {
    /// The date (`YYYY-MM-DD`).
    pub date: String,
    /// Physical rooms.
    pub total_inventory: i64,
    /// Rooms held by reservations.
    pub total_reserved: i64,
    /// Rooms sellable per 100 physical ones.
    pub overbooking_pct: i64,
    /// Optimistic-lock version.
    pub version: i64,
    /// Price of one room that night, in cents.
    pub rate_cents: i64,
}

impl Night {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            date: row.try_get("date")?,
            total_inventory: row.try_get("total_inventory")?,
            total_reserved: row.try_get("total_reserved")?,
            overbooking_pct: row.try_get("overbooking_pct")?,
            version: row.try_get("version")?,
            rate_cents: row.try_get("rate_cents")?,
        })
    }

    /// Rooms still for sale, overbooking included.
    pub fn available(&self) -> i64 {
        (self.total_inventory.saturating_mul(self.overbooking_pct) / 100 - self.total_reserved)
            .max(0)
    }
}

pub(crate) fn reservation_from_row(row: &AnyRow) -> Result<Reservation, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let status = Status::parse(&status).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown reservation status `{status}`").into())
    })?;
    Ok(Reservation {
        reservation_id: row.try_get("reservation_id")?,
        hotel_id: row.try_get("hotel_id")?,
        room_type_id: row.try_get("room_type_id")?,
        guest_id: row.try_get("guest_id")?,
        check_in: row.try_get("check_in")?,
        check_out: row.try_get("check_out")?,
        rooms: row.try_get("rooms")?,
        total_cents: row.try_get("total_cents")?,
        status,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}
