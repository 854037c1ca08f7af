//! USB passthrough through live sessions: one `reach_usb` host session per viewer.
//!
//! Viewers' `UsbFrame`s (docs/usb-protocol.md) arrive stamped by the server with the session and
//! viewer they come from. The first frames of a (session, viewer) pair start a
//! [`reach_usb::net::HostRunner`] for it; its frames go back addressed to that viewer only. Every
//! claim is bound to its session and to the user behind the viewer (server-verified). A viewer
//! whose connection drops keeps its claims for the retention window ([`CLAIM_RETENTION`], 30 s):
//! the same user rejoining the session resumes them with RESUME (`resume`). A viewer leaving,
//! being revoked, the window passing, the session ending, the agent disconnecting or the host
//! switch going off (each host session follows it, telling its viewer CLOSED `shutdown`) closes
//! the claims at once and releases the devices.
//!
//! Outgoing USB frames travel on their own channel, which the connection loop drains before
//! video, so a control transfer never waits behind a screen update.
//!
//! # Layout
//! - [`UsbOptions`] / [`UsbSwitch`]: what the embedder provides (backend, ACL, audit, switch).
//! - `service`: the per-viewer runners ([`UsbService`](service::UsbService)).
//! - `resume`: host sessions parked for a dropped viewer.
//! - `audit`: local audit records mirrored to the server as `UsbAudit`.
//! - [`ConsentOpenPrompt`]: `prompt_on_open` rules asked through the consent prompt.

mod audit;
mod prompt;
mod resume;
pub(crate) mod service;

pub use prompt::ConsentOpenPrompt;

use std::sync::Arc;
use std::time::Duration;

use reach_usb::acl::policy::{AclPolicy, OpenPrompt, PromptAnswer};
use reach_usb::audit::LocalAudit;
use reach_usb::backend::{BackendError, UsbBackend};
use reach_usb::net::AccessPolicy;
use reach_usb::tools::UsbPaths;
use tokio::sync::watch;

/// How long the claims of a viewer whose connection dropped wait for the same user to rejoin and
/// RESUME them ([`UsbOptions::retention`]). A viewer that leaves or is revoked, a session that
/// ends and an agent that disconnects release every claim at once.
pub const CLAIM_RETENTION: Duration = Duration::from_secs(30);

/// Largest USB frame payload a viewer may send through the relay: its socket takes messages of
/// at most `VIEWER_MAX_MESSAGE` (64 KiB), and the envelope and frame headers need room too.
pub const RELAY_FRAME_PAYLOAD: usize = reach_proto::limits::VIEWER_MAX_MESSAGE - 1024;

/// USB frames queued for the server before the runners wait (they keep reading meanwhile).
pub const USB_OUT_QUEUE: usize = 1024;

/// Audit notes queued for the server; more are dropped (the local chain keeps them).
pub const AUDIT_NOTE_QUEUE: usize = 256;

/// How often [`UsbSwitch::follow_config`] re-reads the switch (`reach usb enable|disable`).
pub const SWITCH_POLL: Duration = Duration::from_secs(2);

/// The host passthrough switch as the agent sees it; cloning shares it. Changing it sends an
/// `AgentStatus` at once, and turning it off releases every claim.
#[derive(Debug, Clone)]
pub struct UsbSwitch(Arc<watch::Sender<bool>>);

impl UsbSwitch {
    /// A switch starting at `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self(Arc::new(watch::Sender::new(enabled)))
    }

    /// Turns passthrough on or off.
    pub fn set(&self, enabled: bool) {
        self.0
            .send_if_modified(|v| std::mem::replace(v, enabled) != enabled);
    }

    /// Whether passthrough is on.
    pub fn get(&self) -> bool {
        *self.0.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }

    /// Keeps the switch equal to the host's effective setting (`REACH_USB_PASSTHROUGH`, else the
    /// file `reach usb enable|disable` writes), re-read every [`SWITCH_POLL`], until the last
    /// other handle is dropped.
    pub fn follow_config(&self, paths: UsbPaths) {
        let weak = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWITCH_POLL);
            loop {
                tick.tick().await;
                let Some(sender) = weak.upgrade() else { return };
                let enabled = paths.passthrough().enabled;
                sender.send_if_modified(|v| std::mem::replace(v, enabled) != enabled);
            }
        });
    }
}

/// Answers `prompt_on_open` devices without asking anyone: denies (for hosts nobody watches;
/// [`ConsentOpenPrompt`] asks the person at the machine).
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyPrompt;

impl OpenPrompt for DenyPrompt {
    fn ask<'a>(
        &'a self,
        _device: &'a reach_usb::proto::DeviceInfo,
        _viewer: &'a str,
    ) -> reach_usb::backend::BoxFuture<'a, PromptAnswer> {
        Box::pin(async { PromptAnswer::Deny })
    }
}

/// What the agent needs to share USB devices.
#[derive(Clone)]
pub struct UsbOptions {
    /// Where devices come from (`usbfs`, or the fake device for tests and demos).
    pub backend: Arc<dyn UsbBackend>,
    /// Who may see and open what (the signed ACL with its prompt).
    pub policy: Arc<dyn AccessPolicy>,
    /// The host's local audit chain (every record is also sent to the server).
    pub audit: Option<Arc<LocalAudit>>,
    /// The passthrough switch.
    pub switch: UsbSwitch,
    /// Why the ACL failed its integrity check, if it did (reported to the server's audit log).
    pub acl_problem: Option<String>,
    /// How long a dropped viewer's claims wait for a RESUME ([`CLAIM_RETENTION`]; zero: never).
    pub retention: Duration,
}

impl std::fmt::Debug for UsbOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsbOptions")
            .field("backend", &self.backend.name())
            .field("switch", &self.switch.get())
            .finish_non_exhaustive()
    }
}

impl UsbOptions {
    /// The host's configuration in `paths` (ACL, local audit log, switch read now) over `backend`;
    /// `prompt_on_open` rules are answered by `prompt`.
    pub fn from_paths(
        paths: &UsbPaths,
        backend: Arc<dyn UsbBackend>,
        prompt: Arc<dyn OpenPrompt>,
    ) -> Self {
        let policy = AclPolicy::load(paths.acl(), paths.acl_options(), prompt);
        let acl = policy.snapshot();
        let acl_problem = (!acl.integrity_ok).then(|| {
            acl.problem
                .unwrap_or_else(|| "integrity check failed".into())
        });
        let _ = std::fs::create_dir_all(&paths.config_dir);
        let audit = match LocalAudit::open(&paths.audit(), "agent") {
            Ok(audit) => Some(Arc::new(audit)),
            Err(error) => {
                tracing::error!(%error, "the local USB audit log cannot be opened; USB events reach only the server's log");
                None
            }
        };
        Self {
            backend,
            policy: Arc::new(policy),
            audit,
            switch: UsbSwitch::new(paths.passthrough().enabled),
            acl_problem,
            retention: CLAIM_RETENTION,
        }
    }

    /// Whether the backend works on this machine (a USB bus exists and can be listed).
    pub async fn backend_works(&self) -> bool {
        match self.backend.list().await {
            Ok(_) => true,
            Err(BackendError::NoBus) => false,
            Err(error) => {
                tracing::warn!(%error, "USB backend cannot list devices; USB not offered");
                false
            }
        }
    }
}
