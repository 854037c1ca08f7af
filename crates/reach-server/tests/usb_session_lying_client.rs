//! The relay gate against a hand-written client that lies: USB frames sent before the person
//! at the machine consented never reach the agent (not even later); a user who loses the `usb`
//! permission is closed and the agent releases their claims at once; frames sent after the
//! host switch went off are refused by the relay and reach no device.

mod common;
#[path = "common/relay.rs"]
mod relay;
#[path = "common/usb.rs"]
mod usb;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reach_agent::viewer::{ApiClient, LiveViewer};
use reach_agent::ws::Incoming;
use reach_proto::v1::{self, envelope::Body};
use reach_usb::net::MessageChannel;
use reach_usb::proto::control::{self, ErrorBody, Hello};
use reach_usb::proto::frame::{Frame, Message, Op};
use reach_usb::proto::{DeviceFilter, ErrorCode, TransferFlags, TransferKind, TransferRequest};
use reqwest::Method;
use serde_json::json;

use common::TestServer;
use usb::*;

const WAIT: Duration = Duration::from_secs(10);

/// Joins as `token`'s user; the raw USB channel is the lying client's.
async fn raw_viewer(s: &TestServer, token: &str, session_id: &str) -> (LiveViewer, MessageChannel) {
    let api = ApiClient::new(&s.url).unwrap().with_token(token.to_owned());
    let mut viewer = api.join(session_id).await.expect("joins").into_live();
    let chan = viewer.take_usb_channel().expect("USB channel");
    (viewer, chan)
}

async fn send(chan: &MessageChannel, message: Message) {
    for frame in message.to_frames() {
        chan.tx.send(frame).await.expect("socket task alive");
    }
}

fn hello() -> Message {
    let hello = Hello {
        versions: vec![2],
        capabilities: vec![],
        window: 32 << 20,
        max_frame_payload: None,
    };
    Message::new(Op::Hello, 0, 0, control::to_body(&hello))
}

fn open_any() -> Message {
    let open = control::Open {
        filter: DeviceFilter::default(),
    };
    Message::new(Op::Open, 0, 1, control::to_body(&open))
}

/// The next session `Error` envelope the viewer gets (other messages skipped).
async fn next_session_error(viewer: &mut LiveViewer) -> v1::Error {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match viewer.recv().await {
                Some(Incoming::Envelope(env)) => {
                    if let Some(Body::Error(e)) = env.body {
                        return e;
                    }
                }
                other => panic!("no error before {other:?}"),
            }
        }
    });
    found.await.expect("an error in time")
}

/// Waits for the session event `kind` on the viewer.
async fn session_event(viewer: &mut LiveViewer, kind: v1::session_event::Kind) {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match viewer.recv().await {
                Some(Incoming::Envelope(env)) => {
                    if let Some(Body::SessionEvent(e)) = env.body
                        && e.kind() == kind
                    {
                        return;
                    }
                }
                other => panic!("no {kind:?} before {other:?}"),
            }
        }
    });
    found.await.expect("the event in time");
}

/// The next USB ERROR from the host session.
async fn next_usb_error(chan: &mut MessageChannel) -> ErrorBody {
    loop {
        let msg = tokio::time::timeout(WAIT, chan.rx.recv())
            .await
            .expect("an answer in time")
            .expect("channel open");
        let frame = Frame::decode(msg).expect("a frame");
        if frame.op == Op::Error {
            return control::parse(&frame.chunk).expect("error body");
        }
    }
}

#[tokio::test]
async fn usb_frames_sent_before_consent_never_reach_the_agent() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let body = json!({"name": "early-1", "require_consent": true});
    let m = relay::create_machine(&s, body).await;
    let machine_id = m["id"].as_str().unwrap().to_owned();
    let (_, key) = relay::issue_key(&s, &machine_id).await;
    let (prompt, control) = reach_agent::consent::ScriptedPrompt::new();
    let mut config = relay::agent_config(&s, reach_agent::Credential::Key(key), Arc::new(prompt));
    config.usb = Some(options);
    let mut agent = reach_agent::spawn(config);
    relay::wait_connected(&mut agent).await;
    let mut events = std::mem::replace(&mut agent.events, tokio::sync::mpsc::channel(1).1);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;

    let (mut viewer, mut chan) = raw_viewer(&s, &s.admin_token, &session_id).await;
    send(&chan, hello()).await;
    send(&chan, open_any()).await;
    let refused = next_session_error(&mut viewer).await;
    assert!(
        refused.code == "consent_pending" || refused.code == "usb_refused",
        "{refused:?}"
    );

    control.answer(reach_agent::consent::ConsentAnswer::Yes);
    session_event(&mut viewer, v1::session_event::Kind::ConsentGranted).await;
    assert!(!host.loopback.is_open(), "nothing opened before consent");
    // Had the early HELLO reached the agent, this LIST would be answered; the host session
    // sees it as its first message instead.
    send(
        &chan,
        Message::new(Op::List, 0, 2, Bytes::from_static(b"{}")),
    )
    .await;
    let error = next_usb_error(&mut chan).await;
    assert_eq!(error.code, ErrorCode::BadState, "{error:?}");
    assert!(error.message.contains("HELLO"), "{error:?}");
    assert!(!host.loopback.is_open());
    drop(agent);
}

#[tokio::test]
async fn a_user_losing_the_usb_permission_is_closed_and_their_claims_released_at_once() {
    let s = TestServer::start().await;
    let tech = s.create_user("tech", "tech-password", "technician").await;
    let token = s.login_token(None, "tech", "tech-password").await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "lose-usb-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (mut viewer, client) = technician(&s, &token, &session_id).await;
    let dev = client.open(DeviceFilter::default()).await.expect("open");

    s.sql("DELETE FROM role_permissions WHERE role = 'technician' AND permission = 'usb'")
        .await;
    let path = format!("/api/users/{}", tech["id"].as_str().unwrap());
    let (status, body) = s
        .call(
            Method::PATCH,
            &path,
            Some(&s.admin_token),
            Some(json!({"role": "technician"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match viewer.recv().await {
                Some(Incoming::Closed { code, .. }) => return code,
                Some(_) => {}
                None => return 0,
            }
        }
    });
    assert_eq!(
        closed.await.expect("closed in time"),
        reach_proto::close::REVOKED
    );
    eventually(
        Duration::from_secs(1),
        "device released after the usb permission was revoked",
        || !host.loopback.is_open(),
    )
    .await;
    drop(dev);
}

#[tokio::test]
async fn usb_frames_sent_after_the_host_switch_went_off_are_refused_by_the_relay() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "switch-lie-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (mut viewer, mut chan) = raw_viewer(&s, &s.admin_token, &session_id).await;
    send(&chan, hello()).await;
    send(&chan, open_any()).await;
    let opened = loop {
        let msg = tokio::time::timeout(WAIT, chan.rx.recv())
            .await
            .expect("OPENED in time")
            .expect("channel open");
        let frame = Frame::decode(msg).expect("a frame");
        if frame.op == Op::Opened {
            break frame.claim;
        }
    };
    assert!(host.loopback.is_open());

    host.switch.set(false);
    let closed = loop {
        let msg = tokio::time::timeout(WAIT, chan.rx.recv())
            .await
            .expect("CLOSED in time")
            .expect("channel open");
        let frame = Frame::decode(msg).expect("a frame");
        if frame.op == Op::Closed {
            break frame;
        }
    };
    assert_eq!(closed.claim, opened, "the viewer is told its claim closed");
    eventually(WAIT, "switching off releases the claim", || {
        !host.loopback.is_open()
    })
    .await;
    // The relay learns the switch from the agent's status; keep lying until it refuses.
    let write = TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: TransferFlags::default(),
        timeout_ms: 0,
        length: 4,
        data: Bytes::from_static(b"evil"),
    };
    let refused = tokio::time::timeout(WAIT, async {
        let mut rid = 10;
        loop {
            send(&chan, Message::new(Op::Bulk, opened, rid, write.encode())).await;
            rid += 1;
            if let Ok(Some(Incoming::Envelope(env))) =
                tokio::time::timeout(Duration::from_millis(50), viewer.recv()).await
                && let Some(Body::Error(e)) = env.body
            {
                return e;
            }
        }
    });
    let refused = refused.await.expect("refused in time");
    assert_eq!(refused.code, "usb_refused");
    assert!(!host.loopback.is_open(), "nothing reopened the device");
}
