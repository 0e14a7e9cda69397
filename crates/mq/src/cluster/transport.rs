//! How brokers talk to each other: their own TCP listener (the address in
//! `--controller-quorum`), frames of a JSON header plus raw bytes.
//!
//! Why not the Kafka port and Kafka's inter-broker APIs (Vote, BeginQuorum,
//! Fetch with `replica_id`, AlterPartition, BrokerHeartbeat)? Those that
//! carry what replication needs (diverging epochs in Fetch, KRaft's APIs)
//! exist only in flexible versions we do not serve, and the internal
//! traffic needs none of Kafka's client compatibility: a JSON header keeps
//! it readable and the record batches travel as raw bytes, exactly as
//! stored, like everywhere else in this crate. Keeping it on its own port
//! also keeps client limits (connections, request budget) away from
//! replication. The listener trusts its peers: bind it on a private network.
//!
//! Frame: `u32 total length | u32 header length | header JSON | payload`.
//! Raft messages go one way on a connection per peer (no reply: Raft
//! answers with messages of its own); a [`Request`] gets one [`Response`]
//! frame back on its connection.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::metadata::{BrokerId, Command};
use super::raft::Message;

/// Largest internal frame (a replica fetch answers at most ~1 MiB plus one batch).
pub const FRAME_MAX: usize = 128 * 1024 * 1024;

/// A replica's fetch from its partition leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaFetch {
    /// The fetching replica.
    pub replica: BrokerId,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The leader epoch the follower follows.
    pub leader_epoch: i32,
    /// Its log end: where to read from.
    pub fetch_offset: i64,
    /// The epoch of its last batch (-1 when none): for divergence.
    pub last_fetched_epoch: i32,
    /// Bytes wanted at most.
    pub max_bytes: usize,
    /// Long-poll this long when there is nothing new.
    pub max_wait_ms: u64,
}

/// Requests between brokers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// A broker is alive (to the controller), with its client address.
    Heartbeat {
        /// Its id.
        broker: BrokerId,
        /// Host for clients.
        host: String,
        /// Port for clients.
        port: i32,
    },
    /// CreateTopics, forwarded to the controller.
    CreateTopic {
        /// Name.
        name: String,
        /// Partition count.
        partitions: i32,
        /// Copies of each.
        replication_factor: i32,
        /// Settings.
        configs: std::collections::BTreeMap<String, String>,
    },
    /// DeleteTopics, forwarded to the controller.
    DeleteTopic {
        /// Name.
        name: String,
    },
    /// A partition leader asks for a new ISR.
    AlterIsr {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The asking leader.
        broker: BrokerId,
        /// Its leader epoch.
        leader_epoch: i32,
        /// The partition epoch its view is based on.
        partition_epoch: i32,
        /// The wanted ISR.
        isr: Vec<BrokerId>,
    },
    /// Replication (the payload of the answer holds the batches).
    ReplicaFetch(ReplicaFetch),
}

/// Answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Done; committed at this metadata index (wait for it to see the change).
    Done {
        /// Raft index.
        index: u64,
    },
    /// Not the controller; try this one.
    NotController {
        /// The leader, if known.
        hint: Option<BrokerId>,
    },
    /// Refused with a Kafka error code.
    Error {
        /// Kafka error code.
        code: i16,
        /// Why.
        message: String,
    },
    /// A replica fetch's answer; the frame's payload holds whole batches.
    Fetched {
        /// Kafka error code (0: fine).
        error: i16,
        /// The leader's high watermark.
        high_watermark: i64,
        /// Where the follower must truncate first: (epoch, end offset).
        diverging: Option<(i32, i64)>,
    },
}

/// What travels in a frame header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Rpc {
    /// A Raft message (one way).
    Raft {
        /// Sender.
        from: BrokerId,
        /// Message.
        message: Message<Command>,
    },
    /// A request (one response comes back).
    Request(Request),
    /// A response.
    Response(Response),
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    rpc: &Rpc,
    payload: &[u8],
) -> std::io::Result<()> {
    let header = serde_json::to_vec(rpc).map_err(std::io::Error::other)?;
    let total = 4 + header.len() + payload.len();
    let too_big = || std::io::Error::other("internal frame above FRAME_MAX");
    if total > FRAME_MAX {
        return Err(too_big());
    }
    let mut buf = Vec::with_capacity(8 + header.len());
    buf.extend_from_slice(&u32::try_from(total).map_err(|_| too_big())?.to_be_bytes());
    buf.extend_from_slice(
        &u32::try_from(header.len())
            .map_err(|_| too_big())?
            .to_be_bytes(),
    );
    buf.extend_from_slice(&header);
    w.write_all(&buf).await?;
    w.write_all(payload).await?;
    w.flush().await
}

/// Reads one frame (`None` at a clean end of stream).
pub async fn read_frame<R: AsyncReadExt + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<(Rpc, Bytes)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let total = u32::from_be_bytes(len) as usize;
    if !(4..=FRAME_MAX).contains(&total) {
        return Err(std::io::Error::other(format!(
            "internal frame of {total} bytes"
        )));
    }
    let mut body = vec![0u8; total];
    r.read_exact(&mut body).await?;
    let header_len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    if header_len > total - 4 {
        return Err(std::io::Error::other(
            "internal frame header longer than the frame",
        ));
    }
    let rpc = serde_json::from_slice(&body[4..4 + header_len]).map_err(std::io::Error::other)?;
    let payload = Bytes::from(body).slice(4 + header_len..);
    Ok(Some((rpc, payload)))
}

/// Idle request connections by address, reused across calls.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<TcpStream>>>,
}

/// Connections kept idle per address at most.
const IDLE_MAX: usize = 8;

impl Pool {
    /// Sends `request` to `addr` and waits (up to `timeout`) for its answer.
    pub async fn call(
        &self,
        addr: &str,
        request: Request,
        timeout: Duration,
    ) -> std::io::Result<(Response, Bytes)> {
        let pooled = self.idle.lock().get_mut(addr).and_then(Vec::pop);
        let work = async {
            let mut stream = match pooled {
                Some(stream) => stream,
                None => {
                    let stream = TcpStream::connect(addr).await?;
                    let _ = stream.set_nodelay(true);
                    stream
                }
            };
            write_frame(&mut stream, &Rpc::Request(request), &[]).await?;
            match read_frame(&mut stream).await? {
                Some((Rpc::Response(response), payload)) => Ok((stream, response, payload)),
                _ => Err(std::io::Error::other("expected a response frame")),
            }
        };
        let (stream, response, payload) =
            tokio::time::timeout(timeout, work).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "internal call timed out")
            })??;
        let mut idle = self.idle.lock();
        let list = idle.entry(addr.to_string()).or_default();
        if list.len() < IDLE_MAX {
            list.push(stream);
        }
        Ok((response, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_lengths_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let rpc = Rpc::Response(Response::Fetched {
            error: 0,
            high_watermark: 7,
            diverging: Some((2, 5)),
        });
        write_frame(&mut a, &rpc, b"batches").await.unwrap();
        let (got, payload) = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!(got, rpc);
        assert_eq!(&payload[..], b"batches");
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(read_frame(&mut b).await.is_err());
        drop(a);
    }
}
