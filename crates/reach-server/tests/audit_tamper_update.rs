//! After a series of events the chain verifies; a direct SQL UPDATE of one row is reported at
//! that row's id.

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_updated_audit_row_is_reported_by_verify() {
    let server = TestServer::start().await;
    let token = server.admin_token.clone();
    server
        .create_user("tech", "tech-password", "technician")
        .await;
    assert_eq!(
        server.login(None, "tech", "wrong-password").await.status(),
        401
    );
    let tech = server.login_token(None, "tech", "tech-password").await;
    server
        .call(Method::POST, "/api/auth/logout", Some(&tech), None)
        .await;

    let (status, verdict) = server
        .call(Method::GET, "/api/audit/verify", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert!(verdict.get("broken_at_id").is_none());
    let records = verdict["records"].as_i64().unwrap();
    assert!(records >= 6, "{verdict}");

    let (_, page) = server
        .call(
            Method::GET,
            "/api/audit?event_type=login_failed",
            Some(&token),
            None,
        )
        .await;
    let id = page["items"][0]["id"].as_i64().unwrap();
    let changed = server
        .sql(&format!(
            "UPDATE audit_log SET actor = 'someone-else' WHERE seq = {id}"
        ))
        .await;
    assert_eq!(changed, 1);

    let (_, verdict) = server
        .call(Method::GET, "/api/audit/verify", Some(&token), None)
        .await;
    assert_eq!(
        (&verdict["ok"], &verdict["broken_at_id"]),
        (&json!(false), &json!(id)),
        "{verdict}"
    );
    assert_eq!(verdict["records"], records);

    // Editing details (JSON) is detected the same way.
    let server2 = TestServer::start().await;
    server2
        .sql("UPDATE audit_log SET details = '{\"tenant\":\"evil\"}' WHERE seq = 1")
        .await;
    let (_, verdict) = server2
        .call(
            Method::GET,
            "/api/audit/verify",
            Some(&server2.admin_token),
            None,
        )
        .await;
    assert_eq!(verdict["broken_at_id"], 1);
}
