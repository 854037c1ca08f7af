//! The one error type of the HTTP layer.
//!
//! Handlers return [`Result<T>`] and use `?`; every failure becomes an HTTP status and a JSON
//! body `{"error": "<code>", "message": "<what happened and what to do>"}`. Internal causes
//! (database, IO) are logged and answered with a generic 500 so nothing internal leaks.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::permissions::Permission;
use crate::auth::token::{FormatError, TokenError};

/// `Result` with the HTTP [`Error`] as default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_token`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed or a field is invalid (400).
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// No valid credentials (401).
    #[error("{message}")]
    Unauthorized {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: &'static str,
    },
    /// Authenticated but lacking a permission (403).
    #[error("permission `{}` required", .0.as_str())]
    Forbidden(Permission),
    /// Authenticated but the action is refused for another reason (403).
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: &'static str,
    },
    /// Not found, or not visible to this tenant (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Conflicts with existing state (409).
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// Body larger than the configured cap (413).
    #[error("request body too large")]
    PayloadTooLarge,
    /// Body is not `application/json` (415).
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// Too many requests from this client (429 with `Retry-After`).
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the client may retry.
        retry_after_secs: u64,
    },
    /// Anything else; logged, answered with a generic 500.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Refused { code, .. } => (StatusCode::FORBIDDEN, code),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %format!("{cause:#}"), "internal error");
        }
        let message = match &self {
            Self::Internal(_) => "internal server error; see the server log".to_owned(),
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: code.to_owned(),
            message,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(err).context("database"))
    }
}

impl From<TokenError> for Error {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Database(db) => db.into(),
            TokenError::Format(FormatError::Expired) => Self::Unauthorized {
                code: "token_expired",
                message: "the token has expired; log in again",
            },
            TokenError::Revoked => Self::Unauthorized {
                code: "token_revoked",
                message: "the token has been revoked; log in again",
            },
            _ => Self::Unauthorized {
                code: "invalid_token",
                message: "the token is not valid here; log in again",
            },
        }
    }
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            JsonRejection::BytesRejection(_)
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Self::PayloadTooLarge
            }
            JsonRejection::JsonSyntaxError(_) => {
                Self::bad_request("malformed_json", "the request body is not valid JSON")
            }
            JsonRejection::JsonDataError(err) => Self::bad_request(
                "invalid_body",
                format!("invalid request body: {}", err.body_text()),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            other => Self::bad_request("invalid_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_path", rejection.body_text())
    }
}
