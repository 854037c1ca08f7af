//! Several server instances on one database: a starting instance ends only the sessions of
//! instances that are gone, never a live one's; a stopped or silent instance's sessions are
//! ended by the live ones within seconds.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::time::Duration;

use reach_server::instances;
use sqlx::Row as _;

use common::TestServer;
use relay::*;

use common::SHARED_SECRET as SECRET;

/// A second instance on `first`'s database (same token secret, its own data directory).
async fn another_instance(first: &TestServer) -> TestServer {
    let url = first.shared_database_url();
    TestServer::start_with(move |c| {
        c.database_url = Some(url);
        c.token_secret = Some(SECRET.to_owned().into());
    })
    .await
}

async fn ended(s: &TestServer, session: &str) -> Option<String> {
    let row = sqlx::query("SELECT ended_at, end_reason FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&s.state.db)
        .await
        .unwrap();
    let at: Option<i64> = row.get("ended_at");
    at.map(|_| {
        row.get::<Option<String>, _>("end_reason")
            .unwrap_or_default()
    })
}

async fn until_ended(s: &TestServer, session: &str) -> String {
    let wait = instances::HEARTBEAT * 3 + WAIT;
    tokio::time::timeout(wait, async {
        loop {
            if let Some(reason) = ended(s, session).await {
                return reason;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the session ends")
}

#[tokio::test]
async fn a_starting_instance_leaves_a_live_instances_sessions_alone_and_ends_a_stopped_ones() {
    let a = TestServer::start_with(|c| c.token_secret = Some(SECRET.to_owned().into())).await;
    let (machine_a, _, _agent_a) = managed_agent(&a, "on-a").await;
    let session_a = open_session(&a, &a.admin_token, &machine_a).await;

    let b = another_instance(&a).await;
    assert_eq!(
        ended(&b, &session_a).await,
        None,
        "B's start ends none of A's sessions"
    );
    let (machine_b, _, _agent_b) = managed_agent(&b, "on-b").await;
    let session_b = open_session(&b, &b.admin_token, &machine_b).await;
    assert_ne!(a.state.instance_id, b.state.instance_id);

    // A stops: B notices at its next sweep and ends A's session; its own keeps going.
    let _database_stays = a.stop().await; // A's data directory holds the SQLite database
    assert_eq!(until_ended(&b, &session_a).await, "server_lost");
    assert_eq!(ended(&b, &session_b).await, None);

    // A third instance starting on the database ends none of B's sessions either.
    let c = another_instance(&b).await;
    assert_eq!(ended(&c, &session_b).await, None);
}

#[tokio::test]
async fn an_instance_that_goes_silent_loses_its_sessions_and_the_live_one_keeps_its_own() {
    let a = TestServer::start_with(|c| c.token_secret = Some(SECRET.to_owned().into())).await;
    let b = another_instance(&a).await;
    let (machine_b, _, _agent_b) = managed_agent(&b, "on-b").await;
    let session_b = open_session(&b, &b.admin_token, &machine_b).await;
    // A session held by an instance that was killed: its row says it was last seen long ago.
    let dead = "ins_killed";
    sqlx::query("INSERT INTO server_instances (id, started_at, seen_at) VALUES ($1, 1, 1)")
        .bind(dead)
        .execute(&a.state.db)
        .await
        .unwrap();
    sqlx::query("UPDATE sessions SET instance_id = $1 WHERE id = $2")
        .bind(dead)
        .bind(&session_b)
        .execute(&a.state.db)
        .await
        .unwrap();
    let (machine_a, _, _agent_a) = managed_agent(&a, "on-a").await;
    let session_a = open_session(&a, &a.admin_token, &machine_a).await;

    assert_eq!(until_ended(&a, &session_b).await, "server_lost");
    assert_eq!(
        ended(&a, &session_a).await,
        None,
        "a live instance's session stays"
    );
    let gone: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM server_instances WHERE id = $1")
        .bind(dead)
        .fetch_one(&a.state.db)
        .await
        .unwrap();
    assert_eq!(gone, 0, "the silent instance is forgotten");
}
