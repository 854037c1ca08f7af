//! Admin user management: create, read, list, update, delete, with permission checks, last
//! admin protection and audit records.

mod common;

use common::{TestServer, assert_error};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_admin_manages_users_and_every_change_is_audited() {
    let server = TestServer::start().await;
    let admin = Some(server.admin_token.as_str());
    let tech = server
        .create_user("tech", "tech-password", "technician")
        .await;
    let path = format!("/api/users/{}", tech["id"].as_str().unwrap());
    assert_eq!(
        (tech["role"].as_str(), tech["disabled"].as_bool()),
        (Some("technician"), Some(false))
    );

    let dup = json!({"username": "tech", "password": "other-password", "role": "viewer"});
    assert_error(
        &server
            .call(Method::POST, "/api/users", admin, Some(dup))
            .await,
        409,
        "username_taken",
    );

    let (status, got) = server.call(Method::GET, &path, admin, None).await;
    assert_eq!((status, &got), (200, &tech));
    let (_, list) = server.call(Method::GET, "/api/users", admin, None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    // The technician may not manage users.
    let tech_token = server.login_token(None, "tech", "tech-password").await;
    let (status, me) = server
        .call(Method::GET, "/api/me", Some(&tech_token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        me["permissions"],
        json!(["view", "control", "usb", "support_codes"])
    );
    assert_error(
        &server
            .call(Method::GET, "/api/users", Some(&tech_token), None)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &server
            .call(Method::GET, "/api/audit", Some(&tech_token), None)
            .await,
        403,
        "forbidden",
    );

    // A role change takes effect on the next request with the same token.
    let (status, updated) = server
        .call(Method::PATCH, &path, admin, Some(json!({"role": "viewer"})))
        .await;
    assert_eq!((status, updated["role"].as_str()), (200, Some("viewer")));
    let (_, me) = server
        .call(Method::GET, "/api/me", Some(&tech_token), None)
        .await;
    assert_eq!(me["permissions"], json!(["view"]));

    // Disabling revokes the user's tokens.
    server
        .call(Method::PATCH, &path, admin, Some(json!({"disabled": true})))
        .await;
    assert_eq!(
        server
            .call(Method::GET, "/api/me", Some(&tech_token), None)
            .await
            .0,
        401
    );

    let (status, _) = server.call(Method::DELETE, &path, admin, None).await;
    assert_eq!(status, 204);
    assert_error(
        &server.call(Method::GET, &path, admin, None).await,
        404,
        "not_found",
    );
    assert_error(
        &server.call(Method::DELETE, &path, admin, None).await,
        404,
        "not_found",
    );

    let (_, page) = server
        .call(Method::GET, "/api/audit?limit=500", admin, None)
        .await;
    let types: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for expected in ["user_created", "user_updated", "user_deleted"] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed_demoted_or_disabled() {
    let server = TestServer::start().await;
    // The provider's own account is the owner (protected on its own); a tenant's only admin
    // is what this rule keeps.
    let body = json!({"name": "acme", "admin_username": "boss", "admin_password": "boss-password"});
    let (status, _) = server
        .call(
            Method::POST,
            "/api/tenants",
            Some(&server.admin_token),
            Some(body),
        )
        .await;
    assert_eq!(status, 201);
    let boss = server
        .login_token(Some("acme"), "boss", "boss-password")
        .await;
    let admin = Some(boss.as_str());
    let (_, me) = server.call(Method::GET, "/api/me", admin, None).await;
    let path = format!("/api/users/{}", me["user_id"].as_str().unwrap());
    assert_error(
        &server.call(Method::DELETE, &path, admin, None).await,
        409,
        "cannot_delete_self",
    );
    let demote = json!({"role": "viewer"});
    assert_error(
        &server.call(Method::PATCH, &path, admin, Some(demote)).await,
        409,
        "last_admin",
    );
    let disable = json!({"disabled": true});
    assert_error(
        &server
            .call(Method::PATCH, &path, admin, Some(disable))
            .await,
        409,
        "last_admin",
    );
    assert_eq!(
        server.call(Method::GET, "/api/me", admin, None).await.0,
        200
    );
}
