//! Primary–replica replication over TCP, Redis's protocol (PSYNC2): the
//! I/O that runs `state::repl`'s decisions.
//!
//! ```text
//!  replica                                   primary
//!  PING, REPLCONF listening-port/capa ──────▶
//!  PSYNC <replid> <offset+1> | PSYNC ? -1 ──▶ continue_from(replid, offset)?
//!       ◀── +CONTINUE <replid>, backlog bytes      (partial)
//!       ◀── +FULLRESYNC <replid> <offset>, $len RDB, stream   (full)
//!  apply commands, REPLCONF ACK <offset> ───▶ acks (WAIT, min-replicas)
//! ```
//! - [`primary`]: a connection that sent `PSYNC`/`SYNC` is handed here and
//!   fed the snapshot (taken on a blocking thread) and the stream;
//! - [`replica`]: the task that follows the primary `REPLICAOF` names,
//!   loads its snapshot (refusing a corrupt one, keeping the old data), applies
//!   the stream as a client that may write on a read-only replica, and
//!   reconnects with the offset it reached, for a partial resync.
//!
//! Limits: the snapshot is built in memory under the keyspace lock
//! (Redis forks instead; clients wait while it is built), the replica
//! buffers a snapshot of at most [`RDB_BYTES_MAX`], streams (RDB types 15,
//! 19) are not serialized, and keys deleted by expiry or eviction on the
//! primary are not propagated (replicas expire by the same absolute
//! deadlines, which relative expiries are rewritten to).

pub(crate) mod primary;
pub(crate) mod replica;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::State;

/// The largest snapshot a replica accepts (bigger: refused, not buffered).
pub const RDB_BYTES_MAX: u64 = 8 << 30;
/// How long a link may be silent before it is considered dead (Redis's
/// `repl-timeout`).
pub const REPL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a primary pings its replicas (Redis's `repl-ping-replica-period`).
pub const PING_PERIOD: Duration = Duration::from_secs(10);

/// `WAIT`: how many replicas acknowledged `offset`, once `numreplicas`
/// did, or at `deadline_ms` (Unix ms; `None` = no deadline), or shutdown.
pub(crate) async fn wait_acks(
    state: &State,
    numreplicas: usize,
    offset: u64,
    deadline_ms: Option<u64>,
    stop: &CancellationToken,
) -> usize {
    loop {
        let notified = state.repl.acks.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let acked = state.repl.acked(offset);
        if acked >= numreplicas {
            return acked;
        }
        let sleep = async {
            match deadline_ms {
                Some(at) => {
                    tokio::time::sleep(Duration::from_millis(at.saturating_sub(clock::now_ms())))
                        .await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = notified => {}
            () = sleep => return state.repl.acked(offset),
            () = stop.cancelled() => return acked,
        }
    }
}
