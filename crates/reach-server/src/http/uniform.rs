//! The outermost response layer: every response carries `X-Content-Type-Options: nosniff`,
//! and every error is the JSON [`ErrorBody`] — also the ones produced by the framework
//! rather than by a handler (e.g. a path that is not valid UTF-8 after percent-decoding,
//! a refused WebSocket upgrade).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::http::error::ErrorBody;

/// Longest framework error text kept as the JSON message (characters).
const MAX_MESSAGE_CHARS: usize = 200;
/// Largest non-JSON error body read to build the message (bytes).
const MAX_READ: usize = 4096;

/// The middleware (see the module docs).
pub async fn uniform(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let mut response = if needs_json(&response) {
        as_json(response).await
    } else {
        response
    };
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn needs_json(response: &Response) -> bool {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    !response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// A stable code for a status the handlers did not produce themselves.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UPGRADE_REQUIRED => "upgrade_required",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

async fn as_json(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let status = parts.status;
    let text = match to_bytes(body, MAX_READ).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let message = if status.is_server_error() || text.trim().is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned()
    } else {
        text.trim().chars().take(MAX_MESSAGE_CHARS).collect()
    };
    let body = ErrorBody {
        error: code_for(status).to_owned(),
        message,
    };
    let json = axum::Json(body).into_response();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::new(json.into_body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_plain_text_error_becomes_a_json_error_body() {
        let plain = (StatusCode::BAD_REQUEST, "Invalid URL: not UTF-8").into_response();
        assert!(needs_json(&plain));
        let json = as_json(plain).await;
        assert_eq!(json.status(), StatusCode::BAD_REQUEST);
        let bytes = to_bytes(json.into_body(), MAX_READ).await.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["error"], "bad_request");
        assert_eq!(value["message"], "Invalid URL: not UTF-8");
    }

    #[test]
    fn successes_and_json_errors_are_left_alone() {
        assert!(!needs_json(&(StatusCode::OK, "hello").into_response()));
        let json = (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({}))).into_response();
        assert!(!needs_json(&json));
    }
}
