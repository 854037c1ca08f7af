//! Errors of the agent and the viewer client.

/// Something the agent or viewer client could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server URL is not `http(s)://` or `ws(s)://`.
    #[error("server URL {0:?} must start with https://, http://, wss:// or ws://")]
    BadUrl(String),
    /// Could not reach the server or the WebSocket broke.
    #[error("connection to the server failed: {0}")]
    Connect(String),
    /// The server refused the credential (close code and reason as sent).
    #[error(
        "the server refused the credential ({code}: {reason}); check the key or code, or ask for a new one"
    )]
    Rejected {
        /// WebSocket close code (see `reach_proto::close`).
        code: u16,
        /// Reason text sent by the server.
        reason: String,
    },
    /// The server closed the connection.
    #[error("the server closed the connection ({code}: {reason})")]
    Closed {
        /// WebSocket close code.
        code: u16,
        /// Reason text sent by the server.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("the server did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The server sent something this client does not understand.
    #[error("unexpected message from the server: {0}")]
    Protocol(String),
    /// An HTTP API call failed.
    #[error("API call {call} failed with HTTP {status}: {body}")]
    Api {
        /// Which call.
        call: &'static str,
        /// HTTP status.
        status: u16,
        /// Response body (the server's JSON error).
        body: String,
    },
}

impl ClientError {
    /// Whether retrying with the same credential is pointless.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::BadUrl(_) | Self::Rejected { .. })
    }
}
