//! Sessions and support codes stay tidy: opening the same session twice gives the first one,
//! sessions nobody watches end by themselves, and unused support codes can be listed and
//! revoked.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::Arc;
use std::time::Duration;

use reach_agent::Credential;
use reach_agent::consent::ScriptedPrompt;
use reach_proto::close;
use reach_proto::support_code::SupportCode;
use reqwest::Method;
use serde_json::{Value, json};

use common::{TestServer, assert_error};
use relay::*;

async fn open(s: &TestServer, machine_id: &str) -> (u16, Value) {
    let body = json!({"machine_id": machine_id});
    s.call(
        Method::POST,
        "/api/sessions",
        Some(&s.admin_token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn opening_the_same_session_twice_returns_the_open_one() {
    let s = TestServer::start().await;
    let (machine_id, _, _agent) = managed_agent(&s, "front-desk").await;
    let (status, first) = open(&s, &machine_id).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = open(&s, &machine_id).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]));
    let (status, view_only) = s
        .call(
            Method::POST,
            "/api/sessions",
            Some(&s.admin_token),
            Some(json!({"machine_id": machine_id, "access": "view_only"})),
        )
        .await;
    assert_eq!(status, 201, "another scope is another session: {view_only}");
    let path = format!("/api/sessions/{}", first["id"].as_str().unwrap());
    s.call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    let (status, fresh) = open(&s, &machine_id).await;
    assert_eq!(status, 201, "an ended session is not reused");
    assert_ne!(fresh["id"], first["id"]);
}

#[tokio::test]
async fn a_session_nobody_watches_ends_by_itself_as_idle() {
    let s = TestServer::start_with(|c| c.session_idle_secs = 1).await;
    let (machine_id, _, _agent) = managed_agent(&s, "idle-box").await;
    let (_, session) = open(&s, &machine_id).await;
    let id = session["id"].as_str().unwrap();
    // That a watched session is never idle is the hub's unit test (no timing here).
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            let row = session_as_admin(&s, id).await;
            if !row["ended_at_ms"].is_null() {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the idle session ends");
    assert_eq!(ended["end_reason"], "idle");
    // The row is written first (whoever sees the end sees it ended), the audit record next.
    tokio::time::timeout(WAIT, async {
        while !audit_types(&s).await.contains(&"session_ended".to_owned()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the end is audited");
}

#[tokio::test]
async fn unused_support_codes_can_be_listed_and_revoked() {
    let s = TestServer::start().await;
    let code = create_code(&s).await;
    let (status, list) = s
        .call(
            Method::GET,
            "/api/support-codes",
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(
        list.to_string().find(&code).is_none(),
        "the code itself is never shown again"
    );
    let id = items[0]["id"].as_str().unwrap().to_owned();

    s.create_user("watcher", "watcher-password", "viewer").await;
    let watcher = s.login_token(None, "watcher", "watcher-password").await;
    let path = format!("/api/support-codes/{id}");
    assert_error(
        &s.call(Method::DELETE, &path, Some(&watcher), None).await,
        403,
        "forbidden",
    );
    let (status, _) = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert_eq!(status, 204);
    assert_error(
        &s.call(Method::DELETE, &path, Some(&s.admin_token), None)
            .await,
        404,
        "not_found",
    );
    let (_, list) = s
        .call(
            Method::GET,
            "/api/support-codes",
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(list, json!([]));

    let (prompt, _control) = ScriptedPrompt::new();
    let credential = Credential::Code(SupportCode::parse(&code).unwrap());
    let agent = reach_agent::spawn(agent_config(&s, credential, Arc::new(prompt)));
    assert_eq!(
        rejected_with(agent).await,
        close::UNAUTHORIZED,
        "a revoked code opens nothing"
    );
    assert!(
        audit_types(&s)
            .await
            .contains(&"support_code_revoked".to_owned())
    );
}
