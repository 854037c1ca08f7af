//! Concurrent audit appends, also through a second connection pool (as a second server
//! instance would have), keep one gap-free, verifiable chain.

mod common;

use common::TestServer;
use reach_server::{audit, db};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn concurrent_appends_from_two_pools_keep_the_chain_intact() {
    let server = TestServer::start().await;
    let url = server
        .database_url
        .clone()
        .unwrap_or_else(|| server.state.config.database_url());
    let second = db::connect(&url).await.unwrap();
    let (_, me) = server
        .call(Method::GET, "/api/me", Some(&server.admin_token), None)
        .await;
    let tenant = me["tenant_id"].as_str().unwrap().to_owned();
    let (_, before) = server
        .call(
            Method::GET,
            "/api/audit/verify",
            Some(&server.admin_token),
            None,
        )
        .await;
    let start = before["records"].as_i64().unwrap();

    let mut tasks = Vec::new();
    for i in 0..40 {
        let pool = if i % 2 == 0 {
            server.state.db.clone()
        } else {
            second.clone()
        };
        let tenant = tenant.clone();
        let key = server.state.audit_keys.chain;
        tasks.push(tokio::spawn(async move {
            audit::record(
                &pool,
                &key,
                &tenant,
                "system",
                "test_event",
                json!({"n": i}),
            )
            .await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, ((start + 1)..=(start + 40)).collect::<Vec<_>>());

    let (_, after) = server
        .call(
            Method::GET,
            "/api/audit/verify",
            Some(&server.admin_token),
            None,
        )
        .await;
    assert_eq!(after["ok"], true, "{after}");
    assert_eq!(after["records"].as_i64(), Some(start + 40));
}
