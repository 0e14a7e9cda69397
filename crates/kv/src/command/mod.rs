//! The command layer: a table of Redis commands and the dispatcher.
//!
//! Each command is a [`Spec`]: its name, Redis's arity convention (`n`
//! exactly n arguments including the name, `-n` at least n), flags, key
//! positions (for `COMMAND INFO`), a one-line summary (for `COMMAND DOCS`)
//! and a handler. The dispatcher (`dispatch`, [`dispatch_locked`]) applies the rules that hold
//! for every command, in Redis's order: unknown command, arity, `NOAUTH`,
//! the RESP2 subscribed context, `MULTI` queueing, `OOM` before writes; then
//! it runs the handler and records metrics.
//!
//! Handlers reach data only through [`Ctx::ks`], which takes the keyspace
//! lock on first use and holds it until the command ends (or uses the lock
//! the connection holds for a whole pipelined batch, [`dispatch_locked`]), so
//! each command is atomic; `EXEC` takes it once for the whole transaction.
//! Every write command and `EXEC` also runs inside a keyspace write batch
//! ([`run`]): its writes reach the engine as one atomic unit (one commit-log
//! record on the LSM engine, so a crash keeps all of an `MSET` or none), and
//! a command that fails halfway leaves nothing behind. The layer knows
//! nothing about engines, which is what lets data types, scripting and the
//! cluster be added on top later.

mod bits;
pub(crate) mod blocking;
mod client;
mod config;
pub(crate) mod dump;
mod geo;
mod hash;
mod hll;
mod info;
mod keys;
mod list;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod local;
mod members;
pub(crate) mod pubsub;
mod replication;
mod scripting;
mod server;
mod set;
mod stream;
mod string;
#[cfg(test)]
mod tests;
pub(crate) mod transaction;
mod zset;

pub(crate) use scripting::{busy_reply, wait_for_keyspace};

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::MutexGuard;
use rustc_hash::FxHashMap;

use crate::config::NotifyFlags;
use crate::engine::EngineError;
use crate::keyspace::collection::KeyError;
use crate::keyspace::{EventNaming, Keyspace};
use crate::metrics::Metrics;
use crate::protocol::{Frame, ProtocolVersion};
use crate::state::session::ConnState;
use crate::state::{State, notify};

/// A command handler: arguments include the command name at index 0.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Frame;

/// Flag: modifies data (refused under `OOM`, counted as a write).
pub const WRITE: u32 = 1;
/// Flag: may add memory, so eviction runs first and `OOM` can refuse it.
pub const DENYOOM: u32 = 1 << 1;
/// Flag: allowed before `AUTH`.
pub const NOAUTH: u32 = 1 << 2;
/// Flag: allowed in the RESP2 subscribed context.
pub const PUBSUB_OK: u32 = 1 << 3;
/// Flag: runs immediately inside `MULTI` instead of being queued.
pub const TX_CONTROL: u32 = 1 << 4;
/// Flag: read-only.
pub const READONLY: u32 = 1 << 5;
/// Flag: pub/sub command.
pub const PUBSUB: u32 = 1 << 6;

/// One command's description.
#[derive(Debug)]
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: `n` = exactly n words, `-n` = at least n.
    pub arity: i32,
    /// Bit set of the flags above.
    pub flags: u32,
    /// Position of the first key (0 = none), the last (-1 = last arg) and the step.
    pub keys: (i32, i32, i32),
    /// Redis's command group (`string`, `generic`, `server`, ...).
    pub group: &'static str,
    /// One line for `COMMAND DOCS`.
    pub summary: &'static str,
    /// The implementation.
    pub handler: Handler,
}

/// A constructor of the specs of one command group (each group module's
/// table is a list of `s(name, arity, flags, keys, summary, handler)`).
pub(crate) fn in_group(
    group: &'static str,
) -> impl Fn(&'static str, i32, u32, (i32, i32, i32), &'static str, Handler) -> Spec {
    move |name, arity, flags, keys, summary, handler| Spec {
        name,
        arity,
        flags,
        keys,
        group,
        summary,
        handler,
    }
}

impl Spec {
    /// Whether `argc` words satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Whether the flag is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// Every command, in a fixed order (metrics use the index).
pub fn table() -> &'static [Spec] {
    static TABLE: OnceLock<Vec<Spec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut specs = Vec::new();
        specs.extend(string::specs());
        specs.extend(keys::specs());
        specs.extend(dump::specs());
        specs.extend(server::specs());
        specs.extend(pubsub::specs());
        specs.extend(transaction::specs());
        specs.extend(bits::specs());
        specs.extend(hash::specs());
        specs.extend(list::specs());
        specs.extend(set::specs());
        specs.extend(zset::specs());
        specs.extend(geo::specs());
        specs.extend(hll::specs());
        specs.extend(stream::specs());
        specs.extend(scripting::specs());
        specs.extend(replication::specs());
        specs
    })
}

/// Metrics for the full command table (register them before serving).
pub fn new_metrics() -> Arc<Metrics> {
    let names: Vec<&str> = table().iter().map(|s| s.name).collect();
    Arc::new(Metrics::new(&names))
}

/// The name of the command at table `index` (`NULL` for none, as `CLIENT
/// LIST` shows a client that has not run one).
pub(crate) fn name_of(index: usize) -> &'static str {
    table().get(index).map_or("NULL", |s| s.name)
}

/// Finds a command by name, case-insensitively; returns its table index.
pub fn lookup(name: &[u8]) -> Option<usize> {
    // FxHash: the keys are our own command names (no flooding risk), and
    // SipHash showed in profiles of pipelined GETs.
    static INDEX: OnceLock<FxHashMap<&'static [u8], usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        table()
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_bytes(), i))
            .collect()
    });
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    index.get(&lower[..name.len()]).copied()
}

/// How a [`Ctx`] reaches the keyspace.
enum Lock<'a> {
    /// Locked on first use, unlocked when the command ends.
    Lazy(Option<MutexGuard<'a, Keyspace>>),
    /// Locked by the caller (the connection, for a pipelined batch).
    Held(&'a mut Keyspace),
}

/// What a handler sees: server state, its client, and lazy keyspace access.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub state: &'a State,
    /// This client's state.
    pub conn: &'a mut ConnState,
    /// The keyspace lock (see [`Lock`]).
    lock: Lock<'a>,
    /// The command's time (Redis freezes the clock per command, and per `EXEC`).
    pub now_ms: u64,
    /// Commands running in this context: 1 for the connection's own
    /// command, more inside `EXEC` (or a script), where nothing may block.
    depth: u8,
}

impl<'a> Ctx<'a> {
    /// A context for one command (or one `EXEC`) that locks the keyspace
    /// when it first needs it.
    pub fn new(state: &'a State, conn: &'a mut ConnState) -> Self {
        Self::with_lock(state, conn, Lock::Lazy(None))
    }

    /// A context for one command run under a keyspace lock the caller holds.
    pub fn locked(state: &'a State, conn: &'a mut ConnState, ks: &'a mut Keyspace) -> Self {
        Self::with_lock(state, conn, Lock::Held(ks))
    }

    fn with_lock(state: &'a State, conn: &'a mut ConnState, mut lock: Lock<'a>) -> Self {
        let now_ms = match conn.batch_now_ms {
            0 => clock::now_ms(),
            batch => batch,
        };
        if let Lock::Held(ks) = &mut lock {
            ks.set_clock(now_ms);
        }
        Ctx {
            state,
            conn,
            lock,
            now_ms,
            depth: 0,
        }
    }

    /// The keyspace, locked for the rest of this command.
    pub fn ks(&mut self) -> &mut Keyspace {
        match &mut self.lock {
            Lock::Lazy(guard) => guard.get_or_insert_with(|| {
                let mut ks = self.state.db.lock();
                ks.recover_abandoned_batch();
                ks.set_clock(self.now_ms);
                ks
            }),
            Lock::Held(ks) => ks,
        }
    }

    /// The keyspace if this command has locked it already.
    fn locked_ks(&mut self) -> Option<&mut Keyspace> {
        match &mut self.lock {
            Lock::Lazy(guard) => guard.as_deref_mut(),
            Lock::Held(ks) => Some(ks),
        }
    }

    /// Whether the client speaks RESP3.
    pub fn resp3(&self) -> bool {
        self.conn.protocol == ProtocolVersion::Resp3
    }
}

/// Redis's error for an unknown command.
pub fn unknown_command(args: &[Bytes]) -> Frame {
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        printable(&args[0], 128)
    );
    for arg in args.iter().skip(1).take(32) {
        text.push_str(&format!("'{}' ", printable(arg, 128)));
    }
    Frame::error(text)
}

/// Redis's error for a wrong number of arguments.
pub fn wrong_arity(name: &str) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// Renders client bytes for an error line (no CR/LF can escape into it).
pub fn printable(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).replace(['\r', '\n'], " ")
}

/// Maps an engine failure to its reply.
pub fn engine_error(err: EngineError) -> Frame {
    match err {
        EngineError::OutOfMemory => Frame::error(err.to_string()),
        other => Frame::error(format!("ERR {other}")),
    }
}

/// Redis's error for a key of the wrong type.
pub fn wrong_type() -> Frame {
    Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

/// Maps a collection failure to its reply.
pub fn key_error(err: KeyError) -> Frame {
    match err {
        KeyError::WrongType => wrong_type(),
        KeyError::Engine(err) => engine_error(err),
    }
}

/// `ERR syntax error`.
pub fn syntax_error() -> Frame {
    Frame::error("ERR syntax error")
}

/// `ERR value is not an integer or out of range`.
pub fn not_integer() -> Frame {
    Frame::error("ERR value is not an integer or out of range")
}

/// Parses an integer argument strictly, as Redis does.
pub fn int_arg(arg: &[u8]) -> Result<i64, Frame> {
    crate::protocol::parse::parse_i64_strict(arg).ok_or_else(not_integer)
}

/// Whether `arg` equals `word` ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Runs one command for a client; returns the reply to send.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn dispatch(state: &State, conn: &mut ConnState, mut args: Vec<Bytes>) -> Frame {
    match admit(state, conn, &mut args) {
        Ok(index) => run(&mut Ctx::new(state, conn), index, &args),
        Err(reply) => reply,
    }
}

/// `dispatch` under a keyspace lock the caller holds (the connection holds
/// it for a pipelined batch and commits the batch's writes at its end).
/// `args` is the parser's reused vector: taken (left empty) if the command
/// is queued for `EXEC`, left as is otherwise.
pub fn dispatch_locked(
    state: &State,
    conn: &mut ConnState,
    ks: &mut Keyspace,
    args: &mut Vec<Bytes>,
) -> Frame {
    match admit(state, conn, args) {
        Ok(index) => run(&mut Ctx::locked(state, conn, ks), index, args),
        Err(reply) => reply,
    }
}

/// Re-runs a blocked client's command after a wake (see
/// `crate::state::blocking`), under the connection's lock.
pub fn rerun_locked(
    state: &State,
    conn: &mut ConnState,
    ks: &mut Keyspace,
    index: usize,
    args: &[Bytes],
) -> Frame {
    run(&mut Ctx::locked(state, conn, ks), index, args)
}

/// The checks every command passes before it runs, in Redis's order: its
/// table index, or the reply that ends it here (an error, or `QUEUED`).
fn admit(state: &State, conn: &mut ConnState, args: &mut Vec<Bytes>) -> Result<usize, Frame> {
    let admitted = admit_checks(state, conn, args);
    if let Err(Frame::Error(text)) = &admitted {
        state.metrics.count_error(text);
    }
    admitted
}

/// [`admit`]'s checks.
fn admit_checks(
    state: &State,
    conn: &mut ConnState,
    args: &mut Vec<Bytes>,
) -> Result<usize, Frame> {
    debug_assert!(!args.is_empty(), "the parser never yields empty commands");
    let Some(index) = lookup(&args[0]) else {
        conn.flag_multi_error();
        return Err(unknown_command(args));
    };
    let spec = &table()[index];
    if !spec.arity_ok(args.len()) {
        conn.flag_multi_error();
        state.metrics.commands[index].rejected.inc();
        return Err(wrong_arity(spec.name));
    }
    if !conn.authenticated && !spec.has(NOAUTH) {
        conn.flag_multi_error();
        return Err(Frame::error("NOAUTH Authentication required."));
    }
    if conn.in_resp2_subscribed_context() && !spec.has(PUBSUB_OK) {
        return Err(Frame::error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        )));
    }
    if let Err(refused) = replication::admit(state, conn, spec) {
        conn.flag_multi_error();
        return Err(refused);
    }
    if let Some(multi) = conn.multi.as_mut()
        && !spec.has(TX_CONTROL)
    {
        multi.queued.push((index, std::mem::take(args)));
        return Err(Frame::Simple("QUEUED"));
    }
    conn.info
        .last_command
        .store(index, std::sync::atomic::Ordering::Relaxed);
    Ok(index)
}

/// Runs a command that passed the checks (also used by `EXEC`).
pub fn run(ctx: &mut Ctx<'_>, index: usize, args: &[Bytes]) -> Frame {
    let spec = &table()[index];
    if spec.has(DENYOOM)
        && let Err(err) = ctx.ks().make_room()
    {
        let reply = engine_error(err);
        ctx.state.metrics.commands[index].rejected.inc();
        if let Frame::Error(text) = &reply {
            ctx.state.metrics.count_error(text);
        }
        return reply;
    }
    // In a pipelined batch a command starts where the previous one ended
    // (one clock read per command; see `ConnState::batch_clock`).
    let started = ctx.conn.batch_clock.unwrap_or_else(Instant::now);
    ctx.depth = ctx.depth.saturating_add(1);
    // `CLIENT NO-TOUCH`: reads leave eviction data alone, except `TOUCH`.
    let no_touch = ctx.conn.no_touch && spec.name != "touch";
    if no_touch {
        ctx.ks().set_no_touch(true);
    }
    let reply = if spec.has(WRITE) || spec.name == "exec" {
        run_atomic(ctx, spec, args)
    } else {
        (spec.handler)(ctx, args)
    };
    if no_touch {
        ctx.ks().set_no_touch(false);
    }
    if spec.has(WRITE) {
        replication::propagate(ctx, spec, args, &reply);
    }
    ctx.depth -= 1;
    if spec.has(DENYOOM) {
        // Evict after the write too, so memory at rest never exceeds the
        // limit (before the write only guarantees "at most one write over").
        let _ = ctx.ks().make_room();
    }
    notify_after(ctx, spec, &reply);
    let ended = Instant::now();
    if ctx.conn.batch_now_ms != 0 {
        ctx.conn.batch_clock = Some(ended);
    }
    let metrics = &ctx.state.metrics.commands[index];
    let elapsed = ended.saturating_duration_since(started);
    metrics.latency.observe(elapsed.as_secs_f64());
    metrics.usec.inc_by(elapsed.as_micros() as u64);
    metrics.calls.inc();
    if let Frame::Error(text) = &reply {
        metrics.errors.inc();
        ctx.state.metrics.count_error(text);
    }
    reply
}

/// Publishes the keyspace notifications a command caused (see
/// `state::notify`); a failed write raised none (it was rolled back).
fn notify_after(ctx: &mut Ctx<'_>, spec: &Spec, reply: &Frame) {
    let Some(ks) = ctx.locked_ks() else {
        return;
    };
    if !ks.notifying() {
        return;
    }
    let events = if spec.has(WRITE) && !reply.is_error() {
        notify::collect(ks, spec.name, spec.group)
    } else {
        ks.take_touched();
        ks.take_naming();
        ks.take_events()
    };
    if !events.is_empty() {
        let flags = ctx.state.config.read().notify_keyspace_events;
        notify::publish(ctx.state, flags, events);
    }
}

/// Runs a write command (or `EXEC`) as one keyspace write batch: its writes
/// are committed together, and undone if it fails halfway (an `MSET` whose
/// 5th key the engine refuses leaves the first 4 unwritten: in Redis an
/// `MSET` is all or nothing too). `EXEC`'s queued commands each get their
/// own nested batch, so one failing command is undone alone and the rest of
/// the transaction stands, as in Redis.
fn run_atomic(ctx: &mut Ctx<'_>, spec: &Spec, args: &[Bytes]) -> Frame {
    let ks = ctx.ks();
    ks.begin_batch();
    let savepoint = ks.savepoint();
    let reply = (spec.handler)(ctx, args);
    let ks = ctx.ks();
    if reply.is_error() {
        ks.rollback_to(savepoint);
    }
    match ks.commit_batch() {
        Ok(()) => reply,
        Err(err) => engine_error(err),
    }
}

/// Raises `event` (of notification `class`) on `key` as one of the running
/// command's own events: the dispatcher then derives none from the keys it
/// modified (see `state::notify`). Costs nothing while notifications are off.
pub(crate) fn raise_event(ctx: &mut Ctx<'_>, class: u32, event: &'static str, key: &[u8]) {
    let ks = ctx.ks();
    if ks.notifying() {
        ks.name_events(EventNaming::Own);
        ks.raise(class, event, key);
    }
}

/// The running command raises no event although it wrote (`BITFIELD`
/// whose every write failed on `OVERFLOW FAIL`), or only those it raises
/// with [`raise_event`].
pub(crate) fn own_events(ctx: &mut Ctx<'_>) {
    ctx.ks().name_events(EventNaming::Own);
}

/// Deletes `key` as Redis does when a command's result is empty or already
/// expired (`SINTERSTORE` or `BITOP` of nothing, `SORT ... STORE` of
/// nothing, `EXPIRE` or `GETEX EXAT` in the past): the event is `del` (if
/// the key existed), not the command's own. Whether it existed.
pub(crate) fn delete_as_del(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, Frame> {
    let now = ctx.now_ms;
    let removed = ctx.ks().remove(key, now).map_err(engine_error)?;
    own_events(ctx);
    if removed {
        raise_event(ctx, NotifyFlags::GENERIC, "del", key);
    }
    Ok(removed)
}

/// Shorthand: unwraps a `Result<Frame, Frame>` from `?`-style handler code.
pub fn reply(result: Result<Frame, Frame>) -> Frame {
    result.unwrap_or_else(|err| err)
}

/// The Redis version this server reports (`INFO`, `HELLO`).
pub fn server_version() -> &'static str {
    server::REDIS_VERSION
}
