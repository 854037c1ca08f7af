//! The one viewer-access rule on every surface: a viewer never gets more than the session
//! allows (its access, its USB flag, the consent's scope), USB frames pass only when every
//! party allows USB, and watching never lets a user end someone else's session.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::Arc;

use reach_agent::consent::{ConsentAnswer, ScriptedPrompt};
use reach_agent::viewer::ViewerConnection;
use reach_agent::{AgentEvent, AgentHandle, Credential};
use reach_proto::policy::ViewerAccess;
use reach_proto::support_code::SupportCode;
use reach_proto::v1::{self, envelope::Body};
use reqwest::Method;
use serde_json::{Value, json};

use common::TestServer;
use relay::*;

fn usb(marker: u8) -> Body {
    Body::Usb(v1::UsbFrame {
        frame: bytes::Bytes::from(vec![marker; 4]),
    })
}

async fn post(s: &TestServer, token: &str, path: &str, body: Value) -> (u16, Value) {
    s.call(Method::POST, path, Some(token), Some(body)).await
}

/// Opens a managed session with `body` (plus the machine id) as the admin.
async fn open_with(s: &TestServer, machine_id: &str, mut body: Value) -> String {
    body["machine_id"] = json!(machine_id);
    let (status, v) = post(s, &s.admin_token, "/api/sessions", body).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The viewer token's JSON for `session_id`, minted with `token`.
async fn mint(s: &TestServer, token: &str, session_id: &str) -> (u16, Value) {
    let path = format!("/api/sessions/{session_id}/viewer-token");
    post(s, token, &path, json!({})).await
}

/// Sends `bodies` then a keyframe request (always forwarded), and returns what reached the
/// agent up to and including that marker.
async fn reaches_agent(
    viewer: &mut ViewerConnection,
    agent: &mut AgentHandle,
    bodies: Vec<Body>,
) -> Vec<Body> {
    for b in bodies {
        viewer.send(b).await.unwrap();
    }
    viewer
        .send(Body::KeyframeRequest(v1::KeyframeRequest {}))
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let env = agent_input(agent).await;
        let body = env.body.expect("a body");
        let marker = matches!(body, Body::KeyframeRequest(_));
        seen.push(body);
        if marker {
            return seen;
        }
    }
}

/// Waits until the agent has answered its consent prompt.
async fn consent_answered(agent: &mut AgentHandle) {
    loop {
        let event = tokio::time::timeout(WAIT, agent.events.recv()).await;
        match event.expect("consent answered") {
            Some(AgentEvent::ConsentAnswered { granted, .. }) => return assert!(granted),
            Some(_) => {}
            None => panic!("agent stopped"),
        }
    }
}

#[tokio::test]
async fn a_view_only_support_code_consent_never_gives_a_control_token() {
    let s = TestServer::start().await;
    let (status, code) = post(
        &s,
        &s.admin_token,
        "/api/support-codes",
        json!({"access": "view_only"}),
    )
    .await;
    assert_eq!(status, 201, "{code}");
    let (prompt, control) = ScriptedPrompt::new();
    let credential = Credential::Code(SupportCode::parse(code["code"].as_str().unwrap()).unwrap());
    let mut agent = reach_agent::spawn(agent_config(&s, credential, Arc::new(prompt)));
    let (_, session_id) = wait_connected(&mut agent).await;
    control.answer(ConsentAnswer::Yes);
    consent_answered(&mut agent).await;

    let (status, token) = mint(&s, &s.admin_token, &session_id).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(
        token["access"], "view_only",
        "the admin may control, the end user said view"
    );
    assert_eq!(token["usb"], false);
    let mut viewer = ViewerConnection::join(&s.url, token["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(viewer.access, ViewerAccess::ViewOnly);
    let seen = reaches_agent(&mut viewer, &mut agent, vec![key("KeyA"), pointer(7)]).await;
    assert_eq!(
        seen.len(),
        1,
        "no input reached the end user's machine: {seen:?}"
    );
}

#[tokio::test]
async fn a_managed_view_only_session_gives_a_technician_only_view() {
    let s = TestServer::start().await;
    for require_consent in [false, true] {
        let m = create_machine(
            &s,
            json!({"name": "kiosk", "require_consent": require_consent}),
        )
        .await;
        let id = m["id"].as_str().unwrap().to_owned();
        let (_, agent_key) = issue_key(&s, &id).await;
        let (prompt, control) = ScriptedPrompt::new();
        control.answer(ConsentAnswer::Yes);
        let credential = Credential::Key(agent_key);
        let mut agent = reach_agent::spawn(agent_config(&s, credential, Arc::new(prompt)));
        wait_connected(&mut agent).await;
        let session_id = open_with(&s, &id, json!({"access": "view_only"})).await;
        let (status, token) = mint(&s, &s.admin_token, &session_id).await;
        assert_eq!(status, 200, "{token}");
        assert_eq!(
            token["access"], "view_only",
            "consent required: {require_consent}"
        );
        let mut viewer = join(&s, &s.admin_token, &session_id).await;
        assert_eq!(viewer.access, ViewerAccess::ViewOnly);
        if !require_consent {
            let seen = reaches_agent(&mut viewer, &mut agent, vec![key("KeyB")]).await;
            assert_eq!(seen.len(), 1, "{seen:?}");
        }
        viewer.leave().await;
        agent.abort();
    }
}

#[tokio::test]
async fn asking_for_more_than_the_caller_may_have_is_refused_not_narrowed() {
    let s = TestServer::start().await;
    s.create_user("watcher", "watcher-password", "viewer").await;
    let watcher = s.login_token(None, "watcher", "watcher-password").await;
    let (machine_id, _, _agent) = managed_agent(&s, "desk").await;
    let ask =
        |access: &str, usb: bool| json!({"machine_id": machine_id, "access": access, "usb": usb});
    let (status, body) = post(&s, &watcher, "/api/sessions", ask("control", false)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(&s, &watcher, "/api/sessions", ask("view_only", false)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["access"], "view_only");
    let (status, body) = post(&s, &s.admin_token, "/api/sessions", ask("view_only", true)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("usb_needs_control"))
    );
}

#[tokio::test]
async fn usb_frames_are_refused_in_a_session_opened_without_usb() {
    let s = TestServer::start().await;
    let (machine_id, mut agent) = managed_usb_agent(&s, true, true).await;
    let session_id = open_with(&s, &machine_id, json!({"usb": false})).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    assert!(!viewer.usb);
    assert!(
        viewer.usb_unavailable.contains("without USB"),
        "{}",
        viewer.usb_unavailable
    );
    viewer.send(usb(1)).await.unwrap();
    let refused = viewer_media(&mut viewer).await;
    assert!(
        matches!(&refused.body, Some(Body::Error(e)) if e.code == "usb_refused" && e.message.contains("without USB")),
        "{refused:?}"
    );
    let seen = reaches_agent(&mut viewer, &mut agent, vec![usb(2)]).await;
    assert_eq!(seen.len(), 1, "nothing reached the agent: {seen:?}");
}

#[tokio::test]
async fn usb_frames_are_refused_while_the_host_switch_is_off_or_the_agent_lacks_usb() {
    let s = TestServer::start().await;
    for (supported, enabled, why) in [
        (true, false, "switched off"),
        (false, false, "cannot share"),
    ] {
        let (machine_id, mut agent) = managed_usb_agent(&s, supported, enabled).await;
        let session_id = open_with(&s, &machine_id, json!({"usb": true})).await;
        let (_, token) = mint(&s, &s.admin_token, &session_id).await;
        assert_eq!(
            token["usb"], true,
            "the host's switch is checked live, not signed in"
        );
        let mut viewer = join(&s, &s.admin_token, &session_id).await;
        assert!(
            viewer.usb_unavailable.contains(why),
            "{}",
            viewer.usb_unavailable
        );
        viewer.send(usb(1)).await.unwrap();
        let refused = viewer_media(&mut viewer).await;
        assert!(
            matches!(&refused.body, Some(Body::Error(e)) if e.message.contains(why)),
            "{refused:?}"
        );
        let seen = reaches_agent(&mut viewer, &mut agent, vec![]).await;
        assert_eq!(seen.len(), 1, "{seen:?}");
        viewer.leave().await;
        agent.abort();
    }
}

#[tokio::test]
async fn usb_frames_from_a_technician_without_the_usb_permission_are_refused() {
    let s = TestServer::start().await;
    // Roles are data: this deployment's technicians may control but not use USB.
    s.sql("DELETE FROM role_permissions WHERE role = 'technician' AND permission = 'usb'")
        .await;
    s.create_user("op", "operator-password", "technician").await;
    let op = s.login_token(None, "op", "operator-password").await;
    let (machine_id, mut agent) = managed_usb_agent(&s, true, true).await;
    let session_id = open_with(&s, &machine_id, json!({"usb": true})).await;
    let mut viewer = join(&s, &op, &session_id).await;
    assert_eq!(viewer.access, ViewerAccess::Control);
    assert!(!viewer.usb);
    viewer.send(usb(3)).await.unwrap();
    let refused = viewer_media(&mut viewer).await;
    assert!(
        matches!(&refused.body, Some(Body::Error(e)) if e.message.contains("`usb` permission"))
    );
    let seen = reaches_agent(&mut viewer, &mut agent, vec![key("KeyC")]).await;
    assert_eq!(seen.len(), 2, "input passes, USB does not: {seen:?}");
}

#[tokio::test]
async fn usb_frames_pass_only_when_every_party_allows_usb() {
    let s = TestServer::start().await;
    let (machine_id, mut agent) = managed_usb_agent(&s, true, true).await;
    let session_id = open_with(&s, &machine_id, json!({"usb": true})).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    assert!(viewer.usb, "{}", viewer.usb_unavailable);
    let seen = reaches_agent(&mut viewer, &mut agent, vec![usb(9)]).await;
    assert!(
        matches!(&seen[0], Body::Usb(f) if f.frame.as_ref() == [9; 4]),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_watcher_cannot_end_someone_elses_session_but_the_creator_and_control_can() {
    let s = TestServer::start().await;
    s.create_user("watcher", "watcher-password", "viewer").await;
    s.create_user("tech", "technician-password", "technician")
        .await;
    let watcher = s.login_token(None, "watcher", "watcher-password").await;
    let tech = s.login_token(None, "tech", "technician-password").await;
    let (machine_id, _, _agent) = managed_agent(&s, "till").await;
    let by_admin = open_session(&s, &s.admin_token, &machine_id).await;
    let end = |id: &str| format!("/api/sessions/{id}");
    let (status, body) = s
        .call(Method::DELETE, &end(&by_admin), Some(&watcher), None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(session_as_admin(&s, &by_admin).await["ended_at_ms"].is_null());
    let (status, _) = s
        .call(Method::DELETE, &end(&by_admin), Some(&tech), None)
        .await;
    assert_eq!(status, 204, "control may end any session of the tenant");

    let by_watcher = open_session(&s, &watcher, &machine_id).await;
    let (status, _) = s
        .call(Method::DELETE, &end(&by_watcher), Some(&watcher), None)
        .await;
    assert_eq!(status, 204, "the creator may end their own session");
}
