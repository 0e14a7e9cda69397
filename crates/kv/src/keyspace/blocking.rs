//! The keys clients are blocked on (`BLPOP`, `BZPOPMIN`, `XREAD BLOCK`...):
//! key → FIFO queue of [`Waiter`]s, woken by any write to the key.
//!
//! It sits next to `WATCH`'s table and for the same reason: both are
//! "clients interested in a key", and every modification of a key already
//! passes through the keyspace's `touch`. Keeping the queues under the
//! keyspace lock means a client registers under the same lock hold in which
//! its command found nothing, so a write can never slip in between unseen.
//!
//! The rules (the whole mechanism is described in `crate::state::blocking`):
//! - a write to a key gives the *turn* on it to the first waiter of its
//!   queue, and wakes it;
//! - a waiter that leaves the queue (served, timed out, disconnected,
//!   `CLIENT UNBLOCK`ed) or that re-ran and must wait again hands each turn
//!   it holds on: to the waiter after it in that key's queue, if the key
//!   still exists. So one push of 3 elements serves 3 waiters in FIFO
//!   order, a list emptied by the first ends the chain, and a wake walks
//!   only the queue of the key that was written, once (queues keep the
//!   order in which clients blocked, so a turn only ever moves back).
//!
//! Waking is a `tokio::sync::Notify` permit: a wake that arrives while the
//! waiter's connection is busy is kept, never lost. Spurious wakes are
//! harmless: the woken client re-runs its command, which blocks again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use bytes::Bytes;

use super::Keyspace;

/// One blocked client, as the key queues hold it.
#[derive(Debug)]
pub struct Waiter {
    /// The client's id (`CLIENT UNBLOCK`).
    pub client: u64,
    /// The keys it waits on, without duplicates.
    keys: Vec<Bytes>,
    /// Wakes the client's connection.
    notify: tokio::sync::Notify,
    /// Set by `CLIENT UNBLOCK` (see [`Unblock`]), `0` otherwise.
    unblocked: AtomicU8,
    /// The keys whose turn this waiter holds: written while it waited, or
    /// handed on to it. Only read and written under the keyspace lock (the
    /// mutex is for `Sync`, never contended).
    turns: parking_lot::Mutex<Vec<Bytes>>,
}

/// How `CLIENT UNBLOCK` ends a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblock {
    /// As if the timeout had passed.
    Timeout,
    /// With an `UNBLOCKED` error.
    Error,
}

impl Waiter {
    /// Gives this waiter the turn on `key` and wakes it; `true` if it held
    /// no turn before.
    fn give_turn(&self, key: &Bytes) -> bool {
        let mut turns = self.turns.lock();
        let was_idle = turns.is_empty();
        if !turns.contains(key) {
            turns.push(key.clone());
        }
        drop(turns);
        self.notify.notify_one();
        was_idle
    }

    /// Resolves when the client should re-run its command (a write to one of
    /// its keys, its turn handed on, or `CLIENT UNBLOCK`).
    pub async fn woken(&self) {
        self.notify.notified().await;
    }

    /// Whether `CLIENT UNBLOCK` ended the wait, and how.
    pub fn unblocked(&self) -> Option<Unblock> {
        match self.unblocked.load(Ordering::Acquire) {
            1 => Some(Unblock::Timeout),
            2 => Some(Unblock::Error),
            _ => None,
        }
    }

    /// The keys waited on.
    pub fn keys(&self) -> &[Bytes] {
        &self.keys
    }
}

/// The queues (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Blocked {
    /// Key → its waiters, oldest first.
    by_key: HashMap<Bytes, VecDeque<Arc<Waiter>>>,
    /// Client id → its waiter (one at a time per client).
    by_client: HashMap<u64, Arc<Waiter>>,
    /// Waiters holding a turn they have not used yet (see
    /// [`Keyspace::turns_pending`]); shared so connections can wait for
    /// it to drop without taking the keyspace lock.
    pending: Arc<AtomicUsize>,
}

impl Blocked {
    /// Called by every modification of `key`: gives its first waiter the
    /// turn on it.
    pub(super) fn touched(&self, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some((key, queue)) = self.by_key.get_key_value(key)
            && let Some(first) = queue.front()
            && first.give_turn(key)
        {
            self.pending.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Keyspace {
    /// Queues client `client` on `keys` (duplicates ignored), behind the
    /// clients already waiting on them. Call under the same lock hold in
    /// which the client's command found nothing to serve.
    pub fn block(&mut self, client: u64, keys: &[Bytes]) -> Arc<Waiter> {
        let mut unique: Vec<Bytes> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(key) {
                unique.push(key.clone());
            }
        }
        let waiter = Arc::new(Waiter {
            client,
            keys: unique,
            notify: tokio::sync::Notify::new(),
            unblocked: AtomicU8::new(0),
            turns: parking_lot::Mutex::new(Vec::new()),
        });
        for key in &waiter.keys {
            self.blocked
                .by_key
                .entry(key.clone())
                .or_default()
                .push_back(waiter.clone());
        }
        self.blocked.by_client.insert(client, waiter.clone());
        waiter
    }

    /// Hands each turn `waiter` holds to the waiter queued right after it on
    /// that key, if the key still exists (see the module docs); with
    /// `leave`, `waiter` also leaves every queue. Only turns move on: a key
    /// nobody wrote wakes nobody.
    fn hand_on(&mut self, waiter: &Arc<Waiter>, leave: bool) {
        let turns = std::mem::take(&mut *waiter.turns.lock());
        if !turns.is_empty() {
            self.blocked.pending.fetch_sub(1, Ordering::AcqRel);
        }
        for key in &waiter.keys {
            let Some(queue) = self.blocked.by_key.get_mut(key) else {
                continue;
            };
            let Some(at) = queue.iter().position(|w| Arc::ptr_eq(w, waiter)) else {
                continue;
            };
            let next = if leave {
                queue.remove(at);
                at
            } else {
                at + 1
            };
            let next = queue.get(next).cloned();
            if queue.is_empty() {
                self.blocked.by_key.remove(key);
            }
            let Some(next) = next.filter(|_| turns.contains(key)) else {
                continue;
            };
            // An engine error counts as "exists": a spurious wake is harmless.
            if !matches!(self.engine.peek(key), Ok(None)) && next.give_turn(key) {
                self.blocked.pending.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// The client retried and must wait again: its place in the queues is
    /// kept, and the turn passes to the next waiter (see the module docs).
    pub fn pass_on(&mut self, waiter: &Arc<Waiter>) {
        self.hand_on(waiter, false);
    }

    /// The client stops waiting (served, timed out, gone): it leaves every
    /// queue, handing its turn on.
    pub fn unblock(&mut self, waiter: &Arc<Waiter>) {
        self.hand_on(waiter, true);
        if self
            .blocked
            .by_client
            .get(&waiter.client)
            .is_some_and(|w| Arc::ptr_eq(w, waiter))
        {
            self.blocked.by_client.remove(&waiter.client);
        }
    }

    /// `CLIENT UNBLOCK`: ends client `client`'s wait `how`; `false` if it is
    /// not blocked. Its connection replies and calls [`Keyspace::unblock`].
    pub fn unblock_client(&mut self, client: u64, how: Unblock) -> bool {
        let Some(waiter) = self.blocked.by_client.get(&client) else {
            return false;
        };
        let code = match how {
            Unblock::Timeout => 1,
            Unblock::Error => 2,
        };
        waiter.unblocked.store(code, Ordering::Release);
        waiter.notify.notify_one();
        true
    }

    /// How many blocked clients hold a turn they have not used: while any
    /// does, connections hold back their next command (briefly; see
    /// `crate::state::blocking`), so a woken client is served before others
    /// run, as in Redis. Readable without the keyspace lock.
    pub fn turns_pending(&self) -> Arc<AtomicUsize> {
        self.blocked.pending.clone()
    }

    /// Clients blocked on keys (`INFO clients`' `blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.blocked.by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::value::Entry;

    fn keyspace() -> Keyspace {
        let config = crate::config::Config::default();
        Keyspace::new(Box::new(MemoryEngine::new(
            0,
            config.maxmemory_policy,
            config.maxmemory_samples,
        )))
    }

    /// Whether `waiter` has a wake pending.
    fn woken(waiter: &Waiter) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(1), waiter.woken())
                .await
                .is_ok()
        })
    }

    #[test]
    fn a_write_wakes_the_first_waiter_and_each_leaver_hands_on() {
        let mut ks = keyspace();
        let key = Bytes::from_static(b"k");
        let a = ks.block(1, std::slice::from_ref(&key));
        let b = ks.block(2, &[key.clone(), key.clone()]);
        let c = ks.block(3, std::slice::from_ref(&key));
        assert_eq!(b.keys().len(), 1, "duplicate keys are queued once");
        assert_eq!(ks.blocked_clients(), 3);
        ks.put(key.clone(), Entry::string(Bytes::from_static(b"v")))
            .expect("put");
        assert!(woken(&a) && !woken(&b) && !woken(&c), "only the first");
        ks.pass_on(&a);
        assert!(woken(&b) && !woken(&c), "the turn passes to the next");
        ks.unblock(&b);
        assert!(woken(&c), "a leaver hands on while the key exists");
        ks.remove(&key, 0).expect("del");
        ks.unblock(&a);
        assert!(!woken(&c), "no key, no wake");
        ks.unblock(&c);
        assert_eq!(ks.blocked_clients(), 0);
        assert!(ks.blocked.by_key.is_empty(), "nothing left behind");
        assert_eq!(ks.turns_pending().load(Ordering::Acquire), 0);
    }

    #[test]
    fn only_the_written_key_passes_its_turn_on() {
        let mut ks = keyspace();
        let (k1, k2) = (Bytes::from_static(b"k1"), Bytes::from_static(b"k2"));
        let a = ks.block(1, &[k1.clone(), k2.clone()]);
        let b = ks.block(2, std::slice::from_ref(&k2));
        let c = ks.block(3, &[k2.clone(), k1.clone()]);
        // Keys of another type: nobody can be served, every re-run passes on.
        let string = || Entry::string(Bytes::from_static(b"v"));
        ks.put(k2.clone(), string()).expect("put");
        ks.put(k1.clone(), string()).expect("put");
        assert!(woken(&a) && !woken(&b) && !woken(&c), "the first waiter");
        ks.pass_on(&a);
        assert!(woken(&b) && woken(&c), "k2's turn to b, k1's to c");
        ks.pass_on(&b);
        assert!(woken(&c), "k2's turn to c");
        ks.pass_on(&c);
        assert!(
            !woken(&a) && !woken(&b),
            "c is last everywhere: the walk ends"
        );
        ks.pass_on(&a);
        assert!(!woken(&b) && !woken(&c), "a holds no turn: it wakes nobody");
        for w in [&a, &b, &c] {
            ks.unblock(w);
        }
        assert!(ks.blocked.by_key.is_empty());
        assert_eq!(ks.turns_pending().load(Ordering::Acquire), 0);
    }

    #[test]
    fn client_unblock_marks_and_wakes() {
        let mut ks = keyspace();
        let a = ks.block(7, &[Bytes::from_static(b"k")]);
        assert!(!ks.unblock_client(8, Unblock::Error));
        assert!(ks.unblock_client(7, Unblock::Error));
        assert!(woken(&a));
        assert_eq!(a.unblocked(), Some(Unblock::Error));
    }
}
