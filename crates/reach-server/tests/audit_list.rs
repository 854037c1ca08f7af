//! The audit list filters by type, user and time and pages newest first.

mod common;

use common::TestServer;
use reqwest::Method;

#[tokio::test]
async fn audit_list_filters_and_paginates() {
    let server = TestServer::start().await;
    let admin = Some(server.admin_token.as_str());
    for i in 0..5 {
        server
            .create_user(&format!("u{i}"), "some-password", "viewer")
            .await;
    }
    let (_, all) = server.call(Method::GET, "/api/audit", admin, None).await;
    let items = all["items"].as_array().unwrap();
    // bootstrap, login_ok, 5 × user_created.
    assert_eq!(items.len(), 7);
    let ids: Vec<i64> = items.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [7, 6, 5, 4, 3, 2, 1]);
    assert!(all["next_before_id"].is_null());

    let (_, created) = server
        .call(
            Method::GET,
            "/api/audit?event_type=user_created&user=admin",
            admin,
            None,
        )
        .await;
    assert_eq!(created["items"].as_array().unwrap().len(), 5);
    let (_, none) = server
        .call(Method::GET, "/api/audit?user=nobody", admin, None)
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());

    let (_, first) = server
        .call(Method::GET, "/api/audit?limit=3", admin, None)
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let next = first["next_before_id"].as_i64().unwrap();
    assert_eq!(next, 5);
    let (_, second) = server
        .call(
            Method::GET,
            &format!("/api/audit?limit=3&before_id={next}"),
            admin,
            None,
        )
        .await;
    let second_ids: Vec<i64> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(second_ids, [4, 3, 2]);

    let newest_ts = items[0]["ts_ms"].as_i64().unwrap();
    let (_, later) = server
        .call(
            Method::GET,
            &format!("/api/audit?since_ms={}", newest_ts + 1),
            admin,
            None,
        )
        .await;
    assert!(later["items"].as_array().unwrap().is_empty());
    let (_, until) = server
        .call(
            Method::GET,
            &format!("/api/audit?until_ms={}", newest_ts + 1),
            admin,
            None,
        )
        .await;
    assert_eq!(until["items"].as_array().unwrap().len(), 7);
}
