//! A database-only attacker rewrites history: edits record k, recomputes the (unkeyed)
//! chain from k and appends a row. The chain is keyed with the server secret, so the edit is
//! reported at k, and the next checkpoint refuses to sign the forged newest row as the head.
//! A head row forged to a lower seq is reported, not overwritten.

mod common;

use common::TestServer;
use reach_audit::AuditRecord;
use serde_json::json;
use sqlx::Row as _;

async fn some_events(server: &TestServer, prefix: &str, n: usize) {
    for i in 0..n {
        server
            .create_user(&format!("{prefix}{i}"), "some-password", "viewer")
            .await;
    }
}

async fn rows(server: &TestServer) -> Vec<AuditRecord> {
    let rows = sqlx::query(
        "SELECT tenant_id, seq, ts_ms, actor, event_type, details, prev_hash, hash \
         FROM audit_log ORDER BY seq",
    )
    .fetch_all(&server.state.db)
    .await
    .unwrap();
    rows.iter()
        .map(|r| AuditRecord {
            id: r.get("seq"),
            ts_ms: r.get("ts_ms"),
            tenant: r.get("tenant_id"),
            actor: r.get("actor"),
            event_type: r.get("event_type"),
            details: serde_json::from_str(&r.get::<String, _>("details")).unwrap(),
            prev_hash: r.get("prev_hash"),
            hash: r.get("hash"),
        })
        .collect()
}

/// What an attacker with write access to the database alone can do: edit record `k`,
/// recompute every hash from `k` with the public (unkeyed) scheme, append one more record.
async fn rewrite_from(server: &TestServer, k: i64) {
    let mut records = rows(server).await;
    let at = records.iter().position(|r| r.id == k).unwrap();
    records[at].actor = "someone-else".into();
    for i in at..records.len() {
        if i > 0 {
            records[i].prev_hash = records[i - 1].hash.clone();
        }
        records[i].hash = records[i].compute_hash();
        let r = &records[i];
        sqlx::query("UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&r.actor)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(r.id)
            .execute(&server.state.db)
            .await
            .unwrap();
    }
    let last = records.last().unwrap();
    let appended = AuditRecord::new(
        last.id + 1,
        last.ts_ms + 1,
        &last.tenant,
        "admin",
        "user_created",
        json!({"username": "planted"}),
        last.hash.clone(),
    );
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, seq, ts_ms, actor, event_type, details, prev_hash, \
         hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&appended.tenant)
    .bind(appended.id)
    .bind(appended.ts_ms)
    .bind(&appended.actor)
    .bind(&appended.event_type)
    .bind(reach_audit::canonical_json(&appended.details))
    .bind(&appended.prev_hash)
    .bind(&appended.hash)
    .execute(&server.state.db)
    .await
    .unwrap();
}

async fn recorded_head_seq(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT seq FROM audit_heads")
        .fetch_one(&server.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_edit_rehashed_and_appended_to_is_reported_at_the_edit_and_never_signed() {
    let server = TestServer::start().await;
    some_events(&server, "user", 4).await;
    server.audit_checkpoint().await;
    let head = recorded_head_seq(&server).await;
    assert_eq!(server.audit_verdict().await["ok"], true);

    let k = 3;
    rewrite_from(&server, k).await;
    server.audit_checkpoint().await;
    assert_eq!(
        recorded_head_seq(&server).await,
        head,
        "the forged row was signed"
    );
    let got = server.audit_verdict().await;
    assert_eq!(
        (got["ok"].as_bool(), got["broken_at_id"].as_i64()),
        (Some(false), Some(k)),
        "{got}"
    );
    // Both recorded heads (database and mirror) no longer agree with the rewritten chain.
    assert_eq!(
        got["bad_heads"],
        json!([
            {"source": "database", "seq": head, "reason": "disagrees"},
            {"source": "mirror", "seq": head, "reason": "disagrees"}
        ]),
        "{got}"
    );
}

#[tokio::test]
async fn a_rewrite_of_records_newer_than_the_last_head_is_reported_too() {
    let server = TestServer::start().await;
    some_events(&server, "user", 2).await;
    server.audit_checkpoint().await;
    let head = recorded_head_seq(&server).await;
    some_events(&server, "more", 3).await;
    let k = head + 2;
    rewrite_from(&server, k).await;
    server.audit_checkpoint().await;
    assert_eq!(recorded_head_seq(&server).await, head);
    let got = server.audit_verdict().await;
    assert_eq!(got["broken_at_id"].as_i64(), Some(k), "{got}");
}

#[tokio::test]
async fn a_head_forged_to_a_lower_seq_is_reported_and_not_overwritten() {
    let server = TestServer::start().await;
    some_events(&server, "user", 3).await;
    server.audit_checkpoint().await;
    assert_eq!(server.sql("UPDATE audit_heads SET seq = 2").await, 1);
    // The next checkpoint (as at every start) must not paper over it.
    server.audit_checkpoint().await;
    assert_eq!(recorded_head_seq(&server).await, 2);
    let got = server.audit_verdict().await;
    assert_eq!(
        (got["ok"].as_bool(), got["broken_at_id"].as_i64()),
        (Some(false), Some(2)),
        "{got}"
    );
    assert_eq!(
        got["bad_heads"],
        json!([{"source": "database", "seq": 2, "reason": "mac"}])
    );
}
