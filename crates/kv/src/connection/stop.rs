//! One cheap "this connection must stop" signal for the connection loop's
//! idle wait.
//!
//! A connection stops when the server shuts down or when its client, as a
//! subscriber, broke its output limit (both `CancellationToken`s). Waiting
//! on the two tokens directly in every idle wait cost two registrations in
//! their waiter lists (a mutex each), two cancellation checks (another mutex
//! each) and two unregistrations per command: profiles of non-pipelined
//! commands put it at a tenth of the server's instructions. Instead a small
//! watcher task per connection waits on both tokens once and raises a flag;
//! the loop's wait polls the flag (an atomic load and a waker swap).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Poll, Waker};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the connection must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// The server is shutting down.
    Shutdown,
    /// The client broke its pub/sub output limit.
    Condemned,
}

/// `Flag::why` values (0: running).
const SHUTDOWN: u8 = 1;
const CONDEMNED: u8 = 2;

#[derive(Debug, Default)]
struct Flag {
    why: AtomicU8,
    waker: parking_lot::Mutex<Option<Waker>>,
}

impl Flag {
    fn why(&self) -> Option<Why> {
        match self.why.load(Ordering::Acquire) {
            SHUTDOWN => Some(Why::Shutdown),
            CONDEMNED => Some(Why::Condemned),
            _ => None,
        }
    }
}

/// The signal (see the module docs); dropping it ends its watcher.
#[derive(Debug)]
pub(super) struct Stop {
    flag: Arc<Flag>,
    watcher: JoinHandle<()>,
}

impl Stop {
    /// Starts watching `shutdown` and `condemned` (needs a tokio runtime).
    pub(super) fn watch(shutdown: CancellationToken, condemned: CancellationToken) -> Stop {
        let flag = Arc::new(Flag::default());
        let raised = flag.clone();
        let watcher = tokio::spawn(async move {
            let why = tokio::select! {
                () = shutdown.cancelled() => SHUTDOWN,
                () = condemned.cancelled() => CONDEMNED,
            };
            raised.why.store(why, Ordering::Release);
            if let Some(waker) = raised.waker.lock().take() {
                waker.wake();
            }
        });
        Stop { flag, watcher }
    }

    /// Resolves once the connection must stop.
    pub(super) fn stopped(&self) -> impl Future<Output = Why> + '_ {
        std::future::poll_fn(|cx| {
            if let Some(why) = self.flag.why() {
                return Poll::Ready(why);
            }
            {
                let mut waker = self.flag.waker.lock();
                match &*waker {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
            }
            // Raised between the check and the store: its wake may have
            // found no waker, so look again.
            match self.flag.why() {
                Some(why) => Poll::Ready(why),
                None => Poll::Pending,
            }
        })
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_a_waiting_connection_with_the_reason() {
        for (cancel_shutdown, want) in [(true, Why::Shutdown), (false, Why::Condemned)] {
            let (shutdown, condemned) = (CancellationToken::new(), CancellationToken::new());
            let stop = Stop::watch(shutdown.clone(), condemned.clone());
            let waiting = tokio::time::timeout(Duration::from_millis(20), stop.stopped()).await;
            assert!(waiting.is_err(), "nothing fired yet");
            if cancel_shutdown {
                shutdown.cancel();
            } else {
                condemned.cancel();
            }
            let why = tokio::time::timeout(Duration::from_secs(5), stop.stopped()).await;
            assert_eq!(why.expect("woken"), want);
            // Already raised: ready at once.
            assert_eq!(stop.stopped().await, want);
        }
    }

    #[tokio::test]
    async fn dropping_it_ends_the_watcher() {
        let stop = Stop::watch(CancellationToken::new(), CancellationToken::new());
        let watcher = stop.watcher.abort_handle();
        drop(stop);
        tokio::time::timeout(Duration::from_secs(5), async {
            while !watcher.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the watcher ends");
    }
}
