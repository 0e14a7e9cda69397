//! One repair round with one peer: the buckets a single tree descent found
//! differing, streamed over as many paced, bounded entries messages as they
//! need.
//!
//! Why it exists: a descent costs labels at every level of the tree (with
//! thousands of differing buckets, megabytes), while one entries message
//! may carry only `ae_entries_max` keys. Descending again after every
//! message repeats that cost once per message; keeping the bucket list
//! found by one descent and walking it with a cursor pays it once per
//! round. This type is the cursor, a pure function of the messages seen
//! and the time, so the node only lists keys and sends.
//!
//! # Loss and change
//!
//! One chunk is in flight at a time. The cursor moves only when the peer's
//! answer (its own entries for the chunk, naming the buckets it covered)
//! comes back, so a lost chunk or a lost answer is sent again after
//! `retry_ms`, recomputed from the store as it is then; after
//! [`ATTEMPTS_MAX`] unanswered tries the round is given up and the next
//! descent starts over. An answer that covers only a prefix of the chunk
//! (the peer had more keys there than fit a message) moves the cursor past
//! that prefix only. Late or duplicate answers name buckets behind the
//! cursor and are ignored. The list is not refreshed while it is walked:
//! joins are idempotent, so a bucket that became equal meanwhile costs
//! only its resend, and a bucket that began to differ meanwhile is found
//! by the descent that verifies the round when it ends.

/// Unanswered sends of one chunk before the round is given up.
pub const ATTEMPTS_MAX: u32 = 3;

/// What a repair round wants to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Send a chunk starting at the first of [`Repair::remaining`].
    Send,
    /// Nothing yet (a chunk is in flight, or pacing).
    Wait,
    /// Every bucket was exchanged: verify with a descent.
    Done,
    /// The peer stopped answering: drop the round.
    GiveUp,
}

/// The cursor over one round's differing buckets (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    buckets: Vec<u32>,
    /// The first bucket not yet answered.
    next: usize,
    /// The chunk in flight: its end in `buckets` and when it was sent.
    in_flight: Option<(usize, u64)>,
    /// When the next chunk may go.
    due_ms: u64,
    /// Sends of the chunk in flight so far.
    attempts: u32,
}

impl Repair {
    /// A round over `buckets` (any order, duplicates ignored), its first
    /// chunk due at `now_ms`.
    pub fn new(mut buckets: Vec<u32>, now_ms: u64) -> Repair {
        buckets.sort_unstable();
        buckets.dedup();
        Repair {
            buckets,
            next: 0,
            in_flight: None,
            due_ms: now_ms,
            attempts: 0,
        }
    }

    /// The buckets not yet answered, ascending.
    pub fn remaining(&self) -> &[u32] {
        &self.buckets[self.next..]
    }

    /// What to do at `now_ms`, resending after `retry_ms` without answer.
    pub fn poll(&self, now_ms: u64, retry_ms: u64) -> Poll {
        match self.in_flight {
            _ if self.next == self.buckets.len() => Poll::Done,
            Some((_, sent_ms)) if now_ms < sent_ms + retry_ms => Poll::Wait,
            Some(_) if self.attempts >= ATTEMPTS_MAX => Poll::GiveUp,
            Some(_) => Poll::Send,
            None if now_ms < self.due_ms => Poll::Wait,
            None => Poll::Send,
        }
    }

    /// A chunk of the first `count` remaining buckets was sent at `now_ms`.
    pub fn sent(&mut self, count: usize, now_ms: u64) {
        let count = count.clamp(1, self.remaining().len().max(1));
        let end = (self.next + count).min(self.buckets.len());
        match self.in_flight {
            Some((old_end, _)) if old_end == end => self.attempts += 1,
            _ => self.attempts = 1,
        }
        self.in_flight = Some((end, now_ms));
    }

    /// The peer answered a chunk, covering `covered` (ascending); the next
    /// chunk is due `pace_ms` later. Returns how many buckets it moved the
    /// cursor past (0: a late or foreign answer, ignored).
    pub fn answered(&mut self, covered: &[u32], now_ms: u64, pace_ms: u64) -> usize {
        let Some((end, _)) = self.in_flight else {
            return 0;
        };
        let moved = self.buckets[self.next..end]
            .iter()
            .take_while(|b| covered.binary_search(b).is_ok())
            .count();
        if moved > 0 {
            self.next += moved;
            self.in_flight = None;
            self.attempts = 0;
            self.due_ms = now_ms + pace_ms;
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_moves_only_on_answers_and_resends_what_was_lost() {
        let mut r = Repair::new(vec![9, 3, 5, 3, 7], 0);
        assert_eq!(r.remaining(), &[3, 5, 7, 9]);
        assert_eq!(r.poll(0, 1000), Poll::Send);
        r.sent(2, 0);
        assert_eq!(r.poll(10, 1000), Poll::Wait, "one chunk in flight");
        // The chunk (or its answer) was lost: the same buckets go again.
        assert_eq!(r.poll(1000, 1000), Poll::Send);
        r.sent(2, 1000);
        assert_eq!(r.remaining(), &[3, 5, 7, 9]);
        // The peer covered only the first bucket: the cursor passes it.
        assert_eq!(r.answered(&[3], 1010, 100), 1);
        assert_eq!(r.poll(1050, 1000), Poll::Wait, "paced");
        assert_eq!(r.poll(1110, 1000), Poll::Send);
        r.sent(3, 1110);
        // A late answer to the first chunk names buckets behind the cursor.
        assert_eq!(r.answered(&[3], 1120, 100), 0);
        assert_eq!(r.answered(&[5, 7, 9], 1130, 100), 3);
        assert_eq!(r.poll(1130, 1000), Poll::Done);
    }

    #[test]
    fn a_silent_peer_ends_the_round() {
        let mut r = Repair::new(vec![1], 0);
        for i in 0..ATTEMPTS_MAX {
            assert_eq!(r.poll(u64::from(i) * 1000, 1000), Poll::Send);
            r.sent(1, u64::from(i) * 1000);
        }
        assert_eq!(r.poll(u64::from(ATTEMPTS_MAX) * 1000, 1000), Poll::GiveUp);
        assert_eq!(Repair::new(Vec::new(), 0).poll(0, 1000), Poll::Done);
    }
}
