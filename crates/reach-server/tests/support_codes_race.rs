//! Single use under races: many agents presenting one code at once → exactly one wins.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reach_agent::ws::{self, Incoming};
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1::{self, agent_auth::Credential, envelope::Body};
use reach_proto::{close, codec};
use reqwest::Method;
use serde_json::json;

use common::TestServer;
use relay::WAIT;

/// Presents `code` from `local` (each racer gets its own loopback address so the
/// per-IP brute-force counter does not mix into the race); true on `auth_ok`.
async fn present(url: String, server: SocketAddr, local: IpAddr, code: String) -> bool {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let mut ws = ws::connect_over(&url, stream, AGENT_MAX_MESSAGE)
        .await
        .unwrap();
    let auth = Body::AgentAuth(v1::AgentAuth {
        credential: Some(Credential::SupportCode(code)),
    });
    ws::send(&mut ws, &codec::envelope("", auth)).await.unwrap();
    ws::send(
        &mut ws,
        &codec::envelope("", Body::AgentHello(v1::AgentHello::default())),
    )
    .await
    .unwrap();
    match tokio::time::timeout(WAIT, ws::recv(&mut ws, AGENT_MAX_MESSAGE))
        .await
        .unwrap()
        .unwrap()
    {
        Incoming::Envelope(e) => matches!(e.body, Some(Body::AuthOk(_))),
        Incoming::Closed { code, .. } => {
            assert_eq!(code, close::UNAUTHORIZED);
            false
        }
    }
}

async fn race(s: &TestServer, round: u8, racers: u8) {
    let (status, v) = s
        .call(
            Method::POST,
            "/api/support-codes",
            Some(&s.admin_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201);
    let code = v["code"].as_str().unwrap().to_owned();
    let url = format!("{}/ws/agent", s.url.replacen("http", "ws", 1));
    let server: SocketAddr = s.url.trim_start_matches("http://").parse().unwrap();
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let local = IpAddr::V4(Ipv4Addr::new(127, 10 + round, i, 1));
            tokio::spawn(present(url.clone(), server, local, code.clone()))
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1, "round {round}: exactly one agent binds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_racing_with_one_code_give_exactly_one_winner_every_time() {
    let s = TestServer::start().await;
    for round in 0..20 {
        race(&s, round, 2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_simultaneous_redemptions_give_exactly_one_success() {
    let s = TestServer::start().await;
    race(&s, 100, 50).await;
    // Counted in the database, ended or not: the winner's socket closes when its task ends, and
    // its session may already have ended (agent gone) by the time anyone lists open sessions.
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE kind = 'attended'")
        .fetch_one(&s.state.db)
        .await
        .unwrap();
    assert_eq!(sessions, 1, "one attended session");
}
