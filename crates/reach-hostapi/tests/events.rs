//! `GET /usb/events`: hotplug from the fake backend, claims and the switch from the host's
//! audit chain, resume with `Last-Event-ID`.

mod common;

use common::Host;
use reach_usb::backend::fake::FakeDevice;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn events_deliver_hotplug_and_claims_and_resume_from_last_event_id() {
    let host = Host::start().await;
    let mut events = host.events(None).await;
    let second = host.fake.add(FakeDevice::loopback().with_info(|d| {
        d.bus_id = "2-1".into();
        d.serial = Some("second".into());
    }));
    let added = events.next().await;
    assert_eq!(added.kind, "device_added");
    assert_eq!(added.data["device"]["serial"], "second", "{:?}", added.data);
    second.unplug();
    let removed = events.next().await;
    assert_eq!(
        (removed.kind.as_str(), removed.id),
        ("device_removed", added.id + 1)
    );

    host.send_json(
        Method::POST,
        "/usb/acl/rules",
        json!({"rule": {"vendor_id": "0525", "allow": true}}),
    )
    .await;
    host.send_json(Method::POST, "/usb/passthrough", json!({"enabled": true}))
        .await;
    let switched = events.until("passthrough").await;
    assert_eq!(switched.data["enabled"], true);
    let (status, opened) = host
        .send_json(Method::POST, "/usb/loopback/open", json!({}))
        .await;
    assert_eq!(status, 200, "{opened}");
    let claimed = events.until("claimed").await;
    assert_eq!(claimed.data["claim_id"], opened["claim_id"]);
    assert_eq!(claimed.data["vendor_id"], "0525");
    let released = events.until("released").await;
    assert!(released.id > claimed.id);

    let mut resumed = host.events(Some(added.id)).await;
    let again = resumed.next().await;
    assert_eq!(
        (again.id, again.kind.as_str()),
        (removed.id, "device_removed")
    );
    let rest = resumed.until("released").await;
    assert_eq!(rest.id, released.id, "the same ids on resume");
    host.send_json(Method::POST, "/usb/passthrough", json!({"enabled": false}))
        .await;
    let live = resumed.until("passthrough").await;
    assert_eq!(live.data["enabled"], false);
    assert!(live.id > released.id);
}
