//! A stopping server drains: `/readyz` turns 503 so a load balancer sends nobody new, and every
//! agent and viewer is told to reconnect (`GOING_AWAY`) before the process goes.

mod common;
#[path = "common/relay.rs"]
mod relay;

use reqwest::Method;

use common::TestServer;
use relay::*;

#[tokio::test]
async fn readyz_answers_ready_then_draining_and_healthz_stays_alive() {
    let s = TestServer::start().await;
    let (status, v) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("ready")), "{v}");
    s.state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, v) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (503, Some("draining")),
        "{v}"
    );
    let (status, _) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200, "liveness is not readiness");
}

#[tokio::test]
async fn stopping_tells_agents_and_viewers_to_reconnect_and_marks_the_server_unready() {
    let s = TestServer::start().await;
    let (machine, _, mut agent) = managed_agent(&s, "pc").await;
    let session = open_session(&s, &s.admin_token, &machine).await;
    let mut viewer = join(&s, &s.admin_token, &session).await;
    let draining = s.state.draining.clone();
    let stopping = tokio::spawn(s.stop());
    let (code, _) = viewer_closed(&mut viewer).await;
    assert_eq!(code, reach_proto::close::GOING_AWAY);
    let why = agent_disconnected(&mut agent).await;
    assert!(why.contains("restarting"), "{why}");
    assert!(draining.load(std::sync::atomic::Ordering::SeqCst));
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("the server stops")
        .expect("stop task");
}
