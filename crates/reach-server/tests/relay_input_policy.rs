//! View-only viewers' input never reaches the agent and USB is refused; a control viewer's
//! input does, throttled to 200 events/s.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::time::Instant;

use reach_proto::policy::ViewerAccess;
use reach_proto::v1::{self, envelope::Body};
use reqwest::Method;

use common::TestServer;
use relay::*;

fn usb(marker: u8) -> Body {
    Body::Usb(v1::UsbFrame {
        frame: bytes::Bytes::from(vec![marker; 4]),
    })
}

#[tokio::test]
async fn view_only_viewer_cannot_send_input_or_usb() {
    let s = TestServer::start().await;
    s.create_user("watcher", "watcher-password", "viewer").await;
    let watcher = s.login_token(None, "watcher", "watcher-password").await;
    let (machine_id, _, mut agent) = managed_agent(&s, "pos-3").await;
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let mut viewer = join(&s, &watcher, &session_id).await;
    assert_eq!(viewer.access, ViewerAccess::ViewOnly);

    viewer.send(key("KeyA")).await.unwrap();
    viewer.send(pointer(5)).await.unwrap();
    viewer
        .send(Body::Wheel(v1::WheelEvent {
            delta_x: 0,
            delta_y: 120,
        }))
        .await
        .unwrap();
    viewer
        .send(Body::SpecialKey(v1::SpecialKeyEvent {
            key: v1::special_key_event::Key::CtrlAltDel.into(),
        }))
        .await
        .unwrap();
    viewer
        .send(Body::Clipboard(v1::ClipboardText {
            text: "rm -rf /".into(),
        }))
        .await
        .unwrap();
    viewer
        .send(Body::ConsentResponse(v1::ConsentResponse {
            granted: true,
            ..Default::default()
        }))
        .await
        .unwrap();
    viewer.send(usb(1)).await.unwrap();
    let refused = viewer_media(&mut viewer).await;
    assert!(matches!(refused.body, Some(Body::Error(e)) if e.code == "usb_refused"));
    viewer
        .send(Body::KeyframeRequest(v1::KeyframeRequest {}))
        .await
        .unwrap();
    let first = agent_input(&mut agent).await;
    assert!(
        matches!(first.body, Some(Body::KeyframeRequest(_))),
        "nothing before the keyframe request reached the agent: {first:?}"
    );
    let (_, sessions) = s
        .call(Method::GET, "/api/sessions", Some(&watcher), None)
        .await;
    assert_eq!(sessions[0]["id"], session_id.as_str());
}

#[tokio::test]
async fn control_viewer_input_reaches_the_agent_throttled_to_200_per_second() {
    let s = TestServer::start().await;
    let (machine_id, mut agent) = managed_usb_agent(&s, true, true).await;
    let body = serde_json::json!({"machine_id": machine_id, "usb": true});
    let (status, session) = s
        .call(
            Method::POST,
            "/api/sessions",
            Some(&s.admin_token),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["id"].as_str().unwrap();
    let mut viewer = join(&s, &s.admin_token, session_id).await;
    let started = Instant::now();
    for i in 0..1000 {
        viewer.send(pointer(i)).await.unwrap();
    }
    viewer.send(usb(9)).await.unwrap();
    let mut pointers = 0u32;
    loop {
        match agent_input(&mut agent).await.body {
            Some(Body::Pointer(_)) => pointers += 1,
            Some(Body::Usb(u)) if u.frame[0] == 9 => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ceiling = 200.0 + 200.0 * elapsed + 1.0;
    assert!(pointers >= 200, "a full burst passes: {pointers}");
    assert!(
        f64::from(pointers) <= ceiling,
        "{pointers} pointer events in {elapsed:.3} s exceed 200/s"
    );
}
