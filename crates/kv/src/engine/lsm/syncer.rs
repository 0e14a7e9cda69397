//! The fsync thread of `--fsync always`: durability waits off the async
//! workers and out of the keyspace lock.
//!
//! Why it exists: a connection commits its batch with `lsm::Db::write_nosync`
//! under the keyspace lock (the write is applied and numbered), releases the
//! lock, and only then waits until the commit log is durable up to that
//! number, before it writes any reply. The wait is blocking disk work, so it
//! must not run on a tokio worker; one dedicated thread does it for every
//! connection. Each waiter sends its sequence number with a oneshot sender;
//! the thread takes every request queued so far, makes the log durable up to
//! the highest of them with one `sync_to` (one group fsync), and answers all
//! of them with its outcome. While it fsyncs, new requests queue up and ride
//! the next fsync together: 50 clients share fsyncs instead of taking turns
//! behind the lock. If the fsync fails, every request it covered gets the
//! error (and the LSM disables writes, so later ones fail too): no reply is
//! ever sent for a write that is not durable.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::engine::{EngineError, PendingSync, sync_stopped};

/// One connection waiting for its commit to be durable.
struct Request {
    /// The sequence number of the commit's last write.
    seq: u64,
    /// Answered with the fsync's outcome.
    done: oneshot::Sender<Result<(), EngineError>>,
}

/// The fsync thread and the queue feeding it (see the module docs). Dropping
/// it lets the thread answer what is queued and exit, and joins it.
pub(super) struct Syncer {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread over `db`.
    pub fn start(db: Arc<lsm::Db>) -> std::io::Result<Syncer> {
        let (queue, requests) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kv-fsync".into())
            .spawn(move || run(&db, &requests))?;
        Ok(Syncer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues a wait for sequence number `seq`; the returned handle resolves
    /// once the log is durable up to it (or the fsync failed).
    pub fn submit(&self, seq: u64) -> PendingSync {
        let (done, rx) = oneshot::channel();
        let request = Request { seq, done };
        if let Err(mpsc::SendError(request)) = self.queue.as_ref().expect("open").send(request) {
            // The thread is gone (it only stops when dropped, or by a panic):
            // the write's durability is unknown, so it is not acknowledged.
            let _ = request.done.send(Err(sync_stopped()));
        }
        PendingSync(rx)
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The sequence number one fsync must cover to answer `requests`: the highest.
fn target(requests: &[Request]) -> u64 {
    requests.iter().map(|r| r.seq).max().unwrap_or(0)
}

fn run(db: &lsm::Db, requests: &mpsc::Receiver<Request>) {
    let mut group = Vec::new();
    while let Ok(first) = requests.recv() {
        group.push(first);
        group.extend(requests.try_iter());
        let outcome = db
            .sync_to(target(&group))
            .map_err(|e| EngineError::Storage(e.to_string()));
        if let Err(err) = &outcome {
            tracing::error!(error = %err, waiters = group.len(), "commit-log fsync failed");
        }
        for request in group.drain(..) {
            // A waiter that went away (its client disconnected) needs no answer.
            let _ = request.done.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(db: &lsm::Db, key: &[u8]) -> u64 {
        db.write_nosync(lsm::WriteBatch::new().put(key, b"v"))
            .expect("write")
    }

    /// Waits queued while nothing is fsynced are answered by one fsync, each
    /// only once its write is durable.
    #[tokio::test]
    async fn queued_waits_share_one_fsync_and_resolve_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(lsm::Db::open(dir.path(), lsm::Options::default()).expect("open"));
        let seqs: Vec<u64> = (0..20u8).map(|i| put(&db, &[i])).collect();
        let syncer = Syncer::start(db.clone()).expect("thread");
        let pending: Vec<_> = seqs.iter().map(|&seq| syncer.submit(seq)).collect();
        for wait in pending {
            wait.wait().await.expect("durable");
        }
        let stats = db.stats();
        assert!(stats.durable_sequence >= *seqs.last().expect("some"));
        // The first fsync covered every write made before it.
        assert_eq!(stats.wal_syncs, 1);
        drop(syncer);
        // Dropping the syncer releases its handle: the store can be reopened.
        drop(db);
        lsm::Db::open(dir.path(), lsm::Options::default()).expect("reopen");
    }

    #[test]
    fn one_fsync_covers_the_highest_number() {
        let (done, _rx) = oneshot::channel();
        let (done2, _rx2) = oneshot::channel();
        let group = [
            Request { seq: 7, done },
            Request {
                seq: 3,
                done: done2,
            },
        ];
        assert_eq!(target(&group), 7);
        assert_eq!(target(&[]), 0);
    }
}
