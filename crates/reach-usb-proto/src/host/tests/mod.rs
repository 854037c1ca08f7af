//! Protocol conformance: the host session driven frame by frame in virtual time.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::proto::control::{Closed, ErrorBody, Opened, Resume};
use crate::proto::data::StreamStart;
use crate::proto::reassembly::reassemble_all;
use crate::proto::{TransferKind, TransferReply, TransferStatus};

struct Peer {
    host: HostSession,
    now: Instant,
}

fn hello_body(window: u32) -> Bytes {
    control::to_body(&Hello {
        versions: vec![PROTOCOL_VERSION],
        capabilities: vec![],
        window,
        max_frame_payload: None,
    })
}

fn device() -> DeviceInfo {
    control::tests::sample_device()
}

impl Peer {
    fn new() -> Self {
        Self::with_config(HostConfig::enabled())
    }

    fn with_config(config: HostConfig) -> Self {
        let now = Instant::now();
        let mut p = Self {
            host: HostSession::new(config, now),
            now,
        };
        p.send(Op::Hello, 0, 0, hello_body(MIN_WINDOW));
        let out = p.drain();
        assert_eq!(out[0].op, Op::Hello);
        p
    }

    fn send(&mut self, op: Op, claim: u16, rid: u32, body: impl Into<Bytes>) {
        for frame in Message::new(op, claim, rid, body).to_frames() {
            self.host.handle_message(self.now, frame);
        }
    }

    fn drain(&mut self) -> Vec<Message> {
        let mut wire = Vec::new();
        while let Some(f) = self.host.poll_transmit() {
            wire.push(f);
        }
        reassemble_all(wire)
            .into_iter()
            .map(|r| r.expect("host sends valid frames"))
            .collect()
    }

    fn actions(&mut self) -> Vec<HostAction> {
        std::iter::from_fn(|| self.host.poll_action()).collect()
    }

    fn open(&mut self) -> (u16, String) {
        self.open_with(1)
    }

    fn open_with(&mut self, rid: u32) -> (u16, String) {
        self.open_device(rid, device())
    }

    fn open_device(&mut self, rid: u32, device: DeviceInfo) -> (u16, String) {
        self.send(Op::Open, 0, rid, Bytes::from_static(b"{\"filter\":{}}"));
        let actions = self.actions();
        assert!(matches!(actions[..], [HostAction::Open { request_id, .. }] if request_id == rid));
        self.host.handle_open_result(self.now, rid, Ok(device));
        let out = self.drain();
        let opened: Opened = control::parse(&out[0].body).unwrap();
        (opened.claim_id, opened.resume_token)
    }

    fn bulk_in(&mut self, claim: u16, rid: u32, len: u32) -> TransferId {
        let req = TransferRequest {
            kind: TransferKind::Bulk(0x81),
            flags: Default::default(),
            timeout_ms: 0,
            length: len,
            data: Bytes::new(),
        };
        self.send(Op::Bulk, claim, rid, req.encode());
        match self.actions().pop() {
            Some(HostAction::Submit { id, .. }) => id,
            other => panic!("expected a submit, got {other:?}"),
        }
    }

    fn error_code(msg: &Message) -> ErrorCode {
        assert_eq!(msg.op, Op::Error, "expected ERROR, got {:?}", msg.op);
        control::parse::<ErrorBody>(&msg.body).unwrap().code
    }
}

fn reply_ok(data: &'static [u8]) -> TransferReply {
    TransferReply {
        status: TransferStatus::Ok,
        actual_length: data.len() as u32,
        data: Bytes::from_static(data),
    }
}

mod streams;

#[test]
fn messages_before_hello_get_bad_state_and_hello_still_works() {
    let mut host = HostSession::new(HostConfig::enabled(), Instant::now());
    let now = Instant::now();
    host.handle_message(
        now,
        Message::new(Op::List, 0, 1, Bytes::from_static(b"{}")).encode_frame(0),
    );
    host.handle_message(
        now,
        Message::new(Op::Hello, 0, 0, hello_body(MIN_WINDOW)).encode_frame(0),
    );
    host.handle_message(
        now,
        Message::new(Op::List, 0, 2, Bytes::from_static(b"{}")).encode_frame(0),
    );
    let out: Vec<Message> = reassemble_all(std::iter::from_fn(|| host.poll_transmit()))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(Peer::error_code(&out[1]), ErrorCode::BadState);
    assert_eq!(host.poll_action(), Some(HostAction::List { request_id: 2 }));
}

#[test]
fn a_peer_without_a_common_version_gets_version_mismatch() {
    let mut host = HostSession::new(HostConfig::enabled(), Instant::now());
    let body = control::to_body(&Hello {
        versions: vec![1],
        capabilities: vec![],
        window: MIN_WINDOW,
        max_frame_payload: None,
    });
    host.handle_message(
        Instant::now(),
        Message::new(Op::Hello, 0, 0, body).encode_frame(0),
    );
    let out: Vec<Message> = reassemble_all(std::iter::from_fn(|| host.poll_transmit()))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(Peer::error_code(&out[1]), ErrorCode::VersionMismatch);
}

#[test]
fn unknown_op_gets_an_error_and_the_session_survives() {
    let mut p = Peer::new();
    p.host
        .handle_message(p.now, Bytes::from_static(&[0x42, 1, 0, 0, 0, 0, 0, 9]));
    assert_eq!(Peer::error_code(&p.drain()[0]), ErrorCode::UnknownOp);
    p.send(Op::List, 0, 3, Bytes::from_static(b"{}"));
    assert_eq!(p.actions(), vec![HostAction::List { request_id: 3 }]);
}

#[test]
fn malformed_transfer_body_is_rejected_and_the_claim_keeps_working() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    p.send(Op::Bulk, claim, 10, Bytes::from_static(&[0x81, 0]));
    assert_eq!(Peer::error_code(&p.drain()[0]), ErrorCode::Malformed);
    assert!(p.actions().is_empty());
    p.bulk_in(claim, 11, 8);
}

#[test]
fn transfer_on_a_claim_from_elsewhere_is_dropped_with_unknown_claim() {
    let mut p = Peer::new();
    let req = TransferRequest {
        kind: TransferKind::Bulk(0x81),
        flags: Default::default(),
        timeout_ms: 0,
        length: 4,
        data: Bytes::new(),
    };
    p.send(Op::Bulk, 77, 1, req.encode());
    assert_eq!(Peer::error_code(&p.drain()[0]), ErrorCode::UnknownClaim);
    assert!(p.actions().is_empty());
}

#[test]
fn out_of_order_completions_are_matched_by_request_id() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    let a = p.bulk_in(claim, 10, 4);
    let b = p.bulk_in(claim, 11, 4);
    p.host.handle_transfer_complete(b, reply_ok(b"bbbb"));
    p.host.handle_transfer_complete(a, reply_ok(b"aaaa"));
    let out = p.drain();
    assert_eq!((out[0].request_id, &out[0].body[6..]), (11, &b"bbbb"[..]));
    assert_eq!((out[1].request_id, &out[1].body[6..]), (10, &b"aaaa"[..]));
}

#[test]
fn cancel_of_a_pending_interrupt_in_returns_cancelled() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    let req = TransferRequest {
        kind: TransferKind::Interrupt(0x81),
        flags: Default::default(),
        timeout_ms: 0,
        length: 8,
        data: Bytes::new(),
    };
    p.send(Op::Interrupt, claim, 5, req.encode());
    let Some(HostAction::Submit { id, .. }) = p.actions().pop() else {
        panic!("no submit")
    };
    p.send(Op::Cancel, claim, 5, Bytes::new());
    assert_eq!(p.actions(), vec![HostAction::Cancel { id }]);
    p.host
        .handle_transfer_complete(id, TransferReply::status(TransferStatus::Cancelled));
    let out = p.drain();
    assert_eq!((out[0].op, out[0].request_id), (Op::Interrupt, 5));
    assert_eq!(
        TransferReply::decode(out[0].body.clone()).unwrap().status,
        TransferStatus::Cancelled
    );
}

#[test]
fn replayed_request_id_is_refused_and_not_executed() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    p.bulk_in(claim, 10, 4);
    let req = TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: Default::default(),
        timeout_ms: 0,
        length: 3,
        data: Bytes::from_static(b"abc"),
    };
    p.send(Op::Bulk, claim, 10, req.encode());
    assert_eq!(Peer::error_code(&p.drain()[0]), ErrorCode::ReplayedRequest);
    assert!(p.actions().is_empty());
}

#[test]
fn fragmented_bulk_out_is_reassembled_across_interleaved_requests() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    let big = TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: Default::default(),
        timeout_ms: 0,
        length: 40_000,
        data: Bytes::from(vec![9u8; 40_000]),
    };
    let small = TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: Default::default(),
        timeout_ms: 0,
        length: 2,
        data: Bytes::from_static(b"hi"),
    };
    let big_frames = Message::new(Op::Bulk, claim, 20, big.encode()).to_frames();
    p.host.handle_message(p.now, big_frames[0].clone());
    p.host.handle_message(
        p.now,
        Message::new(Op::Bulk, claim, 21, small.encode()).encode_frame(0),
    );
    for f in &big_frames[1..] {
        p.host.handle_message(p.now, f.clone());
    }
    let submitted: Vec<(usize, usize)> = p
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            HostAction::Submit { request, .. } => {
                Some((request.length as usize, request.data.len()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(submitted, vec![(2, 2), (40_000, 40_000)]);
}

#[test]
fn oversize_reassembly_gets_too_large_and_closes_only_that_claim() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    let chunk = Bytes::from(vec![0u8; crate::limits::MAX_CHUNK]);
    let frames = crate::limits::MAX_MESSAGE / crate::limits::MAX_CHUNK + 1;
    // Grant enough credit by completing nothing: the window (1 MiB here) runs out first, so
    // use a bigger window for this claim by raising credit artificially through the receive side.
    p.host.claims.get_mut(&claim).unwrap().recv = crate::proto::flow::RecvWindow::new(u32::MAX);
    for _ in 0..frames {
        let f = Frame {
            op: Op::Bulk,
            eof: false,
            claim,
            request_id: 30,
            chunk: chunk.clone(),
        };
        p.host.handle_message(p.now, f.encode());
    }
    let out = p.drain();
    assert_eq!(Peer::error_code(&out[0]), ErrorCode::TooLarge);
    assert_eq!(out.last().unwrap().op, Op::Closed);
    assert!(p.actions().contains(&HostAction::Release { claim }));
    p.send(Op::List, 0, 99, Bytes::from_static(b"{}"));
    assert_eq!(p.actions(), vec![HostAction::List { request_id: 99 }]);
}

#[test]
fn sending_beyond_credit_gets_credit_exhausted() {
    let mut p = Peer::with_config(HostConfig {
        window: MIN_WINDOW,
        ..HostConfig::enabled()
    });
    let (claim, _) = p.open();
    let window = MIN_WINDOW as usize;
    let req = TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: Default::default(),
        timeout_ms: 0,
        length: window as u32,
        data: Bytes::from(vec![1u8; window]),
    };
    p.send(Op::Bulk, claim, 40, req.encode());
    let out = p.drain();
    assert_eq!(Peer::error_code(&out[0]), ErrorCode::CreditExhausted);
    assert_eq!(
        control::parse::<Closed>(&out.last().unwrap().body)
            .unwrap()
            .reason,
        ClosedReason::ProtocolError
    );
}

#[test]
fn configuration_ops_cancel_affected_transfers_and_reply_with_a_status() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    let id = p.bulk_in(claim, 10, 4);
    p.send(Op::ClearHalt, claim, 11, Bytes::from_static(&[0x81]));
    let actions = p.actions();
    assert_eq!(actions[0], HostAction::Cancel { id });
    let HostAction::Configure {
        id: cid,
        op: ConfigOp::ClearHalt(0x81),
        ..
    } = actions[1]
    else {
        panic!("{actions:?}")
    };
    p.host.handle_configure_complete(cid, TransferStatus::Ok);
    let out = p.drain();
    assert_eq!((out[0].op, &out[0].body[..]), (Op::ClearHalt, &[0u8][..]));
}

#[test]
fn streams_queue_transfers_and_resubmit_on_completion() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    let start = StreamStart {
        endpoint: 0x81,
        depth: 3,
        transfer_size: 8,
    };
    p.send(Op::StreamStart, claim, 50, start.encode());
    let submits: Vec<TransferId> = p
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            HostAction::Submit { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(submits.len(), 3);
    p.host
        .handle_transfer_complete(submits[0], reply_ok(b"key"));
    assert_eq!(p.actions().len(), 1, "one transfer resubmitted");
    let out = p.drain();
    assert_eq!((out[0].op, &out[0].body[..]), (Op::StreamStart, &[0u8][..]));
    let data = crate::proto::data::StreamData::decode(out[1].body.clone()).unwrap();
    assert_eq!((data.seq, &data.data[..]), (0, &b"key"[..]));
}

fn detach_and_restore(p: &mut Peer, after: Duration) {
    p.host.handle_transport_lost(p.now);
    p.now += after;
    p.host.handle_transport_restored(p.now);
    p.send(Op::Hello, 0, 0, hello_body(MIN_WINDOW));
}

#[test]
fn resume_within_the_window_replays_each_completion_once_and_never_reexecutes() {
    let mut p = Peer::new();
    let (claim, token) = p.open();
    let out_req = TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: Default::default(),
        timeout_ms: 0,
        length: 3,
        data: Bytes::from_static(b"abc"),
    };
    p.send(Op::Bulk, claim, 10, out_req.encode());
    let Some(HostAction::Submit { id, .. }) = p.actions().pop() else {
        panic!()
    };
    detach_and_restore(&mut p, Duration::from_secs(5));
    p.host.handle_transfer_complete(
        id,
        TransferReply {
            status: TransferStatus::Ok,
            actual_length: 3,
            data: Bytes::new(),
        },
    );
    let resume = Resume {
        token: token.clone(),
        pending: vec![10, 11],
    };
    p.send(Op::Resume, claim, 0, control::to_body(&resume));
    let out = p.drain();
    let opened: Opened =
        control::parse(&out.iter().find(|m| m.op == Op::Opened).unwrap().body).unwrap();
    assert_eq!(
        (opened.claim_id, opened.resumed, opened.unknown.clone()),
        (claim, true, vec![11])
    );
    assert_ne!(opened.resume_token, token, "token rotates on use");
    assert_eq!(
        out.iter()
            .filter(|m| m.op == Op::Bulk && m.request_id == 10)
            .count(),
        1
    );
    p.send(Op::Bulk, claim, 10, out_req.encode());
    assert_eq!(Peer::error_code(&p.drain()[0]), ErrorCode::ReplayedRequest);
    assert!(p.actions().is_empty(), "bulk OUT not executed twice");
}

#[test]
fn a_resume_token_succeeds_once_among_fifty_attempts() {
    let mut p = Peer::new();
    let (claim, token) = p.open();
    detach_and_restore(&mut p, Duration::from_secs(1));
    for _ in 0..50 {
        p.send(
            Op::Resume,
            claim,
            0,
            control::to_body(&Resume {
                token: token.clone(),
                pending: vec![],
            }),
        );
    }
    let out = p.drain();
    assert_eq!(out.iter().filter(|m| m.op == Op::Opened).count(), 1);
    assert_eq!(out.iter().filter(|m| m.op == Op::Error).count(), 49);
}

#[test]
fn wrong_token_is_rejected_and_the_claim_stays_resumable() {
    let mut p = Peer::new();
    let (claim, token) = p.open();
    detach_and_restore(&mut p, Duration::from_secs(1));
    p.send(
        Op::Resume,
        claim,
        0,
        control::to_body(&Resume {
            token: "00".repeat(32),
            pending: vec![],
        }),
    );
    assert_eq!(Peer::error_code(&p.drain()[1]), ErrorCode::ResumeRejected);
    p.send(
        Op::Resume,
        claim,
        0,
        control::to_body(&Resume {
            token,
            pending: vec![],
        }),
    );
    assert_eq!(p.drain()[0].op, Op::Opened);
}

#[test]
fn after_the_retention_window_the_claim_closes_and_the_device_is_released() {
    let mut p = Peer::new();
    let (claim, token) = p.open();
    let id = p.bulk_in(claim, 10, 4);
    p.host.handle_transport_lost(p.now);
    assert_eq!(p.host.poll_timeout(), Some(p.now + DEFAULT_RETENTION));
    p.now += DEFAULT_RETENTION;
    p.host.handle_timeout(p.now);
    let actions = p.actions();
    assert!(actions.contains(&HostAction::Cancel { id }));
    assert!(actions.contains(&HostAction::Release { claim }));
    assert!(p.host.claim_ids().is_empty());
    p.host.handle_transport_restored(p.now);
    p.send(Op::Hello, 0, 0, hello_body(MIN_WINDOW));
    p.send(
        Op::Resume,
        claim,
        0,
        control::to_body(&Resume {
            token,
            pending: vec![10],
        }),
    );
    assert_eq!(Peer::error_code(&p.drain()[1]), ErrorCode::ResumeRejected);
}

#[test]
fn unplug_fails_pending_transfers_with_no_device_then_closes_unplugged() {
    let mut p = Peer::new();
    let (claim, _) = p.open();
    p.bulk_in(claim, 10, 4);
    p.host.handle_unplugged(claim);
    let out = p.drain();
    assert_eq!(
        TransferReply::decode(out[0].body.clone()).unwrap().status,
        TransferStatus::NoDevice
    );
    assert_eq!(
        control::parse::<Closed>(&out[1].body).unwrap().reason,
        ClosedReason::Unplugged
    );
}

#[test]
fn open_refusals_map_to_the_spec_messages() {
    let mut p = Peer::new();
    p.send(Op::Open, 0, 1, Bytes::from_static(b"{\"filter\":{}}"));
    p.host
        .handle_open_result(p.now, 1, Err(OpenRefusal::Denied));
    let out = p.drain();
    let body: ErrorBody = control::parse(&out[0].body).unwrap();
    assert_eq!(
        (body.code, body.message.as_str()),
        (ErrorCode::Denied, "denied by ACL policy")
    );
}

#[test]
fn a_small_reply_on_one_claim_does_not_wait_behind_bulk_on_another() {
    let mut p = Peer::new();
    let (bulk_claim, _) = p.open_with(1);
    let (hid_claim, _) = p.open_with(2);
    let big = p.bulk_in(bulk_claim, 10, 1 << 20);
    let small = p.bulk_in(hid_claim, 11, 8);
    let big_reply = TransferReply {
        status: TransferStatus::Ok,
        actual_length: 1 << 20,
        data: Bytes::from(vec![0u8; 1 << 20]),
    };
    p.host.handle_transfer_complete(big, big_reply);
    p.host
        .handle_transfer_complete(small, reply_ok(b"keypress"));
    let frames: Vec<Frame> = std::iter::from_fn(|| p.host.poll_transmit())
        .map(|f| Frame::decode(f).unwrap())
        .collect();
    let position = frames.iter().position(|f| f.claim == hid_claim).unwrap();
    assert!(
        position <= 2,
        "small reply went out as frame {position} of {}",
        frames.len()
    );
    assert!(frames.len() > 60);
}

#[test]
fn with_passthrough_off_list_and_open_are_refused_and_the_session_survives() {
    let mut p = Peer::with_config(HostConfig::default());
    p.send(Op::List, 0, 1, Bytes::from_static(b"{}"));
    p.send(Op::Open, 0, 2, Bytes::from_static(b"{\"filter\":{}}"));
    assert_eq!(p.actions(), vec![], "nothing is listed or opened");
    let out = p.drain();
    assert_eq!(out.len(), 2);
    for (msg, rid) in out.iter().zip([1, 2]) {
        assert_eq!(msg.request_id, rid);
        let body: ErrorBody = control::parse(&msg.body).unwrap();
        assert_eq!(
            (body.code, body.message.as_str()),
            (ErrorCode::Denied, PASSTHROUGH_DISABLED)
        );
    }
    let events: Vec<HostEvent> = std::iter::from_fn(|| p.host.poll_event()).collect();
    assert_eq!(
        events.len(),
        2,
        "each refusal is recorded for the audit log"
    );
    assert!(events.iter().all(|e| matches!(
        e,
        HostEvent::Error { code: ErrorCode::Denied, message, .. } if message == PASSTHROUGH_DISABLED
    )));
    // Still serving: a later request gets its own answer.
    p.send(Op::List, 0, 3, Bytes::from_static(b"{}"));
    assert_eq!(Peer::error_code(&p.drain()[0]), ErrorCode::Denied);
    assert!(p.host.claim_ids().is_empty());
}

#[test]
fn host_config_is_deny_by_default() {
    assert!(!HostConfig::default().passthrough);
    assert!(HostConfig::enabled().passthrough);
}
