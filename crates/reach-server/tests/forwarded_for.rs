//! `X-Forwarded-For` is honoured from a trusted proxy and ignored from anyone else.
//! (Each attempt names another user, so only the per-IP limit is in play, not the
//! per-account backoff.)

mod common;

use common::TestServer;
use serde_json::json;

async fn attempt(server: &TestServer, forwarded_for: &str) -> u16 {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    server
        .request(reqwest::Method::POST, "/api/auth/login", None)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": format!("nobody{n}"), "password": "wrong-password"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_trusted_proxy_forwarded_client_ip_gets_its_own_budget() {
    let server =
        TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    for _ in 0..8 {
        assert_eq!(attempt(&server, "203.0.113.1").await, 401);
    }
    assert_eq!(attempt(&server, "203.0.113.1").await, 429);
    // A different client behind the same proxy is not limited.
    assert_eq!(attempt(&server, "203.0.113.2").await, 401);
    // A client cannot dodge by prepending its own entries: the right-most untrusted hop counts.
    assert_eq!(attempt(&server, "198.51.100.77, 203.0.113.1").await, 429);
}

#[tokio::test]
async fn a_forged_header_from_an_untrusted_peer_is_ignored() {
    let server = TestServer::start().await;
    // The helper's admin login used one attempt from 127.0.0.1.
    for i in 0..7 {
        assert_eq!(attempt(&server, &format!("203.0.113.{i}")).await, 401);
    }
    assert_eq!(attempt(&server, "203.0.113.200").await, 429);
}
