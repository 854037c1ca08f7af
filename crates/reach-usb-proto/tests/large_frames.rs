//! The `large_frames` HELLO capability (docs/usb-protocol.md): between two current peers a 16 KiB
//! transfer and its reply travel in one frame each; a peer without the capability keeps 16 KiB.

mod pair;

use std::time::Instant;

use bytes::Bytes;
use pair::{Pair, TIMEOUT, bulk_in, bulk_out, device};
use reach_usb_proto::client::{ClientEvent, ClientSession};
use reach_usb_proto::host::{HostAction, HostConfig, HostSession};
use reach_usb_proto::limits::{LARGE_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, MIN_WINDOW};
use reach_usb_proto::proto::control::{self, Hello, Opened};
use reach_usb_proto::proto::{DeviceFilter, Frame, Message, Op};

const KIB16: usize = 16 * 1024;

fn old_hello() -> Bytes {
    let hello = Hello {
        versions: vec![2],
        capabilities: vec!["multi_in_flight".into(), "streams".into(), "resume".into()],
        window: MIN_WINDOW,
        max_frame_payload: None,
    };
    Message::new(Op::Hello, 0, 0, control::to_body(&hello)).encode_frame(0)
}

#[test]
fn current_peers_move_a_16_kib_transfer_in_one_frame_each_way() {
    let mut p = Pair::new();
    let claim = p.open();
    let rin = p.submit(claim, &bulk_in(KIB16 as u32));
    let rout = p.submit(claim, &bulk_out(vec![1u8; KIB16]));
    p.settle();
    assert_eq!(p.take_done().len(), 2);
    let from_host: Vec<_> = p.from_host.iter().filter(|s| s.request_id == rin).collect();
    assert_eq!(from_host.len(), 1, "{from_host:?}");
    assert!(from_host[0].payload > MAX_FRAME_PAYLOAD);
    let from_client: Vec<_> = p
        .from_client
        .iter()
        .filter(|s| s.request_id == rout)
        .collect();
    assert_eq!(from_client.len(), 1, "{from_client:?}");
}

#[test]
fn current_peers_never_exceed_the_announced_frame_payload() {
    let mut p = Pair::new();
    let claim = p.open();
    p.submit(claim, &bulk_in(1024 * 1024));
    p.submit(claim, &bulk_out(vec![2u8; 1024 * 1024]));
    p.settle();
    assert_eq!(p.take_done().len(), 2);
    let all = p.from_host.iter().chain(&p.from_client);
    assert!(all.clone().all(|s| s.payload <= LARGE_FRAME_PAYLOAD));
    assert!(all.clone().any(|s| s.payload == LARGE_FRAME_PAYLOAD));
}

#[test]
fn a_host_answering_a_client_without_the_capability_keeps_16_kib_frames() {
    let now = Instant::now();
    let mut host = HostSession::new(HostConfig::enabled(), now);
    host.handle_message(now, old_hello());
    let open = Message::new(Op::Open, 0, 1, Bytes::from_static(b"{\"filter\":{}}"));
    host.handle_message(now, open.encode_frame(0));
    assert!(matches!(host.poll_action(), Some(HostAction::Open { .. })));
    host.handle_open_result(now, 1, Ok(device()));
    let request = bulk_in(KIB16 as u32).encode();
    host.handle_message(now, Message::new(Op::Bulk, 1, 2, request).encode_frame(0));
    let Some(HostAction::Submit { id, request, .. }) = host.poll_action() else {
        panic!("submit expected");
    };
    host.handle_transfer_complete(id, pair::answer(&request));
    let frames: Vec<Frame> = std::iter::from_fn(|| host.poll_transmit())
        .map(|f| Frame::decode(f).unwrap())
        .filter(|f| f.op == Op::Bulk)
        .collect();
    assert_eq!(frames.len(), 2);
    assert!(
        frames
            .iter()
            .all(|f| f.chunk.len() + 4 <= MAX_FRAME_PAYLOAD)
    );
}

#[test]
fn a_client_talking_to_a_host_without_the_capability_keeps_16_kib_frames() {
    let now = Instant::now();
    let mut client = ClientSession::new(now);
    let rid = client.open(now, DeviceFilter::default(), TIMEOUT);
    client.handle_message(now, old_hello());
    let opened = Opened {
        claim_id: 1,
        device: device(),
        resume_token: "00".repeat(32),
        retention_ms: 30_000,
        resumed: false,
        unknown: vec![],
        lost: vec![],
    };
    let opened = Message::new(Op::Opened, 1, rid, control::to_body(&opened));
    client.handle_message(now, opened.encode_frame(0));
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::Opened { result: Ok(_), .. })
    ));
    let out = client
        .submit(now, 1, &bulk_out(vec![3u8; KIB16]), TIMEOUT)
        .unwrap();
    let frames: Vec<Frame> = std::iter::from_fn(|| client.poll_transmit())
        .map(|f| Frame::decode(f).unwrap())
        .filter(|f| f.request_id == out)
        .collect();
    assert_eq!(frames.len(), 2);
    assert!(
        frames
            .iter()
            .all(|f| f.chunk.len() + 4 <= MAX_FRAME_PAYLOAD)
    );
}

#[test]
fn both_sides_announce_large_frames_in_hello() {
    let p = Pair::new();
    assert_eq!(p.from_client[0].op, Op::Hello);
    assert_eq!(p.from_host[0].op, Op::Hello);
    let mut host = HostSession::new(HostConfig::enabled(), Instant::now());
    let frame = Frame::decode(host.poll_transmit().unwrap()).unwrap();
    let hello: Hello = control::parse(&frame.chunk).unwrap();
    assert!(hello.capabilities.iter().any(|c| c == "large_frames"));
    assert_eq!(hello.max_frame_payload, Some(LARGE_FRAME_PAYLOAD as u32));
    let mut client = ClientSession::new(Instant::now());
    let frame = Frame::decode(client.poll_transmit().unwrap()).unwrap();
    let hello: Hello = control::parse(&frame.chunk).unwrap();
    assert_eq!(hello.frame_payload(), LARGE_FRAME_PAYLOAD);
}
