//! Relay test helpers: machines, keys, in-process agents and viewers over real sockets.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use reach_agent::backoff::Backoff;
use reach_agent::consent::{ConsentPrompt, DenyAll};
use reach_agent::viewer::{ApiClient, ViewerConnection};
use reach_agent::ws::Incoming;
use reach_agent::{AgentConfig, AgentEvent, AgentHandle, Credential};
use reach_proto::agent_key::AgentKey;
use reach_proto::v1::{self, Envelope, envelope::Body};
use reqwest::Method;
use serde_json::{Value, json};

use super::common::TestServer;

/// Upper bound for any awaited event.
pub const WAIT: Duration = Duration::from_secs(10);

/// Creates a machine with the admin token.
pub async fn create_machine(s: &TestServer, body: Value) -> Value {
    let (status, m) = s
        .call(
            Method::POST,
            "/api/machines",
            Some(&s.admin_token),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{m}");
    m
}

/// Issues a key; returns (key id, key).
pub async fn issue_key(s: &TestServer, machine_id: &str) -> (String, AgentKey) {
    let path = format!("/api/machines/{machine_id}/keys");
    let (status, k) = s
        .call(Method::POST, &path, Some(&s.admin_token), None)
        .await;
    assert_eq!(status, 201, "{k}");
    let key = AgentKey::parse(k["key"].as_str().unwrap()).unwrap();
    (k["id"].as_str().unwrap().to_owned(), key)
}

/// Agent configuration with short reconnect delays.
pub fn agent_config(
    s: &TestServer,
    credential: Credential,
    prompt: Arc<dyn ConsentPrompt>,
) -> AgentConfig {
    let mut config = AgentConfig::new(s.url.clone(), credential, prompt);
    config.backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200));
    config
}

/// Waits for `Connected`; returns (machine id, session id).
pub async fn wait_connected(agent: &mut AgentHandle) -> (String, String) {
    loop {
        match tokio::time::timeout(WAIT, agent.events.recv())
            .await
            .expect("agent connects")
        {
            Some(AgentEvent::Connected {
                machine_id,
                session_id,
            }) => return (machine_id, session_id),
            Some(AgentEvent::Disconnected { reason }) => panic!("agent disconnected: {reason}"),
            Some(_) => {}
            None => panic!("agent stopped"),
        }
    }
}

/// A managed machine with a connected in-process agent: (machine id, key id, agent).
pub async fn managed_agent(s: &TestServer, name: &str) -> (String, String, AgentHandle) {
    let m = create_machine(s, json!({"name": name})).await;
    let id = m["id"].as_str().unwrap().to_owned();
    let (key_id, key) = issue_key(s, &id).await;
    let mut agent = reach_agent::spawn(agent_config(s, Credential::Key(key), Arc::new(DenyAll)));
    let (bound, _) = wait_connected(&mut agent).await;
    assert_eq!(bound, id);
    (id, key_id, agent)
}

/// A managed machine whose in-process agent reports USB as given (backend working,
/// passthrough switch on): (machine id, agent).
pub async fn managed_usb_agent(
    s: &TestServer,
    supported: bool,
    enabled: bool,
) -> (String, AgentHandle) {
    let m = create_machine(s, json!({"name": "usb-host"})).await;
    let id = m["id"].as_str().unwrap().to_owned();
    let (_, key) = issue_key(s, &id).await;
    let mut config = agent_config(s, Credential::Key(key), Arc::new(DenyAll));
    let caps = config
        .hello
        .capabilities
        .get_or_insert_with(Default::default);
    caps.supports_usb = supported;
    caps.usb_enabled = enabled;
    let mut agent = reach_agent::spawn(config);
    wait_connected(&mut agent).await;
    (id, agent)
}

/// The next relayed message the agent received (other events skipped).
pub async fn agent_message(agent: &mut AgentHandle) -> Envelope {
    loop {
        match tokio::time::timeout(WAIT, agent.events.recv())
            .await
            .expect("agent message")
        {
            Some(AgentEvent::Message(env)) => return env,
            Some(AgentEvent::Disconnected { reason }) => panic!("agent disconnected: {reason}"),
            Some(_) => {}
            None => panic!("agent stopped"),
        }
    }
}

/// The next agent message that is not a session event.
pub async fn agent_input(agent: &mut AgentHandle) -> Envelope {
    loop {
        let env = agent_message(agent).await;
        if !matches!(env.body, Some(Body::SessionEvent(_))) {
            return env;
        }
    }
}

/// Waits until the agent reports a disconnect; returns its reason.
pub async fn agent_disconnected(agent: &mut AgentHandle) -> String {
    loop {
        match tokio::time::timeout(WAIT, agent.events.recv())
            .await
            .expect("agent disconnects")
        {
            Some(AgentEvent::Disconnected { reason }) => return reason,
            Some(_) => {}
            None => return "stopped".into(),
        }
    }
}

/// Opens a managed session with `token`.
pub async fn open_session(s: &TestServer, token: &str, machine_id: &str) -> String {
    let body = json!({"machine_id": machine_id});
    let (status, v) = s
        .call(Method::POST, "/api/sessions", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Mints a viewer token for `session_id` with a login token.
pub async fn viewer_token(s: &TestServer, token: &str, session_id: &str) -> String {
    let client = ApiClient::new(&s.url).unwrap().with_token(token.to_owned());
    client.viewer_token(session_id).await.expect("viewer token")
}

/// Joins as a viewer with a login token (mints a viewer token first).
pub async fn join(s: &TestServer, token: &str, session_id: &str) -> ViewerConnection {
    let client = ApiClient::new(&s.url).unwrap().with_token(token.to_owned());
    client.join(session_id).await.expect("viewer joins")
}

/// The next envelope a viewer receives.
pub async fn viewer_next(v: &mut ViewerConnection) -> Envelope {
    match tokio::time::timeout(WAIT, v.recv())
        .await
        .expect("viewer message")
        .expect("decodes")
    {
        Incoming::Envelope(env) => env,
        Incoming::Closed { code, reason } => panic!("viewer closed: {code} {reason}"),
    }
}

/// The next viewer envelope that is not a session event.
pub async fn viewer_media(v: &mut ViewerConnection) -> Envelope {
    loop {
        let env = viewer_next(v).await;
        if !matches!(env.body, Some(Body::SessionEvent(_))) {
            return env;
        }
    }
}

/// Reads until the viewer is closed; returns the close code and the envelopes seen.
pub async fn viewer_closed(v: &mut ViewerConnection) -> (u16, Vec<Envelope>) {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, v.recv())
            .await
            .expect("viewer closes")
        {
            Ok(Incoming::Envelope(env)) => seen.push(env),
            Ok(Incoming::Closed { code, .. }) => return (code, seen),
            Err(e) => panic!("viewer error: {e}"),
        }
    }
}

/// A key-down event.
pub fn key(code: &str) -> Body {
    Body::Key(v1::KeyEvent {
        code: code.into(),
        scancode: 30,
        down: true,
        ..Default::default()
    })
}

/// A pointer event.
pub fn pointer(x: i32) -> Body {
    Body::Pointer(v1::PointerEvent {
        x,
        y: 1,
        ..Default::default()
    })
}

/// A small video frame with a sequence number.
pub fn frame(session_id: &str, sequence: u64) -> Envelope {
    reach_proto::codec::envelope(
        session_id,
        Body::VideoFrame(v1::VideoFrame {
            codec: v1::VideoCodec::Raw.into(),
            sequence,
            ..Default::default()
        }),
    )
}

/// Audit event types of the admin's tenant, oldest first.
pub async fn audit_types(s: &TestServer) -> Vec<String> {
    let (status, page) = s
        .call(
            Method::GET,
            "/api/audit?limit=500",
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut types: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    types.reverse();
    types
}

/// Creates a support code as the admin (asserting 201) and returns it.
pub async fn create_code(s: &TestServer) -> String {
    let (status, v) = s
        .call(
            Method::POST,
            "/api/support-codes",
            Some(&s.admin_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["code"].as_str().unwrap().to_owned()
}

/// Waits for an agent the server refuses to stop, and returns the close code it was refused with.
pub async fn rejected_with(agent: AgentHandle) -> u16 {
    let err = tokio::time::timeout(WAIT, agent.join())
        .await
        .expect("the agent stops in time")
        .expect_err("the server refuses the agent");
    match err {
        reach_agent::ClientError::Rejected { code, .. } => code,
        other => panic!("expected a refusal, got {other}"),
    }
}

/// `GET /api/sessions/{id}` as the admin: the session's JSON (whatever the status).
pub async fn session_as_admin(s: &TestServer, session_id: &str) -> Value {
    let path = format!("/api/sessions/{session_id}");
    s.call(Method::GET, &path, Some(&s.admin_token), None)
        .await
        .1
}

/// Presents a support code on `/ws/agent` of the server at `base` (`http://…`) from the
/// loopback address `local`, as an agent would (auth, then hello). `Ok` when the server
/// answers `auth_ok`; else the close code it answered with (`None`: another message).
pub async fn present_code(
    base: &str,
    local: std::net::IpAddr,
    code: String,
) -> Result<(), Option<u16>> {
    use reach_proto::limits::AGENT_MAX_MESSAGE;
    use reach_proto::v1::agent_auth::Credential as AuthCredential;
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let url = format!("{}/ws/agent", base.replacen("http", "ws", 1));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(local, 0)).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut ws = reach_agent::ws::connect_over(&url, stream, AGENT_MAX_MESSAGE)
        .await
        .unwrap();
    let auth = Body::AgentAuth(v1::AgentAuth {
        credential: Some(AuthCredential::SupportCode(code)),
    });
    let hello = Body::AgentHello(v1::AgentHello::default());
    for body in [auth, hello] {
        reach_agent::ws::send(&mut ws, &reach_proto::codec::envelope("", body))
            .await
            .unwrap();
    }
    match tokio::time::timeout(WAIT, reach_agent::ws::recv(&mut ws, AGENT_MAX_MESSAGE))
        .await
        .unwrap()
        .unwrap()
    {
        Incoming::Envelope(e) if matches!(e.body, Some(Body::AuthOk(_))) => Ok(()),
        Incoming::Envelope(_) => Err(None),
        Incoming::Closed { code, .. } => Err(Some(code)),
    }
}
