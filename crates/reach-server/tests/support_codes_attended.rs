//! Attended support: code created → validate does not consume → agent binds (consumed) →
//! a second agent with the same code is refused → consent → viewer; consent no or timeout
//! tears the session down and nothing reached the viewer before consent.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::Arc;
use std::time::Duration;

use reach_agent::consent::{ConsentAnswer, ScriptedPrompt, ScriptedPromptControl};
use reach_agent::{AgentEvent, AgentHandle, ClientError, Credential};
use reach_proto::close;
use reach_proto::support_code::SupportCode;
use reach_proto::v1::{envelope::Body, session_event::Kind};
use reqwest::Method;
use serde_json::json;

use common::TestServer;
use relay::*;

async fn validate(s: &TestServer, code: &str) -> (u16, serde_json::Value) {
    s.call(
        Method::POST,
        "/api/support-codes/validate",
        None,
        Some(json!({"code": code})),
    )
    .await
}

/// An attended agent with a scripted prompt, connected: (agent, control, session id).
async fn attended(s: &TestServer, code: &str) -> (AgentHandle, Arc<ScriptedPromptControl>, String) {
    let (prompt, control) = ScriptedPrompt::new();
    let credential = Credential::Code(SupportCode::parse(code).unwrap());
    let mut agent = reach_agent::spawn(agent_config(s, credential, Arc::new(prompt)));
    let (_, session_id) = wait_connected(&mut agent).await;
    assert!(!session_id.is_empty());
    (agent, Arc::new(control), session_id)
}

async fn question(control: &Arc<ScriptedPromptControl>) -> reach_agent::consent::ConsentQuestion {
    let c = control.clone();
    tokio::task::spawn_blocking(move || c.next_question(WAIT))
        .await
        .unwrap()
        .expect("consent asked")
}

async fn consent_answered(agent: &mut AgentHandle) -> bool {
    loop {
        match tokio::time::timeout(WAIT, agent.events.recv())
            .await
            .expect("answered")
        {
            Some(AgentEvent::ConsentAnswered { granted, .. }) => return granted,
            Some(_) => {}
            None => panic!("agent stopped"),
        }
    }
}

#[tokio::test]
async fn attended_session_flows_only_after_an_explicit_yes() {
    let s = TestServer::start().await;
    let code = create_code(&s).await;
    for _ in 0..2 {
        let (status, preview) = validate(&s, &code.to_lowercase().replace('-', " ")).await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["technician"], "admin");
    }
    let (mut agent, control, session_id) = attended(&s, &code).await;
    let q = question(&control).await;
    assert_eq!(q.technician, "admin");
    assert_eq!(q.session_id, session_id);
    assert_eq!(
        validate(&s, &code).await.0,
        404,
        "consumed codes no longer validate"
    );

    let (p2, _c2) = ScriptedPrompt::new();
    let second = reach_agent::spawn(agent_config(
        &s,
        Credential::Code(SupportCode::parse(&code).unwrap()),
        Arc::new(p2),
    ));
    assert_eq!(rejected_with(second).await, close::UNAUTHORIZED);

    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    let pending = viewer_next(&mut viewer).await;
    assert!(
        matches!(pending.body, Some(Body::SessionEvent(e)) if e.kind() == Kind::ConsentPending)
    );
    viewer.send(key("KeyQ")).await.unwrap();
    let told = viewer_next(&mut viewer).await;
    assert!(matches!(told.body, Some(Body::Error(e)) if e.code == "consent_pending"));
    agent.send(frame(&session_id, 1)).await.unwrap();

    control.answer(ConsentAnswer::Yes);
    assert!(consent_answered(&mut agent).await);
    let granted = viewer_next(&mut viewer).await;
    assert!(
        matches!(&granted.body, Some(Body::SessionEvent(e)) if e.kind() == Kind::ConsentGranted),
        "the frame sent before consent never reaches the viewer: {granted:?}"
    );
    agent.send(frame(&session_id, 2)).await.unwrap();
    assert!(
        matches!(viewer_media(&mut viewer).await.body, Some(Body::VideoFrame(f)) if f.sequence == 2)
    );
    viewer.send(key("KeyW")).await.unwrap();
    assert!(
        matches!(agent_input(&mut agent).await.body, Some(Body::Key(k)) if k.code == "KeyW"),
        "the key sent before consent never reaches the agent"
    );

    let types = audit_types(&s).await;
    for t in [
        "support_code_created",
        "support_code_consumed",
        "consent_requested",
        "consent_granted",
        "viewer_joined",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
}

async fn torn_down(
    s: &TestServer,
    agent: &mut AgentHandle,
    viewer: &mut reach_agent::viewer::ViewerConnection,
    session_id: &str,
) -> String {
    let (code, seen) = viewer_closed(viewer).await;
    assert_eq!(code, close::CONSENT_DENIED);
    assert!(
        seen.iter()
            .all(|e| !matches!(e.body, Some(Body::VideoFrame(_)))),
        "{seen:?}"
    );
    agent_disconnected(agent).await;
    let v = session_as_admin(s, session_id).await;
    assert_eq!(v["consent"], "denied", "{v}");
    assert!(v["ended_at_ms"].is_i64(), "{v}");
    assert!(audit_types(s).await.iter().any(|t| t == "consent_denied"));
    v["end_reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_no_tears_the_session_down() {
    let s = TestServer::start().await;
    let code = create_code(&s).await;
    let (mut agent, control, session_id) = attended(&s, &code).await;
    question(&control).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    agent.send(frame(&session_id, 1)).await.unwrap();
    control.answer(ConsentAnswer::No);
    assert_eq!(
        torn_down(&s, &mut agent, &mut viewer, &session_id).await,
        "consent_refused"
    );
}

#[tokio::test]
async fn silence_until_the_timeout_tears_the_session_down() {
    let s = TestServer::start().await;
    s.state
        .relay
        .set_consent_timeout(Duration::from_millis(300));
    let code = create_code(&s).await;
    let (mut agent, control, session_id) = attended(&s, &code).await;
    question(&control).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    agent.send(frame(&session_id, 1)).await.unwrap();
    assert_eq!(
        torn_down(&s, &mut agent, &mut viewer, &session_id).await,
        "consent_timeout"
    );
}

#[tokio::test]
async fn an_expired_or_malformed_code_binds_nothing() {
    let s = TestServer::start().await;
    let code = create_code(&s).await;
    s.sql("UPDATE support_codes SET expires_at = 0").await;
    assert_eq!(validate(&s, &code).await.0, 404);
    for bad in [code.as_str(), "ABC-DEF-GHJ"] {
        let (p, _c) = ScriptedPrompt::new();
        let agent = reach_agent::spawn(agent_config(
            &s,
            Credential::Code(SupportCode::parse(bad).unwrap()),
            Arc::new(p),
        ));
        let err = tokio::time::timeout(WAIT, agent.join())
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, ClientError::Rejected { .. }), "{err}");
    }
    let got = s
        .call(
            Method::POST,
            "/api/support-codes/validate",
            None,
            Some(json!({"code": "0OIL"})),
        )
        .await;
    common::assert_error(&got, 404, "not_found");
    let (_, list) = s
        .call(
            Method::GET,
            "/api/sessions?include_ended=true",
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 0);
}
