//! A session held by one instance and watched from another: consent and its scope are decided
//! where the session is (the one access rule, never widened by crossing), the consent timer runs
//! there, USB transfers cross byte-exact, and consoles everywhere hear of machines and sessions.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/nats.rs"]
mod nats;
#[path = "common/relay.rs"]
mod relay;
#[path = "common/usb.rs"]
mod usb;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use reach_agent::consent::{ConsentAnswer, ScriptedPrompt};
use reach_agent::viewer::ViewerConnection;
use reach_agent::{AgentEvent, AgentHandle, Credential};
use reach_proto::access::ViewerAccess;
use reach_proto::support_code::SupportCode;
use reach_proto::{close, v1};
use reach_usb::proto::DeviceFilter;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use cluster::cluster;
use common::TestServer;
use relay::*;

async fn code(s: &TestServer, access: &str) -> SupportCode {
    let (status, v) = s
        .call(
            Method::POST,
            "/api/support-codes",
            Some(&s.admin_token),
            Some(json!({"access": access})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    SupportCode::parse(v["code"].as_str().unwrap()).unwrap()
}

async fn consent_answered(agent: &mut AgentHandle) -> bool {
    loop {
        match tokio::time::timeout(WAIT, agent.events.recv())
            .await
            .expect("consent answered")
        {
            Some(AgentEvent::ConsentAnswered { granted, .. }) => return granted,
            Some(_) => {}
            None => panic!("agent stopped"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_only_consent_on_a_gives_only_a_view_only_token_on_b() {
    let (_bus, servers) = cluster(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (prompt, control) = ScriptedPrompt::new();
    let credential = Credential::Code(code(b, "view_only").await);
    let mut agent = reach_agent::spawn(agent_config(a, credential, Arc::new(prompt)));
    let (_, session_id) = wait_connected(&mut agent).await;
    control.answer(ConsentAnswer::Yes);
    assert!(consent_answered(&mut agent).await);

    let path = format!("/api/sessions/{session_id}/viewer-token");
    let (status, token) = b
        .call(Method::POST, &path, Some(&b.admin_token), None)
        .await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(
        token["access"], "view_only",
        "the admin may control; the person said view"
    );
    assert_eq!(token["usb"], false);
    let mut viewer = ViewerConnection::join(&b.url, token["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(viewer.access, ViewerAccess::ViewOnly);
    // The home decides every frame with the same rule: input is dropped, video flows.
    viewer.send(key("KeyA")).await.unwrap();
    agent.send(frame(&session_id, 5)).await.unwrap();
    let got = viewer_media(&mut viewer).await;
    assert!(
        matches!(got.body, Some(v1::envelope::Body::VideoFrame(_))),
        "{got:?}"
    );
    viewer.send(key("KeyB")).await.unwrap();
    agent.send(frame(&session_id, 6)).await.unwrap();
    viewer_media(&mut viewer).await;
    let keys = tokio::time::timeout(Duration::from_millis(300), agent_input(&mut agent)).await;
    assert!(keys.is_err(), "no input reached the machine: {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_timer_runs_where_the_session_is_and_closes_a_viewer_waiting_on_b() {
    let (_bus, servers) = cluster(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    a.state
        .relay
        .set_consent_timeout(Duration::from_millis(400));
    let (prompt, _control) = ScriptedPrompt::new();
    let credential = Credential::Code(code(b, "control").await);
    let mut agent = reach_agent::spawn(agent_config(a, credential, Arc::new(prompt)));
    let (_, session_id) = wait_connected(&mut agent).await;
    let mut viewer = join(b, &b.admin_token, &session_id).await;
    let (code, _) = viewer_closed(&mut viewer).await;
    assert_eq!(code, close::CONSENT_DENIED);
    let v = session_as_admin(b, &session_id).await;
    assert_eq!(v["end_reason"], "consent_timeout", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usb_bulk_data_crosses_instances_byte_exact() {
    let (_bus, servers) = cluster(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (_host, options) = usb::usb_host(&usb::allow_loopback_only(), true);
    let (machine_id, _agent) = usb::usb_agent(a, "usb-on-a", options).await;
    let session_id = usb::open_usb_session(b, &b.admin_token, &machine_id, true).await;
    let (_viewer, client) = usb::technician(b, &b.admin_token, &session_id).await;
    let filter = DeviceFilter {
        vendor_id: Some(usb::LOOPBACK.0),
        product_id: Some(usb::LOOPBACK.1),
        ..DeviceFilter::default()
    };
    let dev = client.open(filter).await.expect("open across instances");
    let data: Vec<u8> = (0..4 * 1024 * 1024)
        .map(|i: usize| (i % 253) as u8)
        .collect();
    let data = Bytes::from(data);
    let writer = {
        let (dev, data) = (dev.clone(), data.clone());
        tokio::spawn(async move {
            for chunk in data.chunks(256 * 1024) {
                dev.bulk_out(0x02, data.slice_ref(chunk))
                    .await
                    .expect("bulk OUT");
            }
        })
    };
    let mut back = Vec::with_capacity(data.len());
    while back.len() < data.len() {
        let got = tokio::time::timeout(WAIT, dev.bulk_in(0x81, 256 * 1024))
            .await
            .expect("bulk IN in time")
            .expect("bulk IN");
        back.extend_from_slice(&got);
    }
    writer.await.unwrap();
    assert!(back == data, "byte-exact");
}

async fn console(s: &TestServer) -> reach_agent::ws::Ws {
    let url = format!("{}/ws/console", s.url.replacen("http", "ws", 1));
    let mut ws = reach_agent::ws::connect_with_headers(&url, &[], 64 * 1024)
        .await
        .unwrap();
    let hello = json!({ "token": s.admin_token }).to_string();
    ws.send(Message::Text(hello.into())).await.unwrap();
    ws
}

async fn next_of(ws: &mut reach_agent::ws::Ws, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a console event");
        if let Some(Ok(Message::Text(t))) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["kind"] == kind {
                return v;
            }
        } else if !matches!(msg, Some(Ok(_))) {
            panic!("console closed: {msg:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_on_b_hears_of_an_agent_and_a_session_on_a() {
    let (_bus, servers) = cluster(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let mut on_b = console(b).await;
    let (machine, _, _agent) = managed_agent(a, "on-a").await;
    let online = next_of(&mut on_b, "machine_online").await;
    assert_eq!(online["machine_id"], machine.as_str());
    let session = open_session(a, &a.admin_token, &machine).await;
    let started = next_of(&mut on_b, "session_started").await;
    assert_eq!(started["session_id"], session.as_str());
}
