//! USB does not wait behind video at the server: frames already queued for a viewer that is
//! behind are overtaken by a USB frame (video keeps its own order).

mod common;
#[path = "common/relay.rs"]
mod relay;

use bytes::Bytes;
use reach_proto::codec;
use reach_proto::v1::{self, envelope::Body};

use common::TestServer;
use relay::*;

/// Video frames queued before the USB frame (28 × 256 KiB = 7 MiB: more than the kernel
/// buffers of a viewer that does not read, less than the viewer's 8 MiB video budget).
const FRAMES: u64 = 28;
const FRAME_BYTES: usize = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usb_frame_overtakes_video_already_queued_for_a_slow_viewer() {
    let s = TestServer::start().await;
    let (machine_id, agent) = managed_usb_agent(&s, true, true).await;
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;

    let bitstream = Bytes::from(vec![0x42; FRAME_BYTES]);
    for sequence in 1..=FRAMES {
        let body = Body::VideoFrame(v1::VideoFrame {
            codec: v1::VideoCodec::H264.into(),
            keyframe: sequence == 1,
            bitstream: bitstream.clone(),
            sequence,
            ..Default::default()
        });
        agent
            .send(codec::envelope(&session_id, body))
            .await
            .unwrap();
    }
    let usb = Body::Usb(v1::UsbFrame {
        frame: Bytes::from_static(b"usb"),
    });
    agent.send(codec::envelope(&session_id, usb)).await.unwrap();
    // The agent's socket is handled in order: once this status has been applied, every frame
    // above has been queued for the viewer.
    let status = Body::AgentStatus(v1::AgentStatus {
        usb_enabled: false,
        capabilities: Some(v1::Capabilities {
            supports_usb: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    agent.send(codec::envelope("", status)).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while s
            .state
            .relay
            .agent_usb(&machine_id)
            .is_some_and(|u| u.enabled)
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the agent's status is applied");

    let mut video_before_usb = 0;
    let mut last_sequence = 0;
    let mut usb_seen = false;
    let mut video_after_usb = 0;
    while last_sequence < FRAMES {
        match viewer_media(&mut viewer).await.body {
            Some(Body::VideoFrame(f)) => {
                assert!(f.sequence > last_sequence, "video stays in order");
                last_sequence = f.sequence;
                if usb_seen {
                    video_after_usb += 1;
                } else {
                    video_before_usb += 1;
                }
            }
            Some(Body::Usb(_)) => usb_seen = true,
            _ => {}
        }
    }
    assert!(usb_seen, "the USB frame arrived");
    assert!(
        video_after_usb > 0,
        "the USB frame overtook queued video ({video_before_usb} video frames before it)"
    );
}
