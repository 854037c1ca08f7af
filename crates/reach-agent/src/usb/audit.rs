//! The agent's local USB audit records, mirrored to the server as `UsbAudit` notes.
//!
//! `reach_usb`'s host driver writes every decision (open, denied, opened, closed, error,
//! resumed) to the local hash chain; the mirror sees each record and sends its ids — never
//! payload bytes — to the server, addressed to the viewer it is about, for the tenant's chain.

use std::sync::Arc;

use reach_proto::codec;
use reach_proto::v1::{self, Envelope, envelope::Body, usb_audit::Kind};
use reach_usb::audit::AuditMirror;
use serde_json::Value;
use tokio::sync::mpsc;

use super::service::ViewerKey;

/// A mirror sending each record about `key`'s host session on `notes`. A full queue drops the
/// note (logged): the local chain still has it.
pub(super) fn mirror(key: ViewerKey, notes: mpsc::Sender<Envelope>) -> AuditMirror {
    Arc::new(move |_actor: &str, details: &Value| {
        let mut env = codec::envelope(&key.session_id, Body::UsbAudit(note(details)));
        env.viewer_id = key.viewer_id;
        if notes.try_send(env).is_err() {
            tracing::warn!("USB audit note not sent to the server (queue full or agent stopping)");
        }
    })
}

/// Reads one local record's details (`reach_usb::audit::LocalAudit::device_event` format).
pub(super) fn note(details: &Value) -> v1::UsbAudit {
    let kind = match details["action"].as_str().unwrap_or_default() {
        "open" => Kind::Open,
        "denied" => Kind::Denied,
        "opened" => Kind::Opened,
        "closed" => Kind::Closed,
        "error" => Kind::Error,
        "resumed" => Kind::Resumed,
        "prompted" => Kind::Prompted,
        "attached" => Kind::Attached,
        "detached" => Kind::Detached,
        _ => Kind::Unspecified,
    };
    let hex = |field: &str| {
        details[field]
            .as_str()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .unwrap_or(0)
    };
    let text = |field: &str| details[field].as_str().unwrap_or_default().to_owned();
    let reason = match (details["reason"].as_str(), details["code"].as_str()) {
        _ if matches!(kind, Kind::Attached | Kind::Detached) => text("technician_host"),
        (Some(reason), _) => reason.to_owned(),
        (None, Some(code)) => format!("{code}: {}", text("message")),
        (None, None) => String::new(),
    };
    v1::UsbAudit {
        kind: kind.into(),
        vendor_id: hex("vendor_id"),
        product_id: hex("product_id"),
        serial: text("serial"),
        bus_id: text("bus_id"),
        claim_id: details["claim_id"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_device_record_becomes_a_note_with_ids_and_reason() {
        let n = note(
            &json!({"action": "closed", "vendor_id": "0525", "product_id": "a4a0",
            "serial": "S1", "bus_id": "fake-1", "viewer": "7@s", "claim_id": 3,
            "reason": "requested"}),
        );
        assert_eq!(n.kind(), Kind::Closed);
        assert_eq!((n.vendor_id, n.product_id, n.claim_id), (0x0525, 0xa4a0, 3));
        assert_eq!((n.serial.as_str(), n.reason.as_str()), ("S1", "requested"));
    }

    #[test]
    fn an_error_record_carries_its_code_and_message() {
        let n = note(&json!({"action": "error", "claim_id": 0, "code": "denied",
            "message": "denied by ACL policy", "viewer": "7@s"}));
        assert_eq!(n.kind(), Kind::Error);
        assert_eq!(n.reason, "denied: denied by ACL policy");
    }

    #[test]
    fn an_attach_record_carries_the_technicians_host_name() {
        let n = note(
            &json!({"action": "detached", "vendor_id": "0525", "product_id": "a4a0",
            "claim_id": 2, "viewer": "7@s", "technician_host": "tech-laptop"}),
        );
        assert_eq!(n.kind(), Kind::Detached);
        assert_eq!((n.claim_id, n.reason.as_str()), (2, "tech-laptop"));
    }
}
