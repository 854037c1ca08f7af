//! USB passthrough events an agent reports (`UsbAudit`), appended to the tenant's audit chain.
//!
//! The agent decides USB opens itself (its signed ACL, its operator) and keeps a local chain;
//! each decision is also sent here so the tenant's log shows who used which device on which
//! machine. A note names a viewer id the server gave out: it is accepted only when that viewer
//! was in a session on the reporting agent's machine, and then recorded as the technician behind
//! that viewer. Notes are rate-limited per agent connection; payload bytes never travel here.

use std::time::Instant;

use reach_proto::rate::TokenBucket;
use reach_proto::v1::{self, usb_audit::Kind};
use serde_json::json;

use crate::console_events::{ConsoleEvent, ConsoleEventKind};
use crate::relay::hub::ViewerIdentity;
use crate::state::AppState;

/// USB audit notes per second an agent connection may send (burst [`NOTE_BURST`]); more are
/// dropped and counted as rate limited.
pub(crate) const NOTES_PER_SEC: u32 = 50;
/// Burst of [`NOTES_PER_SEC`].
pub(crate) const NOTE_BURST: u32 = 200;

/// A fresh per-connection bucket.
pub(crate) fn bucket() -> TokenBucket {
    TokenBucket::new(NOTES_PER_SEC, NOTE_BURST, Instant::now())
}

fn kind_name(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Open => "open",
        Kind::Denied => "denied",
        Kind::Opened => "opened",
        Kind::Closed => "closed",
        Kind::Error => "error",
        Kind::Resumed => "resumed",
        Kind::Prompted => "prompted",
        Kind::AclIntegrityFailed => "acl_integrity_failed",
        Kind::Attached => "attached",
        Kind::Detached => "detached",
        Kind::Unspecified => return None,
    })
}

/// Keeps the session's attached claims (shown on the session) in step with the note, and
/// tells the tenant's consoles (`usb_attached`) when the list changed.
fn track_attached(state: &AppState, who: &ViewerIdentity, note: &v1::UsbAudit) {
    let (session, user) = (who.session_id.as_str(), who.user_id.as_str());
    let before = state.usb_attached.of(session);
    match note.kind() {
        Kind::Attached => state.usb_attached.attached(
            session,
            crate::usb_attached::AttachedClaim {
                claim_id: note.claim_id,
                technician: user.to_owned(),
                technician_name: who
                    .actor
                    .strip_prefix("viewer:")
                    .unwrap_or(&who.actor)
                    .to_owned(),
                host: note.reason.clone(),
                vendor_id: format!("{:04x}", note.vendor_id & 0xffff),
                product_id: format!("{:04x}", note.product_id & 0xffff),
                since_ms: crate::db::now_ms(),
            },
        ),
        Kind::Detached | Kind::Closed => state.usb_attached.released(session, user, note.claim_id),
        _ => return,
    }
    if state.usb_attached.of(session) != before {
        state.notify(
            ConsoleEvent::new(&who.tenant_id, ConsoleEventKind::UsbAttached).session(session),
        );
    }
}

/// Who reported a note.
pub(crate) struct Reporter<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) machine_id: &'a str,
}

/// Records one note as a `usb_passthrough` event (or drops it: unknown kind or viewer, or over
/// the rate).
pub(crate) async fn record(
    state: &AppState,
    from: &Reporter<'_>,
    bucket: &mut TokenBucket,
    viewer_id: u64,
    note: &v1::UsbAudit,
) {
    let Some(action) = kind_name(note.kind()) else {
        return;
    };
    if !bucket.try_take(Instant::now()) {
        state.metrics.rate_limited("usb_audit");
        return;
    }
    let mut details = json!({
        "action": action,
        "machine_id": from.machine_id,
        "vendor_id": format!("{:04x}", note.vendor_id & 0xffff),
        "product_id": format!("{:04x}", note.product_id & 0xffff),
        "serial": note.serial,
        "bus_id": note.bus_id,
        "claim_id": note.claim_id,
        "reason": note.reason,
    });
    if matches!(note.kind(), Kind::Attached | Kind::Detached) {
        details["technician_host"] = json!(note.reason);
    }
    let actor = if action == "acl_integrity_failed" {
        format!("agent:{}", from.machine_id)
    } else {
        let Some(who) = state.relay.viewer_identity(from.machine_id, viewer_id) else {
            tracing::warn!(viewer_id, "USB audit note about an unknown viewer dropped");
            return;
        };
        if who.tenant_id != from.tenant_id {
            return;
        }
        details["session_id"] = json!(who.session_id);
        details["viewer_id"] = json!(viewer_id);
        details["technician"] = json!(who.user_id);
        track_attached(state, &who, note);
        who.actor
    };
    if let Err(error) = state
        .audit(from.tenant_id, &actor, "usb_passthrough", details)
        .await
    {
        tracing::error!(%error, "could not record a USB audit event");
    }
}
