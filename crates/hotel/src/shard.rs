//! Sharding by hotel id: `--shards N` spreads hotels over N databases (N
//! SQLite files, or N PostgreSQL schemas), as the notes scale the chapter's
//! 30,000 QPS over 16 shards of 1,875 each.
//!
//! **Why by hotel id.** Everything a booking touches — the hotel, its room
//! types, rates, inventory, and the reservation itself — belongs to one
//! hotel, so a booking stays a single-database transaction and every
//! concurrency control works unchanged on its shard. The shard is
//! `hotel_id mod N` ([`shard_of_hotel`]): hotels ids are dense, so that
//! spreads them evenly, and the mapping needs no directory.
//!
//! **Reservation ids across shards.** The idempotency key is chosen by the
//! client and says nothing of the hotel, yet it must stay unique over all
//! shards and `GET /v1/reservations/{id}` must find its shard. So with N > 1
//! each key is first claimed in `reservation_key` on the shard its hash
//! picks ([`shard_of_key`]), naming its hotel; the claim's primary key makes
//! a key unique everywhere (the same key for another hotel is a 422), and
//! looking a reservation up is two point reads. A claim whose booking then
//! failed (sold out) is harmless: a retry of the same body goes to the same
//! hotel.
//!
//! **Fan-out.** What is keyed by something else — a guest's reservations —
//! asks every shard at once and merges ([`Shards::guest_reservations`]).
//!
//! **Resharding** is not supported: the shard count is part of each shard's
//! file or schema name (`hotel-shard-2-of-16.db`, `hotel_shard_2_of_16`), so
//! a different N opens different, empty shards rather than misrouting.

use std::sync::Arc;

use crate::concurrency::{BookError, Booker, db_error};
use crate::model::Reservation;
use crate::saga::Saga;
use crate::store::{self, Store};

/// One shard: its bookings and payments.
#[derive(Clone)]
pub struct Shard {
    /// Bookings and status changes on this shard's database.
    pub booker: Booker,
    /// Payment sagas of this shard's reservations.
    pub saga: Saga,
}

/// The shard of a hotel among `shards`.
pub fn shard_of_hotel(hotel_id: i64, shards: usize) -> usize {
    assert!(shards > 0, "at least one shard");
    (hotel_id.unsigned_abs() % shards as u64) as usize
}

/// The shard holding the claim of a reservation id among `shards`.
pub fn shard_of_key(reservation_id: &str, shards: usize) -> usize {
    assert!(shards > 0, "at least one shard");
    (ring::hash::key_position(reservation_id.as_bytes()) % shards as u64) as usize
}

/// Where shard `shard` of `shards` lives, given the unsharded database URL:
/// the URL itself when there is one shard; otherwise a SQLite file beside
/// it, or (PostgreSQL) the same database and a schema of its own.
pub fn shard_location(url: &str, shard: usize, shards: usize) -> (String, Option<String>) {
    if shards <= 1 {
        return (url.to_string(), None);
    }
    let suffix = format!("shard-{shard}-of-{shards}");
    match url.strip_prefix("sqlite://") {
        Some(rest) => {
            let (path, query) = match rest.split_once('?') {
                Some((path, query)) => (path, format!("?{query}")),
                None => (rest, String::new()),
            };
            let path = match path.strip_suffix(".db") {
                Some(stem) => format!("{stem}-{suffix}.db"),
                None => format!("{path}-{suffix}"),
            };
            (format!("sqlite://{path}{query}"), None)
        }
        None => (
            url.to_string(),
            Some(format!("hotel_{}", suffix.replace('-', "_"))),
        ),
    }
}

/// Every shard, and the routing between them.
#[derive(Clone)]
pub struct Shards {
    shards: Arc<Vec<Shard>>,
}

impl Shards {
    /// The shards, in order (shard `i` at index `i`).
    pub fn new(shards: Vec<Shard>) -> Self {
        assert!(!shards.is_empty(), "at least one shard");
        Self {
            shards: Arc::new(shards),
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Never: there is at least one shard.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every shard, in order.
    pub fn all(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard of a hotel.
    pub fn of_hotel(&self, hotel_id: i64) -> &Shard {
        &self.shards[shard_of_hotel(hotel_id, self.len())]
    }

    /// Claims `reservation_id` for `hotel_id` (a no-op with one shard, whose
    /// reservation primary key is enough). The same key claimed for another
    /// hotel is [`BookError::KeyReused`].
    pub async fn claim(
        &self,
        reservation_id: &str,
        hotel_id: i64,
        now_ms: i64,
    ) -> Result<(), BookError> {
        if self.len() == 1 {
            return Ok(());
        }
        let store = self.shards[shard_of_key(reservation_id, self.len())]
            .booker
            .store();
        let owner = store
            .claim_key(reservation_id, hotel_id, now_ms)
            .await
            .map_err(|err| db_error(&err))?;
        if owner != hotel_id {
            return Err(BookError::KeyReused(format!(
                "reservation_id `{reservation_id}` was already used for a different booking"
            )));
        }
        Ok(())
    }

    /// The shard holding reservation `reservation_id`, if it was ever claimed
    /// (with one shard: that shard, which may not have it).
    pub async fn of_reservation(&self, reservation_id: &str) -> Result<Option<&Shard>, BookError> {
        if self.len() == 1 {
            return Ok(Some(&self.shards[0]));
        }
        let store = self.shards[shard_of_key(reservation_id, self.len())]
            .booker
            .store();
        let hotel_id = store
            .key_hotel(reservation_id)
            .await
            .map_err(|err| db_error(&err))?;
        Ok(hotel_id.map(|hotel_id| self.of_hotel(hotel_id)))
    }

    /// A guest's reservations on every shard (asked at once), newest first,
    /// at most `limit`.
    pub async fn guest_reservations(
        &self,
        guest_id: &str,
        limit: i64,
    ) -> Result<Vec<Reservation>, BookError> {
        let mut asks = tokio::task::JoinSet::new();
        for shard in self.all() {
            let store = shard.booker.store().clone();
            let guest_id = guest_id.to_string();
            asks.spawn(async move { store.reservations_of_guest(&guest_id, limit).await });
        }
        let mut out = Vec::new();
        while let Some(answer) = asks.join_next().await {
            let answer = answer.map_err(|err| BookError::Internal(err.to_string()))?;
            out.extend(answer.map_err(|err| db_error(&err))?);
        }
        out.sort_by(|a, b| {
            (b.created_ms, &b.reservation_id).cmp(&(a.created_ms, &a.reservation_id))
        });
        out.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(out)
    }
}

/// The queries sharding adds to a shard's database.
impl Store {
    /// Claims `reservation_id` for `hotel_id` unless it is claimed; returns
    /// the hotel that holds the claim (see [`crate::shard`]).
    pub async fn claim_key(
        &self,
        reservation_id: &str,
        hotel_id: i64,
        now_ms: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "INSERT INTO reservation_key (reservation_id, hotel_id, created_ms) \
             VALUES ($1, $2, $3) ON CONFLICT (reservation_id) DO NOTHING",
        )
        .bind(reservation_id)
        .bind(hotel_id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        sqlx::query_scalar("SELECT hotel_id FROM reservation_key WHERE reservation_id = $1")
            .bind(reservation_id)
            .fetch_one(self.pool())
            .await
    }

    /// The hotel a reservation id was claimed for.
    pub async fn key_hotel(&self, reservation_id: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT hotel_id FROM reservation_key WHERE reservation_id = $1")
            .bind(reservation_id)
            .fetch_optional(self.pool())
            .await
    }

    /// A guest's reservations on this database, newest first, at most `limit`.
    pub async fn reservations_of_guest(
        &self,
        guest_id: &str,
        limit: i64,
    ) -> Result<Vec<Reservation>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "{} WHERE guest_id = $1 ORDER BY created_ms DESC, reservation_id DESC LIMIT $2",
            store::RESERVATION_SQL
        ))
        .bind(guest_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(store::reservation_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotels_spread_evenly_and_keys_stay_put() {
        let mut counts = [0; 16];
        for hotel_id in 1..=16_000 {
            counts[shard_of_hotel(hotel_id, 16)] += 1;
        }
        assert!(counts.iter().all(|count| *count == 1_000), "{counts:?}");
        assert_eq!(shard_of_hotel(7, 1), 0);
        assert_eq!(shard_of_key("abc", 16), shard_of_key("abc", 16));
        let mut keys = [0; 4];
        for n in 0..4_000 {
            keys[shard_of_key(&format!("r-{n}"), 4)] += 1;
        }
        assert!(
            keys.iter().all(|count| (800..1_200).contains(count)),
            "{keys:?}"
        );
    }

    #[test]
    fn shard_locations() {
        assert_eq!(
            shard_location("sqlite:///d/hotel.db", 0, 1),
            ("sqlite:///d/hotel.db".into(), None)
        );
        assert_eq!(
            shard_location("sqlite:///d/hotel.db", 2, 16),
            ("sqlite:///d/hotel-shard-2-of-16.db".into(), None)
        );
        assert_eq!(
            shard_location("sqlite://x?mode=rwc", 1, 2),
            ("sqlite://x-shard-1-of-2?mode=rwc".into(), None)
        );
        assert_eq!(
            shard_location("postgres://u@h/db", 3, 4),
            (
                "postgres://u@h/db".into(),
                Some("hotel_shard_3_of_4".into())
            )
        );
    }
}
