//! Console events: what the web console learns without polling — machines coming online or
//! going offline, sessions starting and ending, consent asked and answered, support codes
//! used or revoked. Published by the relay and the REST handlers, delivered per tenant over
//! `/ws/console` ([`crate::ws::console`]).

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Kinds of console event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleEventKind {
    /// A machine's agent connected.
    MachineOnline,
    /// A machine's agent disconnected.
    MachineOffline,
    /// A session was opened (managed) or created by a support code (attended).
    SessionStarted,
    /// The person at the machine is being asked (`timeout_secs` to answer).
    ConsentPending,
    /// They said yes.
    ConsentGranted,
    /// They said no, or did not answer (`reason`).
    ConsentDenied,
    /// A session ended (`reason`).
    SessionEnded,
    /// A support code was presented by an agent (the customer connected).
    CodeUsed,
    /// A support code was revoked.
    CodeRevoked,
    /// A session's `usb_attached` list changed (`reach usb attach` attached or detached a
    /// claim, or an attached claim closed).
    UsbAttached,
}

/// One event, for one tenant's consoles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleEvent {
    /// Tenant whose consoles receive it (never sent).
    #[serde(skip)]
    pub tenant_id: String,
    /// What happened.
    pub kind: ConsoleEventKind,
    /// Machine concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Session concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Support code concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_id: Option<String>,
    /// Machine-readable reason (`consent_timeout`, `ended_by_user`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds the person at the machine has to answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

impl ConsoleEvent {
    /// An event with only its tenant and kind set.
    pub fn new(tenant_id: &str, kind: ConsoleEventKind) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            kind,
            machine_id: None,
            session_id: None,
            code_id: None,
            reason: None,
            timeout_secs: None,
        }
    }

    /// With a machine.
    #[must_use]
    pub fn machine(mut self, id: &str) -> Self {
        self.machine_id = Some(id.to_owned());
        self
    }

    /// With a session.
    #[must_use]
    pub fn session(mut self, id: &str) -> Self {
        self.session_id = Some(id.to_owned());
        self
    }

    /// With a support code.
    #[must_use]
    pub fn code(mut self, id: &str) -> Self {
        self.code_id = Some(id.to_owned());
        self
    }

    /// With a reason.
    #[must_use]
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }
}

/// Events kept for consoles that read slowly; a console that falls further behind is told to
/// re-read (`resync`).
pub const CONSOLE_EVENT_BACKLOG: usize = 1024;

/// A new bus.
pub fn bus() -> broadcast::Sender<ConsoleEvent> {
    broadcast::channel(CONSOLE_EVENT_BACKLOG).0
}
