//! The 9th login attempt within a minute from one IP gets 429 with `Retry-After`.

mod common;

use common::TestServer;

#[tokio::test]
async fn the_ninth_login_attempt_in_a_minute_is_rate_limited() {
    let server = TestServer::start().await;
    // The helper already logged the admin in once: 7 more attempts are allowed. Each names
    // another user, so the per-account backoff (tests/login_backoff.rs) is not in play.
    for i in 0..7 {
        assert_eq!(
            server
                .login(None, &format!("nobody{i}"), "wrong-password")
                .await
                .status(),
            401
        );
    }
    let limited = server.login(None, "admin", common::ADMIN_PASSWORD).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");

    // Malformed attempts count too: the limiter runs before the body is read.
    let raw = server
        .request(reqwest::Method::POST, "/api/auth/login", None)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 429);

    // Other routes are not affected.
    let (status, _) = server
        .call(
            reqwest::Method::GET,
            "/api/me",
            Some(&server.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let metrics = server
        .request(reqwest::Method::GET, "/metrics", Some(&server.admin_token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("reach_rate_limited_total{limiter=\"login\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reach_logins_total{outcome=\"failed\"} 7"),
        "{metrics}"
    );
}
