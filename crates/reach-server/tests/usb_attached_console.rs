//! A claim attached to a technician's own computer (`reach usb attach`, which sends a
//! `UsbAttachNote` over its viewer socket) is pushed to the tenant's consoles as a
//! `usb_attached` event, and the session names the technician and their host until it is
//! detached.

mod common;
#[path = "common/relay.rs"]
mod relay;
#[path = "common/usb.rs"]
mod usb;

use futures_util::{SinkExt as _, StreamExt as _};
use reach_agent::ws::{self, Ws};
use reach_proto::v1::{UsbAttachNote, envelope::Body};
use reach_usb::proto::DeviceFilter;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::TestServer;
use relay::{WAIT, session_as_admin};
use usb::*;

/// A console socket signed in as the admin, past its `ready`.
async fn console(s: &TestServer) -> Ws {
    let url = format!("{}/ws/console", s.url.replacen("http", "ws", 1));
    let mut ws = ws::connect_with_headers(&url, &[("origin", s.url.as_str())], 64 * 1024)
        .await
        .expect("console socket");
    let hello = json!({ "token": s.admin_token }).to_string();
    ws.send(Message::Text(hello.into()))
        .await
        .expect("token sent");
    assert_eq!(next_of(&mut ws, "ready").await["kind"], "ready");
    ws
}

/// The next console event of `kind` (others skipped).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a console event in time");
        if let Some(Ok(Message::Text(t))) = msg {
            let event: Value = serde_json::from_str(t.as_str()).expect("JSON event");
            if event["kind"] == kind {
                return event;
            }
        } else if !matches!(msg, Some(Ok(_))) {
            panic!("the console socket closed");
        }
    }
}

fn note(attached: bool, claim_id: u16) -> Body {
    Body::UsbAttachNote(UsbAttachNote {
        attached,
        claim_id: u32::from(claim_id),
        vendor_id: 0x0525,
        product_id: 0xa4a0,
        serial: "FAKE0001".into(),
        bus_id: "fake-1".into(),
        host_name: "tech-laptop".into(),
    })
}

#[tokio::test]
async fn an_attached_claim_reaches_the_console_live_and_the_session_names_technician_and_host() {
    let s = TestServer::start().await;
    let (_host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "attach-console", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let device = client.open(DeviceFilter::default()).await.expect("open");
    let mut console = console(&s).await;

    viewer
        .send(note(true, device.claim_id()))
        .await
        .expect("note sent");
    let event = next_of(&mut console, "usb_attached").await;
    assert_eq!(event["session_id"], session_id.as_str());
    let session = session_as_admin(&s, &session_id).await;
    let attached = &session["usb_attached"][0];
    assert_eq!(
        (
            &attached["host"],
            &attached["technician_name"],
            &attached["vendor_id"]
        ),
        (&json!("tech-laptop"), &json!("admin"), &json!("0525"))
    );

    viewer
        .send(note(false, device.claim_id()))
        .await
        .expect("note sent");
    next_of(&mut console, "usb_attached").await;
    let session = session_as_admin(&s, &session_id).await;
    assert_eq!(session["usb_attached"], json!([]));
}
