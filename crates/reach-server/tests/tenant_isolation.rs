//! A user of tenant B never sees tenant A's users or audit records: 404, not 403.

mod common;

use common::{TestServer, assert_error};
use reach_server::auth::permissions::Role;
use reach_server::{tenants, users};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_token_from_one_tenant_gets_404_on_another_tenants_user() {
    let server = TestServer::start().await;
    let victim = server
        .create_user("alice", "alice-password", "technician")
        .await;
    let victim_path = format!("/api/users/{}", victim["id"].as_str().unwrap());

    let other = tenants::create(&server.state.db, "other").await.unwrap();
    let hash = server.state.passwords.hash("bob-password").await.unwrap();
    users::create(&server.state.db, &other.id, "bob", &hash, Role::Admin)
        .await
        .unwrap();
    let bob = server
        .login_token(Some("other"), "bob", "bob-password")
        .await;

    assert_error(
        &server
            .call(Method::GET, &victim_path, Some(&bob), None)
            .await,
        404,
        "not_found",
    );
    let patch = json!({"role": "viewer"});
    assert_error(
        &server
            .call(Method::PATCH, &victim_path, Some(&bob), Some(patch))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &server
            .call(Method::DELETE, &victim_path, Some(&bob), None)
            .await,
        404,
        "not_found",
    );

    let (status, list) = server
        .call(Method::GET, "/api/users", Some(&bob), None)
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob"]);

    let (_, audit) = server
        .call(Method::GET, "/api/audit", Some(&bob), None)
        .await;
    assert!(!audit.to_string().contains("alice"), "{audit}");
    // The same user name may exist in both tenants, and logs in to its own tenant.
    assert_eq!(
        server
            .login(Some("other"), "alice", "alice-password")
            .await
            .status(),
        401
    );

    // Tenant A's user is untouched.
    let (status, still) = server
        .call(Method::GET, &victim_path, Some(&server.admin_token), None)
        .await;
    assert_eq!((status, still["role"].as_str()), (200, Some("technician")));
}
