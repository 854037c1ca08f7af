//! Login: success, and the same answer for a wrong password, an unknown user and an unknown
//! tenant (no user enumeration); failures are audited.

mod common;

use common::{ADMIN_PASSWORD, TestServer, assert_error};
use reqwest::Method;

#[tokio::test]
async fn login_succeeds_and_every_failure_looks_the_same() {
    let server = TestServer::start().await;
    let ok = server.login(None, "admin", ADMIN_PASSWORD).await;
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("rt1."));
    assert_eq!(body["user"]["username"], "admin");
    assert!(body["user"].get("password_hash").is_none());

    let mut failures = Vec::new();
    for (tenant, user, password) in [
        (None, "admin", "wrong-password"),
        (None, "nobody", ADMIN_PASSWORD),
        (Some("no-such-tenant"), "admin", ADMIN_PASSWORD),
        (None, "bad name with spaces", ADMIN_PASSWORD),
    ] {
        let response = server.login(tenant, user, password).await;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_error(&(status, body.clone()), 401, "invalid_credentials");
        failures.push(body);
    }
    assert!(failures.windows(2).all(|w| w[0] == w[1]), "{failures:?}");

    let (status, page) = server
        .call(
            Method::GET,
            "/api/audit?event_type=login_failed",
            Some(&server.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // The unknown tenant has no chain to record in; the other three are audited.
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
    assert!(
        !page.to_string().contains("wrong-password"),
        "no passwords in the audit log"
    );
}

#[tokio::test]
async fn a_disabled_user_cannot_log_in_with_the_right_password() {
    let server = TestServer::start().await;
    let user = server
        .create_user("tech", "tech-password", "technician")
        .await;
    let path = format!("/api/users/{}", user["id"].as_str().unwrap());
    let body = serde_json::json!({"disabled": true});
    let (status, _) = server
        .call(Method::PATCH, &path, Some(&server.admin_token), Some(body))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        server.login(None, "tech", "tech-password").await.status(),
        401
    );
}
