//! What an agent needs to run.

use crate::backoff::Backoff;
use crate::consent::ConsentPrompt;
use crate::usb::UsbOptions;
use reach_proto::agent_key::AgentKey;
use reach_proto::support_code::SupportCode;
use reach_proto::v1::{AgentHello, Capabilities};
use std::sync::Arc;
use std::time::Duration;

/// How the agent authenticates.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Managed mode: bound to the key's machine; reconnects forever.
    Key(AgentKey),
    /// Attended mode: one session; the code is consumed by the first connect.
    Code(SupportCode),
}

/// Agent configuration.
#[derive(Clone)]
pub struct AgentConfig {
    /// Server base URL (`https://…`) or socket URL (`wss://…/ws/agent`).
    pub server: String,
    /// Key or code.
    pub credential: Credential,
    /// What the agent says about itself.
    pub hello: AgentHello,
    /// How consent is asked.
    pub prompt: Arc<dyn ConsentPrompt>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// How often a status message is sent.
    pub status_interval: Duration,
    /// USB passthrough (`None`: the agent offers no USB and drops USB frames).
    pub usb: Option<UsbOptions>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("server", &self.server)
            .field("credential", &self.credential)
            .field("prompt", &self.prompt.name())
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    /// A configuration with this machine's hello and default timings.
    pub fn new(server: String, credential: Credential, prompt: Arc<dyn ConsentPrompt>) -> Self {
        Self {
            server,
            credential,
            hello: local_hello(),
            prompt,
            backoff: Backoff::default(),
            status_interval: Duration::from_secs(30),
            usb: None,
        }
    }
}

/// Hello describing this machine. Media and USB capabilities are filled in by the
/// crates that provide them; until then the agent advertises none.
pub fn local_hello() -> AgentHello {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    AgentHello {
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        hostname,
        capabilities: Some(Capabilities::default()),
    }
}
