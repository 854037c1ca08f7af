//! The provider's tenants API: the bootstrap's account is the `owner`; it creates, lists,
//! suspends, resumes and deletes tenants. Suspending closes a tenant's sockets, ends its
//! sessions, refuses its logins, agents and support codes; other tenants are untouched; tenant
//! ids answer 404 to everyone who may not manage tenants.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::Arc;

use reach_agent::Credential;
use reach_agent::consent::DenyAll;
use reach_proto::agent_key::AgentKey;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row as _;

use common::{TestServer, assert_error};
use relay::*;

/// Creates tenant `name` with admin `boss` as the owner; returns (tenant id, boss's token).
async fn tenant_with_admin(s: &TestServer, name: &str) -> (String, String) {
    let body = json!({"name": name, "admin_username": "boss", "admin_password": "boss-password"});
    let (status, v) = s
        .call(
            Method::POST,
            "/api/tenants",
            Some(&s.admin_token),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["admin"]["role"], "admin");
    let token = s.login_token(Some(name), "boss", "boss-password").await;
    (v["tenant"]["id"].as_str().unwrap().to_owned(), token)
}

async fn patch_suspended(s: &TestServer, id: &str, suspended: bool) -> (u16, Value) {
    let path = format!("/api/tenants/{id}");
    let body = json!({"suspended": suspended});
    s.call(Method::PATCH, &path, Some(&s.admin_token), Some(body))
        .await
}

/// A machine with a key in the tenant of `token`; returns (machine id, key).
async fn machine_in(s: &TestServer, token: &str) -> (String, AgentKey) {
    let body = json!({"name": "tenant-pc"});
    let (status, m) = s
        .call(Method::POST, "/api/machines", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{m}");
    let id = m["id"].as_str().unwrap().to_owned();
    let path = format!("/api/machines/{id}/keys");
    let (status, k) = s.call(Method::POST, &path, Some(token), None).await;
    assert_eq!(status, 201, "{k}");
    (id, AgentKey::parse(k["key"].as_str().unwrap()).unwrap())
}

#[tokio::test]
async fn the_owner_creates_and_lists_tenants_and_their_admin_manages_only_their_own() {
    let s = TestServer::start().await;
    let (status, me) = s
        .call(Method::GET, "/api/me", Some(&s.admin_token), None)
        .await;
    assert_eq!((status, me["role"].as_str()), (200, Some("owner")), "{me}");
    let (acme, boss) = tenant_with_admin(&s, "acme").await;

    let (status, list) = s
        .call(Method::GET, "/api/tenants", Some(&s.admin_token), None)
        .await;
    assert_eq!(status, 200);
    let rows: Vec<(&str, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["users"].as_i64().unwrap()))
        .collect();
    assert_eq!(rows, [("default", 1), ("acme", 1)]);
    let (status, one) = s
        .call(
            Method::GET,
            &format!("/api/tenants/{acme}"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(
        (status, one["suspended_at_ms"].is_null()),
        (200, true),
        "{one}"
    );

    // The tenant's admin: no tenants API, every tenant id is 404 (even its own), never 403.
    let (status, _) = s.call(Method::GET, "/api/tenants", Some(&boss), None).await;
    assert_eq!(status, 403);
    let (_, me) = s
        .call(Method::GET, "/api/me", Some(&s.admin_token), None)
        .await;
    let default_id = me["tenant_id"].as_str().unwrap_or_default().to_owned();
    for id in [acme.as_str(), default_id.as_str(), "ten_nope"] {
        let path = format!("/api/tenants/{id}");
        assert_error(
            &s.call(Method::GET, &path, Some(&boss), None).await,
            404,
            "not_found",
        );
        let body = Some(json!({"suspended": true}));
        let got = s.call(Method::PATCH, &path, Some(&boss), body).await;
        assert_error(&got, 404, "not_found");
        let got = s.call(Method::DELETE, &path, Some(&boss), None).await;
        assert_error(&got, 404, "not_found");
    }
    // It manages its own users and sees nothing of the provider's tenant.
    let (status, users) = s.call(Method::GET, "/api/users", Some(&boss), None).await;
    assert_eq!((status, users.as_array().map(Vec::len)), (200, Some(1)));
}

#[tokio::test]
async fn bad_tenant_requests_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    tenant_with_admin(&s, "acme").await;
    let cases = [
        (
            json!({"name": "acme", "admin_username": "x", "admin_password": "long-enough"}),
            409,
            "tenant_name_taken",
        ),
        (
            json!({"name": "bad name!", "admin_username": "x", "admin_password": "long-enough"}),
            400,
            "invalid_name",
        ),
        (
            json!({"name": "", "admin_username": "x", "admin_password": "long-enough"}),
            400,
            "invalid_name",
        ),
        (
            json!({"name": "new", "admin_username": "x y", "admin_password": "long-enough"}),
            400,
            "invalid_username",
        ),
        (
            json!({"name": "new", "admin_username": "x", "admin_password": "short"}),
            400,
            "weak_password",
        ),
        (
            json!({"name": "new", "admin_username": "x", "admin_password": "long-enough", "owner": true}),
            400,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let got = s
            .call(
                Method::POST,
                "/api/tenants",
                Some(&s.admin_token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(got.0, status, "{body}: {}", got.1);
        assert_eq!(got.1["error"], code, "{body}: {}", got.1);
    }
    let got = s
        .call(Method::POST, "/api/tenants", None, Some(json!({})))
        .await;
    assert_eq!(got.0, 401);
    let (_, list) = s
        .call(Method::GET, "/api/tenants", Some(&s.admin_token), None)
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    // The provider's own tenant can be neither suspended nor deleted.
    let (_, me) = s
        .call(Method::GET, "/api/me", Some(&s.admin_token), None)
        .await;
    let own = me["tenant_id"].as_str().unwrap().to_owned();
    assert_error(&patch_suspended(&s, &own, true).await, 409, "own_tenant");
    let path = format!("/api/tenants/{own}");
    let got = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert_error(&got, 409, "own_tenant");
}

#[tokio::test]
async fn nobody_can_give_or_take_the_owner_role_through_the_users_api() {
    let s = TestServer::start().await;
    let (_, boss) = tenant_with_admin(&s, "acme").await;
    let body = json!({"username": "evil", "password": "evil-password", "role": "owner"});
    let got = s
        .call(Method::POST, "/api/users", Some(&boss), Some(body))
        .await;
    assert_error(&got, 400, "owner_not_assignable");
    // A second admin of the provider's tenant cannot demote, disable, reset or delete the owner.
    s.create_user("second", "second-password", "admin").await;
    let second = s.login_token(None, "second", "second-password").await;
    let (_, me) = s
        .call(Method::GET, "/api/me", Some(&s.admin_token), None)
        .await;
    let owner_path = format!("/api/users/{}", me["user_id"].as_str().unwrap());
    for body in [
        json!({"role": "viewer"}),
        json!({"disabled": true}),
        json!({"password": "taken-over!"}),
    ] {
        let got = s
            .call(Method::PATCH, &owner_path, Some(&second), Some(body))
            .await;
        assert_error(&got, 409, "owner_protected");
    }
    let got = s
        .call(Method::DELETE, &owner_path, Some(&second), None)
        .await;
    assert_error(&got, 409, "owner_protected");
    assert_eq!(
        s.login(None, "admin", common::ADMIN_PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn suspending_a_tenant_shuts_it_out_everywhere_and_leaves_other_tenants_alone() {
    let s = TestServer::start().await;
    let (acme, boss) = tenant_with_admin(&s, "acme").await;
    let (machine, key) = machine_in(&s, &boss).await;
    let mut agent = reach_agent::spawn(agent_config(
        &s,
        Credential::Key(key.clone()),
        Arc::new(DenyAll),
    ));
    wait_connected(&mut agent).await;
    let session = open_session(&s, &boss, &machine).await;
    let mut viewer = join(&s, &boss, &session).await;
    let body = json!({});
    let (status, code) = s
        .call(Method::POST, "/api/support-codes", Some(&boss), Some(body))
        .await;
    assert_eq!(status, 201, "{code}");
    // The provider's own machine and session keep running throughout.
    let (own_machine, _, mut own_agent) = managed_agent(&s, "provider-pc").await;
    let own_session = open_session(&s, &s.admin_token, &own_machine).await;
    let mut own_viewer = join(&s, &s.admin_token, &own_session).await;

    let (status, t) = patch_suspended(&s, &acme, true).await;
    assert_eq!(status, 200, "{t}");
    assert!(t["suspended_at_ms"].is_i64(), "{t}");

    let (close, _) = viewer_closed(&mut viewer).await;
    assert_ne!(
        close, 1000,
        "the viewer is closed by the server, not normally"
    );
    let why = agent_disconnected(&mut agent).await;
    assert!(why.contains("suspended"), "{why}");
    let row = sqlx::query("SELECT end_reason FROM sessions WHERE id = $1")
        .bind(&session)
        .fetch_one(&s.state.db)
        .await
        .unwrap();
    assert_eq!(
        row.get::<Option<String>, _>("end_reason").as_deref(),
        Some("tenant_suspended")
    );
    let got = s.call(Method::GET, "/api/me", Some(&boss), None).await;
    assert_eq!(got.0, 401, "{}", got.1);
    let refused = s.login(Some("acme"), "boss", "boss-password").await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "tenant_suspended", "{body}");
    let again = reach_agent::spawn(agent_config(
        &s,
        Credential::Key(key.clone()),
        Arc::new(DenyAll),
    ));
    assert_eq!(rejected_with(again).await, reach_proto::close::UNAUTHORIZED);
    let code = code["code"].as_str().unwrap();
    let got = s
        .call(
            Method::POST,
            "/api/support-codes/validate",
            None,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(
        got.0, 404,
        "the suspended tenant's code no longer works: {}",
        got.1
    );

    // Nothing of the provider's tenant was touched.
    let (status, v) = s
        .call(
            Method::GET,
            &format!("/api/sessions/{own_session}"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!((status, v["ended_at_ms"].is_null()), (200, true), "{v}");
    own_agent_still_connected(&mut own_agent, &mut own_viewer, &own_session).await;

    // Resumed: its admin logs in and its agent connects again.
    let (status, t) = patch_suspended(&s, &acme, false).await;
    assert_eq!((status, t["suspended_at_ms"].is_null()), (200, true), "{t}");
    s.login_token(Some("acme"), "boss", "boss-password").await;
    let mut back = reach_agent::spawn(agent_config(&s, Credential::Key(key), Arc::new(DenyAll)));
    assert_eq!(wait_connected(&mut back).await.0, machine);
}

/// The provider's agent still relays to its viewer.
async fn own_agent_still_connected(
    agent: &mut reach_agent::AgentHandle,
    viewer: &mut reach_agent::viewer::ViewerConnection,
    session: &str,
) {
    agent
        .send(frame(session, 7))
        .await
        .expect("the agent is still connected");
    let env = viewer_media(viewer).await;
    assert!(env.body.is_some());
}

#[tokio::test]
async fn a_tenant_is_deleted_only_when_suspended_and_then_is_gone_with_its_users() {
    let s = TestServer::start().await;
    let (acme, _boss) = tenant_with_admin(&s, "acme").await;
    let path = format!("/api/tenants/{acme}");
    let got = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert_error(&got, 409, "not_suspended");
    assert_eq!(patch_suspended(&s, &acme, true).await.0, 200);
    let got = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert_eq!(got.0, 204, "{}", got.1);
    assert_error(
        &s.call(Method::GET, &path, Some(&s.admin_token), None).await,
        404,
        "not_found",
    );
    assert_eq!(
        s.login(Some("acme"), "boss", "boss-password")
            .await
            .status(),
        401
    );
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1")
        .bind(&acme)
        .fetch_one(&s.state.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
    // The provider's audit log records the whole story.
    let types = audit_types(&s).await;
    for t in ["tenant_created", "tenant_suspended", "tenant_deleted"] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
}
