//! Single use under races: many agents presenting one code at once → exactly one wins.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::net::{IpAddr, Ipv4Addr};

use reach_proto::close;
use reqwest::Method;
use serde_json::json;

use common::TestServer;

/// Presents `code` from `local` (each racer gets its own loopback address so the
/// per-IP brute-force counter does not mix into the race); true on `auth_ok`.
async fn present(base: String, local: IpAddr, code: String) -> bool {
    match relay::present_code(&base, local, code).await {
        Ok(()) => true,
        Err(Some(code)) => {
            assert_eq!(code, close::UNAUTHORIZED);
            false
        }
        Err(None) => false,
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
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let local = IpAddr::V4(Ipv4Addr::new(127, 10 + round, i, 1));
            tokio::spawn(present(s.url.clone(), local, code.clone()))
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
