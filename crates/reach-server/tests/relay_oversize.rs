//! Oversized and malformed frames close the offending socket only; other sessions go on.

mod common;
#[path = "common/relay.rs"]
mod relay;

use reach_proto::close;
use reach_proto::limits::{AGENT_MAX_MESSAGE, VIEWER_MAX_MESSAGE};
use reach_proto::v1::{self, envelope::Body};

use common::TestServer;
use relay::*;

fn big_frame(session_id: &str, len: usize) -> v1::Envelope {
    reach_proto::codec::envelope(
        session_id,
        Body::VideoFrame(v1::VideoFrame {
            bitstream: bytes::Bytes::from(vec![1u8; len]),
            sequence: 42,
            ..Default::default()
        }),
    )
}

/// 1008/1009 when the close frame arrives; 1006 when the server's close raced the rest of
/// the oversized frame still being written (the kernel then resets the connection).
fn is_size_close(code: u16) -> bool {
    code == close::POLICY || code == 1009 || code == 1006
}

#[tokio::test]
async fn oversize_frames_close_only_the_offending_socket() {
    let s = TestServer::start().await;
    let (m1, _, mut agent1) = managed_agent(&s, "one").await;
    let (m2, _, mut agent2) = managed_agent(&s, "two").await;
    let s1 = open_session(&s, &s.admin_token, &m1).await;
    let s2 = open_session(&s, &s.admin_token, &m2).await;
    let mut v1a = join(&s, &s.admin_token, &s1).await;
    let mut v2 = join(&s, &s.admin_token, &s2).await;

    // A 3 MiB frame is within the agent cap and reaches the viewer whole.
    agent1.send(big_frame(&s1, 3 * 1024 * 1024)).await.unwrap();
    let got = viewer_media(&mut v1a).await;
    assert!(matches!(got.body, Some(Body::VideoFrame(f)) if f.bitstream.len() == 3 * 1024 * 1024));

    // The server may reset the connection before the whole frame is written.
    let _ = v1a.send_raw(vec![0u8; VIEWER_MAX_MESSAGE + 1]).await;
    let (code, _) = viewer_closed(&mut v1a).await;
    assert!(is_size_close(code), "viewer closed with {code}");

    agent1
        .send(big_frame(&s1, AGENT_MAX_MESSAGE))
        .await
        .unwrap();
    // Closed with 1008/1009, or reset while still writing: either way only this socket.
    agent_disconnected(&mut agent1).await;

    v2.send(key("KeyK")).await.unwrap();
    assert!(matches!(agent_input(&mut agent2).await.body, Some(Body::Key(k)) if k.code == "KeyK"));
    agent2.send(frame(&s2, 5)).await.unwrap();
    assert!(
        matches!(viewer_media(&mut v2).await.body, Some(Body::VideoFrame(f)) if f.sequence == 5)
    );
}

#[tokio::test]
async fn malformed_viewer_messages_close_that_viewer_only() {
    let s = TestServer::start().await;
    let (m, _, mut agent) = managed_agent(&s, "garbage").await;
    let sid = open_session(&s, &s.admin_token, &m).await;
    let mut bad = join(&s, &s.admin_token, &sid).await;
    let mut good = join(&s, &s.admin_token, &sid).await;
    bad.send_raw(vec![0xff, 0xff, 0xff]).await.unwrap();
    assert_eq!(viewer_closed(&mut bad).await.0, close::POLICY);
    // An envelope without a known body is dropped, not fatal.
    good.send_raw(vec![]).await.unwrap();
    good.send(key("KeyG")).await.unwrap();
    assert!(matches!(agent_input(&mut agent).await.body, Some(Body::Key(k)) if k.code == "KeyG"));
}
