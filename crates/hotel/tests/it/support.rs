//! An in-process hotel server on a free port, over SQLite (a temporary file)
//! or the test PostgreSQL, with helpers to set up a hotel and to book.

use hotel::{Booker, Config, Hotel, Mode};
use serde_json::{Value, json};

use crate::postgres;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A running server; stops when dropped.
pub struct Server {
    pub base: String,
    pub booker: Booker,
    pub saga: hotel::Saga,
    pub shards: hotel::Shards,
    /// The in-process fake payment provider.
    pub fake: hotel::payment::fake::FakeProvider,
    pub database_url: String,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    shutdown: service::Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.task.abort();
    }
}

/// `days` from today, as `YYYY-MM-DD`.
pub fn day(days: i64) -> String {
    hotel::model::Date::today().plus(days).to_string()
}

impl Server {
    /// A server with `mode`, overbooking `ratio`, and `edit` applied to its config.
    pub async fn start(db: Db, mode: Mode, ratio: f64, edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match db {
            Db::Sqlite => format!("sqlite://{}", dir.path().join("hotel.db").display()),
            Db::Postgres => postgres::fresh_database().await,
        };
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            database: database_url.clone(),
            concurrency: mode.as_str().into(),
            overbooking: ratio,
            // Generous: 1,000 requests queue for a handful of connections.
            db_timeout_ms: 60_000,
            db_connections: if db == Db::Postgres { 32 } else { 8 },
            ..Config::default()
        };
        edit(&mut config);
        let hotel = Hotel::open(config).await.unwrap();
        // Hotel 1's shard: the tests' hotel.
        let shards = hotel.shards().clone();
        let booker = shards.of_hotel(1).booker.clone();
        let saga = shards.of_hotel(1).saga.clone();
        let fake = hotel.fake_payments().unwrap().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = hotel.router();
        let shutdown = service::Shutdown::new();
        hotel.start_background(&shutdown);
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base,
            booker,
            saga,
            shards,
            fake,
            database_url,
            client: reqwest::Client::new(),
            task,
            shutdown,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// PUT `body` to `path`, expecting 200.
    pub async fn put_ok(&self, path: &str, body: Value) {
        let response = self
            .client
            .put(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(
            status,
            200,
            "PUT {path}: {}",
            response.text().await.unwrap()
        );
    }

    /// Hotel 1 with room type 1: `rooms` rooms for nights `[from, to)` (days from today).
    pub async fn hotel_with_rooms(&self, rooms: i64, from: i64, to: i64) {
        self.put_ok("/v1/hotels/1", json!({"name": "Grand"})).await;
        self.put_ok(
            "/v1/hotels/1/room-types/1",
            json!({"name": "Standard", "base_rate_cents": 10_000}),
        )
        .await;
        self.put_ok(
            "/v1/hotels/1/room-types/1/inventory",
            json!({"from": day(from), "to": day(to), "total_inventory": rooms}),
        )
        .await;
    }

    /// POSTs a booking; returns (status, body).
    pub async fn book(&self, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/v1/reservations"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// POSTs to `path` with no body; returns (status, body).
    pub async fn post(&self, path: &str) -> (u16, Value) {
        let response = self.client.post(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// GETs `path`; returns (status, body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// `total_reserved` of each night `[from, to)` of hotel 1, room type 1.
    pub async fn reserved(&self, from: i64, to: i64) -> Vec<i64> {
        self.booker
            .store()
            .nights(1, 1, &day(from), &day(to))
            .await
            .unwrap()
            .iter()
            .map(|night| night.total_reserved)
            .collect()
    }
}

/// A booking body for hotel 1, room type 1.
pub fn booking(id: &str, guest: &str, from: i64, to: i64, rooms: i64) -> Value {
    json!({"reservation_id": id, "hotel_id": 1, "room_type_id": 1, "guest_id": guest,
        "check_in": day(from), "check_out": day(to), "rooms": rooms})
}
