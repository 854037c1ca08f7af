//! The Reach web console and in-browser viewer, embedded in the binary.
//!
//! The TypeScript sources live in `web/`; `build.rs` bundles them with esbuild and embeds
//! `web/dist`, so a `reach` binary is self-contained. [`router`] serves the files with strict
//! security headers; the server merges it under its API routes.
#![deny(missing_docs)]

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Content-Security-Policy for every console page: only our own scripts, styles and sockets;
/// no inline script, no framing (clickjacking), no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A file of the embedded console.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Media type for `Content-Type`.
    pub content_type: &'static str,
    /// File contents.
    pub bytes: &'static [u8],
}

/// Looks up an embedded file by URL path (`/` means `/index.html`).
pub fn asset(path: &str) -> Option<Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS
        .iter()
        .find(|(url, _, _)| *url == path)
        .map(|(_, content_type, bytes)| Asset {
            content_type,
            bytes,
        })
}

/// Whether the console was embedded at build time.
pub fn is_embedded() -> bool {
    asset("/index.html").is_some()
}

/// Serves the embedded console for every GET the API router did not take.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().fallback(serve)
}

async fn serve(uri: Uri) -> Response {
    response_for(uri.path()).unwrap_or_else(|| (StatusCode::NOT_FOUND, "not found").into_response())
}

/// The response for a console path, or `None` when no such file is embedded (the caller
/// answers 404 in its own format).
pub fn response_for(path: &str) -> Option<Response> {
    match asset(path) {
        Some(file) => Some(with_headers(file.content_type, file.bytes)),
        None if path == "/" || path == "/index.html" => Some(with_headers(
            "text/html; charset=utf-8",
            NOT_BUILT.as_bytes(),
        )),
        None => None,
    }
}

const NOT_BUILT: &str = "<!doctype html><title>Reach</title><h1>Reach</h1>\
<p>The web console was not built into this binary. Run <code>scripts/setup.sh</code> \
(it installs the web build tools), then rebuild.</p>";

fn with_headers(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn index_is_served_with_a_strict_content_security_policy() {
        let response = router::<()>()
            .oneshot(Request::get("/").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .expect("csp");
        assert!(
            csp.to_str()
                .expect("ascii")
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found_rather_than_the_index() {
        let response = router::<()>()
            .oneshot(
                Request::get("/../../etc/passwd")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_console_bundle_is_embedded() {
        assert!(
            is_embedded(),
            "web/dist was not embedded; run scripts/setup.sh"
        );
        assert!(asset("/console.js").is_some());
    }
}
