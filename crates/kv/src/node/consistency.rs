//! `KV.CONSISTENCY`: a connection's own `W`, `R` and quorum mode, the
//! chapter's "tunable consistency" per client rather than per cluster.
//!
//! Why it exists: the cluster's `N`, `W`, `R` (`--replicas`,
//! `--write-quorum`, `--read-quorum`) fit its usual traffic; a client that
//! needs more (a read that must see its last write) or less (a fast
//! best-effort write) says so for its connection, and every later command
//! on it, forwarded to whichever coordinator, runs with that quorum.
//!
//! | form | effect |
//! |---|---|
//! | `KV.CONSISTENCY` | `[N, W, R, mode]` in force on this connection |
//! | `KV.CONSISTENCY W R` | this connection's `W` and `R` (each `1..=N`) |
//! | `KV.CONSISTENCY N W R` | the same, `N` checked against the cluster's (the ring places `N` copies; it cannot change per request) |
//! | `KV.CONSISTENCY STRICT` | strict quorum: only the key's own `N` replicas count |
//! | `KV.CONSISTENCY SLOPPY` | sloppy quorum: a down replica's place is taken by the next healthy node, with a hint |
//! | `KV.CONSISTENCY DEFAULT` | back to the cluster's settings |
//!
//! # What the settings promise
//!
//! - **`W + R > N` under a strict quorum**: every read quorum meets every
//!   write quorum, so a read sees every write acknowledged before it
//!   started (read-your-writes, and monotonic reads while the
//!   coordinator stays the same). The simulation checks that such
//!   histories are linearizable when nothing fails.
//! - **A sloppy quorum is not linearizable, even when `W + R > N`**: the
//!   `W` acks may come from substitutes outside the key's replicas, and a
//!   later read of `R` real replicas need not meet any of them; the write
//!   reaches its replicas only when hints are handed off or anti-entropy
//!   runs. Sloppy buys availability of writes, not consistency.
//! - **`W + R ≤ N`** (`1 1` is the fastest): a read may miss an
//!   acknowledged write until replication, read repair or anti-entropy
//!   brings it; nothing acknowledged is lost either way.
//!
//! The setting belongs to the connection: it lasts until the connection
//! closes or `KV.CONSISTENCY DEFAULT`.

use bytes::Bytes;

use super::resp::{Shared, wrong_args};
use crate::cluster::placement::QuorumMode;
use crate::cluster::quorum::Consistency;
use crate::protocol::Frame;

fn count(arg: &[u8], n: usize) -> Result<usize, Frame> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|x| (1..=n).contains(x))
        .ok_or_else(|| Frame::error(format!("ERR W and R must be integers between 1 and N={n}")))
}

/// Runs `KV.CONSISTENCY args...` on this connection's settings.
pub(super) fn command(shared: &mut Shared, args: &[Bytes]) -> Frame {
    let n = shared.quorum.n;
    let word = args
        .first()
        .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase());
    let next = match (word.as_deref(), args.len()) {
        (None, _) => return show(shared),
        (Some("DEFAULT"), 1) => Consistency::default(),
        (Some("STRICT"), 1) => Consistency {
            mode: Some(QuorumMode::Strict),
            ..shared.consistency
        },
        (Some("SLOPPY"), 1) => Consistency {
            mode: Some(QuorumMode::Sloppy),
            ..shared.consistency
        },
        (_, 2 | 3) => {
            let (w, r) = (&args[args.len() - 2], &args[args.len() - 1]);
            if args.len() == 3 && args[0][..] != *n.to_string().as_bytes() {
                return Frame::error(format!(
                    "ERR N is the cluster's ({n}): the ring places N copies of every key"
                ));
            }
            let (w, r) = match (count(w, n), count(r, n)) {
                (Ok(w), Ok(r)) => (w, r),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            Consistency {
                w: Some(w),
                r: Some(r),
                ..shared.consistency
            }
        }
        _ => return wrong_args("KV.CONSISTENCY"),
    };
    shared.consistency = next;
    Frame::Simple("OK")
}

fn show(shared: &Shared) -> Frame {
    let (q, mode) = shared.consistency.apply(shared.quorum, shared.mode);
    let mode = match mode {
        QuorumMode::Strict => "strict",
        QuorumMode::Sloppy => "sloppy",
    };
    Frame::Array(vec![
        Frame::Integer(q.n as i64),
        Frame::Integer(q.w as i64),
        Frame::Integer(q.r as i64),
        Frame::bulk(mode),
    ])
}
