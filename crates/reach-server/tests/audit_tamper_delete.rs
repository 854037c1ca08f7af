//! Deleting an audit row is detected: a middle row at its id, the newest rows through the
//! periodically recorded (and authenticated) chain head, kept in the database and mirrored
//! into the data directory.

mod common;

use common::TestServer;
use reach_server::audit;

async fn some_events(server: &TestServer, n: usize) {
    for i in 0..n {
        server
            .create_user(&format!("user{i}"), "some-password", "viewer")
            .await;
    }
}

#[tokio::test]
async fn a_deleted_middle_row_is_reported_at_its_id() {
    let server = TestServer::start().await;
    some_events(&server, 3).await;
    assert_eq!(server.audit_verdict().await["ok"], true);
    assert_eq!(server.sql("DELETE FROM audit_log WHERE seq = 3").await, 1);
    let got = server.audit_verdict().await;
    assert_eq!(
        (got["ok"].as_bool(), got["broken_at_id"].as_i64()),
        (Some(false), Some(3))
    );
}

#[tokio::test]
async fn deleting_the_newest_rows_is_detected_through_the_recorded_head() {
    let server = TestServer::start().await;
    some_events(&server, 3).await;
    server.audit_checkpoint().await;
    let before = server.audit_verdict().await;
    let newest = before["head"]["id"].as_i64().unwrap();
    assert_eq!(before["records"].as_i64(), Some(newest));

    let deleted = server
        .sql(&format!(
            "DELETE FROM audit_log WHERE seq >= {}",
            newest - 1
        ))
        .await;
    assert_eq!(deleted, 2);
    let got = server.audit_verdict().await;
    assert_eq!(got["ok"], false);
    // Verification itself appends nothing, so the first missing id is `newest - 1`.
    assert_eq!(got["broken_at_id"].as_i64(), Some(newest - 1));
}

#[tokio::test]
async fn a_rewritten_head_is_detected() {
    let server = TestServer::start().await;
    some_events(&server, 2).await;
    server.audit_checkpoint().await;
    server
        .sql("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
        .await;
    // Moving the head back without the server's key does not hide the truncation.
    server.sql("UPDATE audit_heads SET seq = seq - 1").await;
    assert_eq!(server.audit_verdict().await["ok"], false);
}

#[tokio::test]
async fn deleting_the_newest_rows_and_the_recorded_head_row_is_still_detected() {
    let server = TestServer::start().await;
    some_events(&server, 3).await;
    server.audit_checkpoint().await;
    let newest = server.audit_verdict().await["head"]["id"].as_i64().unwrap();
    server
        .sql(&format!("DELETE FROM audit_log WHERE seq = {newest}"))
        .await;
    server.sql("DELETE FROM audit_heads").await;
    let got = server.audit_verdict().await;
    assert_eq!(got["ok"], false, "{got}");
    assert_eq!(got["broken_at_id"].as_i64(), Some(newest));
    let mirror = server.data_dir().join(audit::HEAD_MIRROR_FILE);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(mirror).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}
