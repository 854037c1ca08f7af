//! The local stack `reach demo` and `reach bench latency` run: a private Xvfb, machine
//! enrolment through the public API, and an agent sharing a display.

use std::process::{Child, Command, Stdio};

use anyhow::Context as _;
use reach_agent::consent::DenyAll;
use reach_agent::desktop::{self, DesktopOptions};
use reach_agent::viewer::ApiClient;
use reach_agent::{AgentConfig, Credential};
use reach_proto::agent_key::AgentKey;

/// Creates a machine and an agent key for it through the public API, as an admin would.
pub(crate) async fn enroll_machine(
    url: &str,
    password: &str,
    name: &str,
) -> anyhow::Result<AgentKey> {
    let mut api = ApiClient::new(url)?;
    api.login("admin", password)
        .await
        .context("logging in as the demo admin (is REACH_ADMIN_PASSWORD the password of an existing --data-dir?)")?;
    let machine = api
        .post_json(
            "/api/machines",
            &serde_json::json!({ "name": name, "site": "this computer" }),
        )
        .await?;
    let id = machine["id"]
        .as_str()
        .context("machine answer has no id")?
        .to_owned();
    let key = api
        .post_json(&format!("/api/machines/{id}/keys"), &serde_json::json!({}))
        .await?;
    let key = key["key"].as_str().context("key answer has no key")?;
    Ok(AgentKey::parse(key)?)
}

pub(crate) async fn run_agent(url: String, key: AgentKey, display: String) {
    let mut config = AgentConfig::new(url, Credential::Key(key), std::sync::Arc::new(DenyAll));
    match desktop::capabilities(Some(&display), false) {
        Ok(capabilities) => config.hello.capabilities = Some(capabilities),
        Err(error) => tracing::warn!(%error, "cannot read the display's screens"),
    }
    let options = DesktopOptions {
        display: Some(display),
        ..DesktopOptions::default()
    };
    if let Err(error) = desktop::serve_desktop(reach_agent::spawn(config), options).await {
        eprintln!("The demo agent stopped: {error}");
    }
}

/// A private Xvfb, stopped on drop.
pub(crate) struct PrivateDisplay {
    child: Child,
    pub(crate) name: String,
}

impl PrivateDisplay {
    pub(crate) fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let screen = format!("{width}x{height}x24");
        use std::io::BufRead as _;
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &screen,
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Xvfb")?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            std::io::BufReader::new(stdout).read_line(&mut line)?;
        }
        let number = line.trim();
        if number.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("Xvfb exited without reporting a display");
        }
        Ok(Self {
            name: format!(":{number}"),
            child,
        })
    }
}

impl Drop for PrivateDisplay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
