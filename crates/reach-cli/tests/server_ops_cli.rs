//! A whole support flow from a terminal, as a newcomer runs it: `reach login`, then `reach
//! machines|keys|sessions|codes|users|audit …` against a real server and a real `reach agent`
//! process. Tables for people, `--json` for scripts, refusals as one clear sentence.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use reach_server::{AppState, Config};
use serde_json::Value;
use tokio::process::Command;

const PASSWORD: &str = "ops-admin-password";
const WAIT: Duration = Duration::from_secs(30);

fn reach(config_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reach"));
    cmd.env("REACH_CONFIG_DIR", config_dir)
        .env_remove("REACH_TOKEN")
        .env_remove("REACH_SERVER")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .kill_on_drop(true);
    cmd
}

async fn run(dir: &Path, args: &[&str]) -> Output {
    tokio::time::timeout(WAIT, reach(dir).args(args).output())
        .await
        .expect("reach finishes in time")
        .expect("reach runs")
}

fn text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn json(dir: &Path, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&text(&run(dir, &args).await)).expect("JSON output")
}

fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "should have been refused");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(err.lines().count(), 1, "one sentence: {err}");
    err
}

async fn login(dir: &Path, url: &str, user: &str, password: &str) {
    let out = reach(dir)
        .args(["login", "--server", url, "--user", user])
        .env("REACH_PASSWORD", password)
        .output()
        .await
        .unwrap();
    text(&out);
}

async fn wait_online(dir: &Path, id: &str, online: bool) {
    tokio::time::timeout(WAIT, async {
        while json(dir, &["machines", "show", id]).await["online"] != online {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the machine's state changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_runs_a_whole_support_flow_from_the_terminal() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.admin_password = Some(PASSWORD.to_owned().into());
    let (state, _) = AppState::open(config).await.unwrap();
    let running = reach_server::server::start(state).await.unwrap();
    let url = running.url();
    let admin = tempfile::tempdir().unwrap();
    let (admin, nobody) = (admin.path(), tempfile::tempdir().unwrap());

    let out = run(nobody.path(), &["machines", "list"]).await;
    assert!(refused(&out).contains("reach login"));
    login(admin, &url, "admin", PASSWORD).await;

    let machine = json(
        admin,
        &[
            "machines",
            "create",
            "front desk",
            "--site",
            "HQ",
            "--tag",
            "pos",
        ],
    )
    .await;
    let id = machine["id"].as_str().unwrap().to_owned();
    let table = text(&run(admin, &["machines", "list"]).await);
    assert!(table.starts_with("id "), "{table}");
    assert!(
        table.contains("front desk") && table.contains("HQ"),
        "{table}"
    );
    let renamed = json(
        admin,
        &["machines", "update", &id, "--name", "front desk 2"],
    )
    .await;
    assert_eq!(renamed["name"], "front desk 2");

    let key = json(admin, &["keys", "issue", &id]).await;
    let key_id = key["id"].as_str().unwrap().to_owned();
    let mut agent = reach(tempfile::tempdir().unwrap().path())
        .args(["agent", "--server", &url])
        .env("REACH_AGENT_KEY", key["key"].as_str().unwrap())
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_online(admin, &id, true).await;

    let session = json(admin, &["sessions", "open", &id, "--access", "view-only"]).await;
    let session_id = session["id"].as_str().unwrap().to_owned();
    assert_eq!(session["access"], "view_only");
    assert!(text(&run(admin, &["sessions", "list"]).await).contains(&session_id));

    let code = json(
        admin,
        &[
            "codes",
            "create",
            "--access",
            "view-only",
            "--ttl-secs",
            "120",
        ],
    )
    .await;
    let code_id = code["id"].as_str().unwrap().to_owned();
    assert!(text(&run(admin, &["codes", "list"]).await).contains(&code_id));
    assert_eq!(
        text(&run(admin, &["codes", "revoke", &code_id]).await),
        "done\n"
    );
    assert!(!text(&run(admin, &["codes", "list"]).await).contains(&code_id));

    let watcher = tempfile::tempdir().unwrap();
    let created = reach(admin)
        .args(["users", "create", "watcher", "--role", "viewer", "--json"])
        .env("REACH_NEW_PASSWORD", "watcher-password-1")
        .output()
        .await
        .unwrap();
    assert!(text(&created).contains("watcher"));
    login(watcher.path(), &url, "watcher", "watcher-password-1").await;
    let out = run(watcher.path(), &["sessions", "end", &session_id]).await;
    let sentence = refused(&out);
    assert!(sentence.contains("HTTP 403"), "{sentence}");
    let out = run(watcher.path(), &["users", "create", "x", "--role", "admin"]).await;
    assert!(refused(&out).contains("REACH_NEW_PASSWORD"));
    let watcher_id = json(admin, &["users", "list"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "watcher")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text(&run(admin, &["users", "list"]).await).contains("watcher"));
    let out = run(
        watcher.path(),
        &["users", "update", &watcher_id, "--role", "admin"],
    )
    .await;
    assert!(
        refused(&out).contains("HTTP 403"),
        "a viewer cannot promote itself"
    );
    let updated = json(
        admin,
        &["users", "update", &watcher_id, "--disabled", "true"],
    )
    .await;
    assert_eq!(updated["disabled"], true, "{updated}");

    assert_eq!(
        text(&run(admin, &["sessions", "end", &session_id]).await),
        "done\n"
    );
    let out = run(admin, &["machines", "show", "../users"]).await;
    assert!(refused(&out).contains("HTTP 404"));

    assert_eq!(
        text(&run(admin, &["keys", "revoke", &id, &key_id]).await),
        "done\n"
    );
    wait_online(admin, &id, false).await;
    assert_eq!(
        text(&run(admin, &["machines", "delete", &id]).await),
        "done\n"
    );
    assert!(!text(&run(admin, &["machines", "list"]).await).contains("front desk"));
    assert_eq!(
        text(&run(admin, &["users", "delete", &watcher_id]).await),
        "done\n"
    );
    assert!(!text(&run(admin, &["users", "list"]).await).contains("watcher"));
    let verify = json(admin, &["audit", "verify"]).await;
    assert_eq!(verify["ok"], true, "{verify}");
    let audit = text(&run(admin, &["audit", "list", "--event-type", "session_ended"]).await);
    assert!(audit.contains("session_ended"), "{audit}");
    let _ = agent.kill().await;
    running.shutdown().await.unwrap();
}
