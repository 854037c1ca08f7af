//! The local stack `reach demo` and `reach bench latency` run: a private Xvfb, machine
//! enrolment through the public API, and an agent sharing a display.

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
