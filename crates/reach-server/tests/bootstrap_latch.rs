//! First start creates the admin once; a restart on the same data directory does not reopen
//! the bootstrap, keeps the secret, and existing tokens keep working.

mod common;

use common::{ADMIN_PASSWORD, TestServer};
use reach_server::{AppState, Config};

#[tokio::test]
async fn a_restart_neither_rebootstraps_nor_invalidates_tokens() {
    let server = TestServer::start().await;
    let token = server.admin_token.clone();
    let database_url = server.database_url.clone();
    let dir = server.stop().await;

    let mut config = Config::for_tests(dir.path());
    config.database_url = database_url;
    config.admin_password = Some("a-different-password".to_owned().into());
    let (state, first_start) = AppState::open(config).await.unwrap();
    assert!(!first_start.created);
    assert!(first_start.generated_password.is_none());
    let running = reach_server::server::start(state).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let me = client
        .get(format!("{}/api/me", running.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let login = |password: &'static str| {
        client
            .post(format!("{}/api/auth/login", running.url()))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
    };
    assert_eq!(login(ADMIN_PASSWORD).await.unwrap().status(), 200);
    assert_eq!(login("a-different-password").await.unwrap().status(), 401);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_first_start_without_a_configured_password_generates_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_, first_start) = AppState::open(Config::for_tests(dir.path())).await.unwrap();
    assert!(first_start.created);
    let password = first_start.generated_password.unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    for file in ["reach.db", "server-secret"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    assert!(password.expose().len() >= 20);
    assert_eq!(format!("{password:?}"), "<redacted>");
}
