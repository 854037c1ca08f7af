//! `/metrics` serves Prometheus text to users with permission `audit` or to the configured
//! scraper token, and to nobody else.

mod common;

use common::{TestServer, assert_error};
use reqwest::Method;

#[tokio::test]
async fn metrics_need_the_audit_permission_or_the_scraper_token() {
    let server = TestServer::start_with(|c| {
        c.metrics_token = Some("scraper-token-of-32-characters!!".to_owned().into());
    })
    .await;
    server
        .create_user("tech", "tech-password", "technician")
        .await;
    let tech = server.login_token(None, "tech", "tech-password").await;
    assert_error(
        &server
            .call(Method::GET, "/metrics", Some(&tech), None)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &server
            .call(Method::GET, "/metrics", Some("wrong-scraper-token"), None)
            .await,
        401,
        "invalid_token",
    );
    assert_error(
        &server.call(Method::GET, "/metrics", None, None).await,
        401,
        "unauthenticated",
    );

    let scraped = server
        .request(
            Method::GET,
            "/metrics",
            Some("scraper-token-of-32-characters!!"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains("reach_logins_total{outcome=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains(
            "reach_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"403\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("reach_audit_events_total{event_type=\"user_created\"} 1"),
        "{text}"
    );
}
