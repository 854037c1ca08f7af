//! Agent authentication: only agent keys and support codes open `/ws/agent`; a key binds
//! the connection to its machine; a revoked key disconnects the live agent and fails later.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::Arc;

use reach_agent::Credential;
use reach_agent::consent::DenyAll;
use reach_agent::ws::{self, Incoming};
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1::{self, agent_auth, envelope::Body};
use reach_proto::{close, codec};
use reqwest::Method;

use common::TestServer;
use relay::*;

/// Sends `first` on a fresh agent socket and returns the close code.
async fn first_message_close_code(s: &TestServer, first: Body) -> u16 {
    let url = format!("{}/ws/agent", s.url.replacen("http", "ws", 1));
    let mut socket = ws::connect(&url, AGENT_MAX_MESSAGE).await.unwrap();
    ws::send(&mut socket, &codec::envelope("", first))
        .await
        .unwrap();
    let _ = ws::send(
        &mut socket,
        &codec::envelope("", Body::AgentHello(v1::AgentHello::default())),
    )
    .await;
    match tokio::time::timeout(WAIT, ws::recv(&mut socket, AGENT_MAX_MESSAGE))
        .await
        .unwrap()
        .unwrap()
    {
        Incoming::Closed { code, .. } => code,
        Incoming::Envelope(e) => panic!("accepted: {e:?}"),
    }
}

fn with_key(key: &str) -> Body {
    Body::AgentAuth(v1::AgentAuth {
        credential: Some(agent_auth::Credential::AgentKey(key.to_owned())),
    })
}

#[tokio::test]
async fn user_and_viewer_tokens_never_authenticate_an_agent() {
    let s = TestServer::start().await;
    let (m, _, _agent) = managed_agent(&s, "m").await;
    let sid = open_session(&s, &s.admin_token, &m).await;
    let viewer = viewer_token(&s, &s.admin_token, &sid).await;
    assert_eq!(
        first_message_close_code(&s, with_key(&s.admin_token)).await,
        close::UNAUTHORIZED
    );
    assert_eq!(
        first_message_close_code(&s, with_key(&viewer)).await,
        close::UNAUTHORIZED
    );
    let as_viewer = Body::ViewerAuth(v1::ViewerAuth {
        token: s.admin_token.clone(),
    });
    assert_eq!(
        first_message_close_code(&s, as_viewer).await,
        close::UNAUTHORIZED
    );
    let unknown = format!("cak_{}", "0".repeat(64));
    assert_eq!(
        first_message_close_code(&s, with_key(&unknown)).await,
        close::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_key_for_machine_x_cannot_act_as_machine_y() {
    let s = TestServer::start().await;
    let (mx, _, agent_x) = managed_agent(&s, "x").await;
    let (my, _, agent_y) = managed_agent(&s, "y").await;
    let sx = open_session(&s, &s.admin_token, &mx).await;
    let sy = open_session(&s, &s.admin_token, &my).await;
    let mut vx = join(&s, &s.admin_token, &sx).await;
    let mut vy = join(&s, &s.admin_token, &sy).await;
    // X writes into Y's session, then into its own: once X's own frame arrived, the
    // server has processed (and dropped) the spoofed one.
    agent_x.send(frame(&sy, 666)).await.unwrap();
    agent_x.send(frame(&sx, 1)).await.unwrap();
    assert!(
        matches!(viewer_media(&mut vx).await.body, Some(Body::VideoFrame(f)) if f.sequence == 1)
    );
    agent_y.send(frame(&sy, 2)).await.unwrap();
    assert!(
        matches!(viewer_media(&mut vy).await.body, Some(Body::VideoFrame(f)) if f.sequence == 2)
    );
    // Consent answers for another machine's session are ignored too.
    agent_x
        .send(codec::envelope(
            &sy,
            Body::ConsentResponse(v1::ConsentResponse {
                granted: false,
                ..Default::default()
            }),
        ))
        .await
        .unwrap();
    agent_y.send(frame(&sy, 3)).await.unwrap();
    assert!(
        matches!(viewer_media(&mut vy).await.body, Some(Body::VideoFrame(f)) if f.sequence == 3)
    );
}

#[tokio::test]
async fn revoking_a_key_disconnects_the_live_agent_and_it_cannot_return() {
    let s = TestServer::start().await;
    let (m, key_id, agent) = managed_agent(&s, "revoke-me").await;
    let path = format!("/api/machines/{m}/keys/{key_id}");
    let (status, _) = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(rejected_with(agent).await, close::REVOKED);
    let (_, keys) = s
        .call(
            Method::GET,
            &format!("/api/machines/{m}/keys"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert!(keys[0]["revoked_at_ms"].is_i64(), "{keys}");
    assert!(
        keys[0].get("key").is_none(),
        "keys are never listed: {keys}"
    );
    let (_, machine) = s
        .call(
            Method::GET,
            &format!("/api/machines/{m}"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(machine["online"], false);
    let got = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    common::assert_error(&got, 404, "not_found");
    assert!(audit_types(&s).await.iter().any(|t| t == "key_revoked"));
}

#[tokio::test]
async fn a_revoked_key_fails_at_the_next_connect() {
    let s = TestServer::start().await;
    let m = create_machine(&s, serde_json::json!({"name": "later"})).await;
    let m = m["id"].as_str().unwrap();
    let (key_id, key) = issue_key(&s, m).await;
    s.call(
        Method::DELETE,
        &format!("/api/machines/{m}/keys/{key_id}"),
        Some(&s.admin_token),
        None,
    )
    .await;
    let agent = reach_agent::spawn(agent_config(&s, Credential::Key(key), Arc::new(DenyAll)));
    assert_eq!(rejected_with(agent).await, close::UNAUTHORIZED);
}

#[tokio::test]
async fn a_second_agent_with_the_same_key_replaces_the_first() {
    let s = TestServer::start().await;
    let m = create_machine(&s, serde_json::json!({"name": "twin"})).await;
    let (_, key) = issue_key(&s, m["id"].as_str().unwrap()).await;
    let mut first = reach_agent::spawn(agent_config(
        &s,
        Credential::Key(key.clone()),
        Arc::new(DenyAll),
    ));
    wait_connected(&mut first).await;
    let mut second = reach_agent::spawn(agent_config(&s, Credential::Key(key), Arc::new(DenyAll)));
    wait_connected(&mut second).await;
    assert_eq!(rejected_with(first).await, close::REPLACED);
    let (_, machine) = s
        .call(
            Method::GET,
            &format!("/api/machines/{}", m["id"].as_str().unwrap()),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(machine["online"], true);
}
