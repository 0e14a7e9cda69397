//! Request collapsing: N clients missing the same object at once cost the
//! origin one fetch, not N (the thundering herd a CDN edge must absorb when
//! a popular object expires or is purged).
//!
//! The first miss of a key becomes the *leader* of a flight and fetches;
//! later misses of that key *follow*: they wait (at most
//! `cache.collapse_wait_ms`) for the flight to land, then look the cache up
//! again. If the leader stored the object they are hits; if it could not
//! (the response was private, too large, an error) they go to the origin
//! themselves. Collapsing is by cache key, not by variant: followers whose
//! `Vary` values differ find no match and fetch their own.
//!
//! A flight ends when its [`Flight`] guard drops, so a leader that fails,
//! panics or whose client disconnects never strands its followers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

/// The flights in progress, by cache key.
#[derive(Default)]
pub struct Collapser {
    flights: Mutex<HashMap<String, watch::Receiver<()>>>,
}

/// What a request does about a miss.
pub enum Role {
    /// Fetch, then drop the guard.
    Leader(Flight),
    /// Wait for the leader with [`wait`].
    Follower(watch::Receiver<()>),
}

/// The leader's guard: dropping it lands the flight.
pub struct Flight {
    collapser: Arc<Collapser>,
    key: String,
    // Dropped with the guard: followers' `changed()` returns then.
    _landed: watch::Sender<()>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.collapser.flights.lock().remove(&self.key);
    }
}

impl Collapser {
    /// Joins the flight of `key`, or starts one.
    pub fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut flights = self.flights.lock();
        if let Some(landing) = flights.get(key) {
            return Role::Follower(landing.clone());
        }
        let (landed, landing) = watch::channel(());
        flights.insert(key.to_string(), landing);
        Role::Leader(Flight {
            collapser: self.clone(),
            key: key.to_string(),
            _landed: landed,
        })
    }

    /// Starts a flight of `key` only if none is in progress (background
    /// revalidation: one is enough).
    pub fn lead(self: &Arc<Self>, key: &str) -> Option<Flight> {
        match self.join(key) {
            Role::Leader(flight) => Some(flight),
            Role::Follower(_) => None,
        }
    }

    /// Flights in progress.
    pub fn in_flight(&self) -> usize {
        self.flights.lock().len()
    }
}

/// Waits until the flight lands or `timeout` passes.
pub async fn wait(mut landing: watch::Receiver<()>, timeout: Duration) {
    // The sender never sends: `changed` returns (with an error) when the
    // leader's guard drops it.
    let _ = tokio::time::timeout(timeout, landing.changed()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_wake_when_the_leader_lands() {
        let collapser = Arc::new(Collapser::default());
        let Role::Leader(flight) = collapser.join("k") else {
            panic!("the first miss leads");
        };
        let Role::Follower(landing) = collapser.join("k") else {
            panic!("the second miss follows");
        };
        assert!(collapser.lead("k").is_none());
        let waiter = tokio::spawn(wait(landing, Duration::from_secs(10)));
        drop(flight);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("followers were stranded")
            .unwrap();
        assert_eq!(collapser.in_flight(), 0);
        assert!(matches!(collapser.join("k"), Role::Leader(_)));
    }
}
