//! A real server, a technician logged in with `reach login`, and a real
//! `reach agent --usb-backend fake` process sharing the demo device `0525:a4a0`: what the
//! session USB tests (`reach usb remote`, `reach usb attach --session`) start from.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use reach_client::viewer::ApiClient;
use reach_server::server::Running;
use reach_server::{AppState, Config};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::{Child, Command};

const PASSWORD: &str = "cli-admin-password";
/// How long any one step may take.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// `reach` with its own config directory and none of the caller's overrides.
pub(crate) fn reach(config_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reach"));
    cmd.env("REACH_CONFIG_DIR", config_dir)
        .env_remove("REACH_TOKEN")
        .env_remove("REACH_SERVER")
        .env_remove("REACH_USB_BACKEND")
        .env_remove("REACH_USB_PASSTHROUGH")
        .kill_on_drop(true);
    cmd
}

/// Runs to completion (bounded).
pub(crate) async fn run(cmd: &mut Command) -> Output {
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("reach finishes in time")
        .expect("reach runs")
}

/// A server with an admin logged in through `reach login` in `tech_dir`.
pub(crate) struct World {
    pub(crate) running: Running,
    pub(crate) url: String,
    pub(crate) api: ApiClient,
    pub(crate) tech_dir: TempDir,
    _data: TempDir,
}

impl World {
    pub(crate) async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(data.path());
        config.admin_password = Some(PASSWORD.to_owned().into());
        let (state, _) = AppState::open(config).await.unwrap();
        let running = reach_server::server::start(state).await.unwrap();
        let url = running.url();
        let tech_dir = tempfile::tempdir().unwrap();
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
        let token =
            serde_json::from_slice::<Value>(&std::fs::read(stored).unwrap()).unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned();
        let api = ApiClient::new(&url).unwrap().with_token(token);
        Self {
            running,
            url,
            api,
            tech_dir,
            _data: data,
        }
    }

    /// A managed session on `machine_id`, with or without USB; its id.
    pub(crate) async fn session(&self, machine_id: &str, usb: bool) -> String {
        let session = self
            .api
            .post_json(
                "/api/sessions",
                &json!({"machine_id": machine_id, "usb": usb}),
            )
            .await
            .unwrap();
        session["id"].as_str().unwrap().to_owned()
    }
}

/// A host machine running `reach agent --usb-backend fake` with passthrough on.
pub(crate) struct Host {
    pub(crate) machine_id: String,
    _agent: Child,
    /// The host's config dir (its ACL and local audit chain); not every test binary reads it.
    #[allow(dead_code)]
    pub(crate) dir: TempDir,
}

impl Host {
    /// Enrols a machine and starts its agent; `allow_vendor` adds an ACL rule for that vendor
    /// (without one the host's ACL denies everything).
    pub(crate) async fn start(world: &World, allow_vendor: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let api = &world.api;
        let machine = api
            .post_json("/api/machines", &json!({"name": "cli-host"}))
            .await
            .unwrap();
        let id = machine["id"].as_str().unwrap().to_owned();
        let key = api
            .post_json(&format!("/api/machines/{id}/keys"), &json!({}))
            .await
            .unwrap();
        if let Some(vendor) = allow_vendor {
            let acl = run(reach(dir.path()).args([
                "usb",
                "--backend",
                "fake",
                "acl",
                "add",
                "--vendor-id",
                vendor,
            ]))
            .await;
            assert!(
                acl.status.success(),
                "{}",
                String::from_utf8_lossy(&acl.stderr)
            );
        }
        let agent = reach(dir.path())
            .args(["agent", "--server", &world.url, "--usb-backend", "fake"])
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
        Self {
            machine_id: id,
            _agent: agent,
            dir,
        }
    }
}
