//! One client connection: read, parse, execute, reply, and push messages.
//!
//! The loop is built for pipelining: it reads whatever arrived, executes
//! every complete command in the buffer, appends all replies to one output
//! buffer and writes it with a single syscall. With 50 clients sending one
//! command each that is one read and one write per command; with `-P 16` it
//! is one read and one write per 16 commands, which is where Redis's
//! throughput comes from too.
//!
//! The commands of one read run under one hold of the keyspace lock as one
//! write batch ([`execute_batch`]): their writes are committed together (one
//! commit-log record) *before* any of their replies is written, so an
//! acknowledged write is always a durable one, and a pipeline of 16 `SET`s
//! costs one log write instead of 16. Redis does the same: it writes the AOF
//! for a whole event-loop iteration before sending the replies. If the
//! commit fails, every reply from the batch's first write on becomes the
//! storage error (none of those writes happened).
//!
//! Under `--fsync always` the commit is split in two ([`Keyspace::commit_batch_deferred`]):
//! under the lock the batch is appended to the log and applied; then the
//! lock is *released* and the connection awaits the fsync (done by the lsm
//! engine's fsync thread, never on an async worker) before writing the
//! replies. Meanwhile other clients commit, and their waits join the same
//! group fsync: 50 clients share fsyncs instead of queueing behind the lock
//! for one each. If the fsync fails, the batch's write replies become the
//! storage error, exactly as for a failed commit (the writes' outcome is
//! unknown, and the engine refuses writes from then on). The price: another
//! client may read a write whose fsync has not finished (and that a crash
//! could still take back) before its writer is acknowledged; Redis with
//! `appendfsync always` has the same window.
//!
//! [`Keyspace::commit_batch_deferred`]: crate::keyspace::Keyspace::commit_batch_deferred
//!
//! Limits enforced here: the query buffer (`client-query-buffer-limit`), the
//! output flushed every [`OUTPUT_FLUSH_BYTES`] so a long pipeline cannot
//! grow it without bound, the pub/sub byte budget (see [`crate::pubsub`]),
//! the idle `timeout`, and shutdown. A protocol error gets its `-ERR` line
//! and the connection is closed, as Redis does: the stream cannot be trusted
//! after garbage.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::clients::ClientInfo;
use crate::command::{self, Ctx};
use crate::engine::{EngineError, PendingSync};
use crate::keyspace::Keyspace;
use crate::keyspace::blocking::{Unblock, Waiter};
use crate::protocol::{Frame, ParseLimits, ProtocolVersion, RequestParser};
use crate::pubsub::{Inbox, mailbox};
use crate::state::State;
use crate::state::blocking::Blocked;
use crate::state::session::ConnState;
use output::{encode_message, write_out};
use stop::{Stop, Why};

mod output;
mod repl;
mod stop;

/// Why a subscriber that fell too far behind is closed.
const PUBSUB_LIMIT: &str = "client-output-buffer-limit pubsub";
/// Flush the output buffer mid-pipeline once it holds this much.
const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// Spare room kept in the read buffer before each read.
const READ_CHUNK_BYTES: usize = 4 * 1024;
/// Commands run under one hold of the keyspace lock (one write batch) at
/// most: a huge pipeline is committed and the lock released every so often,
/// so other clients are not starved behind it.
const BATCH_COMMANDS_MAX: usize = 1024;

/// Why a connection ended (logged at debug level).
#[derive(Debug)]
enum Close {
    /// The client closed or `QUIT`.
    Client,
    /// The server is shutting down.
    Shutdown,
    /// The client broke a limit or the protocol.
    Limit(&'static str),
    /// The socket failed.
    Io(std::io::Error),
    /// `PSYNC`/`SYNC`: the socket goes to the replication feeder.
    Handoff,
}

/// Serves one client until it leaves, breaks a limit or `shutdown` fires.
pub(crate) async fn serve_connection(
    shared: Arc<State>,
    shutdown: CancellationToken,
    mut stream: TcpStream,
    info: Arc<ClientInfo>,
) {
    let _ = stream.set_nodelay(true);
    let (limits, requirepass_empty) = {
        let config = shared.config.read();
        let limits = ParseLimits {
            bulk_len_max: config.proto_max_bulk_len as usize,
            ..ParseLimits::default()
        };
        (limits, config.requirepass.is_empty())
    };
    let (subscriber, mut inbox) = mailbox(info.id);
    let mut state = ConnState::new(info, subscriber, requirepass_empty);
    let mut parser = RequestParser::new(limits);
    let close = run_loop(
        &shared,
        &shutdown,
        &mut stream,
        &mut state,
        &mut parser,
        &mut inbox,
    )
    .await;
    match &close {
        Close::Limit(why) => tracing::info!(client = state.id, reason = why, "closing client"),
        Close::Io(err) => tracing::debug!(client = state.id, error = %err, "connection failed"),
        Close::Client | Close::Shutdown | Close::Handoff => {}
    }
    // Leave no trace in the hub, the watch table or the blocked-key queues.
    if let Some(blocked) = state.blocked.take() {
        shared.db.lock().unblock(&blocked.waiter);
    }
    {
        let mut ctx = Ctx::new(&shared, &mut state);
        command::pubsub::unsubscribe_all(&mut ctx);
        command::transaction::discard_state(&mut ctx);
    }
    // A replica's `PSYNC` keeps the socket: the feeder owns it from here.
    if let Some(mut stream) = repl::hand_off(&shared, stream, &mut state, shutdown).await {
        let _ = stream.shutdown().await;
    }
}

async fn run_loop(
    shared: &State,
    shutdown: &CancellationToken,
    stream: &mut TcpStream,
    state: &mut ConnState,
    parser: &mut RequestParser,
    inbox: &mut Inbox,
) -> Close {
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut output = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let condemned = inbox.condemned().clone();
    let stop = Stop::watch(shutdown.clone(), condemned.clone());
    loop {
        // Messages published before this client's next commands ran go out
        // before their replies, as Redis orders them (it appends a message
        // to the output buffer the moment it is published).
        while state.inbox_used
            && let Some(message) = inbox.try_recv()
        {
            encode_message(&message, state.protocol, &mut output);
        }
        if let Err(close) = execute_buffered(
            shared,
            stream,
            state,
            parser,
            &mut input,
            &mut output,
            &condemned,
        )
        .await
        {
            let _ = write_out(stream, &mut output, &condemned).await;
            return close;
        }
        while state.inbox_used
            && let Some(message) = inbox.try_recv()
        {
            encode_message(&message, state.protocol, &mut output);
        }
        if let Err(close) = write_out(stream, &mut output, &condemned).await {
            return close;
        }
        match repl::act_on_request(shared, shutdown, state, &mut output).await {
            repl::Next::Handoff => return Close::Handoff,
            repl::Next::Replied => continue,
            repl::Next::Go => {}
        }
        if inbox.overflowed() {
            return Close::Limit(PUBSUB_LIMIT);
        }
        if input.len() as u64 > shared.config.read().client_query_buffer_limit {
            return Close::Limit("client-query-buffer-limit");
        }
        if input.capacity() - input.len() < READ_CHUNK_BYTES / 4 {
            input.reserve(READ_CHUNK_BYTES);
        }
        if let Some(blocked) = &state.blocked {
            if let Err(close) = wait_blocked(
                shared,
                shutdown,
                stream,
                state,
                &mut input,
                &mut output,
                inbox,
                &condemned,
                blocked.waiter.clone(),
            )
            .await
            {
                return close;
            }
            continue;
        }
        // Subscribers are idle by design; Redis exempts them too.
        let idle_secs = if state.subscribed() {
            0
        } else {
            shared.config.read().timeout
        };
        let idle = async {
            if idle_secs == 0 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_secs(idle_secs)).await;
        };
        // Biased (no random number per wait): the stop signal first, so a
        // client that always has input ready still sees it at once.
        tokio::select! {
            biased;
            why = stop.stopped() => return match why {
                Why::Shutdown => Close::Shutdown,
                Why::Condemned => Close::Limit(PUBSUB_LIMIT),
            },
            read = stream.read_buf(&mut input) => match read {
                Ok(0) => return Close::Client,
                Ok(_) => {}
                Err(err) => return Close::Io(err),
            },
            Some(message) = inbox.recv(), if state.inbox_used => {
                encode_message(&message, state.protocol, &mut output);
            }
            () = idle => return Close::Limit("idle timeout"),
        }
    }
}

/// Waits while the client is blocked (see [`crate::state::blocking`]) for a
/// wake (then the next [`execute_buffered`] re-runs the command), its
/// deadline (the timeout reply is appended), a message to push, or the end
/// of the connection. Input that arrives meanwhile is buffered, not run.
#[allow(clippy::too_many_arguments)]
async fn wait_blocked(
    shared: &State,
    shutdown: &CancellationToken,
    stream: &mut TcpStream,
    state: &mut ConnState,
    input: &mut BytesMut,
    output: &mut BytesMut,
    inbox: &mut Inbox,
    condemned: &CancellationToken,
    waiter: Arc<Waiter>,
) -> Result<(), Close> {
    let deadline = state.blocked.as_ref().and_then(|b| b.deadline_ms);
    let timeout = async {
        match deadline {
            Some(at) => {
                let left = at.saturating_sub(clock::now_ms());
                tokio::time::sleep(Duration::from_millis(left)).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = waiter.woken() => {
            if let Some(blocked) = state.blocked.as_mut() {
                blocked.woken = true;
            }
        }
        () = timeout => {
            if let Some(blocked) = state.blocked.take() {
                shared.db.lock().unblock(&blocked.waiter);
                if state.reply_wanted() {
                    blocked.timeout_reply.encode(state.protocol, output);
                }
            }
        }
        read = stream.read_buf(input) => match read {
            Ok(0) => return Err(Close::Client),
            Ok(_) => {}
            Err(err) => return Err(Close::Io(err)),
        },
        Some(message) = inbox.recv() => encode_message(&message, state.protocol, output),
        () = shutdown.cancelled() => return Err(Close::Shutdown),
        () = condemned.cancelled() => return Err(Close::Limit(PUBSUB_LIMIT)),
    }
    Ok(())
}

/// Whether the client waits on keys and has not been woken.
fn waiting(state: &ConnState) -> bool {
    state.blocked.as_ref().is_some_and(|b| !b.woken)
}

/// Executes every complete command in `input`, appending replies.
async fn execute_buffered(
    shared: &State,
    stream: &mut TcpStream,
    state: &mut ConnState,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    output: &mut BytesMut,
    condemned: &CancellationToken,
) -> Result<(), Close> {
    if waiting(state) || (input.is_empty() && state.blocked.is_none()) {
        return Ok(());
    }
    let age = state.info.connected.elapsed().as_secs();
    state.info.last_active_secs.store(age, Ordering::Relaxed);
    state.batch_now_ms = clock::now_ms();
    let mut gate_open = false;
    loop {
        let (step, deferred) = execute_batch(shared, state, parser, input, output, gate_open);
        gate_open = false;
        if let Some(deferred) = deferred {
            // The lock is released: other clients commit meanwhile and share
            // the fsync. Nothing of this batch is written before it resolves.
            if let Err(err) = deferred.pending.wait().await {
                tracing::warn!(client = state.id, error = %err, "write batch fsync failed");
                if let Some(writes) = &deferred.writes {
                    writes.take_back(err, state.protocol, output);
                }
            }
        }
        match step {
            Step::Drained => return Ok(()),
            Step::Close(close) => return Err(close),
            Step::Held => {
                // Woken blocked clients go first (see `state::blocking`);
                // then at least one command runs, whatever the gate says.
                write_out(stream, output, condemned).await?;
                shared.turns.wait().await;
                gate_open = true;
                state.batch_now_ms = clock::now_ms();
            }
            Step::Busy => {
                write_out(stream, output, condemned).await?;
                tokio::time::sleep(Duration::from_millis(10)).await;
                state.batch_now_ms = clock::now_ms();
            }
            Step::More => {
                if output.len() >= OUTPUT_FLUSH_BYTES {
                    write_out(stream, output, condemned).await?;
                }
            }
        }
    }
}

/// What [`execute_batch`] left to do.
enum Step {
    /// No complete command is left in the input.
    Drained,
    /// Stopped early (output to flush, or the command cap): call again.
    More,
    /// Woken blocked clients have turns to use: wait for them (bounded),
    /// then call again.
    Held,
    /// A woken blocked client cannot re-run while a script is busy: call
    /// again a little later.
    Busy,
    /// Close the connection once the output is written.
    Close(Close),
}

/// The replies of a batch's writes: from the first reply whose command
/// staged a write to the end of the batch's replies.
struct WriteReplies {
    /// Output offset of the first write's reply.
    offset: usize,
    /// Replies from there on.
    replies: usize,
    /// Output offset just past the batch's last reply.
    end: usize,
}

impl WriteReplies {
    /// Replaces every reply from the first write on with `err`: the commit
    /// failed, so none of those writes may be acknowledged. Output after the
    /// batch's replies (a protocol error) stays.
    fn take_back(&self, err: EngineError, protocol: ProtocolVersion, output: &mut BytesMut) {
        assert!(self.offset <= self.end && self.end <= output.len());
        let after = output.split_off(self.end);
        output.truncate(self.offset);
        let reply = command::engine_error(err);
        for _ in 0..self.replies {
            reply.encode(protocol, output);
        }
        output.unsplit(after);
    }
}

/// A committed batch whose durability is pending (`--fsync always`).
struct Deferred {
    /// Resolves when the batch is durable (or the fsync failed).
    pending: PendingSync,
    /// What a failed fsync takes back (always there: only writes defer).
    writes: Option<WriteReplies>,
}

/// Runs complete commands from `input` under one hold of the keyspace lock,
/// as one write batch, and commits it (see the module docs). Synchronous:
/// the lock is never held across an `.await`. Under `--fsync always` the
/// batch's durability is returned, to be awaited before the output is written.
/// It stops before a command while woken blocked clients hold turns
/// ([`Step::Held`]), unless `gate_open` lets the first command through.
fn execute_batch(
    shared: &State,
    state: &mut ConnState,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    output: &mut BytesMut,
    mut gate_open: bool,
) -> (Step, Option<Deferred>) {
    // A script past `busy-reply-threshold` holds the lock: answer without it.
    let Some(mut ks) = command::wait_for_keyspace(shared) else {
        if state.blocked.is_some() {
            // A woken blocked client re-runs once the script is done; the
            // commands behind it wait too.
            return (Step::Busy, None);
        }
        return (busy_command(shared, state, parser, input, output), None);
    };
    ks.recover_abandoned_batch();
    ks.begin_batch();
    state.batch_clock = None;
    // The output offset of the first reply whose command staged a write,
    // and how many replies start there: what a failed commit takes back.
    let mut first_write: Option<(usize, usize)> = None;
    let mut step = Step::More;
    let mut protocol_error = None;
    for _ in 0..BATCH_COMMANDS_MAX {
        if waiting(state) {
            // Later commands wait for the blocked one, as in Redis.
            step = Step::Drained;
            break;
        }
        let (offset, staged) = (output.len(), ks.savepoint());
        let reply = if state.blocked.is_some() {
            match rerun_blocked(shared, state, &mut ks) {
                Some(reply) => reply,
                None => continue,
            }
        } else {
            if !gate_open && shared.turns.closed() {
                step = Step::Held;
                break;
            }
            gate_open = false;
            let args = match parser.next_args(input, state.authenticated) {
                Ok(Some(args)) => args,
                Ok(None) => {
                    step = Step::Drained;
                    break;
                }
                Err(err) => {
                    protocol_error = Some(err);
                    break;
                }
            };
            let reply = command::dispatch_locked(shared, state, &mut ks, args);
            // Release the arguments (slices of the read buffer) now.
            args.clear();
            if let Some(request) = state.block_request.take()
                && let Some(index) = command::lookup(&request.args[0])
            {
                let waiter = ks.block(state.id, &request.keys);
                state.blocked = Some(Blocked::new(index, request, reply, waiter));
                continue;
            }
            if state.repl_request.is_some() {
                // `PSYNC` or `WAIT`: the connection acts on it before
                // anything else runs (its reply comes from there).
                step = Step::Drained;
                break;
            }
            reply
        };
        // `CLIENT REPLY OFF|SKIP` drop replies; a failed commit takes back
        // only those sent.
        let sent = state.reply_wanted();
        if sent {
            reply.encode(state.protocol, output);
        }
        match &mut first_write {
            Some((_, replies)) => *replies += usize::from(sent),
            None if ks.savepoint() > staged => first_write = Some((offset, usize::from(sent))),
            None => {}
        }
        if state.close_after_reply {
            step = Step::Close(Close::Client);
            break;
        }
        if output.len() >= OUTPUT_FLUSH_BYTES {
            break;
        }
    }
    let writes = first_write.map(|(offset, replies)| WriteReplies {
        offset,
        replies,
        end: output.len(),
    });
    let committed = ks.commit_batch_deferred();
    drop(ks);
    let deferred = match (committed, writes) {
        (Ok(pending), writes) => pending.map(|pending| Deferred { pending, writes }),
        (Err(err), writes) => {
            tracing::warn!(client = state.id, error = %err, "write batch failed");
            if let Some(writes) = writes {
                writes.take_back(err, state.protocol, output);
            }
            None
        }
    };
    if let Some(err) = protocol_error {
        Frame::error(format!("ERR {err}")).encode(state.protocol, output);
        step = Step::Close(Close::Limit("protocol error"));
    }
    (step, deferred)
}

/// Re-runs a woken blocked client's command under the batch's lock: its
/// reply if it is done (served, failed, or `CLIENT UNBLOCK`ed), `None` if
/// it must wait again (its place in the queues kept).
fn rerun_blocked(shared: &State, state: &mut ConnState, ks: &mut Keyspace) -> Option<Frame> {
    let blocked = state.blocked.as_mut()?;
    blocked.woken = false;
    let reply = match blocked.waiter.unblocked() {
        Some(Unblock::Timeout) => blocked.timeout_reply.clone(),
        Some(Unblock::Error) => Blocked::unblocked_error(),
        None => {
            let (index, args) = (blocked.index, blocked.args.clone());
            let reply = command::rerun_locked(shared, state, ks, index, &args);
            if state.block_request.take().is_some() {
                if let Some(blocked) = &state.blocked {
                    ks.pass_on(&blocked.waiter);
                }
                return None;
            }
            reply
        }
    };
    if let Some(blocked) = state.blocked.take() {
        ks.unblock(&blocked.waiter);
    }
    Some(reply)
}

/// Answers the next command in `input` while a script is busy (`BUSY`,
/// or `SCRIPT KILL` / `FUNCTION KILL`), without the keyspace lock.
fn busy_command(
    shared: &State,
    state: &mut ConnState,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    output: &mut BytesMut,
) -> Step {
    match parser.next_command(input, state.authenticated) {
        Ok(Some(args)) => {
            command::busy_reply(shared, state, &args).encode(state.protocol, output);
            Step::More
        }
        Ok(None) => Step::Drained,
        Err(err) => {
            Frame::error(format!("ERR {err}")).encode(state.protocol, output);
            Step::Close(Close::Limit("protocol error"))
        }
    }
}

#[cfg(test)]
mod tests;
