//! Per-account login backoff: wrong passwords from one IP hold back that IP for that
//! account only, and an account guessed from many IPs is slowed but never locked: its owner
//! still logs in.

mod common;

use common::{ADMIN_PASSWORD, TestServer};
use serde_json::json;

async fn login_from(s: &TestServer, ip: &str, user: &str, password: &str) -> reqwest::Response {
    common::client_from(ip)
        .post(format!("{}/api/auth/login", s.url))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_passwords_from_one_ip_back_off_that_ip_for_that_account_only() {
    let s = TestServer::start().await;
    s.create_user("owner", "owner-password", "technician").await;
    for _ in 0..3 {
        let got = login_from(&s, "127.0.0.5", "owner", "wrong-password").await;
        assert_eq!(got.status(), 401);
    }
    // Even the right password waits now: the pair is backing off.
    let held = login_from(&s, "127.0.0.5", "owner", "owner-password").await;
    assert_eq!(held.status(), 429);
    let retry: u64 = held.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // The owner elsewhere is not held back, nor another account from the same IP.
    let owner = login_from(&s, "127.0.0.6", "owner", "owner-password").await;
    assert_eq!(owner.status(), 200);
    let other = login_from(&s, "127.0.0.5", "admin", ADMIN_PASSWORD).await;
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn an_account_guessed_from_many_ips_is_slowed_but_its_owner_still_logs_in() {
    let s = TestServer::start().await;
    s.create_user("owner", "owner-password", "technician").await;
    let mut refused = 0;
    for host in 10..20 {
        let ip = format!("127.0.0.{host}");
        for _ in 0..3 {
            let got = login_from(&s, &ip, "owner", "wrong-password").await;
            assert_eq!(got.status(), 401);
        }
        if login_from(&s, &ip, "owner", "wrong-password")
            .await
            .status()
            == 429
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 10, "each guessing IP backs off");
    // 30 wrong passwords in a minute: the account is slowed, and its owner gets in.
    let owner = login_from(&s, "127.0.0.30", "owner", "owner-password").await;
    assert_eq!(owner.status(), 200);
    let metrics = s
        .request(reqwest::Method::GET, "/metrics", Some(&s.admin_token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("reach_rate_limited_total{limiter=\"login_account_slowed\"}"),
        "{metrics}"
    );
}
