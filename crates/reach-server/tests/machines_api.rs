//! Machines REST: create, search by name/organization/site/tag/online, edit, validation and
//! permissions; agent keys are shown once and listed without the secret.

mod common;
#[path = "common/relay.rs"]
mod relay;

use reqwest::Method;
use serde_json::json;

use common::TestServer;
use relay::*;

async fn names(s: &TestServer, query: &str) -> Vec<String> {
    let (status, list) = s
        .call(
            Method::GET,
            &format!("/api/machines{query}"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn machines_are_searchable_and_editable() {
    let s = TestServer::start().await;
    create_machine(&s, json!({"name": "Front desk", "organization": "Acme", "site": "Berlin", "tags": ["pos", "win"]})).await;
    let lab = create_machine(
        &s,
        json!({"name": "Lab PC", "organization": "Globex", "site": "Paris", "tags": ["linux"]}),
    )
    .await;
    let (_, _, _agent) = managed_agent(&s, "Online box").await;
    assert_eq!(names(&s, "?q=desk").await, ["Front desk"]);
    assert_eq!(names(&s, "?organization=globex").await, ["Lab PC"]);
    assert_eq!(names(&s, "?site=Berlin").await, ["Front desk"]);
    assert_eq!(names(&s, "?tag=LINUX").await, ["Lab PC"]);
    assert_eq!(names(&s, "?online=true").await, ["Online box"]);
    assert_eq!(
        names(&s, "?q=nothing-like-this").await,
        Vec::<String>::new()
    );

    let path = format!("/api/machines/{}", lab["id"].as_str().unwrap());
    let body = json!({"name": "Lab PC 2", "tags": ["linux", "gpu"], "require_consent": true});
    let (status, m) = s
        .call(Method::PATCH, &path, Some(&s.admin_token), Some(body))
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["name"], "Lab PC 2");
    assert_eq!(m["organization"], "Globex", "untouched fields stay");
    assert_eq!(m["require_consent"], true);
    assert_eq!(names(&s, "?tag=gpu").await, ["Lab PC 2"]);
}

#[tokio::test]
async fn bad_machine_input_is_refused_and_changes_nothing() {
    let s = TestServer::start().await;
    let m = create_machine(&s, json!({"name": "ok"})).await;
    let path = format!("/api/machines/{}", m["id"].as_str().unwrap());
    let long = "x".repeat(129);
    for (body, code) in [
        (json!({"name": ""}), "invalid_name"),
        (json!({"name": long}), "invalid_name"),
        (json!({"name": "a", "tags": [""]}), "invalid_tags"),
    ] {
        let got = s
            .call(
                Method::POST,
                "/api/machines",
                Some(&s.admin_token),
                Some(body.clone()),
            )
            .await;
        common::assert_error(&got, 400, code);
        let got = s
            .call(Method::PATCH, &path, Some(&s.admin_token), Some(body))
            .await;
        common::assert_error(&got, 400, code);
    }
    let got = s
        .call(
            Method::PATCH,
            &path,
            Some(&s.admin_token),
            Some(json!({"owner": "me"})),
        )
        .await;
    assert_eq!(got.0, 400, "{}", got.1);
    assert_eq!(names(&s, "").await, ["ok"]);
    let got = s
        .call(
            Method::GET,
            "/api/machines/mch_missing",
            Some(&s.admin_token),
            None,
        )
        .await;
    common::assert_error(&got, 404, "not_found");
}

#[tokio::test]
async fn technicians_see_machines_but_cannot_manage_them_or_their_keys() {
    let s = TestServer::start().await;
    let m = create_machine(&s, json!({"name": "managed"})).await;
    s.create_user("tech", "tech-password", "technician").await;
    let tech = s.login_token(None, "tech", "tech-password").await;
    let (status, _) = s
        .call(Method::GET, "/api/machines", Some(&tech), None)
        .await;
    assert_eq!(status, 200);
    let got = s
        .call(
            Method::POST,
            "/api/machines",
            Some(&tech),
            Some(json!({"name": "x"})),
        )
        .await;
    common::assert_error(&got, 403, "forbidden");
    let keys = format!("/api/machines/{}/keys", m["id"].as_str().unwrap());
    common::assert_error(
        &s.call(Method::POST, &keys, Some(&tech), None).await,
        403,
        "forbidden",
    );
    common::assert_error(
        &s.call(Method::GET, &keys, Some(&tech), None).await,
        403,
        "forbidden",
    );
}

#[tokio::test]
async fn deleting_a_machine_disconnects_its_agent_ends_its_sessions_and_forgets_it() {
    let s = TestServer::start().await;
    let (machine_id, _key, mut agent) = managed_agent(&s, "retired").await;
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    let path = format!("/api/machines/{machine_id}");

    s.create_user("tech", "tech-password", "technician").await;
    let tech = s.login_token(None, "tech", "tech-password").await;
    common::assert_error(
        &s.call(Method::DELETE, &path, Some(&tech), None).await,
        403,
        "forbidden",
    );

    let (status, _) = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert_eq!(status, 204);
    let _ = viewer_closed(&mut viewer).await;
    agent_disconnected(&mut agent).await;
    let session = session_as_admin(&s, &session_id).await;
    assert_eq!(session["end_reason"], "machine_deleted", "{session}");
    common::assert_error(
        &s.call(Method::GET, &path, Some(&s.admin_token), None).await,
        404,
        "not_found",
    );
    common::assert_error(
        &s.call(Method::DELETE, &path, Some(&s.admin_token), None)
            .await,
        404,
        "not_found",
    );
    assert!(audit_types(&s).await.iter().any(|t| t == "machine_deleted"));
    assert!(!s.state.relay.is_online(&machine_id));
}
