//! Session lifecycle: opening, consent and ending, keeping the database, the audit log,
//! the hub and the sockets in step.

use std::time::Instant;

use bytes::Bytes;
use reach_proto::access::Scope;
use reach_proto::consent::{ConsentChange, ConsentState};
use reach_proto::v1::{self, envelope::Body};
use reach_proto::{close, codec};
use serde_json::json;

use crate::console_events::{ConsoleEvent, ConsoleEventKind as Kind};
use crate::relay::hub::{Outbound, SessionLink};
use crate::relay::store::sessions::{self, NewSession};
use crate::state::AppState;

/// What a new session is.
#[derive(Debug, Clone)]
pub struct Opening<'a> {
    /// Tenant.
    pub tenant_id: &'a str,
    /// Machine.
    pub machine_id: &'a str,
    /// Attended (support code) or managed.
    pub attended: bool,
    /// User id of the technician.
    pub created_by: &'a str,
    /// Technician's display name (shown in the consent prompt).
    pub technician: &'a str,
    /// Access and USB asked for.
    pub scope: Scope,
    /// Whether the person at the machine must consent.
    pub consent_required: bool,
}

/// Creates the session row, registers it in the hub, audits `session_started`, and asks
/// for consent when required. Returns the session id.
///
/// # Errors
/// On database failure (nothing is registered then).
pub async fn open(state: &AppState, o: &Opening<'_>) -> Result<String, sqlx::Error> {
    let now = Instant::now();
    let timeout = state.relay.consent_timeout();
    let consent = if o.consent_required {
        ConsentState::pending(now, timeout)
    } else {
        ConsentState::NotRequired
    };
    let row = NewSession {
        tenant_id: o.tenant_id,
        machine_id: o.machine_id,
        kind: if o.attended { "attended" } else { "managed" },
        created_by: o.created_by,
        technician: o.technician,
        access: o.scope.access,
        usb: o.scope.usb,
        consent: consent.as_str(),
        instance_id: &state.instance_id,
    };
    let id = sessions::insert(&state.db, &row).await?;
    state.relay.open_session(
        &id,
        SessionLink {
            tenant_id: o.tenant_id.to_owned(),
            machine_id: o.machine_id.to_owned(),
            attended: o.attended,
            scope: o.scope,
            consent,
            consented: None,
            idle_since: Some(now),
            viewers: crate::relay::hub::Viewers::new(),
        },
    );
    let details = json!({"session_id": id, "machine_id": o.machine_id, "kind": row.kind,
        "access": o.scope.access.as_str(), "usb": o.scope.usb, "consent": consent.as_str()});
    state
        .audit(o.tenant_id, o.technician, "session_started", details)
        .await?;
    state.notify(
        ConsoleEvent::new(o.tenant_id, Kind::SessionStarted)
            .session(&id)
            .machine(o.machine_id),
    );
    if o.consent_required {
        request_consent(state, &id, o, timeout).await?;
    }
    Ok(id)
}

async fn request_consent(
    state: &AppState,
    session_id: &str,
    o: &Opening<'_>,
    timeout: std::time::Duration,
) -> Result<(), sqlx::Error> {
    let tenant = crate::tenants::name_of(&state.db, o.tenant_id)
        .await?
        .unwrap_or_default();
    let body = Body::ConsentRequest(v1::ConsentRequest {
        technician: o.technician.to_owned(),
        access: o.scope.access.to_wire().into(),
        usb: o.scope.usb,
        timeout_secs: u32::try_from(timeout.as_secs()).unwrap_or(60),
        tenant,
    });
    let frame = Bytes::from(codec::encode(&codec::envelope(session_id, body)));
    let delivered = state
        .relay
        .agent_tx(o.machine_id)
        .is_some_and(|tx| tx.try_send(Outbound::Frame(frame)).is_ok());
    let details = json!({"session_id": session_id, "machine_id": o.machine_id,
        "access": o.scope.access.as_str(), "usb": o.scope.usb, "delivered": delivered});
    state
        .audit(o.tenant_id, o.technician, "consent_requested", details)
        .await?;
    let mut pending = ConsoleEvent::new(o.tenant_id, Kind::ConsentPending)
        .session(session_id)
        .machine(o.machine_id);
    pending.timeout_secs = Some(timeout.as_secs());
    state.notify(pending);
    let timer_state = state.clone();
    let timer_session = session_id.to_owned();
    let tenant = o.tenant_id.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let change = timer_state
            .relay
            .handle_consent_timeout(&timer_session, Instant::now());
        if let Err(err) = apply_consent(&timer_state, &tenant, &timer_session, change).await {
            tracing::warn!(error = %err, "could not record a consent timeout");
        }
    });
    Ok(())
}

/// Records a consent change: granted → row + audit; denied → audit, session torn down.
///
/// # Errors
/// On database failure.
pub async fn apply_consent(
    state: &AppState,
    tenant_id: &str,
    session_id: &str,
    change: ConsentChange,
) -> Result<(), sqlx::Error> {
    match change {
        ConsentChange::None => Ok(()),
        ConsentChange::Granted => {
            sessions::set_consent(&state.db, session_id, "granted").await?;
            let details = json!({"session_id": session_id});
            state
                .audit(tenant_id, "system", "consent_granted", details)
                .await?;
            state.notify(ConsoleEvent::new(tenant_id, Kind::ConsentGranted).session(session_id));
            Ok(())
        }
        ConsentChange::Denied(reason) => {
            sessions::set_consent(&state.db, session_id, "denied").await?;
            let details = json!({"session_id": session_id, "reason": reason.as_str()});
            state
                .audit(tenant_id, "system", "consent_denied", details)
                .await?;
            state.notify(
                ConsoleEvent::new(tenant_id, Kind::ConsentDenied)
                    .session(session_id)
                    .reason(reason.as_str()),
            );
            end(
                state,
                tenant_id,
                session_id,
                "system",
                reason.as_str(),
                close::CONSENT_DENIED,
            )
            .await
        }
    }
}

/// Ends a session everywhere: row, hub (viewers closed with `close_code`), audit.
/// Ending an already ended session does nothing.
///
/// # Errors
/// On database failure.
pub async fn end(
    state: &AppState,
    tenant_id: &str,
    session_id: &str,
    actor: &str,
    reason: &str,
    close_code: u16,
) -> Result<(), sqlx::Error> {
    // The row first, so whoever sees the socket close also sees the session ended; the hub
    // is cleared even when the database fails.
    let ended = sessions::end(&state.db, session_id, reason).await;
    crate::cluster::session_ended(state, session_id, reason, close_code);
    if ended? {
        let details = json!({"session_id": session_id, "reason": reason});
        state
            .audit(tenant_id, actor, "session_ended", details)
            .await?;
        state.notify(
            ConsoleEvent::new(tenant_id, Kind::SessionEnded)
                .session(session_id)
                .reason(reason),
        );
    }
    Ok(())
}

/// Ends every live session nobody has watched for `idle` (reason `idle`).
pub async fn end_idle(state: &AppState, idle: std::time::Duration) {
    for (session_id, tenant_id) in state.relay.idle_sessions(Instant::now(), idle) {
        let result = end(
            state,
            &tenant_id,
            &session_id,
            "system",
            "idle",
            close::SESSION_ENDED,
        )
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not end an idle session");
        }
    }
}

/// An agent is gone (disconnected or its key revoked): ends the sessions the hub said
/// cannot go on — denied consent is recorded as such, the rest end as `agent_disconnected`.
pub async fn agent_lost(state: &AppState, tenant_id: &str, ending: Vec<(String, ConsentChange)>) {
    for (session_id, change) in ending {
        let result = if change == ConsentChange::None {
            let reason = "agent_disconnected";
            end(
                state,
                tenant_id,
                &session_id,
                "system",
                reason,
                close::SESSION_ENDED,
            )
            .await
        } else {
            apply_consent(state, tenant_id, &session_id, change).await
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not end a session after agent loss");
        }
    }
}
