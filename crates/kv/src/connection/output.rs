//! Writing a connection's output: the buffered replies, and pushed
//! pub/sub messages encoded into it.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{Close, PUBSUB_LIMIT};
use crate::protocol::{Frame, ProtocolVersion};
use crate::pubsub::Message;

/// Writes and clears `output`. Gives up when `condemned` fires: a
/// subscriber that stopped reading blocks this write forever otherwise, and
/// would never be disconnected (while `PUBLISH` kept counting it).
pub(super) async fn write_out(
    stream: &mut TcpStream,
    output: &mut BytesMut,
    condemned: &CancellationToken,
) -> Result<(), Close> {
    if output.is_empty() {
        return Ok(());
    }
    // Usually the socket takes it all at once: no waiting, so nothing to
    // select on (a condemned client is closed at its next wait).
    let mut written = 0;
    while written < output.len() {
        match stream.try_write(&output[written..]) {
            Ok(0) => return Err(Close::Io(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(err) => return Err(Close::Io(err)),
        }
    }
    if written < output.len() {
        tokio::select! {
            written = stream.write_all(&output[written..]) => written.map_err(Close::Io)?,
            () = condemned.cancelled() => return Err(Close::Limit(PUBSUB_LIMIT)),
        }
    }
    output.clear();
    Ok(())
}

pub(super) fn encode_message(message: &Message, protocol: ProtocolVersion, out: &mut BytesMut) {
    let items = match &message.pattern {
        None => vec![
            Frame::bulk("message"),
            Frame::Bulk(message.channel.clone()),
            Frame::Bulk(message.payload.clone()),
        ],
        Some(pattern) => vec![
            Frame::bulk("pmessage"),
            Frame::Bulk(pattern.clone()),
            Frame::Bulk(message.channel.clone()),
            Frame::Bulk(message.payload.clone()),
        ],
    };
    Frame::Push(items).encode(protocol, out);
}
