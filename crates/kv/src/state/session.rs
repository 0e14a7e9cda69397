//! One client's state, as the commands see it: protocol version,
//! authentication, the open transaction, watched keys, subscriptions.
//!
//! It lives below the command layer (not in the connection) so that a
//! command is a function of (state, arguments, this) that runs without a
//! socket: the connection owns a [`ConnState`] and hands it to each command,
//! and a unit test or the fuzz target builds one with [`ConnState::new`].

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use super::blocking::{BlockRequest, Blocked};
use crate::clients::ClientInfo;
use crate::keyspace::WatchSet;
use crate::protocol::ProtocolVersion;
use crate::pubsub::Subscriber;

/// A transaction being queued.
#[derive(Debug, Default)]
pub(crate) struct MultiState {
    /// Queued commands: table index and arguments.
    pub(crate) queued: Vec<(usize, Vec<Bytes>)>,
    /// A queued command was rejected: `EXEC` must answer `EXECABORT`.
    pub(crate) aborted: bool,
}

/// What the connection must do after a replication command returned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReplRequest {
    /// `PSYNC replid offset` (`SYNC` = `legacy`): hand the socket to the feeder.
    Psync {
        /// The history the replica has (`?` = none).
        replid: String,
        /// The next byte it wants, 1-based (`-1` = none).
        offset: i64,
        /// Old `SYNC`: no `+FULLRESYNC` line before the payload.
        legacy: bool,
    },
    /// `WAIT numreplicas timeout`: answer once enough replicas acknowledged
    /// `offset` or at the deadline.
    Wait {
        /// Replicas wanted.
        numreplicas: usize,
        /// The offset they must reach.
        offset: u64,
        /// Unix ms; `None` = wait forever.
        deadline_ms: Option<u64>,
    },
}

/// Per-connection state the commands read and change.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// The client id.
    pub(crate) id: u64,
    /// RESP2 until `HELLO 3`.
    pub(crate) protocol: ProtocolVersion,
    /// Whether commands other than `AUTH`/`HELLO` are allowed.
    pub(crate) authenticated: bool,
    /// What `CLIENT LIST` shows (shared with the registry).
    pub(crate) info: Arc<ClientInfo>,
    /// `Some` between `MULTI` and `EXEC`/`DISCARD`.
    pub(crate) multi: Option<MultiState>,
    /// Keys watched for the next `EXEC`.
    pub(crate) watch: WatchSet,
    /// Subscribed channels.
    pub(crate) channels: HashSet<Bytes>,
    /// Subscribed patterns.
    pub(crate) patterns: HashSet<Bytes>,
    /// This client's message queue, as the hub sees it.
    pub(crate) subscriber: Subscriber,
    /// Whether the hub may have queued messages for this client: set by its
    /// first subscription, never cleared (messages may still be queued
    /// after the last `UNSUBSCRIBE`). Until then the connection does not
    /// look at its queue at all.
    pub(crate) inbox_used: bool,
    /// Set by `QUIT`: close once the reply is written.
    pub(crate) close_after_reply: bool,
    /// The clock for the commands of the current read (one clock read per
    /// pipelined batch, not per command; Redis caches its clock per event
    /// loop iteration the same way). `0` = read the clock.
    pub(crate) batch_now_ms: u64,
    /// When the previous command of the current batch ended: the next one's
    /// start for its latency metric (one clock read per command instead of
    /// two). `None` at the start of each batch.
    pub(crate) batch_clock: Option<std::time::Instant>,
    /// Set by a blocking command that found nothing (see
    /// [`super::blocking`]); taken by the connection right after it.
    pub(crate) block_request: Option<BlockRequest>,
    /// `Some` while the client waits on keys.
    pub(crate) blocked: Option<Blocked>,
    /// `CLIENT REPLY OFF`: no reply is sent until `CLIENT REPLY ON`.
    pub(crate) reply_off: bool,
    /// The reply of the command running now is dropped (`CLIENT REPLY SKIP`).
    pub(crate) reply_skip: bool,
    /// The reply of the next command is dropped (set by `CLIENT REPLY SKIP`).
    pub(crate) reply_skip_next: bool,
    /// `CLIENT NO-EVICT` (accepted; this server never evicts clients).
    pub(crate) no_evict: bool,
    /// `CLIENT NO-TOUCH`: this client's reads do not count as accesses for
    /// eviction (LRU/LFU), except `TOUCH`.
    pub(crate) no_touch: bool,
    /// This client is our primary's stream: it may write on a read-only
    /// replica, and its writes are not propagated again.
    pub(crate) master_link: bool,
    /// `REPLCONF listening-port` (a replica's own port).
    pub(crate) listening_port: u16,
    /// Set by `PSYNC`/`SYNC`/`WAIT` for the connection to act on.
    pub(crate) repl_request: Option<ReplRequest>,
}

impl ConnState {
    /// A fresh client: RESP2, no transaction, no subscriptions;
    /// `authenticated` when the server has no `requirepass`.
    pub(crate) fn new(info: Arc<ClientInfo>, subscriber: Subscriber, authenticated: bool) -> Self {
        ConnState {
            id: info.id,
            protocol: ProtocolVersion::Resp2,
            authenticated,
            info,
            multi: None,
            watch: WatchSet::default(),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            subscriber,
            inbox_used: false,
            close_after_reply: false,
            batch_now_ms: 0,
            batch_clock: None,
            block_request: None,
            blocked: None,
            reply_off: false,
            reply_skip: false,
            reply_skip_next: false,
            no_evict: false,
            no_touch: false,
            master_link: false,
            listening_port: 0,
            repl_request: None,
        }
    }

    /// Called once per command after it ran: whether its reply is sent
    /// (`CLIENT REPLY`), and a `SKIP` moves on to the next command.
    pub(crate) fn reply_wanted(&mut self) -> bool {
        let send = !self.reply_off && !self.reply_skip;
        self.reply_skip = std::mem::take(&mut self.reply_skip_next);
        send
    }

    /// Marks the open transaction as failed (a queued command was rejected).
    pub(crate) fn flag_multi_error(&mut self) {
        if let Some(multi) = self.multi.as_mut() {
            multi.aborted = true;
        }
    }

    /// RESP2 clients with subscriptions may only run pub/sub commands.
    pub(crate) fn in_resp2_subscribed_context(&self) -> bool {
        self.protocol == ProtocolVersion::Resp2 && self.subscribed()
    }

    /// Whether the client has any channel or pattern subscription.
    pub(crate) fn subscribed(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty())
    }
}
