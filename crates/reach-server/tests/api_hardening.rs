//! Small promises of the API: every response says `nosniff`, every error is JSON (even for
//! a path that is not UTF-8), and a token issued in the future is refused.

mod common;

use common::{TestServer, assert_error};
use reach_server::auth::token::MAX_CLOCK_SKEW_SECS;
use reqwest::Method;
use serde_json::json;

async fn raw(s: &TestServer, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
    s.request(method, path, token).send().await.unwrap()
}

#[tokio::test]
async fn every_api_response_says_nosniff_success_or_error() {
    let s = TestServer::start().await;
    let token = s.admin_token.clone();
    let cases = [
        (Method::GET, "/api/me", Some(token.as_str()), 200),
        (Method::GET, "/api/me", None, 401),
        (Method::GET, "/api/users", Some(token.as_str()), 200),
        (Method::GET, "/api/no-such-route", None, 404),
        (Method::DELETE, "/api/me", Some(token.as_str()), 405),
        (Method::GET, "/healthz", None, 200),
        (Method::GET, "/openapi.json", None, 200),
    ];
    for (method, path, token, status) in cases {
        let response = raw(&s, method.clone(), path, token).await;
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(
            response
                .headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_path_that_is_not_utf8_answers_a_json_error() {
    let s = TestServer::start().await;
    for path in [
        "/api/machines/%ff%fe",
        "/api/users/%c3%28",
        "/api/sessions/%80",
    ] {
        let response = raw(&s, Method::GET, path, Some(&s.admin_token)).await;
        let status = response.status().as_u16();
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_error(&(status, body), 400, "bad_request");
    }
}

#[tokio::test]
async fn framework_errors_are_json_too() {
    let s = TestServer::start().await;
    // A WebSocket route asked without an upgrade.
    let response = raw(&s, Method::GET, "/ws/agent", None).await;
    let status = response.status().as_u16();
    assert!((400..500).contains(&status), "{status}");
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
}

fn now_secs() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_token_issued_in_the_future_beyond_the_skew_is_refused() {
    let s = TestServer::start().await;
    let now = now_secs();
    let mut claims = s.state.tokens.decode(&s.admin_token, now).unwrap();
    // The same token id (its row exists and is not revoked), re-signed with a future `iat`.
    claims.iat = now + 3600;
    let future = s.state.tokens.sign(&claims);
    let got = s.call(Method::GET, "/api/me", Some(&future), None).await;
    assert_error(&got, 401, "invalid_token");
    claims.iat = now + MAX_CLOCK_SKEW_SECS / 2;
    let skewed = s.state.tokens.sign(&claims);
    let (status, me) = s.call(Method::GET, "/api/me", Some(&skewed), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], json!("admin"));
}
