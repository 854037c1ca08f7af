//! What feeds the [`EventHub`]: the backend's hotplug watch (nusb's for the system backend, the
//! fake backend's add/remove in tests), and the host's local audit chain and passthrough switch,
//! followed every [`FOLLOW_INTERVAL`] — so claims made by any process on this host (an agent's
//! sessions, `reach usb loopback open`, this API) and switches made by `reach usb enable|disable`
//! appear as events.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reach_usb::backend::{HotplugEvent, UsbBackend};
use reach_usb::tools::UsbPaths;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::events::EventHub;

/// How often the audit log and the switch are re-read.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// Longest audit line followed (longer ones are skipped).
const MAX_LINE: usize = 64 * 1024;

/// Starts the sources; abort the handles to stop them.
pub fn spawn(
    hub: &EventHub,
    paths: &UsbPaths,
    backend: &Arc<dyn UsbBackend>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(mut rx) = backend.watch() {
        let hub = hub.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let (kind, device) = match event {
                    HotplugEvent::Added(d) => ("device_added", d),
                    HotplugEvent::Removed(d) => ("device_removed", d),
                };
                hub.publish(kind, json!({ "device": device }));
            }
        }));
    }
    let (hub, paths) = (hub.clone(), paths.clone());
    tasks.push(tokio::spawn(async move { follow(hub, paths).await }));
    tasks
}

async fn follow(hub: EventHub, paths: UsbPaths) {
    let audit = paths.audit();
    let mut offset = std::fs::metadata(&audit).map_or(0, |m| m.len());
    let mut enabled = paths.passthrough().enabled;
    let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
    loop {
        tick.tick().await;
        let now = paths.passthrough().enabled;
        if now != enabled {
            enabled = now;
            hub.publish("passthrough", json!({ "enabled": now }));
        }
        let (lines, next) = read_new_lines(&audit, offset);
        offset = next;
        for line in lines {
            if let Some((kind, data)) = claim_event(&line) {
                hub.publish(kind, data);
            }
        }
    }
}

/// Complete lines appended after `offset`, and the offset after them. A shorter file (rotated
/// or replaced) is followed from its end.
fn read_new_lines(path: &Path, offset: u64) -> (Vec<String>, u64) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), 0);
    };
    let len = file.metadata().map_or(0, |m| m.len());
    if len < offset {
        return (Vec::new(), len);
    }
    let mut buf = Vec::new();
    let want = (len - offset).min(4 * MAX_LINE as u64);
    if file.seek(SeekFrom::Start(offset)).is_err() || file.take(want).read_to_end(&mut buf).is_err()
    {
        return (Vec::new(), offset);
    }
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        // One line longer than the read window: skip it.
        return (
            Vec::new(),
            if want as usize >= 4 * MAX_LINE {
                offset + want
            } else {
                offset
            },
        );
    };
    let lines = String::from_utf8_lossy(&buf[..end])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    (lines, offset + end as u64 + 1)
}

/// `opened`/`closed` audit records as `claimed`/`released` events.
fn claim_event(line: &str) -> Option<(&'static str, Value)> {
    let record: Value = serde_json::from_str(line).ok()?;
    let details = record.get("details")?;
    let kind = match details.get("action")?.as_str()? {
        "opened" => "claimed",
        "closed" => "released",
        _ => return None,
    };
    let mut data = json!({ "audit_id": record.get("id") });
    for key in [
        "claim_id",
        "vendor_id",
        "product_id",
        "serial",
        "bus_id",
        "viewer",
        "reason",
    ] {
        if let Some(v) = details.get(key) {
            data[key] = v.clone();
        }
    }
    Some((kind, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_lines_are_read_and_claims_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let opened = r#"{"id":1,"details":{"action":"opened","claim_id":3,"vendor_id":"0525"}}"#;
        std::fs::write(&path, format!("{opened}\n{{\"id\":2,\"det")).unwrap();
        let (lines, next) = read_new_lines(&path, 0);
        assert_eq!(lines, vec![opened.to_owned()]);
        assert_eq!(next as usize, opened.len() + 1);
        let (kind, data) = claim_event(&lines[0]).unwrap();
        assert_eq!((kind, data["claim_id"].as_u64()), ("claimed", Some(3)));
        assert!(claim_event(r#"{"details":{"action":"open"}}"#).is_none());
        assert_eq!(
            read_new_lines(&path, 10_000).1,
            std::fs::metadata(&path).unwrap().len()
        );
    }
}
