//! Keep-alive connections waiting for their next request, per upstream: the
//! one list shape both upstream clients use ([`crate::client`]'s hyper
//! connections, [`crate::relay`]'s raw sockets), each in a thread-local of
//! its own (one serving thread never borrows another's connections).
//!
//! Reuse is newest first (a warm connection, least likely closed by the
//! upstream's own idle timer); at most [`IDLE_MAX_PER_UPSTREAM`] per
//! upstream, the oldest dropped beyond that; anything idle longer than the
//! timeout is dropped when the list is next touched.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Idle connections kept per upstream and per serving thread.
pub const IDLE_MAX_PER_UPSTREAM: usize = 256;

/// Idle connections of type `T`, by upstream id.
#[derive(Debug)]
pub struct IdleLists<T> {
    lists: Vec<(u64, VecDeque<(T, Instant)>)>,
}

impl<T> Default for IdleLists<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> IdleLists<T> {
    /// No idle connections.
    pub const fn new() -> Self {
        Self { lists: Vec::new() }
    }

    /// The newest idle connection to `upstream_id` for which `usable` holds,
    /// dropping unusable and expired ones on the way.
    pub fn checkout(
        &mut self,
        upstream_id: u64,
        idle_timeout: Duration,
        mut usable: impl FnMut(&mut T) -> bool,
    ) -> Option<T> {
        let list = &mut self.lists.iter_mut().find(|(id, _)| *id == upstream_id)?.1;
        let now = Instant::now();
        while let Some((mut connection, since)) = list.pop_back() {
            if now.duration_since(since) > idle_timeout {
                // Everything below is older still.
                list.clear();
                return None;
            }
            if usable(&mut connection) {
                return Some(connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next request to `upstream_id`.
    pub fn checkin(&mut self, upstream_id: u64, connection: T, idle_timeout: Duration) {
        let position = match self.lists.iter().position(|(id, _)| *id == upstream_id) {
            Some(position) => position,
            None => {
                self.lists.push((upstream_id, VecDeque::new()));
                self.lists.len() - 1
            }
        };
        let list = &mut self.lists[position].1;
        let now = Instant::now();
        while list
            .front()
            .is_some_and(|(_, since)| now.duration_since(*since) > idle_timeout)
        {
            list.pop_front();
        }
        if list.len() >= IDLE_MAX_PER_UPSTREAM {
            // The oldest goes: the newest are the ones reused.
            list.pop_front();
        }
        list.push_back((connection, now));
        debug_assert!(list.len() <= IDLE_MAX_PER_UPSTREAM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_bounded_and_expiring() {
        let mut lists = IdleLists::new();
        let long = Duration::from_secs(60);
        for n in 0..IDLE_MAX_PER_UPSTREAM + 2 {
            lists.checkin(7, n, long);
        }
        lists.checkin(8, 1000, long);
        let newest = IDLE_MAX_PER_UPSTREAM + 1;
        assert_eq!(lists.checkout(7, long, |_| true), Some(newest));
        // Unusable ones are dropped on the way to a usable one.
        assert_eq!(lists.checkout(7, long, |n| *n % 2 == 1), Some(newest - 2));
        assert_eq!(lists.checkout(8, long, |_| true), Some(1000));
        assert_eq!(lists.checkout(8, long, |_| true), None);
        assert_eq!(lists.checkout(9, long, |_| true), None);
        let mut left = 0;
        while lists.checkout(7, long, |_| true).is_some() {
            left += 1;
        }
        // Two were pushed out at the bound; three were taken above.
        assert_eq!(left, IDLE_MAX_PER_UPSTREAM - 3);
        lists.checkin(7, 1, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(lists.checkout(7, Duration::ZERO, |_| true), None);
    }
}
