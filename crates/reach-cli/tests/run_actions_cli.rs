//! `reach run`: a whole support flow from one action file against a real server and a real
//! `reach agent --usb-backend fake`; a failing middle step stops the run and is named;
//! `--dry-run` and an invalid file change nothing.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reach_server::{AppState, Config};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

const PASSWORD: &str = "run-admin-password";
const WAIT: Duration = Duration::from_secs(60);

fn reach(config_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reach"));
    cmd.env("REACH_CONFIG_DIR", config_dir)
        .env_remove("REACH_TOKEN")
        .env_remove("REACH_SERVER")
        .env_remove("REACH_USB_PASSTHROUGH")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .kill_on_drop(true);
    cmd
}

/// Runs `reach run -` with `file` on stdin: (exit code, stdout lines as JSON, stderr).
async fn run_file(dir: &Path, file: &Value, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let mut child = reach(dir)
        .args(["run", "-", "--json"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(file.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn machine_count(dir: &Path) -> usize {
    let out = reach(dir)
        .args(["machines", "list", "--json"])
        .output()
        .await
        .unwrap();
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

async fn server() -> (reach_server::server::Running, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.admin_password = Some(PASSWORD.to_owned().into());
    let (state, _) = AppState::open(config).await.unwrap();
    (reach_server::server::start(state).await.unwrap(), data)
}

async fn login(dir: &Path, url: &str) {
    let out = reach(dir)
        .args(["login", "--server", url, "--user", "admin"])
        .env("REACH_PASSWORD", PASSWORD)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_support_flow_runs_from_one_action_file() {
    let (running, _data) = server().await;
    let url = running.url();
    let dir = tempfile::tempdir().unwrap();
    login(dir.path(), &url).await;
    let file = json!({"steps": [
        {"op": "usb_passthrough_enable"},
        {"op": "usb_acl_add", "rule": {"vendor_id": "0525", "allow": true}},
        {"step": "m", "op": "machines_create", "name": "run host"},
        {"step": "key", "op": "agent_key_issue", "machine": "$steps.m.id"},
        {"op": "wait_for", "machine_online": "$steps.m.id", "timeout_secs": 30},
        {"step": "s", "op": "session_open", "machine": "$steps.m.id", "usb": true},
        {"step": "devices", "op": "usb_remote_list", "session": "$steps.s.id"},
        {"step": "open", "op": "usb_remote_open", "session": "$steps.s.id", "filter": {"vendor_id": "0525"}},
        {"op": "session_end", "id": "$steps.s.id"},
        {"step": "audit", "op": "audit_verify"}
    ]});
    let mut child = reach(dir.path())
        .args(["run", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(file.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut agent = None;
    let read_all = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let step: Value = serde_json::from_str(&line).unwrap();
            // The agent starts on this machine as soon as its key exists (the file then waits
            // for it to come online), sharing the config dir the file set the ACL in.
            if step["id"] == "key" {
                agent = Some(
                    reach(dir.path())
                        .args(["agent", "--server", &url, "--usb-backend", "fake"])
                        .env("REACH_AGENT_KEY", step["result"]["key"].as_str().unwrap())
                        .env_remove("DISPLAY")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                );
            }
            seen.push(step);
        }
    };
    tokio::time::timeout(WAIT, read_all)
        .await
        .expect("the run ends");
    let status = child.wait().await.unwrap();
    assert!(status.success(), "steps: {seen:?}");
    assert_eq!(seen.len(), 10);
    assert!(seen.iter().all(|s| s["ok"] == true), "{seen:?}");
    let by_id = |id: &str| seen.iter().find(|s| s["id"] == id).unwrap()["result"].clone();
    assert_eq!(by_id("devices")["devices"][0]["vendor_id"], "0525");
    assert_eq!(
        by_id("open")["device_descriptor"].as_str().unwrap().len(),
        36
    );
    assert_eq!(by_id("audit")["ok"], true);
    drop(agent);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_stops_the_run_and_is_named_and_bad_files_change_nothing() {
    let (running, _data) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let nobody = tempfile::tempdir().unwrap();
    login(dir.path(), &running.url()).await;

    let failing = json!({"steps": [
        {"op": "machines_create", "name": "one"},
        {"step": "missing", "op": "machines_show", "id": "no-such-machine"},
        {"op": "machines_create", "name": "never"}
    ]});
    let (code, lines, err) = run_file(dir.path(), &failing, &[]).await;
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        lines.len(),
        2,
        "the step after the failure never ran: {lines:?}"
    );
    assert!(
        err.contains("step 2 (missing, machines_show) failed") && err.contains("HTTP 404"),
        "{err}"
    );
    assert_eq!(machine_count(dir.path()).await, 1);

    let (code, lines, _) = run_file(
        dir.path(),
        &json!({"steps": [{"op": "machines_create", "name": "dry"}]}),
        &["--dry-run"],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(lines[0]["op"], "machines_create");
    assert_eq!(
        machine_count(dir.path()).await,
        1,
        "--dry-run changes nothing"
    );

    let invalid = json!({"steps": [
        {"op": "machines_create", "name": "before the bad step"},
        {"op": "session_open", "machine": "m", "usbb": true}
    ]});
    let (code, lines, err) = run_file(dir.path(), &invalid, &[]).await;
    assert_eq!(code, 2);
    assert!(lines.is_empty());
    assert!(
        err.contains("step 2") && err.contains("unknown field"),
        "{err}"
    );
    assert_eq!(machine_count(dir.path()).await, 1, "nothing ran");

    let (code, _, err) = run_file(
        nobody.path(),
        &json!({"steps": [{"op": "machines_list"}]}),
        &[],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("reach login"), "{err}");
    running.shutdown().await.unwrap();
}
