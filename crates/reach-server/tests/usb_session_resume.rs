//! A technician whose connection drops keeps its USB claims for the agent's retention window:
//! rejoining the session as the same user resumes them (RESUME through the relay) with no
//! transfer lost or repeated. After the window the claims are closed and the devices released;
//! another user can never resume them; a revoked viewer keeps nothing.

mod common;
#[path = "common/relay.rs"]
mod relay;
#[path = "common/usb.rs"]
mod usb;

use std::time::Duration;

use bytes::Bytes;
use reach_agent::viewer::{ApiClient, LiveViewer};
use reach_usb::UsbError;
use reach_usb::proto::{
    DeviceFilter, TransferFlags, TransferKind, TransferRequest, TransferStatus,
};
use reqwest::Method;

use common::TestServer;
use usb::*;

const WAIT: Duration = Duration::from_secs(10);

/// Joins `session_id` again as `token`'s user (a new connection, a new viewer id).
async fn rejoin(s: &TestServer, token: &str, session_id: &str) -> LiveViewer {
    let api = ApiClient::new(&s.url).unwrap().with_token(token.to_owned());
    api.join(session_id).await.expect("rejoins").into_live()
}

fn request(kind: TransferKind, length: u32, data: &'static [u8]) -> TransferRequest {
    TransferRequest {
        kind,
        flags: TransferFlags::default(),
        timeout_ms: 0,
        length,
        data: Bytes::from_static(data),
    }
}

/// Reads the echo endpoint until `len` bytes came back.
async fn read_echo(dev: &reach_usb::client::UsbHandle, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        let chunk = tokio::time::timeout(WAIT, dev.bulk_in(0x81, 64))
            .await
            .expect("echo in time")
            .expect("echo read");
        got.extend_from_slice(&chunk);
    }
    got
}

/// Waits for a `usb_passthrough` record with `action`.
async fn audited(s: &TestServer, action: &str) -> serde_json::Value {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let records = usb_audit(s).await;
            if let Some(r) = records.iter().find(|r| r["details"]["action"] == action) {
                return r.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    found.await.unwrap_or_else(|_| panic!("no {action} record"))
}

#[tokio::test]
async fn a_viewer_dropped_mid_transfer_that_rejoins_within_the_window_resumes_without_repeating_an_out_or_losing_an_in()
 {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "resume-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");

    // An IN waiting for the device across the drop, and an OUT sent as the connection drops.
    let waiting_in = dev
        .submit(request(TransferKind::Interrupt(0x85), 64, b""))
        .await
        .expect("IN submitted");
    let racing_out = dev
        .submit(request(TransferKind::Bulk(0x02), 4, b"once"))
        .await
        .expect("OUT submitted");
    drop(viewer);
    host.loopback.push_interrupt(b"late");

    let mut again = rejoin(&s, &s.admin_token, &session_id).await;
    tokio::time::timeout(WAIT, again.resume_usb(&client))
        .await
        .expect("resume in time")
        .expect("resumed");

    let reply = tokio::time::timeout(WAIT, waiting_in.wait())
        .await
        .expect("IN in time")
        .expect("IN completes");
    assert_eq!(reply.status, TransferStatus::Ok);
    assert_eq!(
        &reply.data[..],
        b"late",
        "the IN completed while away is not lost"
    );
    let reply = tokio::time::timeout(WAIT, racing_out.wait())
        .await
        .expect("OUT in time")
        .expect("OUT completes");
    assert_eq!((reply.status, reply.actual_length), (TransferStatus::Ok, 4));

    dev.bulk_out(0x02, Bytes::from_static(b"after"))
        .await
        .expect("writes after the resume");
    assert_eq!(
        read_echo(&dev, 9).await,
        b"onceafter",
        "the OUT ran exactly once, in order"
    );
    assert!(host.loopback.is_open());
    let resumed = audited(&s, "resumed").await;
    assert_eq!(resumed["actor"], "viewer:admin");
    assert_eq!(resumed["details"]["claim_id"], u64::from(dev.claim_id()));
}

#[tokio::test]
async fn a_claim_resumes_again_after_a_second_drop_with_the_rotated_token() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "resume-2", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    drop(viewer);
    for round in 0..2 {
        let mut again = rejoin(&s, &s.admin_token, &session_id).await;
        tokio::time::timeout(WAIT, again.resume_usb(&client))
            .await
            .expect("resume in time")
            .unwrap_or_else(|e| panic!("resume {round}: {e}"));
        let data = Bytes::from(format!("round{round}"));
        dev.bulk_out(0x02, data.clone()).await.expect("writes");
        assert_eq!(read_echo(&dev, data.len()).await, data);
        drop(again);
    }
    assert!(host.loopback.is_open());
}

#[tokio::test]
async fn after_the_window_the_claim_is_closed_and_the_device_released() {
    let s = TestServer::start().await;
    let (host, mut options) = usb_host(&allow_loopback_only(), true);
    options.retention = Duration::from_millis(300);
    let (machine_id, _agent) = usb_agent(&s, "expire-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    drop(viewer);
    eventually(WAIT, "device released after the window", || {
        !host.loopback.is_open()
    })
    .await;
    let closed = audited(&s, "closed").await;
    assert_eq!(closed["details"]["reason"], "retention_expired");

    let mut again = rejoin(&s, &s.admin_token, &session_id).await;
    let resumed = tokio::time::timeout(WAIT, again.resume_usb(&client))
        .await
        .expect("an answer in time");
    assert!(resumed.is_err(), "nothing to resume after the window");
    let write = dev.bulk_out(0x02, Bytes::from_static(b"late")).await;
    assert!(
        matches!(write, Err(UsbError::Closed(_))),
        "the claim is closed for the viewer too: {write:?}"
    );
    assert!(!host.loopback.is_open());
}

#[tokio::test]
async fn a_different_user_cannot_resume_another_viewers_claim() {
    let s = TestServer::start().await;
    s.create_user("other", "other-password", "technician").await;
    let other = s.login_token(None, "other", "other-password").await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "steal-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    drop(viewer);

    // The other user's connection carries the admin's client, tokens and all.
    let mut thief = rejoin(&s, &other, &session_id).await;
    let stolen = tokio::time::timeout(WAIT, thief.resume_usb(&client))
        .await
        .expect("an answer in time");
    match stolen {
        Err(UsbError::Protocol(message) | UsbError::Closed(message)) => {
            assert!(message.contains("resume"), "{message}");
        }
        other => panic!("another user resumed the claim: {other:?}"),
    }
    assert!(
        dev.bulk_out(0x02, Bytes::from_static(b"evil"))
            .await
            .is_err(),
        "nothing of the other user's reaches the device"
    );
    assert!(host.loopback.is_open(), "the admin's claim still waits");
}

#[tokio::test]
async fn revoking_a_viewer_releases_its_claims_at_once() {
    let s = TestServer::start().await;
    s.create_user("tech", "tech-password", "technician").await;
    let tech = s.login_token(None, "tech", "tech-password").await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "revoke-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &tech, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    let (status, body) = s
        .call(Method::POST, "/api/auth/logout", Some(&tech), None)
        .await;
    assert!(status < 300, "logout: {status} {body}");
    eventually(
        Duration::from_secs(1),
        "device released after the revoke",
        || !host.loopback.is_open(),
    )
    .await;
    let write = tokio::time::timeout(
        Duration::from_secs(3),
        dev.bulk_out(0x02, Bytes::from_static(b"late")),
    )
    .await
    .expect("an answer in time");
    assert!(
        matches!(write, Err(UsbError::Closed(_))),
        "the revoked technician sees the claim closed: {write:?}"
    );
}

#[tokio::test]
async fn a_second_connection_of_the_same_user_takes_the_claims_over_while_the_first_lingers() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "takeover-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (first, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");

    // The first connection is still joined (as when the server has not noticed a drop yet).
    let mut second = rejoin(&s, &s.admin_token, &session_id).await;
    tokio::time::timeout(WAIT, second.resume_usb(&client))
        .await
        .expect("resume in time")
        .expect("resumed over the second connection");
    dev.bulk_out(0x02, Bytes::from_static(b"moved"))
        .await
        .expect("writes");
    assert_eq!(read_echo(&dev, 5).await, b"moved");

    first.leave().await;
    let relay = std::sync::Arc::clone(&s.state.relay);
    eventually(WAIT, "the first connection left", || {
        relay.viewer_count(&session_id) == 1
    })
    .await;
    dev.bulk_out(0x02, Bytes::from_static(b"still"))
        .await
        .expect("the first leaving does not release the moved claim");
    assert_eq!(read_echo(&dev, 5).await, b"still");
    assert!(host.loopback.is_open());
}

#[tokio::test]
async fn ending_the_session_releases_a_dropped_viewers_waiting_claims_at_once() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "end-parked-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let _dev = client.open(DeviceFilter::default()).await.expect("open");
    drop(viewer);
    let relay = std::sync::Arc::clone(&s.state.relay);
    eventually(WAIT, "the server saw the drop", || {
        relay.viewer_count(&session_id) == 0
    })
    .await;
    assert!(host.loopback.is_open(), "the claim waits for a resume");

    let path = format!("/api/sessions/{session_id}");
    let (status, body) = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert!(status < 300, "end session: {status} {body}");
    eventually(
        Duration::from_secs(1),
        "device released after the session ended",
        || !host.loopback.is_open(),
    )
    .await;
}

#[tokio::test]
async fn a_viewer_that_joined_before_consent_can_resume_after_a_drop() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let body = serde_json::json!({"name": "attended-resume-1", "require_consent": true});
    let m = relay::create_machine(&s, body).await;
    let machine_id = m["id"].as_str().unwrap().to_owned();
    let (_, key) = relay::issue_key(&s, &machine_id).await;
    let (prompt, control) = reach_agent::consent::ScriptedPrompt::new();
    let prompt = std::sync::Arc::new(prompt);
    let mut config = relay::agent_config(&s, reach_agent::Credential::Key(key), prompt);
    config.usb = Some(options);
    let mut agent = reach_agent::spawn(config);
    relay::wait_connected(&mut agent).await;
    let mut events = std::mem::replace(&mut agent.events, tokio::sync::mpsc::channel(1).1);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;

    // Joined while consent is pending; the USB client starts once consent is given (frames sent
    // before it, its HELLO included, are dropped by the relay).
    let mut viewer = rejoin(&s, &s.admin_token, &session_id).await;
    control.answer(reach_agent::consent::ConsentAnswer::Yes);
    let granted = tokio::time::timeout(WAIT, async {
        use reach_proto::v1::{envelope::Body, session_event::Kind};
        loop {
            match viewer.recv().await {
                Some(reach_agent::ws::Incoming::Envelope(env)) => {
                    if let Some(Body::SessionEvent(e)) = env.body
                        && e.kind() == Kind::ConsentGranted
                    {
                        return;
                    }
                }
                other => panic!("no consent before {other:?}"),
            }
        }
    });
    granted.await.expect("consent in time");
    let client = viewer.usb_client().expect("USB channel");
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    drop(viewer);

    let mut again = rejoin(&s, &s.admin_token, &session_id).await;
    tokio::time::timeout(WAIT, again.resume_usb(&client))
        .await
        .expect("resume in time")
        .expect("resumed: the agent learnt the viewer's user when consent was given");
    dev.bulk_out(0x02, Bytes::from_static(b"kept"))
        .await
        .expect("writes");
    assert_eq!(read_echo(&dev, 4).await, b"kept");
    assert!(host.loopback.is_open());
    drop((agent, control));
}
