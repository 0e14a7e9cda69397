//! The two replication commands that change what a connection *is* rather
//! than answer inside the command loop: `PSYNC`/`SYNC` turn the client into
//! a replica (the socket goes to [`crate::replication::primary`]'s feeder),
//! and `WAIT` parks the client until replicas acknowledge an offset.
//!
//! Commands only record the request in [`ConnState::repl_request`] (they
//! run without a socket, under the keyspace lock); the connection loop acts
//! on it here, after the replies before it went out.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::protocol::Frame;
use crate::state::State;
use crate::state::session::{ConnState, ReplRequest};

/// What the connection loop does after [`act_on_request`].
pub(super) enum Next {
    /// `PSYNC`/`SYNC`: leave the loop; [`hand_off`] takes the socket.
    Handoff,
    /// `WAIT` answered: read the next commands.
    Replied,
    /// No replication request: go on as usual.
    Go,
}

/// Acts on a `WAIT` (waits, writes its reply into `output`) or leaves a
/// `PSYNC` in place for [`hand_off`].
pub(super) async fn act_on_request(
    shared: &State,
    shutdown: &CancellationToken,
    state: &mut ConnState,
    output: &mut BytesMut,
) -> Next {
    match state.repl_request.take() {
        Some(request @ ReplRequest::Psync { .. }) => {
            state.repl_request = Some(request);
            Next::Handoff
        }
        Some(ReplRequest::Wait {
            numreplicas,
            offset,
            deadline_ms,
        }) => {
            let acked =
                crate::replication::wait_acks(shared, numreplicas, offset, deadline_ms, shutdown)
                    .await;
            if state.reply_wanted() {
                Frame::Integer(acked as i64).encode(state.protocol, output);
            }
            Next::Replied
        }
        None => Next::Go,
    }
}

/// Serves a replica on `stream` if the client asked for `PSYNC`/`SYNC`
/// (returns `None`: the socket was used up); otherwise gives `stream` back.
pub(super) async fn hand_off(
    shared: &Arc<State>,
    stream: TcpStream,
    state: &mut ConnState,
    shutdown: CancellationToken,
) -> Option<TcpStream> {
    let Some(ReplRequest::Psync {
        replid,
        offset,
        legacy,
    }) = state.repl_request.take()
    else {
        return Some(stream);
    };
    let fed = crate::replication::primary::serve_replica(
        shared.clone(),
        stream,
        state.id,
        state.listening_port,
        replid,
        offset,
        legacy,
        shutdown,
    )
    .await;
    if let Err(err) = fed {
        tracing::warn!(replica = state.id, error = %err, "replica link closed");
    }
    None
}
