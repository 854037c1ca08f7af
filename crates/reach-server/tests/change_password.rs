//! Changing the password needs the old one and revokes the user's other tokens.

mod common;

use common::{TestServer, assert_error};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn change_password_revokes_other_tokens_and_keeps_the_current_one() {
    let server = TestServer::start().await;
    server
        .create_user("tech", "first-password", "technician")
        .await;
    let a = server.login_token(None, "tech", "first-password").await;
    let b = server.login_token(None, "tech", "first-password").await;

    let wrong = json!({"old_password": "not-it", "new_password": "second-password"});
    let got = server
        .call(
            Method::POST,
            "/api/auth/change-password",
            Some(&a),
            Some(wrong),
        )
        .await;
    assert_error(&got, 403, "wrong_password");
    let weak = json!({"old_password": "first-password", "new_password": "short"});
    let got = server
        .call(
            Method::POST,
            "/api/auth/change-password",
            Some(&a),
            Some(weak),
        )
        .await;
    assert_error(&got, 400, "weak_password");
    // Nothing changed so far: both tokens still work.
    assert_eq!(
        server.call(Method::GET, "/api/me", Some(&b), None).await.0,
        200
    );

    let good = json!({"old_password": "first-password", "new_password": "second-password"});
    let (status, _) = server
        .call(
            Method::POST,
            "/api/auth/change-password",
            Some(&a),
            Some(good),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        server.call(Method::GET, "/api/me", Some(&a), None).await.0,
        200
    );
    assert_error(
        &server.call(Method::GET, "/api/me", Some(&b), None).await,
        401,
        "token_revoked",
    );
    assert_eq!(
        server.login(None, "tech", "first-password").await.status(),
        401
    );
    assert_eq!(
        server.login(None, "tech", "second-password").await.status(),
        200
    );

    let (_, page) = server
        .call(
            Method::GET,
            "/api/audit?event_type=password_changed",
            Some(&server.admin_token),
            None,
        )
        .await;
    assert_eq!(page["items"][0]["actor"], "tech");
}

#[tokio::test]
async fn change_password_is_limited_to_five_a_minute() {
    let server = TestServer::start().await;
    let token = server.admin_token.clone();
    let body = json!({"old_password": "wrong-old", "new_password": "whatever-new"});
    for _ in 0..5 {
        let got = server
            .call(
                Method::POST,
                "/api/auth/change-password",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(got.0, 403);
    }
    let got = server
        .call(
            Method::POST,
            "/api/auth/change-password",
            Some(&token),
            Some(body),
        )
        .await;
    assert_error(&got, 429, "rate_limited");
}
