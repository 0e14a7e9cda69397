//! Serving one client connection with hyper and the full gateway
//! ([`Gateway::handle`]): every request the relay ([`crate::relay`]) does
//! not take, and every connection when the relay is off.

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::handler::Gateway;
use crate::relay::HandOff;

/// Serves `io` (the connection to `client`) with hyper until it closes;
/// the graceful shutdown of `hand_off` can end it between requests.
pub(crate) async fn serve<I>(gateway: Gateway, io: I, client: SocketAddr, hand_off: HandOff)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let gateway = gateway.clone();
        async move { Ok::<_, Infallible>(gateway.handle(request, client).await) }
    });
    let connection = hand_off.http.serve_connection(TokioIo::new(io), service);
    if let Err(err) = hand_off.watcher.watch(connection).await {
        tracing::debug!(%client, "connection ended: {err}");
    }
}
