//! Agent loss: a managed session survives its agent going away (viewers are told and
//! traffic resumes when the agent returns); an attended session waiting for consent is
//! torn down when its agent disconnects.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::Arc;

use reach_agent::Credential;
use reach_agent::consent::{DenyAll, ScriptedPrompt};
use reach_proto::close;
use reach_proto::support_code::SupportCode;
use reach_proto::v1::{envelope::Body, session_event::Kind};
use reqwest::Method;
use serde_json::json;

use common::TestServer;
use relay::*;

#[tokio::test]
async fn a_managed_session_waits_for_its_agent_and_resumes() {
    let s = TestServer::start().await;
    let m = create_machine(&s, json!({"name": "flaky-link"})).await;
    let machine_id = m["id"].as_str().unwrap().to_owned();
    let (_, agent_key) = issue_key(&s, &machine_id).await;
    let mut agent = reach_agent::spawn(agent_config(
        &s,
        Credential::Key(agent_key.clone()),
        Arc::new(DenyAll),
    ));
    wait_connected(&mut agent).await;
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;

    agent.stop().await.unwrap();
    loop {
        let env = viewer_next(&mut viewer).await;
        if matches!(&env.body, Some(Body::SessionEvent(e)) if e.kind() == Kind::AgentOffline) {
            break;
        }
        assert!(
            matches!(env.body, Some(Body::SessionEvent(_))),
            "only events while waiting: {env:?}"
        );
    }
    let v = session_as_admin(&s, &session_id).await;
    assert!(
        v["ended_at_ms"].is_null(),
        "the managed session is suspended, not ended: {v}"
    );

    let mut back = reach_agent::spawn(agent_config(
        &s,
        Credential::Key(agent_key),
        Arc::new(DenyAll),
    ));
    wait_connected(&mut back).await;
    back.send(frame(&session_id, 11)).await.unwrap();
    assert!(
        matches!(viewer_media(&mut viewer).await.body, Some(Body::VideoFrame(f)) if f.sequence == 11)
    );
    viewer.send(key("KeyR")).await.unwrap();
    assert!(matches!(agent_input(&mut back).await.body, Some(Body::Key(k)) if k.code == "KeyR"));
}

#[tokio::test]
async fn an_attended_agent_leaving_before_consent_tears_the_session_down() {
    let s = TestServer::start().await;
    let (_, v) = s
        .call(
            Method::POST,
            "/api/support-codes",
            Some(&s.admin_token),
            Some(json!({})),
        )
        .await;
    let code = SupportCode::parse(v["code"].as_str().unwrap()).unwrap();
    let (prompt, control) = ScriptedPrompt::new();
    let mut agent = reach_agent::spawn(agent_config(&s, Credential::Code(code), Arc::new(prompt)));
    let (_, session_id) = wait_connected(&mut agent).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    agent.stop().await.unwrap();
    drop(control);
    let (code, seen) = viewer_closed(&mut viewer).await;
    assert_eq!(code, close::CONSENT_DENIED);
    assert!(
        seen.iter()
            .all(|e| !matches!(e.body, Some(Body::VideoFrame(_))))
    );
    let v = session_as_admin(&s, &session_id).await;
    assert_eq!(v["end_reason"], "agent_disconnected", "{v}");
    assert_eq!(v["consent"], "denied", "{v}");
}
