//! A small RESP client for what a sentinel asks of the servers and peers
//! it watches: one command, one reply, each bounded by a timeout.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::state::repl::encode_command;

/// A reply, as much of RESP2 as sentinels need.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`.
    Status(String),
    /// `-text`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` (`None` = null).
    Bulk(Option<Bytes>),
    /// `*n` (`None` = null array).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a status or bulk reply.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

/// Largest element count or bulk length accepted from a peer.
const REPLY_ITEMS_MAX: i64 = 1 << 20;
const REPLY_DEPTH_MAX: usize = 8;

/// One connection to a server or sentinel.
pub struct Client {
    link: BufReader<TcpStream>,
    timeout: Duration,
}

impl Client {
    /// Connects to `addr` (`host:port`) within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> std::io::Result<Client> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let _ = stream.set_nodelay(true);
        Ok(Client {
            link: BufReader::new(stream),
            timeout,
        })
    }

    /// Sends `words` and reads the reply, within the timeout.
    pub async fn call(&mut self, words: &[&str]) -> std::io::Result<Reply> {
        let args: Vec<Bytes> = words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            self.link
                .get_mut()
                .write_all(&encode_command(&args))
                .await?;
            read_reply(&mut self.link, 0).await
        })
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "reply timed out"))?
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

async fn read_reply(link: &mut BufReader<TcpStream>, depth: usize) -> std::io::Result<Reply> {
    if depth > REPLY_DEPTH_MAX {
        return Err(bad("reply nested too deep"));
    }
    let mut line = Vec::new();
    (&mut *link)
        .take(64 * 1024)
        .read_until(b'\n', &mut line)
        .await?;
    if !line.ends_with(b"\r\n") {
        return Err(bad("reply line without CRLF"));
    }
    let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let number = || text.parse::<i64>().map_err(|_| bad("bad number in reply"));
    Ok(match line[0] {
        b'+' => Reply::Status(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Int(number()?),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            if len > 512 << 20 {
                return Err(bad("bulk reply too long"));
            }
            let mut data = vec![0u8; len as usize + 2];
            link.read_exact(&mut data).await?;
            data.truncate(len as usize);
            Reply::Bulk(Some(Bytes::from(data)))
        }
        b'*' => {
            let n = number()?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            if n > REPLY_ITEMS_MAX {
                return Err(bad("array reply too long"));
            }
            let mut items = Vec::with_capacity(n.min(1024) as usize);
            for _ in 0..n {
                items.push(Box::pin(read_reply(link, depth + 1)).await?);
            }
            Reply::Array(Some(items))
        }
        _ => return Err(bad("unknown reply type")),
    })
}

/// `INFO`'s `field:value` lines.
pub fn info_fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}
