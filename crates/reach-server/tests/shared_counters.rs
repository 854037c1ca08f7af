//! Rate-limit, lockout and backoff counters are shared by every instance on one database
//! (issue 16): 30 wrong support codes from one IP spread over 3 instances get at most 10
//! evaluated and lock that IP out on all of them; the per-IP login limit, the per-account
//! backoff and the account slowdown hold across instances; the database counts exactly like the pure model; a counter
//! that cannot be updated refuses the attempt.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::sync::Arc;

use reach_agent::consent::DenyAll;
use reach_agent::{ClientError, Credential};
use reach_proto::support_code::SupportCode;
use reach_server::counters::{self, Counter, Escalation, Window};
use serde_json::json;

use common::TestServer;
use relay::*;

/// Three instances on one database (same token secret, each its own data directory).
async fn three_instances() -> Vec<TestServer> {
    common::instances(3, None).await
}

async fn post_from(
    s: &TestServer,
    client: &reqwest::Client,
    path: &str,
    body: serde_json::Value,
) -> (u16, Option<u64>) {
    let response = client
        .post(format!("{}{path}", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (response.status().as_u16(), retry)
}

#[tokio::test]
async fn thirty_wrong_codes_over_three_instances_get_at_most_ten_evaluated_and_lock_out_everywhere()
{
    let servers = Arc::new(three_instances().await);
    let good = create_code(&servers[0]).await;
    let attacker = common::client_from("127.0.0.1");
    let mut guesses = Vec::new();
    for i in 0..30 {
        let (servers, attacker) = (servers.clone(), attacker.clone());
        guesses.push(tokio::spawn(async move {
            let body = json!({"code": "ZZZ-ZZZ-ZZZ"});
            post_from(
                &servers[i % 3],
                &attacker,
                "/api/support-codes/validate",
                body,
            )
            .await
        }));
    }
    let mut answers = Vec::new();
    for guess in guesses {
        answers.push(guess.await.unwrap());
    }
    let evaluated = answers.iter().filter(|(status, _)| *status == 404).count();
    let refused: Vec<u64> = answers
        .iter()
        .filter(|(status, _)| *status == 429)
        .map(|(_, retry)| retry.expect("Retry-After on a 429"))
        .collect();
    assert_eq!(evaluated, 10, "{answers:?}");
    assert_eq!(refused.len(), 20, "{answers:?}");
    // 901: a hold of 900 s seen a few ms early by a concurrent attempt, rounded up.
    assert!(refused.iter().all(|r| (1..=901).contains(r)), "{refused:?}");

    // The lockout holds on every instance: the good code is refused on each agent socket
    // (not rate limited there), and stays usable from another IP.
    for s in servers.iter() {
        let credential = Credential::Code(SupportCode::parse(&good).unwrap());
        let agent = reach_agent::spawn(agent_config(s, credential, Arc::new(DenyAll)));
        let err = tokio::time::timeout(WAIT, agent.join())
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, ClientError::Rejected { .. }), "{err}");
        let other = common::client_from("127.0.0.2");
        let body = json!({"code": good});
        let (status, _) = post_from(s, &other, "/api/support-codes/validate", body).await;
        assert_eq!(status, 200, "other IPs are unaffected");
    }
    let lockouts = audit_types(&servers[1])
        .await
        .iter()
        .filter(|t| *t == "support_code_lockout")
        .count();
    assert_eq!(lockouts, 1, "one lockout, audited once");
}

#[tokio::test]
async fn the_per_ip_login_limit_holds_across_three_instances() {
    let servers = three_instances().await;
    let guesser = common::client_from("127.0.0.5");
    let mut statuses = Vec::new();
    for i in 0..12 {
        // A different name each time: only the per-IP limit applies, not the pair backoff.
        let body = json!({"username": format!("nobody{i}"), "password": "wrong"});
        let (status, retry) = post_from(&servers[i % 3], &guesser, "/api/auth/login", body).await;
        if status == 429 {
            assert!(retry.is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [vec![401; 8], vec![429; 4]].concat(),
        "8 per minute per IP, however many instances"
    );
}

#[tokio::test]
async fn the_account_backoff_holds_across_three_instances_and_a_success_anywhere_clears_it() {
    let servers = three_instances().await;
    let guesser = common::client_from("127.0.0.6");
    let wrong = json!({"username": "admin", "password": "wrong"});
    for s in &servers {
        let (status, _) = post_from(s, &guesser, "/api/auth/login", wrong.clone()).await;
        assert_eq!(status, 401);
    }
    let (status, retry) = post_from(&servers[0], &guesser, "/api/auth/login", wrong.clone()).await;
    assert_eq!(status, 429, "the fourth try waits, on whichever instance");
    let retry = retry.expect("Retry-After");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // The owner at another address is not held back.
    let owner = common::client_from("127.0.0.7");
    let right = json!({"username": "admin", "password": common::ADMIN_PASSWORD});
    let (status, _) = post_from(&servers[1], &owner, "/api/auth/login", right.clone()).await;
    assert_eq!(status, 200);

    // The hold is over after the Retry-After the server named (the backoff's own delay).
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    let (status, _) = post_from(&servers[1], &guesser, "/api/auth/login", right).await;
    assert_eq!(status, 200);
    let (status, _) = post_from(&servers[2], &guesser, "/api/auth/login", wrong).await;
    assert_eq!(
        status, 401,
        "the success on another instance cleared the backoff"
    );
}

#[tokio::test]
async fn wrong_passwords_counted_on_all_instances_slow_the_account_on_each() {
    let servers = three_instances().await;
    let wrong = json!({"username": "admin", "password": "wrong"});
    // 21 wrong passwords, 7 on each instance, 3 per address (below the pair backoff).
    for i in 0..21 {
        let guesser = common::client_from(&format!("127.0.1.{}", 10 + i / 3));
        let (status, _) =
            post_from(&servers[i % 3], &guesser, "/api/auth/login", wrong.clone()).await;
        assert_eq!(status, 401);
    }
    let slowed = |s: &TestServer| {
        let url = format!("{}/metrics", s.url);
        let (client, token) = (s.client.clone(), s.admin_token.clone());
        async move {
            let text = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines().any(|l| {
                l.starts_with("reach_rate_limited_total{limiter=\"login_account_slowed\"}")
            })
        }
    };
    assert!(!slowed(&servers[2]).await);
    // The instance saw only 7 itself: the shared count puts the account under the slowdown.
    for ip in ["127.0.1.30", "127.0.1.31"] {
        let (status, _) = post_from(
            &servers[2],
            &common::client_from(ip),
            "/api/auth/login",
            wrong.clone(),
        )
        .await;
        assert_eq!(status, 401, "slowed, then evaluated");
    }
    assert!(
        slowed(&servers[2]).await,
        "the second attempt waited its turn"
    );
}

/// Runs `times` through the database and through the pure model; both must agree.
async fn compare_escalation(s: &TestServer, kind: &str, e: &Escalation, times: &[i64]) {
    let mut model: Option<Counter> = None;
    for &t in times {
        let row = counters::reserve_at(&s.state.db, kind, "192.0.2.9", e, t)
            .await
            .unwrap();
        let expected = e.step(model, t);
        assert_eq!(row, expected, "{kind} at {t}");
        assert_eq!(Escalation::decide(row, t), Escalation::decide(expected, t));
        model = Some(expected);
    }
}

#[tokio::test]
async fn the_database_counts_exactly_like_the_pure_model_and_prunes_expired_counters() {
    let s = TestServer::start().await;
    let base = reach_server::db::now_ms();
    let w = Window {
        limit: 3,
        window: std::time::Duration::from_secs(60),
    };
    let mut model: Option<Counter> = None;
    for t in [1_000, 1_001, 1_002, 1_003, 60_999, 61_000, 61_500].map(|t| base + t) {
        let row = counters::hit_at(&s.state.db, "test_window", "192.0.2.9", w, t)
            .await
            .unwrap();
        let expected = w.step(model, t);
        assert_eq!(row, expected, "window at {t}");
        assert_eq!(Window::decide(row, t), Window::decide(expected, t));
        model = Some(expected);
    }
    // The login backoff up to its cap (attempt 13 on), with refused attempts in between.
    let e = counters::LOGIN_PAIR_BACKOFF;
    let mut times = vec![0, 0, 0, 10, 1_000];
    let mut t = 1_000;
    for n in 4..=15 {
        t += e.hold_ms(n);
        times.extend([t - 1, t]);
    }
    times.push(t + 24 * 3600 * 1000);
    let times: Vec<i64> = times.iter().map(|t| base + t).collect();
    compare_escalation(&s, "test_backoff", &e, &times).await;
    let lockout = counters::SUPPORT_CODE_LOCKOUT;
    let mut times: Vec<i64> = (0..12).collect();
    times.extend([900_008, 900_009, 900_010, 3_000_000]);
    let times: Vec<i64> = times.iter().map(|t| base + t).collect();
    compare_escalation(&s, "test_lockout", &lockout, &times).await;

    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rate_counters WHERE kind LIKE 'test_%'")
            .fetch_one(&s.state.db)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 3);
    counters::prune(&s.state.db, base + 3_000_000)
        .await
        .unwrap();
    assert_eq!(count().await, 2, "the expired window is gone");
    counters::prune(&s.state.db, i64::MAX).await.unwrap();
    assert_eq!(count().await, 0);
}

#[tokio::test]
async fn attempts_are_refused_when_the_shared_counter_cannot_be_updated() {
    let s = TestServer::start().await;
    let good = create_code(&s).await;
    s.sql("DROP TABLE rate_counters").await;
    let client = common::client_from("127.0.0.8");
    let (status, _) = post_from(
        &s,
        &client,
        "/api/support-codes/validate",
        json!({"code": good}),
    )
    .await;
    assert_eq!(status, 500, "not evaluated: fail closed");
    let body = json!({"username": "admin", "password": common::ADMIN_PASSWORD});
    let (status, _) = post_from(&s, &client, "/api/auth/login", body).await;
    assert_eq!(status, 500);
}
