use bytes::Bytes;
use reach_usb::proto::{ConfigOp, Setup, TransferFlags, TransferKind, TransferStatus};

use super::*;
use crate::request::{EndpointKind, EndpointTable, SubmitKind};
use crate::wire::{CmdSubmit, CmdUnlink, Direction, Reply, URB_ZERO_PACKET, decode_reply};

const DEVID: u32 = 0x0001_0002;

fn translator() -> Translator {
    let table = EndpointTable::default()
        .with(0x81, EndpointKind::Bulk)
        .with(0x02, EndpointKind::Bulk)
        .with(0x83, EndpointKind::Interrupt)
        .with(0x84, EndpointKind::Isochronous);
    Translator::new(table)
}

fn submit(seqnum: u32, ep: u8, direction: Direction, length: u32, data: &[u8]) -> Bytes {
    CmdSubmit {
        seqnum,
        devid: DEVID,
        direction,
        ep,
        transfer_flags: 0,
        buffer_length: length,
        interval: 0,
        setup: [0; 8],
        data: Bytes::copy_from_slice(data),
    }
    .encode()
}

fn control(seqnum: u32, direction: Direction, setup: [u8; 8], data: &[u8]) -> Bytes {
    let length = u32::from(u16::from_le_bytes([setup[6], setup[7]]));
    CmdSubmit {
        seqnum,
        devid: DEVID,
        direction,
        ep: 0,
        transfer_flags: 0,
        buffer_length: length,
        interval: 0,
        setup,
        data: Bytes::copy_from_slice(data),
    }
    .encode()
}

fn unlink(seqnum: u32, target: u32) -> Bytes {
    CmdUnlink {
        seqnum,
        devid: DEVID,
        unlink_seqnum: target,
    }
    .encode()
}

fn ok(data: &[u8]) -> Completion {
    Completion {
        status: TransferStatus::Ok,
        actual_length: data.len() as u32,
        data: Bytes::copy_from_slice(data),
    }
}

/// Every reply the translator wrote, decoded (`in_seqnums` are the IN URBs).
fn replies(t: &mut Translator, in_seqnums: &[u32]) -> Vec<Reply> {
    let mut all = Vec::new();
    while let Some(b) = t.poll_transmit() {
        all.extend_from_slice(&b);
    }
    let mut out = Vec::new();
    let mut rest = &all[..];
    while let Some((reply, used)) = decode_reply(rest, |s| in_seqnums.contains(&s)).unwrap() {
        out.push(reply);
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "trailing bytes");
    out
}

fn ret(seqnum: u32, status: i32, actual_length: u32, data: &[u8]) -> Reply {
    Reply::Submit(RetSubmit {
        seqnum,
        status,
        actual_length,
        data: Bytes::copy_from_slice(data),
    })
}

#[test]
fn a_control_in_becomes_a_reach_control_request_and_its_reply_a_ret_submit() {
    let mut t = translator();
    t.handle_input(&control(
        1,
        Direction::In,
        [0x80, 6, 0, 1, 0, 0, 18, 0],
        &[],
    ))
    .unwrap();
    let Some(Event::Submit(s)) = t.poll_event() else {
        panic!("no submit")
    };
    let setup = Setup::get_device_descriptor();
    assert_eq!((s.seqnum, s.kind), (1, SubmitKind::Control(setup)));
    let req = s.to_request();
    assert_eq!((req.kind, req.length), (TransferKind::Control(setup), 18));
    let desc = [
        0x12, 1, 0, 2, 0xef, 2, 1, 64, 0x6b, 0x1d, 4, 1, 0, 1, 1, 2, 3, 1,
    ];
    assert!(t.handle_completion(1, ok(&desc)));
    assert_eq!(replies(&mut t, &[1]), vec![ret(1, 0, 18, &desc)]);
    assert!(t.pending().is_empty());
}

#[test]
fn bulk_and_interrupt_urbs_use_the_endpoint_table() {
    let mut t = translator();
    let mut bytes = submit(1, 2, Direction::Out, 3, b"abc").to_vec();
    bytes.extend_from_slice(&submit(2, 1, Direction::In, 512, &[]));
    bytes.extend_from_slice(&submit(3, 3, Direction::In, 8, &[]));
    t.handle_input(&bytes).unwrap();
    let kinds: Vec<_> = std::iter::from_fn(|| t.poll_event())
        .map(|e| match e {
            Event::Submit(s) => s.to_request().kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            TransferKind::Bulk(0x02),
            TransferKind::Bulk(0x81),
            TransferKind::Interrupt(0x83)
        ]
    );
}

#[test]
fn completions_on_different_endpoints_are_answered_as_they_come() {
    let mut t = translator();
    t.handle_input(&submit(1, 1, Direction::In, 4, &[]))
        .unwrap();
    t.handle_input(&submit(2, 3, Direction::In, 8, &[]))
        .unwrap();
    t.handle_input(&submit(3, 2, Direction::Out, 1, b"x"))
        .unwrap();
    assert!(t.handle_completion(3, ok(b"")));
    assert!(t.handle_completion(2, Completion::status(TransferStatus::Stall)));
    assert!(t.handle_completion(1, ok(b"1")));
    assert_eq!(
        replies(&mut t, &[1, 2]),
        vec![ret(3, 0, 0, b""), ret(2, -32, 0, b""), ret(1, 0, 1, b"1")]
    );
    assert!(
        !t.handle_completion(2, ok(b"")),
        "a second completion is ignored"
    );
}

#[test]
fn completions_on_one_endpoint_are_answered_in_submission_order() {
    let mut t = translator();
    for seq in 1..=3 {
        t.handle_input(&submit(seq, 1, Direction::In, 4, &[]))
            .unwrap();
    }
    assert!(t.handle_completion(3, ok(b"3333")));
    assert!(t.handle_completion(2, ok(b"22")));
    assert_eq!(replies(&mut t, &[1, 2, 3]), vec![], "held until 1 is done");
    assert!(
        t.is_pending(3),
        "a held completion is still pending for vhci"
    );
    assert!(
        !t.handle_completion(3, ok(b"")),
        "a second completion is ignored"
    );
    assert!(t.handle_completion(1, ok(b"1")));
    assert_eq!(
        replies(&mut t, &[1, 2, 3]),
        vec![
            ret(1, 0, 1, b"1"),
            ret(2, 0, 2, b"22"),
            ret(3, 0, 4, b"3333")
        ]
    );
    assert!(t.pending().is_empty());
}

#[test]
fn an_unlink_before_completion_cancels_and_answers_only_ret_unlink_econnreset() {
    let mut t = translator();
    t.handle_input(&submit(5, 1, Direction::In, 64, &[]))
        .unwrap();
    t.handle_input(&unlink(6, 5)).unwrap();
    assert!(matches!(t.poll_event(), Some(Event::Submit(_))));
    assert_eq!(t.poll_event(), Some(Event::Cancel { seqnum: 5 }));
    // Even if the device finished first, vhci must not get a RET_SUBMIT for an unlinked URB.
    assert!(t.handle_completion(5, ok(b"late")));
    let expected = Reply::Unlink(RetUnlink {
        seqnum: 6,
        status: -104,
    });
    assert_eq!(replies(&mut t, &[5]), vec![expected]);
}

#[test]
fn an_unlink_after_completion_answers_ret_unlink_zero_and_cancels_nothing() {
    let mut t = translator();
    t.handle_input(&submit(5, 1, Direction::In, 64, &[]))
        .unwrap();
    let _ = t.poll_event();
    assert!(t.handle_completion(5, ok(b"data")));
    t.handle_input(&unlink(6, 5)).unwrap();
    assert_eq!(t.poll_event(), None);
    let unlinked = Reply::Unlink(RetUnlink {
        seqnum: 6,
        status: 0,
    });
    assert_eq!(replies(&mut t, &[5]), vec![ret(5, 0, 4, b"data"), unlinked]);
}

#[test]
fn a_second_unlink_of_the_same_urb_is_answered_zero() {
    let mut t = translator();
    t.handle_input(&submit(5, 1, Direction::In, 64, &[]))
        .unwrap();
    t.handle_input(&unlink(6, 5)).unwrap();
    t.handle_input(&unlink(7, 5)).unwrap();
    assert!(t.handle_completion(5, Completion::status(TransferStatus::Cancelled)));
    let r = replies(&mut t, &[5]);
    assert_eq!(
        r,
        vec![
            Reply::Unlink(RetUnlink {
                seqnum: 7,
                status: 0
            }),
            Reply::Unlink(RetUnlink {
                seqnum: 6,
                status: -104
            })
        ]
    );
}

#[test]
fn state_changing_requests_become_reach_configuration_operations() {
    let mut t = translator();
    let cases: [([u8; 8], ConfigOp); 3] = [
        ([0x00, 9, 1, 0, 0, 0, 0, 0], ConfigOp::SetConfiguration(1)),
        ([0x01, 11, 2, 0, 3, 0, 0, 0], ConfigOp::SetInterface(3, 2)),
        ([0x02, 1, 0, 0, 0x81, 0, 0, 0], ConfigOp::ClearHalt(0x81)),
    ];
    for (i, (setup, op)) in cases.into_iter().enumerate() {
        let seq = i as u32 + 1;
        t.handle_input(&control(seq, Direction::Out, setup, &[]))
            .unwrap();
        assert_eq!(t.poll_event(), Some(Event::Configure { seqnum: seq, op }));
    }
    assert!(t.handle_completion(1, Completion::status(TransferStatus::Ok)));
    assert!(t.handle_completion(2, Completion::status(TransferStatus::Stall)));
    assert_eq!(
        replies(&mut t, &[]),
        vec![ret(1, 0, 0, b""), ret(2, -32, 0, b"")]
    );
}

#[test]
fn other_standard_requests_stay_control_transfers() {
    let mut t = translator();
    // CLEAR_FEATURE(DEVICE_REMOTE_WAKEUP) and SET_LINE_CODING (class, interface) with data.
    t.handle_input(&control(
        1,
        Direction::Out,
        [0x00, 1, 1, 0, 0, 0, 0, 0],
        &[],
    ))
    .unwrap();
    let coding = [0x00, 0xc2, 0x01, 0x00, 0, 0, 8];
    t.handle_input(&control(
        2,
        Direction::Out,
        [0x21, 0x20, 0, 0, 0, 0, 7, 0],
        &coding,
    ))
    .unwrap();
    let Some(Event::Submit(a)) = t.poll_event() else {
        panic!()
    };
    let Some(Event::Submit(b)) = t.poll_event() else {
        panic!()
    };
    assert!(matches!(a.kind, SubmitKind::Control(s) if s.request == 1 && s.value == 1));
    assert_eq!(&b.to_request().data[..], &coding);
}

#[test]
fn short_not_ok_turns_a_short_in_into_eremoteio_keeping_the_data() {
    let mut t = translator();
    let mut cmd = submit(1, 1, Direction::In, 8, &[]).to_vec();
    cmd[20..24].copy_from_slice(&URB_SHORT_NOT_OK.to_be_bytes());
    t.handle_input(&cmd).unwrap();
    let Some(Event::Submit(s)) = t.poll_event() else {
        panic!()
    };
    assert_eq!(
        s.to_request().flags,
        TransferFlags::default(),
        "not forwarded"
    );
    assert!(t.handle_completion(1, ok(b"abc")));
    assert_eq!(replies(&mut t, &[1]), vec![ret(1, -121, 3, b"abc")]);
}

#[test]
fn zero_packet_is_forwarded_on_out() {
    let mut t = translator();
    let mut cmd = submit(1, 2, Direction::Out, 2, b"hi").to_vec();
    cmd[20..24].copy_from_slice(&URB_ZERO_PACKET.to_be_bytes());
    t.handle_input(&cmd).unwrap();
    let Some(Event::Submit(s)) = t.poll_event() else {
        panic!()
    };
    assert!(s.to_request().flags.zero_packet());
    assert!(t.handle_completion(1, ok(b"")));
    // OUT: actual_length from the completion, capped at what was sent; no data bytes.
    let mut c = Completion::status(TransferStatus::Ok);
    c.actual_length = 99;
    t.handle_input(&submit(2, 2, Direction::Out, 2, b"hi"))
        .unwrap();
    assert!(t.handle_completion(2, c));
    assert_eq!(
        replies(&mut t, &[]),
        vec![ret(1, 0, 0, b""), ret(2, 0, 2, b"")]
    );
}

#[test]
fn an_in_reply_longer_than_the_urb_buffer_is_an_overflow_without_data() {
    let mut t = translator();
    t.handle_input(&submit(1, 1, Direction::In, 2, &[]))
        .unwrap();
    assert!(t.handle_completion(1, ok(b"too long")));
    assert_eq!(replies(&mut t, &[1]), vec![ret(1, -75, 0, b"")]);
}

#[test]
fn unknown_and_isochronous_endpoints_are_refused_at_once() {
    let mut t = translator();
    t.handle_input(&submit(1, 5, Direction::In, 8, &[]))
        .unwrap();
    t.handle_input(&submit(2, 4, Direction::In, 8, &[]))
        .unwrap();
    assert_eq!(t.poll_event(), None);
    assert_eq!(
        replies(&mut t, &[]),
        vec![ret(1, -22, 0, b""), ret(2, -22, 0, b"")]
    );
    assert!(t.pending().is_empty());
}

#[test]
fn a_control_out_whose_data_does_not_match_wlength_is_refused() {
    let mut t = translator();
    let bytes = CmdSubmit {
        seqnum: 1,
        devid: DEVID,
        direction: Direction::Out,
        ep: 0,
        transfer_flags: 0,
        buffer_length: 2,
        interval: 0,
        setup: [0x21, 0x20, 0, 0, 0, 0, 7, 0],
        data: Bytes::from_static(b"xx"),
    };
    t.handle_input(&bytes.encode()).unwrap();
    assert_eq!(t.poll_event(), None);
    assert_eq!(replies(&mut t, &[]), vec![ret(1, -22, 0, b"")]);
}

#[test]
fn a_control_in_never_asks_for_more_than_the_urb_buffer() {
    let mut t = translator();
    let bytes = CmdSubmit {
        seqnum: 1,
        devid: DEVID,
        direction: Direction::In,
        ep: 0,
        transfer_flags: 0,
        buffer_length: 9,
        interval: 0,
        setup: [0x80, 6, 0, 2, 0, 0, 0xff, 0],
        data: Bytes::new(),
    };
    t.handle_input(&bytes.encode()).unwrap();
    let Some(Event::Submit(s)) = t.poll_event() else {
        panic!()
    };
    assert_eq!(s.to_request().length, 9);
}

#[test]
fn input_split_at_every_byte_decodes_the_same() {
    let mut stream = submit(1, 2, Direction::Out, 5, b"hello").to_vec();
    stream.extend_from_slice(&unlink(2, 1));
    let mut t = translator();
    for b in &stream {
        t.handle_input(std::slice::from_ref(b)).unwrap();
    }
    assert!(matches!(t.poll_event(), Some(Event::Submit(s)) if &s.data[..] == b"hello"));
    assert_eq!(t.poll_event(), Some(Event::Cancel { seqnum: 1 }));
}

#[test]
fn a_duplicate_pending_seqnum_and_garbage_end_the_connection() {
    let mut t = translator();
    t.handle_input(&submit(1, 1, Direction::In, 8, &[]))
        .unwrap();
    assert!(
        t.handle_input(&submit(1, 1, Direction::In, 8, &[]))
            .is_err()
    );
    let mut t = translator();
    assert_eq!(
        t.handle_input(&[0xde; 48]),
        Err(WireError::UnknownCommand(0xdede_dede))
    );
}

#[test]
fn more_than_max_pending_urbs_are_answered_enomem() {
    let mut t = translator();
    let mut bytes = Vec::new();
    for seq in 0..=MAX_PENDING as u32 {
        bytes.extend_from_slice(&submit(seq, 1, Direction::In, 8, &[]));
    }
    t.handle_input(&bytes).unwrap();
    assert_eq!(t.pending().len(), MAX_PENDING);
    assert_eq!(
        replies(&mut t, &[]),
        vec![ret(MAX_PENDING as u32, -12, 0, b"")]
    );
}
