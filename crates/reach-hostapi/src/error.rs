//! Errors: starting the API ([`ApiError`]) and answering a request ([`HttpError`], always JSON).

use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A non-loopback address without TLS.
    #[error(
        "refusing to serve the USB API on {0} without TLS: it is not a loopback address; bind 127.0.0.1 or give --tls-cert and --tls-key"
    )]
    NonLoopback(std::net::SocketAddr),
    /// The token file.
    #[error("USB API token {0}: {1}")]
    Token(PathBuf, String),
    /// TLS files.
    #[error("USB API TLS certificate or key: {0}")]
    Tls(std::io::Error),
    /// Binding.
    #[error("cannot listen for the USB API on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
}

/// A request's failure: a status and one sentence, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct HttpError {
    /// Status.
    pub status: StatusCode,
    /// The sentence.
    pub message: String,
}

impl HttpError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 with the op's message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}
