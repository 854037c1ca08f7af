//! Calls from one instance to another (`reach.i.<instance>.rpc`, JSON request and reply).
//!
//! Only what must happen where a session or an agent lives is a call: opening a managed
//! session on the instance holding the machine's agent, reading a live session's access (the
//! one access rule's inputs) from the instance holding it, and opening a viewer tunnel there.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use reach_proto::access::{Consent, Scope, ViewerAccess};
use serde::{Deserialize, Serialize};

use super::{Bus, CALL_TIMEOUT, MAX_CONTROL_MESSAGE};
use crate::relay::lifecycle::{self, Opening};
use crate::state::AppState;

/// The subject an instance answers calls on.
pub fn subject(instance: &str) -> String {
    format!("reach.i.{instance}.rpc")
}

/// A scope on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireScope {
    /// Access.
    pub access: ViewerAccess,
    /// USB.
    pub usb: bool,
}

impl From<Scope> for WireScope {
    fn from(s: Scope) -> Self {
        Self {
            access: s.access,
            usb: s.usb,
        }
    }
}

impl From<WireScope> for Scope {
    fn from(s: WireScope) -> Self {
        Self {
            access: s.access,
            usb: s.usb,
        }
    }
}

/// A consent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WireConsent {
    /// Nobody is asked.
    NotRequired,
    /// Asked, no answer yet.
    Pending,
    /// Granted this scope.
    Granted {
        /// What was allowed.
        scope: WireScope,
    },
    /// Refused or timed out.
    Denied,
}

impl From<Consent> for WireConsent {
    fn from(c: Consent) -> Self {
        match c {
            Consent::NotRequired => Self::NotRequired,
            Consent::Pending => Self::Pending,
            Consent::Granted(scope) => Self::Granted {
                scope: scope.into(),
            },
            Consent::Denied => Self::Denied,
        }
    }
}

impl From<WireConsent> for Consent {
    fn from(c: WireConsent) -> Self {
        match c {
            WireConsent::NotRequired => Self::NotRequired,
            WireConsent::Pending => Self::Pending,
            WireConsent::Granted { scope } => Self::Granted(scope.into()),
            WireConsent::Denied => Self::Denied,
        }
    }
}

/// A call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// Open a managed session on a machine whose agent is connected here.
    Open {
        /// Tenant.
        tenant_id: String,
        /// Machine.
        machine_id: String,
        /// Technician's user id.
        created_by: String,
        /// Technician's name.
        technician: String,
        /// Scope asked for.
        scope: WireScope,
        /// Whether the person at the machine must consent.
        consent_required: bool,
    },
    /// The live session's scope and consent, if it is held here.
    Access {
        /// Tenant.
        tenant_id: String,
        /// Session.
        session_id: String,
    },
    /// Serve a viewer that connected to another instance.
    Tunnel(super::tunnel::Opening),
}

/// A reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// The session was opened.
    Opened {
        /// Its id.
        session_id: String,
    },
    /// The session's access (`None`: not live here).
    Access {
        /// Scope and consent.
        live: Option<(WireScope, WireConsent)>,
    },
    /// The tunnel is being served.
    TunnelOpen,
    /// The call failed.
    Failed {
        /// What went wrong (no secrets).
        message: String,
    },
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer in time, or the bus is down.
    #[error("the instance {0} did not answer")]
    NoAnswer(String),
    /// The answer could not be read.
    #[error("unreadable answer from instance {0}")]
    Unreadable(String),
}

/// Calls `instance` and waits up to [`CALL_TIMEOUT`] for its answer.
///
/// # Errors
/// [`CallError`].
pub async fn call(bus: &Bus, instance: &str, call: &Call) -> Result<Answer, CallError> {
    let json = serde_json::to_vec(call).map_err(|_| CallError::Unreadable(instance.into()))?;
    let request = bus.client().request(subject(instance), Bytes::from(json));
    let reply = tokio::time::timeout(CALL_TIMEOUT, request)
        .await
        .map_err(|_| CallError::NoAnswer(instance.into()))?
        .map_err(|_| CallError::NoAnswer(instance.into()))?;
    serde_json::from_slice(&reply.payload).map_err(|_| CallError::Unreadable(instance.into()))
}

/// Answers calls to this instance until the subscription ends.
pub(super) async fn serve(state: AppState, bus: Arc<Bus>, mut calls: async_nats::Subscriber) {
    while let Some(msg) = calls.next().await {
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let (state, bus) = (state.clone(), Arc::clone(&bus));
        tokio::spawn(async move {
            let answer = match serde_json::from_slice::<Call>(&msg.payload) {
                Ok(call) if msg.payload.len() <= MAX_CONTROL_MESSAGE => {
                    answer(&state, &bus, call).await
                }
                _ => Answer::Failed {
                    message: "unreadable call".into(),
                },
            };
            if let Ok(json) = serde_json::to_vec(&answer) {
                let _ = bus.client().publish(reply, Bytes::from(json)).await;
            }
        });
    }
}

async fn answer(state: &AppState, bus: &Arc<Bus>, call: Call) -> Answer {
    match call {
        Call::Open {
            tenant_id,
            machine_id,
            created_by,
            technician,
            scope,
            consent_required,
        } => {
            if !state.relay.is_online(&machine_id) {
                return Answer::Failed {
                    message: "the machine's agent is not connected here".into(),
                };
            }
            let opening = Opening {
                tenant_id: &tenant_id,
                machine_id: &machine_id,
                attended: false,
                created_by: &created_by,
                technician: &technician,
                scope: scope.into(),
                consent_required,
            };
            match lifecycle::open(state, &opening).await {
                Ok(session_id) => Answer::Opened { session_id },
                Err(err) => Answer::Failed {
                    message: format!("could not open the session: {err}"),
                },
            }
        }
        Call::Access {
            tenant_id,
            session_id,
        } => {
            let here = state.relay.session_tenant(&session_id).as_deref() == Some(&*tenant_id);
            let live = here
                .then(|| state.relay.session_access(&session_id))
                .flatten()
                .map(|(scope, consent)| (scope.into(), consent.into()));
            Answer::Access { live }
        }
        Call::Tunnel(opening) => super::tunnel::serve_home(state, bus, opening).await,
    }
}
