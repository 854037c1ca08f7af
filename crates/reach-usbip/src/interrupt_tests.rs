use super::*;

fn urb(seqnum: u32, endpoint: u8, kind: SubmitKind, direction: Direction, len: u32) -> Submit {
    Submit {
        seqnum,
        endpoint,
        direction,
        kind,
        data: Bytes::new(),
        in_length: len,
        transfer_flags: 0,
    }
}

fn hid_in(seqnum: u32) -> Submit {
    urb(seqnum, 0x81, SubmitKind::Interrupt, Direction::In, 64)
}

fn actions(s: &mut InterruptStreams) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

/// A stream running on 0x81 (generation 1) with nothing pending.
fn running() -> InterruptStreams {
    let mut s = InterruptStreams::default();
    assert!(s.submit(hid_in(1)).is_none());
    s.started(0x81, 1, true);
    s.report(0x81, 1, TransferStatus::Ok, Bytes::from_static(b"first"));
    actions(&mut s);
    s
}

fn completed(seqnum: u32, data: &'static [u8]) -> Action {
    Action::Complete(
        seqnum,
        Completion {
            status: TransferStatus::Ok,
            actual_length: data.len() as u32,
            data: Bytes::from_static(data),
        },
    )
}

#[test]
fn the_first_interrupt_in_urb_starts_a_stream_sized_by_its_buffer() {
    let mut s = InterruptStreams::default();
    assert!(s.submit(hid_in(7)).is_none());
    let start = Action::Start {
        endpoint: 0x81,
        transfer_size: 64,
        generation: 1,
    };
    assert_eq!(actions(&mut s), vec![start]);
    // A second URB on the same endpoint waits; no second stream.
    assert!(s.submit(hid_in(8)).is_none());
    assert!(actions(&mut s).is_empty());
}

#[test]
fn bulk_control_and_interrupt_out_urbs_are_handed_back_untouched() {
    let mut s = InterruptStreams::default();
    let bulk = urb(1, 0x82, SubmitKind::Bulk, Direction::In, 512);
    assert_eq!(s.submit(bulk.clone()), Some(bulk));
    let out = urb(2, 0x01, SubmitKind::Interrupt, Direction::Out, 0);
    assert_eq!(s.submit(out.clone()), Some(out));
    assert!(actions(&mut s).is_empty());
}

#[test]
fn reports_complete_waiting_urbs_in_order_and_wait_for_urbs_when_none_is_queued() {
    let mut s = InterruptStreams::default();
    s.submit(hid_in(1));
    s.submit(hid_in(2));
    actions(&mut s);
    // Reports before the host confirmed the stream are impossible; after it they flow.
    s.started(0x81, 1, true);
    s.report(0x81, 1, TransferStatus::Ok, Bytes::from_static(b"a"));
    s.report(0x81, 1, TransferStatus::Ok, Bytes::from_static(b"b"));
    s.report(0x81, 1, TransferStatus::Ok, Bytes::from_static(b"c"));
    assert_eq!(
        actions(&mut s),
        vec![completed(1, b"a"), completed(2, b"b")]
    );
    // "c" waits for the next URB, which is answered at once without a round trip.
    s.submit(hid_in(3));
    assert_eq!(actions(&mut s), vec![completed(3, b"c")]);
}

#[test]
fn a_refused_stream_sends_its_waiting_urbs_as_plain_transfers_and_never_asks_again() {
    let mut s = InterruptStreams::default();
    s.submit(hid_in(1));
    s.submit(hid_in(2));
    actions(&mut s);
    s.started(0x81, 1, false);
    assert_eq!(
        actions(&mut s),
        vec![Action::Submit(hid_in(1)), Action::Submit(hid_in(2))]
    );
    assert_eq!(s.submit(hid_in(3)), Some(hid_in(3)));
}

#[test]
fn an_unlinked_waiting_urb_is_answered_cancelled_and_the_stream_keeps_running() {
    let mut s = running();
    s.submit(hid_in(5));
    assert!(s.cancel(5));
    let cancelled = Completion::status(TransferStatus::Cancelled);
    assert_eq!(actions(&mut s), vec![Action::Complete(5, cancelled)]);
    assert!(!s.cancel(5), "already answered");
    assert!(!s.cancel(99), "not an interrupt URB");
    s.submit(hid_in(6));
    s.report(0x81, 1, TransferStatus::Ok, Bytes::from_static(b"x"));
    assert_eq!(actions(&mut s), vec![completed(6, b"x")]);
}

#[test]
fn a_stall_fails_the_first_waiting_urb_sends_the_rest_plain_and_the_next_urb_restarts() {
    let mut s = running();
    s.submit(hid_in(2));
    s.submit(hid_in(3));
    s.report(0x81, 1, TransferStatus::Stall, Bytes::new());
    let stall = Completion::status(TransferStatus::Stall);
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Stop { endpoint: 0x81 },
            Action::Complete(2, stall),
            Action::Submit(hid_in(3)),
        ]
    );
    // A late report of the ended stream is ignored; a new URB starts generation 2.
    s.report(0x81, 1, TransferStatus::Ok, Bytes::from_static(b"late"));
    s.submit(hid_in(4));
    let start = Action::Start {
        endpoint: 0x81,
        transfer_size: 64,
        generation: 2,
    };
    assert_eq!(actions(&mut s), vec![start]);
}

#[test]
fn timeouts_and_host_cancels_in_the_stream_are_not_reports() {
    let mut s = running();
    s.submit(hid_in(2));
    s.report(0x81, 1, TransferStatus::Timeout, Bytes::new());
    s.report(0x81, 1, TransferStatus::Cancelled, Bytes::new());
    assert!(actions(&mut s).is_empty());
}

#[test]
fn a_closed_stream_channel_fails_waiting_urbs_as_device_gone() {
    let mut s = running();
    s.submit(hid_in(2));
    s.ended(0x81, 1);
    let gone = Completion::status(TransferStatus::NoDevice);
    assert_eq!(
        actions(&mut s),
        vec![Action::Stop { endpoint: 0x81 }, Action::Complete(2, gone)]
    );
    s.ended(0x81, 1);
    assert!(actions(&mut s).is_empty(), "a second end changes nothing");
}

#[test]
fn a_report_longer_than_the_urb_buffer_is_an_overflow() {
    let mut s = running();
    s.submit(urb(2, 0x81, SubmitKind::Interrupt, Direction::In, 4));
    s.report(0x81, 1, TransferStatus::Ok, Bytes::from_static(b"too long"));
    let overflow = Completion::status(TransferStatus::Overflow);
    assert_eq!(actions(&mut s), vec![Action::Complete(2, overflow)]);
}

#[test]
fn reports_nobody_asks_for_are_bounded_and_the_oldest_are_dropped() {
    let mut s = running();
    for i in 0..(MAX_REPORTS as u32 + 3) {
        s.report(
            0x81,
            1,
            TransferStatus::Ok,
            Bytes::from(i.to_be_bytes().to_vec()),
        );
    }
    // The three oldest are gone.
    assert_eq!(s.dropped_reports(), 3);
    s.submit(hid_in(9));
    let Some(Action::Complete(9, c)) = s.poll_action() else {
        panic!("expected a completion");
    };
    assert_eq!(&c.data[..], &3u32.to_be_bytes());
}

#[test]
fn set_interface_stops_only_that_interfaces_streams_and_set_configuration_all() {
    let table = EndpointTable::default()
        .with(0x81, crate::request::EndpointKind::Interrupt)
        .with(0x83, crate::request::EndpointKind::Interrupt)
        .with_interface(0, 0x81)
        .with_interface(1, 0x83);
    let mut s = running();
    s.submit(urb(2, 0x83, SubmitKind::Interrupt, Direction::In, 8));
    s.started(0x83, 2, true);
    actions(&mut s);
    s.configured(ConfigOp::SetInterface(0, 1), &table);
    assert_eq!(actions(&mut s), vec![Action::Stop { endpoint: 0x81 }]);
    // 0x83's waiting URB goes to the device as a plain transfer when its stream is reset.
    s.configured(ConfigOp::SetConfiguration(1), &table);
    assert_eq!(
        actions(&mut s),
        vec![
            Action::Stop { endpoint: 0x83 },
            Action::Submit(urb(2, 0x83, SubmitKind::Interrupt, Direction::In, 8)),
        ]
    );
}
