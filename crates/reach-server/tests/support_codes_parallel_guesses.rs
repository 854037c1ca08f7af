//! Parallel wrong support codes from one IP: the lockout reserves each attempt before the
//! database is asked, so no more than 10 guesses are evaluated however many race, on the
//! agent socket and on validate alike.

mod common;

use std::net::IpAddr;

use reach_agent::ClientError;
use reach_agent::ws;
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1::{self, agent_auth::Credential, envelope::Body};
use serde_json::json;
use tokio::task::JoinSet;

use common::TestServer;

const EVALUATED: &str = "unknown, expired or used support code";
const LOCKED: &str = "too many wrong codes; try again later";
/// The upgrade itself was refused: the IP has the most unauthenticated sockets open.
const NO_SOCKET: &str = "no socket";

/// A distinct wrong code per attempt (`AAA-AAA-AAx`…), so no two guesses are alike.
fn wrong_code(i: usize) -> String {
    use reach_proto::support_code::ALPHABET;
    let a = ALPHABET[i % ALPHABET.len()] as char;
    let b = ALPHABET[(i / ALPHABET.len()) % ALPHABET.len()] as char;
    format!("ZZZ-ZZZ-Z{b}{a}")
}

/// Presents a code on `/ws/agent`; returns the refusal reason.
async fn agent_guess(url: String, code: String) -> String {
    let socket_url = ws::socket_url(&url, "/ws/agent").unwrap();
    let Ok(mut socket) = ws::connect(&socket_url, AGENT_MAX_MESSAGE).await else {
        return NO_SOCKET.to_owned();
    };
    let auth = Body::AgentAuth(v1::AgentAuth {
        credential: Some(Credential::SupportCode(code)),
    });
    ws::send(&mut socket, &reach_proto::codec::envelope("", auth))
        .await
        .unwrap();
    match ws::recv_auth_ok(&mut socket).await {
        Err(ClientError::Rejected { reason, .. }) => reason,
        other => panic!("a wrong code got {other:?}"),
    }
}

/// Presents a code to validate; returns the status (0: the connection was refused).
async fn validate_guess(client: reqwest::Client, url: String, code: String) -> u16 {
    client
        .post(format!("{url}/api/support-codes/validate"))
        .json(&json!({"code": code}))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_parallel_wrong_codes_on_the_agent_socket_evaluate_at_most_ten() {
    let s = TestServer::start().await;
    let mut guesses = JoinSet::new();
    for i in 0..100 {
        guesses.spawn(agent_guess(s.url.clone(), wrong_code(i)));
    }
    let reasons = guesses.join_all().await;
    let evaluated = reasons.iter().filter(|r| *r == EVALUATED).count();
    let refused = reasons
        .iter()
        .filter(|r| *r == LOCKED || *r == NO_SOCKET)
        .count();
    assert_eq!(evaluated + refused, 100, "{reasons:?}");
    assert!(evaluated <= 10, "{evaluated} guesses evaluated");
    assert!(evaluated >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_codes_on_both_surfaces_share_one_limit_of_ten() {
    let s = TestServer::start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .local_address("127.0.0.1".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut agents = JoinSet::new();
    let mut validates = JoinSet::new();
    for i in 0..50 {
        agents.spawn(agent_guess(s.url.clone(), wrong_code(i)));
        validates.spawn(validate_guess(
            client.clone(),
            s.url.clone(),
            wrong_code(50 + i),
        ));
    }
    let reasons = agents.join_all().await;
    let statuses = validates.join_all().await;
    let evaluated = reasons.iter().filter(|r| *r == EVALUATED).count()
        + statuses.iter().filter(|s| **s == 404).count();
    assert!(
        statuses.iter().all(|s| [0, 404, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(evaluated <= 10, "{evaluated} guesses evaluated");
}
