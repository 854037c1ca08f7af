//! The only socket code of the crate: WebSocket connect, send and receive of envelopes.

use crate::ClientError;
use futures_util::{SinkExt, StreamExt};
use reach_proto::{close, codec, v1::Envelope};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Read buffer per socket (large messages are read in several chunks).
const READ_BUFFER: usize = 16 * 1024;

/// A client WebSocket to the server.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What arrived on the socket.
#[derive(Debug)]
pub enum Incoming {
    /// One decoded envelope.
    Envelope(Envelope),
    /// The server closed the socket.
    Closed {
        /// Close code (1006 when the connection dropped without one).
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Turns `https://host` / `ws://host/` into `wss://host/<path>`; keeps an explicit path.
///
/// # Errors
/// [`ClientError::BadUrl`] for other schemes.
pub fn socket_url(server: &str, path: &str) -> Result<String, ClientError> {
    let (scheme, rest) = server
        .split_once("://")
        .ok_or_else(|| ClientError::BadUrl(server.to_owned()))?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "https" | "wss" => "wss",
        "http" | "ws" => "ws",
        _ => return Err(ClientError::BadUrl(server.to_owned())),
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(ClientError::BadUrl(server.to_owned()));
    }
    if rest.contains('/') {
        return Ok(format!("{ws_scheme}://{rest}"));
    }
    Ok(format!("{ws_scheme}://{rest}{path}"))
}

/// Connects; incoming messages larger than `max_incoming` are refused by the library
/// before they are buffered.
///
/// # Errors
/// [`ClientError::Connect`] when the TCP, TLS or WebSocket handshake fails.
pub async fn connect(url: &str, max_incoming: usize) -> Result<Ws, ClientError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_incoming))
        .max_frame_size(Some(max_incoming))
        .read_buffer_size(READ_BUFFER);
    let (ws, _response) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, None)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
    Ok(ws)
}

/// Like [`connect`] with extra request headers (e.g. `Origin`, as a browser sends).
///
/// # Errors
/// [`ClientError::Connect`] when the handshake fails or a header is invalid.
pub async fn connect_with_headers(
    url: &str,
    headers: &[(&str, &str)],
    max_incoming: usize,
) -> Result<Ws, ClientError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
    let bad = |e: String| ClientError::Connect(e);
    let mut request = url.into_client_request().map_err(|e| bad(e.to_string()))?;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_incoming))
        .max_frame_size(Some(max_incoming))
        .read_buffer_size(READ_BUFFER);
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| bad(e.to_string()))?;
    Ok(ws)
}

/// Like [`connect`] over an already connected TCP stream (e.g. bound to a chosen local
/// address); plain `ws://` only.
///
/// # Errors
/// [`ClientError::Connect`] when the WebSocket handshake fails.
pub async fn connect_over(
    url: &str,
    stream: TcpStream,
    max_incoming: usize,
) -> Result<Ws, ClientError> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_incoming))
        .max_frame_size(Some(max_incoming))
        .read_buffer_size(READ_BUFFER);
    let (ws, _response) = tokio_tungstenite::client_async_with_config(
        url,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await
    .map_err(|e| ClientError::Connect(e.to_string()))?;
    Ok(ws)
}

/// Sends one envelope.
///
/// # Errors
/// [`ClientError::Connect`] when the socket is broken.
pub async fn send(ws: &mut Ws, envelope: &Envelope) -> Result<(), ClientError> {
    ws.send(Message::Binary(codec::encode(envelope).into()))
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))
}

/// Sends a WebSocket ping (the server answers with a pong).
///
/// # Errors
/// [`ClientError::Connect`] when the socket is broken.
pub async fn ping(ws: &mut Ws) -> Result<(), ClientError> {
    ws.send(Message::Ping(Default::default()))
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))
}

/// Queues one envelope without flushing (call [`flush`] after a batch).
///
/// # Errors
/// [`ClientError::Connect`] when the socket is broken.
pub async fn feed(ws: &mut Ws, envelope: &Envelope) -> Result<(), ClientError> {
    ws.feed(Message::Binary(codec::encode(envelope).into()))
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))
}

/// Writes everything queued by [`feed`].
///
/// # Errors
/// [`ClientError::Connect`] when the socket is broken.
pub async fn flush(ws: &mut Ws) -> Result<(), ClientError> {
    SinkExt::flush(ws)
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))
}

/// Sends one already encoded envelope (to send the same bytes many times).
///
/// # Errors
/// [`ClientError::Connect`] when the socket is broken.
pub async fn send_encoded(ws: &mut Ws, encoded: bytes::Bytes) -> Result<(), ClientError> {
    ws.send(Message::Binary(encoded))
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))
}

/// Receives the next envelope, skipping pings and text. Undecodable messages are
/// reported as [`ClientError::Protocol`].
///
/// # Errors
/// [`ClientError::Protocol`] for a message that does not decode.
pub async fn recv(ws: &mut Ws, max: usize) -> Result<Incoming, ClientError> {
    recv_heard(ws, max, &Heard::new()).await
}

/// When a socket last received anything (shared between a receive and a keepalive timer).
#[derive(Debug)]
pub struct Heard {
    start: tokio::time::Instant,
    ms: std::sync::atomic::AtomicU64,
}

impl Heard {
    /// Heard now.
    pub fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
            ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Something arrived now.
    pub fn mark(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long nothing arrived.
    pub fn silent_for(&self) -> std::time::Duration {
        let last =
            std::time::Duration::from_millis(self.ms.load(std::sync::atomic::Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

impl Default for Heard {
    fn default() -> Self {
        Self::new()
    }
}

/// [`recv`], noting in `heard` when anything at all (a pong too) last arrived.
///
/// # Errors
/// As [`recv`].
pub async fn recv_heard(ws: &mut Ws, max: usize, heard: &Heard) -> Result<Incoming, ClientError> {
    loop {
        let Some(next) = ws.next().await else {
            return Ok(closed(None));
        };
        heard.mark();
        match next {
            Ok(Message::Binary(b)) => {
                return codec::decode_bytes(b, max)
                    .map(Incoming::Envelope)
                    .map_err(|e| ClientError::Protocol(e.to_string()));
            }
            Ok(Message::Close(frame)) => return Ok(closed(frame)),
            Ok(_) => {}
            Err(_) => return Ok(closed(None)),
        }
    }
}

/// Closes politely with `code`.
pub async fn close_with(ws: &mut Ws, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.to_owned().into(),
    };
    let _ = ws.close(Some(frame)).await;
}

fn closed(frame: Option<CloseFrame>) -> Incoming {
    match frame {
        Some(f) => Incoming::Closed {
            code: f.code.into(),
            reason: f.reason.to_string(),
        },
        None => Incoming::Closed {
            code: 1006,
            reason: "connection lost".into(),
        },
    }
}

/// Whether a close code means retrying is pointless: the credential is no good, or a
/// newer connection of the same machine replaced this one.
pub fn is_credential_refusal(code: u16) -> bool {
    matches!(
        code,
        close::UNAUTHORIZED
            | close::FORBIDDEN
            | close::REVOKED
            | close::BAD_ORIGIN
            | close::REPLACED
    )
}

/// Waits for the server's `auth_ok` after a credential was sent (agents and viewers alike).
///
/// # Errors
/// [`ClientError::Rejected`] when the server refuses the credential, [`ClientError::Closed`]
/// for any other close, [`ClientError::Timeout`] after the auth timeout, and
/// [`ClientError::Protocol`] when anything else arrives first.
pub async fn recv_auth_ok(socket: &mut Ws) -> Result<reach_proto::v1::AuthOk, ClientError> {
    use reach_proto::limits::{AGENT_MAX_MESSAGE, AUTH_TIMEOUT};
    use reach_proto::v1::envelope::Body;
    let answer = tokio::time::timeout(AUTH_TIMEOUT, recv(socket, AGENT_MAX_MESSAGE))
        .await
        .map_err(|_| ClientError::Timeout(AUTH_TIMEOUT))??;
    match answer {
        Incoming::Envelope(Envelope {
            body: Some(Body::AuthOk(ok)),
            ..
        }) => Ok(ok),
        Incoming::Closed { code, reason } if is_credential_refusal(code) => {
            Err(ClientError::Rejected { code, reason })
        }
        Incoming::Closed { code, reason } => Err(ClientError::Closed { code, reason }),
        Incoming::Envelope(other) => Err(ClientError::Protocol(format!(
            "expected auth_ok, got {}",
            other.body.as_ref().map_or("nothing", codec::body_name)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_become_socket_urls() {
        let u = |s| socket_url(s, "/ws/agent").unwrap();
        assert_eq!(
            u("https://reach.example.com"),
            "wss://reach.example.com/ws/agent"
        );
        assert_eq!(u("http://127.0.0.1:8080/"), "ws://127.0.0.1:8080/ws/agent");
        assert_eq!(u("wss://h/custom/ws"), "wss://h/custom/ws");
    }

    #[test]
    fn other_schemes_are_refused() {
        for bad in ["ftp://x", "reach.example.com", "https://"] {
            assert!(matches!(
                socket_url(bad, "/ws/agent"),
                Err(ClientError::BadUrl(_))
            ));
        }
    }
}
