//! Viewer client: join a session with a viewer token and exchange envelopes.

use crate::error::ClientError;
use crate::ws::{self, Incoming, Ws};
use reach_proto::codec;
use reach_proto::limits::{AGENT_MAX_MESSAGE, AUTH_TIMEOUT};
use reach_proto::policy::ViewerAccess;
use reach_proto::v1::{self, Envelope, envelope::Body};

/// A viewer joined to a session.
#[derive(Debug)]
pub struct ViewerConnection {
    socket: Ws,
    /// Session joined.
    pub session_id: String,
    /// Access the server granted.
    pub access: ViewerAccess,
    /// This viewer's id in the session.
    pub viewer_id: u64,
}

impl ViewerConnection {
    /// Connects to `server` and joins with `token` (sent as the first message, never
    /// in the URL).
    ///
    /// # Errors
    /// [`ClientError::Rejected`] when the server refuses the token.
    pub async fn join(server: &str, token: &str) -> Result<Self, ClientError> {
        let url = ws::socket_url(server, "/ws/viewer")?;
        let mut socket = ws::connect(&url, AGENT_MAX_MESSAGE).await?;
        let auth = Body::ViewerAuth(v1::ViewerAuth {
            token: token.to_owned(),
        });
        ws::send(&mut socket, &codec::envelope("", auth)).await?;
        let answer = tokio::time::timeout(AUTH_TIMEOUT, ws::recv(&mut socket, AGENT_MAX_MESSAGE))
            .await
            .map_err(|_| ClientError::Timeout(AUTH_TIMEOUT))??;
        match answer {
            Incoming::Envelope(Envelope {
                body: Some(Body::AuthOk(ok)),
                ..
            }) => Ok(Self {
                access: match ok.access() {
                    v1::AccessMode::Control => ViewerAccess::Control,
                    _ => ViewerAccess::ViewOnly,
                },
                socket,
                session_id: ok.session_id,
                viewer_id: ok.viewer_id,
            }),
            Incoming::Closed { code, reason } if ws::is_credential_refusal(code) => {
                Err(ClientError::Rejected { code, reason })
            }
            Incoming::Closed { code, reason } => Err(ClientError::Closed { code, reason }),
            Incoming::Envelope(_) => Err(ClientError::Protocol("expected auth_ok".into())),
        }
    }

    /// Sends a message body to the session.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the socket is broken.
    pub async fn send(&mut self, body: Body) -> Result<(), ClientError> {
        ws::send(&mut self.socket, &codec::envelope(&self.session_id, body)).await
    }

    /// Sends raw bytes as one binary message (for tests of malformed input).
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the socket is broken.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        use futures_util::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::Binary(
                bytes.into(),
            ))
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))
    }

    /// Receives the next message or the close.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for a message that does not decode.
    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        ws::recv(&mut self.socket, AGENT_MAX_MESSAGE).await
    }

    /// Leaves the session.
    pub async fn leave(mut self) {
        ws::close_with(&mut self.socket, reach_proto::close::NORMAL, "viewer left").await;
    }
}
