//! The WebSocket endpoints: `/ws/agent`, `/ws/viewer` and the console's `/ws/console`.
//!
//! Credentials arrive in the first message (never in the URL). Frame caps are set on the
//! upgrade so oversized frames are refused from their header, before buffering.
//! Browser sockets are checked against the server's public origin.

pub mod agent;
pub mod console;
mod departure;
mod stream;
mod usb_audit;
pub mod viewer;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::routing::get;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use reach_proto::close;
use reach_proto::codec::{self, DecodeError};
use reach_proto::limits::AUTH_TIMEOUT;
use reach_proto::v1::Envelope;
use utoipa_axum::router::OpenApiRouter;

use crate::conn::{ConnShared, IpSlot};
use crate::state::AppState;

/// How long a forward may wait for a full socket queue before the message is dropped.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes a connection may read after its WebSocket upgrade until it authenticated: the
/// credential and hello messages with framing, nothing like a 4 MiB frame.
pub const PRE_AUTH_READ_BUDGET: u64 = 4 * reach_proto::limits::AUTH_MAX_MESSAGE as u64;

/// How long closing a socket may take (a peer that does not read cannot hold the task).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages queued per socket.
pub const SOCKET_QUEUE: usize = 64;

/// The WebSocket codec's read buffer per socket (it is zero-filled on the first read and
/// kept for the socket's life, and an idle session holds two sockets). Its small reads are
/// served from one large socket read by [`crate::read_ahead::ReadAhead`], so bursts still
/// cost one system call per 64 KiB.
pub const READ_BUFFER: usize = 2 * 1024;

pub(crate) type Sink = SplitSink<WebSocket, Message>;
pub(crate) type Stream = SplitStream<WebSocket>;
/// A viewer's socket as its task writes it: the WebSocket, or a tunnel from another instance
/// ([`crate::bus::tunnel`]).
pub(crate) type BoxSink =
    std::pin::Pin<Box<dyn futures_util::Sink<Message, Error = axum::Error> + Send>>;
/// A viewer's socket as its task reads it.
pub(crate) type BoxStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Message, axum::Error>> + Send>>;

/// The WebSocket routes (not part of the OpenAPI document).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/ws/agent", get(agent::upgrade))
        .route("/ws/viewer", get(viewer::upgrade))
        .route("/ws/console", get(console::upgrade))
}

/// Why a socket is closed before it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Close code (`reach_proto::close`).
    pub code: u16,
    /// Close reason (no secrets).
    pub reason: &'static str,
}

impl Refusal {
    pub(crate) const fn new(code: u16, reason: &'static str) -> Self {
        Self { code, reason }
    }
}

/// Whether the `Origin` header (sent by browsers) is the server's own origin: the
/// configured public URL, or else the `Host` the request was sent to. Clients that send no
/// `Origin` (agents, CLI) are not browsers and pass.
pub fn origin_allowed(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if let Some(public) = public_url {
        return origin == origin_of(public);
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, h)| !host.is_empty() && h == host.to_ascii_lowercase())
}

/// `scheme://host[:port]` of a URL, lowercase.
fn origin_of(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or("");
            format!("{scheme}://{host}")
        }
        None => lower,
    }
}

/// Runs a socket's serve future as a task of its own and lets the upgrade's task end.
///
/// The upgrade's task (axum's) keeps the WebSocket it built, its configuration and our
/// callback beside the future for the socket's whole life, ≈ 0.7 KiB per socket; an idle
/// session holds two sockets.
pub(crate) fn own_task<F>(serve: F) -> std::future::Ready<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(serve);
    std::future::ready(())
}

/// Frames written per flush on an agent's socket, at most: a burst (USB bulk data) goes out in
/// few writes instead of one per message.
pub const WRITE_BATCH: usize = 64;

/// Writes `first` and the frames already queued behind it (up to [`WRITE_BATCH`]), then flushes
/// once. Returns a close queued among them, or `Err` when the socket broke.
pub(crate) async fn write_batch(
    sink: &mut Sink,
    first: bytes::Bytes,
    rx: &mut crate::relay::hub::Rx,
) -> Result<Option<(u16, &'static str)>, ()> {
    use crate::relay::Outbound;
    sink.feed(Message::Binary(first)).await.map_err(drop)?;
    let mut close = None;
    for _ in 0..WRITE_BATCH {
        match rx.try_recv() {
            Some(Outbound::Frame(b) | Outbound::Video(b)) => {
                sink.feed(Message::Binary(b)).await.map_err(drop)?;
            }
            Some(Outbound::Close(code, reason)) => {
                close = Some((code, reason));
                break;
            }
            None => break,
        }
    }
    sink.flush().await.map_err(drop)?;
    Ok(close)
}

/// A socket that has not authenticated yet: it holds one of its IP's unauthenticated
/// slots and its connection's read budget until [`PreAuth::done`] (or until it closes).
#[derive(Debug)]
pub(crate) struct PreAuth {
    _slot: IpSlot,
    conn: Option<Arc<ConnShared>>,
}

impl PreAuth {
    /// Counts a new socket from `ip` and limits what its connection (`peer`) may read, or
    /// `None` when `ip` already has the most unauthenticated sockets.
    pub(crate) fn begin(state: &AppState, ip: IpAddr, peer: SocketAddr) -> Option<Self> {
        let slot = state.connections.unauthenticated.acquire(ip)?;
        let conn = state.connections.find(peer);
        if let Some(conn) = &conn {
            conn.limit_reads(PRE_AUTH_READ_BUDGET);
        }
        Some(Self { _slot: slot, conn })
    }

    /// Authenticated: the read budget is lifted, the connection leaves its IP's connection
    /// count and the unauthenticated slot is released.
    pub(crate) fn done(self) {
        if let Some(conn) = &self.conn {
            conn.authenticated();
        }
    }
}

/// The answer to an upgrade past the per-IP cap of unauthenticated sockets.
pub(crate) fn too_many_sockets(state: &AppState, socket: &'static str) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    state.metrics.rate_limited(socket);
    crate::http::Error::RateLimited {
        retry_after_secs: 1,
    }
    .into_response()
}

/// Closes with a code and reason, ignoring a broken socket; gives up after
/// [`CLOSE_TIMEOUT`] when the peer does not read.
///
/// Boxed: a socket task's future is as large as its largest step for its whole life, and
/// closing (a timer and a send) happens once.
pub(crate) fn close_with<'a, S>(
    sink: &'a mut S,
    code: u16,
    reason: &'a str,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>
where
    S: futures_util::Sink<Message> + Unpin + Send,
{
    Box::pin(async move {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = sink.send(Message::Close(Some(frame))).await;
            let _ = sink.close().await;
        })
        .await;
    })
}

/// Reads the next binary message as an envelope within the authentication timeout.
pub(crate) async fn read_first<S>(stream: &mut S, max: usize) -> Result<Envelope, Refusal>
where
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let next = tokio::time::timeout(AUTH_TIMEOUT, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Binary(b))) => return Some(Ok(b)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(_)) | None => return None,
                Some(Err(_)) => return Some(Err(())),
            }
        }
    })
    .await
    .map_err(|_| Refusal::new(close::AUTH_TIMEOUT, "no credential within 10 s"))?;
    match next {
        Some(Ok(bytes)) => codec::decode_bytes(bytes, max).map_err(|e| match e {
            DecodeError::TooLarge { .. } => Refusal::new(close::POLICY, "message too large"),
            _ => Refusal::new(close::UNAUTHORIZED, "first message must be a credential"),
        }),
        Some(Err(())) => Err(Refusal::new(
            close::POLICY,
            "message too large or malformed",
        )),
        None => Err(Refusal::new(
            close::UNAUTHORIZED,
            "first message must be a credential",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn clients_without_origin_pass() {
        assert!(origin_allowed(&headers(None, "a:1"), None));
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "reach.example"),
            None
        ));
        let public = Some("https://reach.example/");
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "reach.example"),
            public
        ));
        assert!(!origin_allowed(
            &headers(Some("http://reach.example"), "reach.example"),
            public
        ));
    }

    #[test]
    fn the_servers_own_origin_passes() {
        assert!(origin_allowed(
            &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
            None
        ));
        let public = Some("https://Reach.example/console");
        assert!(origin_allowed(
            &headers(Some("https://reach.example"), "internal:80"),
            public
        ));
    }
}
