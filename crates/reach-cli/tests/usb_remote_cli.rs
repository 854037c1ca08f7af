//! The technician's `reach login` and `reach usb remote …` against a real server, with the real
//! `reach agent --usb-backend fake` process sharing the demo device: the whole path as a user
//! runs it.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use reach_agent::viewer::ApiClient;
use reach_server::{AppState, Config};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const PASSWORD: &str = "cli-admin-password";
const WAIT: Duration = Duration::from_secs(30);

fn reach(config_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reach"));
    cmd.env("REACH_CONFIG_DIR", config_dir)
        .env_remove("REACH_TOKEN")
        .env_remove("REACH_SERVER")
        .env_remove("REACH_USB_BACKEND")
        .env_remove("REACH_USB_PASSTHROUGH")
        .kill_on_drop(true);
    cmd
}

async fn run(cmd: &mut Command) -> Output {
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("reach finishes in time")
        .expect("reach runs")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// Starts `reach agent --usb-backend fake` for a new machine whose host allows the demo device.
async fn host_agent(url: &str, api: &ApiClient, host_dir: &Path) -> (String, Child) {
    let machine = api
        .post_json("/api/machines", &json!({"name": "cli-host"}))
        .await
        .unwrap();
    let id = machine["id"].as_str().unwrap().to_owned();
    let key = api
        .post_json(&format!("/api/machines/{id}/keys"), &json!({}))
        .await
        .unwrap();
    let acl = reach(host_dir)
        .args([
            "usb",
            "--backend",
            "fake",
            "acl",
            "add",
            "--vendor-id",
            "0525",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        acl.status.success(),
        "{}",
        String::from_utf8_lossy(&acl.stderr)
    );
    let agent = reach(host_dir)
        .args(["agent", "--server", url, "--usb-backend", "fake"])
        .env("REACH_AGENT_KEY", key["key"].as_str().unwrap())
        .env("REACH_USB_PASSTHROUGH", "1")
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent starts");
    let online = tokio::time::timeout(WAIT, async {
        loop {
            let m = api.get_json(&format!("/api/machines/{id}")).await.unwrap();
            if m["online"] == true && m["capabilities"]["supports_usb"] == true {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    online.await.expect("the agent comes online with USB");
    (id, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_logs_in_then_lists_and_opens_a_remote_device_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.admin_password = Some(PASSWORD.to_owned().into());
    let (state, _) = AppState::open(config).await.unwrap();
    let running = reach_server::server::start(state).await.unwrap();
    let url = running.url();
    let (host_dir, tech_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let login = run(reach(tech_dir.path())
        .args(["login", "--server", &url, "--user", "admin"])
        .env("REACH_PASSWORD", PASSWORD))
    .await;
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let stored = tech_dir.path().join("login.json");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = serde_json::from_slice::<Value>(&std::fs::read(&stored).unwrap()).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let api = ApiClient::new(&url).unwrap().with_token(token);
    let (machine_id, _agent) = host_agent(&url, &api, host_dir.path()).await;
    let session = api
        .post_json(
            "/api/sessions",
            &json!({"machine_id": machine_id, "usb": true}),
        )
        .await
        .unwrap();
    let session_id = session["id"].as_str().unwrap();

    let list = json_of(
        &run(reach(tech_dir.path()).args([
            "usb",
            "remote",
            "list",
            "--session",
            session_id,
            "--json",
        ]))
        .await,
    );
    assert_eq!(list["devices"][0]["vendor_id"], "0525", "{list}");
    let open = json_of(
        &run(reach(tech_dir.path()).args([
            "usb",
            "remote",
            "open",
            "--session",
            session_id,
            "--vendor-id",
            "0525",
            "--json",
        ]))
        .await,
    );
    assert_eq!(
        open["device_descriptor"].as_str().unwrap().len(),
        36,
        "{open}"
    );

    let anonymous = run(reach(tempfile::tempdir().unwrap().path()).args([
        "usb",
        "remote",
        "list",
        "--session",
        session_id,
    ]))
    .await;
    assert!(!anonymous.status.success());
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("reach login"));
    running.shutdown().await.unwrap();
}
