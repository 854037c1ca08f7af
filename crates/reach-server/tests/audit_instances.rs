//! Audit appends from several server instances on one database never fork the chain: three
//! instances in this process and four writer processes append at once; afterwards the
//! chain is one gap-free line that verifies on every instance, every instance's checkpoint
//! records a valid head, and a tampered row is still reported at its id by all of them. An
//! append waits while another instance holds the tenant's append lock in the database, and
//! instances sharing a data directory keep one valid head mirror.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use reach_server::{audit, db};
use reqwest::Method;
use serde_json::json;
use sqlx::Row as _;

/// Set for the writer processes: `database url|tenant id|chain key (hex)|records`.
const WRITER_ENV: &str = "REACH_TEST_AUDIT_WRITER";
const WRITER_RECORDS: i64 = 40;
const WRITERS: usize = 4;
const CREATES_PER_INSTANCE: usize = 12;
const WAIT: Duration = Duration::from_secs(60);

async fn three_instances() -> Vec<TestServer> {
    common::instances(3, None).await
}

fn database_url(s: &TestServer) -> String {
    s.shared_database_url()
}

/// Not a test of its own: the body of a writer process started by the test below (another
/// process, so nothing in memory serialises its appends with the servers').
#[tokio::test]
#[ignore = "a writer process of appends_from_three_instances_and_four_writer_processes_never_fork_the_chain"]
async fn audit_writer_process() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (url, tenant, key, records) = (parts[0], parts[1], parts[2], parts[3]);
    let key: [u8; 32] = hex::decode(key).unwrap().try_into().unwrap();
    let records: i64 = records.parse().unwrap();
    let pool = db::connect(url).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..records {
        let (pool, tenant) = (pool.clone(), tenant.to_owned());
        tasks.push(tokio::spawn(async move {
            let details = json!({"n": n, "pid": std::process::id()});
            audit::record(&pool, &key, &tenant, "writer", "test_event", details).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

fn start_writer(url: &str, tenant: &str, key: &[u8; 32]) -> std::process::Child {
    let spec = format!("{url}|{tenant}|{}|{WRITER_RECORDS}", hex::encode(key));
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "audit_writer_process",
            "--ignored",
            "--nocapture",
        ])
        .env(WRITER_ENV, spec)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

async fn create_users(s: Arc<TestServer>, instance: usize) {
    let mut tasks = Vec::new();
    for n in 0..CREATES_PER_INSTANCE {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("user-{instance}-{n}");
            s.create_user(&name, "a-long-enough-password", "viewer")
                .await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Every record's `prev_hash` is its predecessor's hash and `seq` runs 1, 2, 3… without gaps.
async fn assert_one_line(s: &TestServer, tenant: &str) -> i64 {
    let rows =
        sqlx::query("SELECT seq, prev_hash, hash FROM audit_log WHERE tenant_id = $1 ORDER BY seq")
            .bind(tenant)
            .fetch_all(&s.state.db)
            .await
            .unwrap();
    let mut prev = reach_audit::GENESIS_HASH.to_owned();
    for (i, row) in rows.iter().enumerate() {
        let seq: i64 = row.get("seq");
        assert_eq!(seq, i64::try_from(i).unwrap() + 1, "no gap, no duplicate");
        assert_eq!(row.get::<String, _>("prev_hash"), prev, "no fork at {seq}");
        prev = row.get("hash");
    }
    i64::try_from(rows.len()).unwrap()
}

#[tokio::test]
async fn appends_from_three_instances_and_four_writer_processes_never_fork_the_chain() {
    let servers: Vec<Arc<TestServer>> = three_instances().await.into_iter().map(Arc::new).collect();
    let (_, me) = servers[0]
        .call(Method::GET, "/api/me", Some(&servers[0].admin_token), None)
        .await;
    let tenant = me["tenant_id"].as_str().unwrap().to_owned();
    let start = servers[0].audit_verdict().await["records"]
        .as_i64()
        .unwrap();

    let url = database_url(&servers[0]);
    let key = servers[0].state.audit_keys.chain;
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| start_writer(&url, &tenant, &key))
        .collect();
    let mut creates = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        creates.push(tokio::spawn(create_users(s.clone(), i)));
    }
    for create in creates {
        tokio::time::timeout(WAIT, create).await.unwrap().unwrap();
    }
    for writer in writers {
        let out = tokio::time::timeout(
            WAIT,
            tokio::task::spawn_blocking(|| writer.wait_with_output()),
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "writer: {log}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(log.contains("1 passed"), "the writer ran: {log}");
    }

    let expected = start
        + i64::try_from(WRITERS).unwrap() * WRITER_RECORDS
        + i64::try_from(3 * CREATES_PER_INSTANCE).unwrap();
    assert_eq!(assert_one_line(&servers[1], &tenant).await, expected);
    for s in &servers {
        s.audit_checkpoint().await;
    }
    for s in &servers {
        let verdict = s.audit_verdict().await;
        assert_eq!(verdict["ok"], true, "{verdict}");
        assert_eq!(verdict["records"], expected, "{verdict}");
        assert_eq!(
            verdict["head"]["id"], expected,
            "every checkpoint recorded the head"
        );
    }

    // Tamper detection still works, on every instance.
    let tampered = start + 7;
    let changed = servers[2]
        .sql(&format!(
            "UPDATE audit_log SET actor = 'someone-else' WHERE seq = {tampered} AND tenant_id = '{tenant}'"
        ))
        .await;
    assert_eq!(changed, 1);
    for s in &servers {
        let verdict = s.audit_verdict().await;
        assert_eq!(
            (&verdict["ok"], &verdict["broken_at_id"]),
            (&json!(false), &json!(tampered)),
            "{verdict}"
        );
    }
}

#[tokio::test]
async fn an_append_waits_while_another_instance_holds_the_append_lock() {
    let s = TestServer::start().await;
    let (_, me) = s
        .call(Method::GET, "/api/me", Some(&s.admin_token), None)
        .await;
    let tenant = me["tenant_id"].as_str().unwrap().to_owned();
    let other = db::connect(&database_url(&s)).await.unwrap();
    // Another instance's append transaction, holding the lock as `audit::record` takes it.
    let mut held = if database_url(&s).starts_with("sqlite:") {
        other.begin_with("BEGIN IMMEDIATE").await.unwrap()
    } else {
        let mut tx = other.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(audit::append_lock_key(&tenant))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
    };
    sqlx::query("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&mut *held)
        .await
        .unwrap();
    let (pool, key, t) = (s.state.db.clone(), s.state.audit_keys.chain, tenant.clone());
    let mut append = tokio::spawn(async move {
        audit::record(&pool, &key, &t, "system", "test_event", json!({})).await
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut append)
            .await
            .is_err(),
        "the append waits for the lock"
    );
    held.commit().await.unwrap();
    let seq = tokio::time::timeout(WAIT, append)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(assert_one_line(&s, &tenant).await, seq);
    assert_eq!(s.audit_verdict().await["ok"], true);
}

// Several worker threads, so the instances' mirror writes really overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoints_of_instances_sharing_a_data_directory_keep_one_valid_mirror() {
    let servers: Vec<Arc<TestServer>> = three_instances().await.into_iter().map(Arc::new).collect();
    let mirror = servers[0].data_dir().join(audit::HEAD_MIRROR_FILE);
    let mut tasks = Vec::new();
    for s in servers.iter().cycle().take(3 * 15) {
        let (s, mirror) = (s.clone(), mirror.clone());
        tasks.push(tokio::spawn(async move {
            s.create_user(&db::new_id("u"), "a-long-enough-password", "viewer")
                .await;
            audit::checkpoint(&s.state.db, &s.state.audit_keys, &mirror).await
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .expect("every checkpoint writes the mirror");
    }
    let leftovers: Vec<_> = std::fs::read_dir(servers[0].data_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let verdict = servers[0].audit_verdict().await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert!(verdict["head"]["id"].as_i64().unwrap() > 0, "{verdict}");
}
