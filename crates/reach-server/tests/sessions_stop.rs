//! Stop at the machine: the person at the remote computer ends the session from their side
//! (the agent sends SessionEvent ENDED); viewers are closed, the end is audited, and an agent
//! can never end another machine's session this way.

mod common;
#[path = "common/relay.rs"]
mod relay;

use reach_proto::codec;
use reach_proto::v1::{self, envelope::Body, session_event::Kind};

use common::TestServer;
use relay::*;

fn stop(session_id: &str) -> v1::Envelope {
    codec::envelope(
        session_id,
        Body::SessionEvent(v1::SessionEvent {
            kind: Kind::Ended.into(),
            reason: "stopped_at_machine".into(),
            ..Default::default()
        }),
    )
}

#[tokio::test]
async fn stop_at_the_machine_ends_the_session_and_closes_its_viewers() {
    let s = TestServer::start().await;
    let (machine_id, _key, agent) = managed_agent(&s, "stop-1").await;
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    agent.send(stop(&session_id)).await.unwrap();
    let (_, seen) = viewer_closed(&mut viewer).await;
    assert!(
        seen.iter()
            .any(|e| matches!(&e.body, Some(Body::SessionEvent(ev)) if ev.kind() == Kind::Ended)),
        "the viewer is told the session ended: {seen:?}"
    );
    let session = session_as_admin(&s, &session_id).await;
    assert_eq!(session["end_reason"], "stopped_at_machine", "{session}");
    assert!(audit_types(&s).await.iter().any(|t| t == "session_ended"));
}

#[tokio::test]
async fn an_agent_cannot_stop_another_machines_session() {
    let s = TestServer::start().await;
    let (machine_a, _ka, _agent_a) = managed_agent(&s, "stop-a").await;
    let (machine_b, _kb, agent_b) = managed_agent(&s, "stop-b").await;
    let session_a = open_session(&s, &s.admin_token, &machine_a).await;
    agent_b.send(stop(&session_a)).await.unwrap();
    // Agent B's socket is handled in order: once this status has been applied, the Stop
    // before it has been processed.
    let status = Body::AgentStatus(v1::AgentStatus {
        usb_enabled: true,
        capabilities: Some(v1::Capabilities {
            supports_usb: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    agent_b.send(codec::envelope("", status)).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while !s
            .state
            .relay
            .agent_usb(&machine_b)
            .is_some_and(|u| u.enabled)
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("agent B's status is applied");
    let session = session_as_admin(&s, &session_a).await;
    assert!(session["ended_at_ms"].is_null(), "still live: {session}");
}
