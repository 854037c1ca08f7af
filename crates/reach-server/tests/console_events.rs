//! The console's push channel: a signed-in console learns of its tenant's machines, sessions
//! and support codes as they change, without polling, and nothing else.

mod common;
#[path = "common/relay.rs"]
mod relay;

use futures_util::{SinkExt as _, StreamExt as _};
use reach_agent::ws::{self, Ws};
use reach_server::console_events::{ConsoleEvent, ConsoleEventKind};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::TestServer;
use relay::*;

fn console_url(s: &TestServer) -> String {
    format!("{}/ws/console", s.url.replacen("http", "ws", 1))
}

/// A console socket that sent `token` first.
async fn console(s: &TestServer, token: &str, origin: Option<&str>) -> Ws {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    let mut ws = ws::connect_with_headers(&console_url(s), &headers, 64 * 1024)
        .await
        .unwrap();
    let hello = json!({ "token": token }).to_string();
    ws.send(Message::Text(hello.into())).await.unwrap();
    ws
}

/// The next JSON event, or the close code.
async fn next(ws: &mut Ws) -> Result<Value, u16> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a console message");
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map_or(1005, |f| f.code.into())),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(1006),
        }
    }
}

/// The next event of `kind` (others skipped).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let event = next(ws).await.expect("open");
        if event["kind"] == kind {
            return event;
        }
    }
}

#[tokio::test]
async fn a_console_learns_of_machines_and_sessions_as_they_change() {
    let s = TestServer::start().await;
    let mut ws = console(&s, &s.admin_token, Some(&s.url)).await;
    assert_eq!(next(&mut ws).await.unwrap()["kind"], "ready");
    let (machine_id, _, agent) = managed_agent(&s, "reception").await;
    assert_eq!(
        next_of(&mut ws, "machine_online").await["machine_id"],
        machine_id.as_str()
    );
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let started = next_of(&mut ws, "session_started").await;
    assert_eq!(started["session_id"], session_id.as_str());
    let path = format!("/api/sessions/{session_id}");
    s.call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    let ended = next_of(&mut ws, "session_ended").await;
    assert_eq!(
        (&ended["session_id"], &ended["reason"]),
        (&json!(session_id), &json!("ended_by_user"))
    );
    agent.abort();
    assert_eq!(
        next_of(&mut ws, "machine_offline").await["machine_id"],
        machine_id.as_str()
    );
}

#[tokio::test]
async fn a_console_hears_only_its_own_tenant() {
    let s = TestServer::start().await;
    let mut ws = console(&s, &s.admin_token, None).await;
    assert_eq!(next(&mut ws).await.unwrap()["kind"], "ready");
    s.state
        .notify(ConsoleEvent::new("tnt_other", ConsoleEventKind::CodeUsed).code("spc_theirs"));
    let me = s
        .call(Method::GET, "/api/me", Some(&s.admin_token), None)
        .await
        .1;
    let tenant = me["tenant_id"].as_str().unwrap();
    s.state
        .notify(ConsoleEvent::new(tenant, ConsoleEventKind::CodeUsed).code("spc_mine"));
    assert_eq!(
        next(&mut ws).await.unwrap()["code_id"],
        "spc_mine",
        "the other tenant's event never arrived"
    );
}

#[tokio::test]
async fn a_console_socket_needs_a_login_token_and_the_servers_origin() {
    let s = TestServer::start().await;
    for bad in ["", "rt1.e30.AAAA", "not json at all"] {
        let mut ws = ws::connect(&console_url(&s), 64 * 1024).await.unwrap();
        ws.send(Message::Text(bad.into())).await.unwrap();
        assert_eq!(next(&mut ws).await.err(), Some(4401), "{bad:?}");
    }
    let (machine_id, _, _agent) = managed_agent(&s, "desk").await;
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let viewer_token = viewer_token(&s, &s.admin_token, &session_id).await;
    let mut ws = console(&s, &viewer_token, None).await;
    assert_eq!(
        next(&mut ws).await.err(),
        Some(4401),
        "a viewer token is not a login token"
    );
    let mut ws = console(&s, &s.admin_token, Some("https://evil.example")).await;
    assert_eq!(next(&mut ws).await.err(), Some(4400));
}

#[tokio::test]
async fn logging_out_closes_the_console_socket() {
    let s = TestServer::start().await;
    let mut ws = console(&s, &s.admin_token, None).await;
    assert_eq!(next(&mut ws).await.unwrap()["kind"], "ready");
    s.call(Method::POST, "/api/auth/logout", Some(&s.admin_token), None)
        .await;
    assert_eq!(next(&mut ws).await.err(), Some(4410));
}
