//! The inventory cache: availability searches read each night of a room
//! type from a key-value store (our `kv`, or any Redis, through `kvclient`)
//! instead of the database, as the notes put the inventory in Redis.
//!
//! **Kept consistent by the database's change stream, never by requests.**
//! Every transaction that changes a night (a booking, a release, an
//! inventory or rate update) also notes the night in `inventory_outbox`
//! (see `store::note_change`): the note commits exactly when the change
//! does. The [`relay`] reads the notes in order of their first pending
//! change, copies each night's *committed* state to the cache (with a TTL),
//! and deletes a note only if no newer change bumped it meanwhile — so a
//! night changed while it was being copied is copied again, and the cache
//! converges to the database within one relay round after the last commit.
//! Copying state rather than applying deltas makes a repeated or reordered
//! copy harmless.
//!
//! **A booking never trusts the cache**: it re-reads and re-checks the
//! database in its transaction (see `concurrency`), so a stale cache can show
//! a room that is gone (the booking then answers "sold out") but never
//! causes a double booking. A miss (expired, never filled, the store down)
//! is answered from the database and notes the missing nights in the outbox,
//! so the relay, not the request, fills them.
//!
//! The TTL bounds how long an entry can outlive a change the relay missed
//! (one that bypassed the outbox, e.g. a room type's base rate).

use std::sync::Arc;
use std::time::Duration;

use kvclient::KvClient;

use crate::model::Date;
use crate::store::{self, Night, Store};

/// The cache of nights in a key-value store.
#[derive(Clone)]
pub struct InventoryCache {
    kv: Arc<dyn KvClient>,
    ttl: Duration,
}

/// The key of one night of one room type.
pub fn night_key(hotel_id: i64, room_type_id: i64, date: &str) -> String {
    format!("hotel:inv:{hotel_id}:{room_type_id}:{date}")
}

impl InventoryCache {
    /// A cache in `kv` whose entries live `ttl`.
    pub fn new(kv: Arc<dyn KvClient>, ttl: Duration) -> Self {
        Self { kv, ttl }
    }

    /// Connects to `url` (`redis://host:port`, our `kv` or Redis).
    pub async fn connect(url: &str, ttl: Duration, timeout_ms: u64) -> anyhow::Result<Self> {
        let options = kvclient::remote::RemoteOptions {
            timeout_ms,
            ..Default::default()
        };
        let kv = kvclient::remote::Remote::connect(url, options).await?;
        Ok(Self::new(Arc::new(kv), ttl))
    }

    /// The cached state of each night of `[from, to)`: `Some(None)` for a
    /// night known not to be on sale; `None` when any night is missing (or
    /// the store fails: the caller reads the database).
    pub async fn nights(
        &self,
        hotel_id: i64,
        room_type_id: i64,
        from: Date,
        to: Date,
    ) -> Option<Vec<Night>> {
        let mut out = Vec::new();
        for day in from.days()..to.days() {
            let date = Date::from_days(day).to_string();
            let key = night_key(hotel_id, room_type_id, &date);
            let value = match self.kv.get(key.as_bytes()).await {
                Ok(Some(value)) => value,
                Ok(None) => return None,
                Err(err) => {
                    tracing::debug!("inventory cache read failed: {err}");
                    return None;
                }
            };
            let night: Option<Night> = serde_json::from_slice(&value).ok()?;
            out.extend(night);
        }
        Some(out)
    }

    /// Stores a night's committed state (`None`: not on sale).
    pub async fn put(
        &self,
        hotel_id: i64,
        room_type_id: i64,
        date: &str,
        night: Option<&Night>,
    ) -> kvclient::Result<()> {
        let key = night_key(hotel_id, room_type_id, date);
        let value = serde_json::to_vec(&night).unwrap_or_default();
        self.kv.set(key.as_bytes(), &value, Some(self.ttl)).await
    }
}

/// One pending note of the outbox.
struct Note {
    hotel_id: i64,
    room_type_id: i64,
    date: String,
    changes: i64,
}

/// One relay round over `store`: copies up to `batch` noted nights to the
/// cache, oldest note first; returns how many notes it settled.
pub async fn relay_once(
    store: &Store,
    cache: &InventoryCache,
    batch: i64,
) -> anyhow::Result<usize> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT hotel_id, room_type_id, date, changes FROM inventory_outbox \
         ORDER BY changed_ms, hotel_id, room_type_id, date LIMIT $1",
    )
    .bind(batch)
    .fetch_all(store.pool())
    .await?;
    let mut settled = 0;
    for row in rows {
        let note = Note {
            hotel_id: row.try_get("hotel_id")?,
            room_type_id: row.try_get("room_type_id")?,
            date: row.try_get("date")?,
            changes: row.try_get("changes")?,
        };
        let next = Date::parse(&note.date)
            .map_err(anyhow::Error::msg)?
            .plus(1)
            .to_string();
        // Read after the note: the state is at least as new as the change.
        let nights = store
            .nights(note.hotel_id, note.room_type_id, &note.date, &next)
            .await?;
        cache
            .put(note.hotel_id, note.room_type_id, &note.date, nights.first())
            .await?;
        sqlx::query(
            "DELETE FROM inventory_outbox WHERE hotel_id = $1 AND room_type_id = $2 \
             AND date = $3 AND changes = $4",
        )
        .bind(note.hotel_id)
        .bind(note.room_type_id)
        .bind(&note.date)
        .bind(note.changes)
        .execute(store.pool())
        .await?;
        settled += 1;
    }
    Ok(settled)
}

/// Notes nights the cache missed, so the relay fills them.
pub async fn request_fill(store: &Store, hotel_id: i64, room_type_id: i64, from: Date, to: Date) {
    for day in from.days()..to.days() {
        let date = Date::from_days(day).to_string();
        if let Err(err) = store::note_change(store.pool(), hotel_id, room_type_id, &date).await {
            tracing::debug!("cannot note a cache miss: {err}");
            return;
        }
    }
}

/// Runs [`relay_once`] every `poll_ms` (at once again while a round is
/// full) until `shutdown`.
pub async fn relay(store: Store, cache: InventoryCache, poll_ms: u64, shutdown: service::Shutdown) {
    const BATCH: i64 = 500;
    loop {
        let full = match relay_once(&store, &cache, BATCH).await {
            Ok(settled) => settled as i64 == BATCH,
            Err(err) => {
                tracing::warn!("inventory cache relay: {err}");
                false
            }
        };
        if full && !shutdown.is_cancelled() {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(poll_ms)) => {}
        }
    }
}
