//! Every claim is bound to its viewer and session: a viewer leaving, the session ending or the
//! agent going away releases the device within a second, and one viewer can never reach another
//! viewer's claim.

mod common;
#[path = "common/relay.rs"]
mod relay;
#[path = "common/usb.rs"]
mod usb;

use std::time::Duration;

use bytes::Bytes;
use reach_usb::proto::control::{self, ErrorBody, Hello};
use reach_usb::proto::frame::{Frame, Message, Op};
use reach_usb::proto::{DeviceFilter, ErrorCode, TransferFlags, TransferKind, TransferRequest};
use reqwest::Method;

use common::TestServer;
use relay::session_as_admin;
use usb::*;

const RELEASED_WITHIN: Duration = Duration::from_secs(1);

async fn claimed(
    s: &TestServer,
    name: &str,
) -> (
    UsbHost,
    reach_agent::AgentHandle,
    String,
    reach_agent::viewer::LiveViewer,
    reach_usb::client::UsbClient,
) {
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, agent) = usb_agent(s, name, options).await;
    let session_id = open_usb_session(s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    assert!(host.loopback.is_open());
    drop(dev);
    (host, agent, session_id, viewer, client)
}

#[tokio::test]
async fn a_viewer_leaving_releases_its_claims_within_a_second() {
    let s = TestServer::start().await;
    let (host, _agent, _session, viewer, _client) = claimed(&s, "leave-1").await;
    viewer.leave().await;
    eventually(
        RELEASED_WITHIN,
        "device released after the viewer left",
        || !host.loopback.is_open(),
    )
    .await;
}

#[tokio::test]
async fn ending_the_session_releases_every_claim_within_a_second() {
    let s = TestServer::start().await;
    let (host, _agent, session_id, _viewer, _client) = claimed(&s, "end-1").await;
    let path = format!("/api/sessions/{session_id}");
    let (status, body) = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert!(status < 300, "end session: {status} {body}");
    eventually(
        RELEASED_WITHIN,
        "device released after the session ended",
        || !host.loopback.is_open(),
    )
    .await;
}

#[tokio::test]
async fn an_agent_going_away_releases_every_claim_within_a_second() {
    let s = TestServer::start().await;
    let (host, agent, _session, _viewer, _client) = claimed(&s, "kill-1").await;
    agent.abort();
    eventually(
        RELEASED_WITHIN,
        "device released after the agent stopped",
        || !host.loopback.is_open(),
    )
    .await;
}

#[tokio::test]
async fn the_server_closing_the_agents_connection_releases_every_claim() {
    let s = TestServer::start().await;
    let (host, _agent, session_id, _viewer, _client) = claimed(&s, "drop-1").await;
    let machine_id = session_as_admin(&s, &session_id).await["machine_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys_path = format!("/api/machines/{machine_id}/keys");
    let (_, keys) = s
        .call(Method::GET, &keys_path, Some(&s.admin_token), None)
        .await;
    let key_id = keys[0]["id"]
        .as_str()
        .or_else(|| keys["items"][0]["id"].as_str())
        .expect("a key")
        .to_owned();
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("{keys_path}/{key_id}"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert!(status < 300, "revoke: {status} {body}");
    eventually(
        RELEASED_WITHIN,
        "device released after the server closed the agent",
        || !host.loopback.is_open(),
    )
    .await;
}

/// Reads the viewer's raw USB channel until an ERROR arrives.
async fn next_error(rx: &mut tokio::sync::mpsc::Receiver<Bytes>) -> (u16, ErrorBody) {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an answer in time")
            .expect("channel open");
        let frame = Frame::decode(msg).expect("a frame");
        if frame.op == Op::Error {
            return (
                frame.claim,
                control::parse(&frame.chunk).expect("error body"),
            );
        }
    }
}

#[tokio::test]
async fn a_usb_frame_naming_another_viewers_claim_is_dropped() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "two-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer_a, client_a) = technician(&s, &s.admin_token, &session_id).await;
    let dev_a = client_a
        .open(DeviceFilter::default())
        .await
        .expect("A opens");
    assert!(host.loopback.is_open());

    let api = reach_agent::viewer::ApiClient::new(&s.url)
        .unwrap()
        .with_token(s.admin_token.clone());
    let mut raw_b = api.join(&session_id).await.expect("B joins").into_live();
    let mut chan = raw_b.take_usb_channel().expect("B's channel");
    let hello = Hello {
        versions: vec![2],
        capabilities: vec![],
        window: 32 << 20,
        max_frame_payload: None,
    };
    for f in Message::new(Op::Hello, 0, 0, control::to_body(&hello)).to_frames() {
        chan.tx.send(f).await.unwrap();
    }
    let intrusion = TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: TransferFlags::default(),
        timeout_ms: 0,
        length: 4,
        data: Bytes::from_static(b"evil"),
    };
    let claim_a = dev_a.claim_id();
    for f in Message::new(Op::Bulk, claim_a, 7, intrusion.encode()).to_frames() {
        chan.tx.send(f).await.unwrap();
    }
    let (claim, error) = next_error(&mut chan.rx).await;
    assert_eq!((claim, error.code), (claim_a, ErrorCode::UnknownClaim));

    // Nothing of B's reached A's device: A's echo returns exactly what A wrote.
    dev_a
        .bulk_out(0x02, Bytes::from_static(b"mine"))
        .await
        .expect("A writes");
    let echoed = dev_a.bulk_in(0x81, 64).await.expect("A reads");
    assert_eq!(&echoed[..], b"mine");
}

/// A write on a claim the host released: it fails as closed, long before the client's 10 s
/// request timeout.
async fn fails_as_closed(dev: &reach_usb::client::UsbHandle) {
    let write = tokio::time::timeout(
        Duration::from_secs(3),
        dev.bulk_out(0x02, Bytes::from_static(b"late")),
    )
    .await
    .expect("an answer before the request timeout");
    assert!(
        matches!(write, Err(reach_usb::UsbError::Closed(_))),
        "the claim is closed for the technician too: {write:?}"
    );
}

#[tokio::test]
async fn the_technician_sees_its_claims_closed_when_the_session_ends() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "end-told-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    let path = format!("/api/sessions/{session_id}");
    let (status, body) = s
        .call(Method::DELETE, &path, Some(&s.admin_token), None)
        .await;
    assert!(status < 300, "end session: {status} {body}");
    fails_as_closed(&dev).await;
    eventually(RELEASED_WITHIN, "device released", || {
        !host.loopback.is_open()
    })
    .await;
}

#[tokio::test]
async fn the_technician_sees_its_claims_closed_when_the_agent_goes_away() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, agent) = usb_agent(&s, "kill-told-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    agent.abort();
    fails_as_closed(&dev).await;
    eventually(RELEASED_WITHIN, "device released", || {
        !host.loopback.is_open()
    })
    .await;
}

#[tokio::test]
async fn leaving_closes_the_technicians_claims_too() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "leave-told-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    viewer.leave().await;
    fails_as_closed(&dev).await;
    eventually(RELEASED_WITHIN, "device released", || {
        !host.loopback.is_open()
    })
    .await;
}

#[tokio::test]
async fn the_technician_sees_its_claims_closed_when_the_host_switch_goes_off() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "switch-told-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");
    host.switch.set(false);
    eventually(RELEASED_WITHIN, "device released", || {
        !host.loopback.is_open()
    })
    .await;
    fails_as_closed(&dev).await;
}
