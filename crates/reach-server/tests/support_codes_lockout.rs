//! Brute force: 10 consecutive bad codes lock that IP out (429) for 15 minutes, counted on
//! validate and on the agent socket alike; other IPs are unaffected. Validate is limited to
//! 15 per minute per IP.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::Arc;

use reach_agent::consent::DenyAll;
use reach_agent::{ClientError, Credential};
use reach_proto::support_code::SupportCode;
use serde_json::json;

use common::TestServer;
use relay::*;

async fn validate_from(s: &TestServer, client: &reqwest::Client, code: &str) -> reqwest::Response {
    client
        .post(format!("{}/api/support-codes/validate", s.url))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ten_bad_codes_lock_out_that_ip_only() {
    let s = TestServer::start().await;
    let good = create_code(&s).await;
    let attacker = common::client_from("127.0.0.1");
    for _ in 0..10 {
        assert_eq!(
            validate_from(&s, &attacker, "ZZZ-ZZZ-ZZZ").await.status(),
            404
        );
    }
    let refused = validate_from(&s, &attacker, &good).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let other = common::client_from("127.0.0.2");
    assert_eq!(
        validate_from(&s, &other, &good).await.status(),
        200,
        "other IPs are unaffected"
    );
    // The locked-out IP cannot redeem on the agent socket either, and the code survives.
    let agent = reach_agent::spawn(agent_config(
        &s,
        Credential::Code(SupportCode::parse(&good).unwrap()),
        Arc::new(DenyAll),
    ));
    let err = tokio::time::timeout(WAIT, agent.join())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ClientError::Rejected { .. }), "{err}");
    assert_eq!(
        validate_from(&s, &other, &good).await.status(),
        200,
        "the code was not consumed"
    );
    assert!(
        audit_types(&s)
            .await
            .iter()
            .any(|t| t == "support_code_lockout")
    );
}

#[tokio::test]
async fn bad_codes_on_the_agent_socket_count_toward_the_same_lockout() {
    let s = TestServer::start().await;
    let good = create_code(&s).await;
    for _ in 0..10 {
        let wrong = Credential::Code(SupportCode::parse("ZZZ-ZZZ-ZZZ").unwrap());
        let agent = reach_agent::spawn(agent_config(&s, wrong, Arc::new(DenyAll)));
        assert!(
            tokio::time::timeout(WAIT, agent.join())
                .await
                .unwrap()
                .is_err()
        );
    }
    assert_eq!(
        validate_from(&s, &common::client_from("127.0.0.1"), &good)
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn validate_is_limited_to_fifteen_per_minute_per_ip() {
    let s = TestServer::start().await;
    let good = create_code(&s).await;
    let client = common::client_from("127.0.0.3");
    for _ in 0..15 {
        assert_eq!(validate_from(&s, &client, &good).await.status(), 200);
    }
    assert_eq!(validate_from(&s, &client, &good).await.status(), 429);
    assert_eq!(
        validate_from(&s, &common::client_from("127.0.0.4"), &good)
            .await
            .status(),
        200
    );
}
